// Transport and station identity against a real hub on loopback: TLS with
// the clinic CA, stations known by their client certificates, refusals of a
// foreign CA, an expired certificate, a missing one, impersonation and a
// revoked station (new streams refused, open ones cut, a replacement
// certificate accepted), each with its status; no accepted data lost.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "common/pki.h"
#include "common/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hub/api/hub_server.h"
#include "hub/ingest/station_access.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "stephub/v1/station_link.grpc.pb.h"
#include "tests/test_hub.h"
#include "tests/testing.h"
#include "tools/cli.h"

namespace stephub {
namespace {

using ::testing::HasSubstr;
using Call = testing::StationCall;

class TransportSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override { StartHub(); }

  void StartHub() {
    hub_.reset();
    api::HubOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_dir = dir_.path();
    options.web_listen_address = "127.0.0.1:0";
    testing::UseTestTls(&options);
    auto hub = testing::StartHub(options);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(*hub);
    // The CLI's calls below, as the test staff.
    setenv("STEPHUB_TOKEN", testing::SignIn(hub_->port()).c_str(), 1);
  }

  Call Open(std::shared_ptr<grpc::ChannelCredentials> credentials) {
    return testing::OpenStationCall(hub_->port(), credentials);
  }
  Call OpenAs(const std::string& certificate_of) {
    return Open(testing::StationCredentials(certificate_of));
  }

  // TLS trusting the test CA, presenting `identity`.
  static std::shared_ptr<grpc::ChannelCredentials> With(
      const pki::KeyAndCert& identity) {
    return tls::ChannelCredentials({testing::TestPki::Get().ca().cert_pem,
                                    identity.cert_pem, identity.key_pem},
                                   false);
  }

  static bool Hello(Call& call, const std::string& station_id,
                    const std::string& boot = "boot-a") {
    return testing::Send(call, testing::SacrumHello(station_id, boot));
  }
  // The welcome's durable seq, or -1 if the stream ended instead.
  static int64_t Welcome(Call& call) {
    v1::HubMessage msg;
    if (!call.stream->Read(&msg) || !msg.has_welcome()) return -1;
    return static_cast<int64_t>(msg.welcome().durable_seq());
  }
  // Sends batches 1..n and waits for the ack of n.
  static bool SendAcked(Call& call, uint64_t n) {
    for (uint64_t seq = 1; seq <= n; ++seq) {
      const v1::SampleBatch batch =
          testing::StandingBatch(seq, static_cast<int64_t>(seq) * 100'000, 5);
      if (!testing::Send(call, batch)) return false;
    }
    return testing::AwaitAck(call, n);
  }

  v1::StationStatus StationNamed(const std::string& id) {
    const v1::ListStationsResponse list = testing::ListStations(hub_->port());
    for (const auto& s : list.stations()) {
      if (s.station_id() == id) return s;
    }
    return {};
  }

  testing::TempDir dir_;
  std::unique_ptr<api::HubServer> hub_;
};

TEST_F(TransportSecurityTest, StationWithItsOwnCertificateStreams) {
  Call call = OpenAs("bay-1");
  ASSERT_TRUE(Hello(call, "bay-1"));
  EXPECT_EQ(Welcome(call), 0);
  ASSERT_TRUE(SendAcked(call, 3));
  call.stream->WritesDone();
  EXPECT_TRUE(Drain(call).ok());
  EXPECT_EQ(StationNamed("bay-1").durable_seq(), 3u);
}

TEST_F(TransportSecurityTest, ClientTrustingAnotherCaIsRefused) {
  auto other = pki::MakeCa("Elsewhere", pki::CaValidity(absl::Now()));
  ASSERT_TRUE(other.ok());
  auto channel = grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(hub_->port()),
      tls::ChannelCredentials({other->cert_pem, "", ""}, false));
  auto clinic = v1::Clinic::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListStationsResponse resp;
  const grpc::Status s = clinic->ListStations(&ctx, {}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(TransportSecurityTest, PlaintextClientIsRefused) {
  auto clinic = v1::Clinic::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(hub_->port()),
                          grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListStationsResponse resp;
  EXPECT_EQ(clinic->ListStations(&ctx, {}, &resp).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

// Each refused by the TLS handshake (UNAVAILABLE at the station), before
// any StationLink call: a certificate from another CA, an expired one, one
// not valid yet.
TEST_F(TransportSecurityTest, ForeignExpiredAndEarlyCertificatesAreRefused) {
  const absl::Time now = absl::Now();
  auto other = pki::MakeCa("Elsewhere", pki::CaValidity(now));
  ASSERT_TRUE(other.ok());
  const pki::KeyAndCert& ca = testing::TestPki::Get().ca();
  const struct {
    const char* what;
    absl::StatusOr<pki::KeyAndCert> cert;
  } cases[] = {
      {"another CA's",
       pki::MakeStationCert(*other, "bay-1", pki::StationValidity(now))},
      {"expired",
       pki::MakeStationCert(ca, "bay-1",
                            {now - absl::Hours(48), now - absl::Hours(1)})},
      {"not yet valid",
       pki::MakeStationCert(ca, "bay-1",
                            {now + absl::Hours(1), now + absl::Hours(48)})},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    ASSERT_TRUE(c.cert.ok()) << c.cert.status();
    Call call = Open(With(*c.cert));
    Hello(call, "bay-1");
    const grpc::Status s = Drain(call);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE)
        << s.error_message();
  }
  EXPECT_EQ(StationNamed("bay-1").station_id(), "");
}

TEST_F(TransportSecurityTest, StationWithoutCertificateIsUnauthenticated) {
  Call call = Open(testing::StaffCredentials());
  ASSERT_TRUE(Hello(call, "bay-1"));
  const grpc::Status s = Drain(call);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("client certificate"));
  EXPECT_EQ(StationNamed("bay-1").station_id(), "");
}

TEST_F(TransportSecurityTest, HubCertificateIsNotAStationsIdentity) {
  const pki::KeyAndCert hub{
      *pki::ReadFile(testing::TestPki::Get().hub_key_file()),
      *pki::ReadFile(testing::TestPki::Get().hub_cert_file())};
  Call call = Open(With(hub));
  Hello(call, "bay-1");
  // The hub's certificate is for servers only: the handshake refuses it,
  // or, were it accepted, it names no station.
  const grpc::StatusCode code = Drain(call).error_code();
  EXPECT_TRUE(code == grpc::StatusCode::UNAVAILABLE ||
              code == grpc::StatusCode::UNAUTHENTICATED)
      << code;
}

TEST_F(TransportSecurityTest, StationCannotStreamAsAnother) {
  Call bay1 = OpenAs("bay-1");
  ASSERT_TRUE(Hello(bay1, "bay-1"));
  ASSERT_EQ(Welcome(bay1), 0);
  ASSERT_TRUE(SendAcked(bay1, 4));

  Call impostor = OpenAs("bay-2");
  Hello(impostor, "bay-1", "boot-a");
  testing::Send(impostor, testing::StandingBatch(5, 500'000, 5));
  const grpc::Status s = Drain(impostor);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("station bay-2"));
  EXPECT_THAT(s.error_message(), HasSubstr("as station bay-1"));

  // bay-1's own stream carries on, and nothing of its data was touched.
  ASSERT_TRUE(testing::Send(bay1, testing::StandingBatch(5, 500'000, 5)));
  EXPECT_TRUE(testing::AwaitAck(bay1, 5));
  bay1.stream->WritesDone();
  EXPECT_TRUE(Drain(bay1).ok());
  EXPECT_EQ(StationNamed("bay-1").durable_seq(), 5u);
  EXPECT_EQ(StationNamed("bay-2").station_id(), "");
}

TEST_F(TransportSecurityTest, RevokedStationIsCutRefusedAndReplaceable) {
  Call open = OpenAs("bay-1");
  ASSERT_TRUE(Hello(open, "bay-1"));
  ASSERT_EQ(Welcome(open), 0);
  ASSERT_TRUE(SendAcked(open, 3));

  v1::RevokeStationResponse revoked;
  ASSERT_TRUE(testing::RevokeStation(hub_->port(), "bay-1", &revoked).ok());
  EXPECT_EQ(revoked.streams_cut(), 1u);
  // The open stream is cut...
  const grpc::Status cut = Drain(open);
  EXPECT_EQ(cut.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(cut.error_message(), HasSubstr("station bay-1 was revoked"));
  // ...a new one with the same certificate is refused...
  Call again = OpenAs("bay-1");
  Hello(again, "bay-1");
  EXPECT_EQ(Drain(again).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // ...and the station list says so; what it had sent is kept.
  const v1::StationStatus listed = StationNamed("bay-1");
  EXPECT_TRUE(listed.has_revoked_at());
  EXPECT_EQ(listed.revoked_at().seconds(), revoked.revoked_at().seconds());
  EXPECT_EQ(listed.durable_seq(), 3u);
  // Other stations are untouched.
  Call bay2 = OpenAs("bay-2");
  ASSERT_TRUE(Hello(bay2, "bay-2"));
  EXPECT_EQ(Welcome(bay2), 0);
  bay2.stream->WritesDone();
  EXPECT_TRUE(Drain(bay2).ok());

  // The revocation is in the clinic record: a restarted hub refuses too.
  StartHub();
  Call after_restart = OpenAs("bay-1");
  Hello(after_restart, "bay-1");
  EXPECT_EQ(Drain(after_restart).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // The replacement Pi's certificate, issued after the revocation, streams
  // and resumes where the lost one left off.
  const pki::KeyAndCert replacement =
      testing::ReplacementCertificate("bay-1", revoked.revoked_at().seconds());
  Call fresh = Open(With(replacement));
  ASSERT_TRUE(Hello(fresh, "bay-1"));
  EXPECT_EQ(Welcome(fresh), 3);
  fresh.stream->WritesDone();
  EXPECT_TRUE(Drain(fresh).ok());
}

TEST_F(TransportSecurityTest, StationRevokedBeforeItConnectedIsListed) {
  v1::RevokeStationResponse resp;
  ASSERT_TRUE(testing::RevokeStation(hub_->port(), "bay-lost", &resp).ok());
  EXPECT_EQ(resp.streams_cut(), 0u);
  const v1::StationStatus listed = StationNamed("bay-lost");
  EXPECT_TRUE(listed.has_revoked_at());
  EXPECT_FALSE(listed.online());
  Call call = OpenAs("bay-lost");
  Hello(call, "bay-lost");
  EXPECT_EQ(Drain(call).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(TransportSecurityTest, RevokingABadStationIdIsInvalidArgument) {
  v1::RevokeStationResponse resp;
  const grpc::Status s = testing::RevokeStation(hub_->port(), "Bay 1!", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("Bay 1!"));
}

TEST_F(TransportSecurityTest, CliRevokesAndListsTheRevokedStation) {
  Call call = OpenAs("bay-3");
  ASSERT_TRUE(Hello(call, "bay-3"));
  ASSERT_EQ(Welcome(call), 0);
  std::ostringstream out, err;
  ASSERT_EQ(cli::Run(testing::Concat(testing::CliHubArgs(hub_->port()),
                                     {"stations", "revoke", "bay-3"}),
                     out, err),
            0)
      << err.str();
  EXPECT_THAT(out.str(), HasSubstr("1 open stream(s) cut"));
  EXPECT_EQ(Drain(call).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  std::ostringstream list, list_err;
  ASSERT_EQ(
      cli::Run(testing::Concat(testing::CliHubArgs(hub_->port()), {"stations"}),
               list, list_err),
      0)
      << list_err.str();
  EXPECT_THAT(list.str(), HasSubstr("REVOKED"));
  // Without the clinic CA the CLI says what to give it.
  std::ostringstream o2, e2;
  EXPECT_EQ(cli::Run({"--hub", "127.0.0.1:" + std::to_string(hub_->port()),
                      "--ca_file", dir_.path() + "/none.crt", "stations"},
                     o2, e2),
            2);
  EXPECT_THAT(e2.str(), HasSubstr("none.crt"));
  EXPECT_THAT(e2.str(), HasSubstr("--ca_file"));
}

TEST_F(TransportSecurityTest, DashboardIsHttpsOnly) {
  const testing::WebSession session = testing::WebSignIn(hub_->web_port());
  const testing::HttpReply https = testing::HttpExchange(
      hub_->web_port(), "GET", "/api/stations", "", "", session.headers());
  EXPECT_EQ(https.status, 200) << https.body;
  EXPECT_THAT(session.cookie, HasSubstr("stephub_session="));
  const testing::HttpReply plain =
      testing::HttpExchange(hub_->web_port(), "GET", "/api/stations", "", "",
                            session.headers(), testing::Transport::kHttp);
  EXPECT_EQ(plain.status, 0) << plain.body;
}

// Whether a stream with `credentials` is welcomed as bay-1 by the hub at
// `port` and ends cleanly.
bool WelcomedAsBay1(int port,
                    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  Call call = testing::OpenStationCall(port, credentials);
  v1::HubMessage welcome;
  if (!testing::Send(call, testing::SacrumHello("bay-1", "boot-a")) ||
      !call.stream->Read(&welcome)) {
    return false;
  }
  call.stream->WritesDone();
  return testing::Drain(call).ok() && welcome.has_welcome();
}

// The rule itself, on certificates as the hub reads them.
TEST(StationCertificateRule, IdentityAndRevocationByIssueTime) {
  const absl::Time revoked = absl::FromUnixSeconds(1'800'000'000);
  pki::CertInfo bay1;
  bay1.common_name = "bay-1";
  bay1.uris = {"stephub:station:bay-1"};
  bay1.not_before = revoked - absl::Hours(24);
  EXPECT_TRUE(
      ingest::CheckStationCertificate(bay1, "bay-1", std::nullopt).ok());
  EXPECT_EQ(ingest::CheckStationCertificate(std::nullopt, "bay-1", std::nullopt)
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ingest::CheckStationCertificate(bay1, "bay-2", std::nullopt).code(),
            absl::StatusCode::kPermissionDenied);
  // A CN alone is not a station's name: only the stephub:station: URI is.
  pki::CertInfo cn_only = bay1;
  cn_only.uris.clear();
  EXPECT_EQ(
      ingest::CheckStationCertificate(cn_only, "bay-1", std::nullopt).code(),
      absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ingest::CheckStationCertificate(bay1, "bay-1", revoked).code(),
            absl::StatusCode::kPermissionDenied);
  bay1.not_before = revoked;  // issued in the second of the revocation
  EXPECT_EQ(ingest::CheckStationCertificate(bay1, "bay-1", revoked).code(),
            absl::StatusCode::kPermissionDenied);
  bay1.not_before = revoked + absl::Seconds(1);  // the replacement
  EXPECT_TRUE(ingest::CheckStationCertificate(bay1, "bay-1", revoked).ok());
}

TEST(HubTransport, MissingCertificateFilesAreNamedWithTheCommandThatMakesThem) {
  testing::TempDir dir;
  api::HubOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = dir.path();
  auto hub = api::HubServer::Start(options);
  ASSERT_FALSE(hub.ok());
  EXPECT_EQ(hub.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(hub.status().message()),
              HasSubstr(dir.path() + "/tls/ca.crt"));
  EXPECT_THAT(std::string(hub.status().message()),
              HasSubstr("stephub certs init"));

  options.tls_ca_file = testing::TestPki::Get().ca_file();
  options.tls_cert_file = testing::TestPki::Get().hub_cert_file();
  options.tls_key_file = testing::TestPki::Get().station_key_file("bay-1");
  hub = api::HubServer::Start(options);
  ASSERT_FALSE(hub.ok());
  EXPECT_THAT(std::string(hub.status().message()),
              HasSubstr("does not belong"));
  // A hub certificate from another CA (the CA made again, say).
  options.tls_ca_file = dir.path() + "/other-ca.crt";
  options.tls_key_file = testing::TestPki::Get().hub_key_file();
  ASSERT_TRUE(pki::WriteFile(
                  options.tls_ca_file,
                  pki::MakeCa("Other", pki::CaValidity(absl::Now()))->cert_pem,
                  0644, false)
                  .ok());
  hub = api::HubServer::Start(options);
  ASSERT_FALSE(hub.ok());
  EXPECT_THAT(std::string(hub.status().message()),
              HasSubstr("stephub certs hub"));
}

TEST(HubTransport, InsecureDevServesPlaintextAndAdmitsAnyStation) {
  testing::TempDir dir;
  api::HubOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = dir.path();
  options.web_listen_address = "127.0.0.1:0";
  options.insecure_dev = true;
  auto hub = api::HubServer::Start(options);
  ASSERT_TRUE(hub.ok()) << hub.status();
  EXPECT_FALSE((*hub)->tls());
  EXPECT_TRUE(
      WelcomedAsBay1((*hub)->port(), grpc::InsecureChannelCredentials()));
  // Served in plaintext (and, without a session, refused).
  const testing::HttpReply reply =
      testing::HttpExchange((*hub)->web_port(), "GET", "/api/stations", "", "",
                            {}, testing::Transport::kHttp);
  EXPECT_EQ(reply.status, 401);
  EXPECT_THAT(reply.body, HasSubstr("UNAUTHENTICATED"));
}

TEST(CertsCommand, MakesAClinicSetAndRefusesToOverwriteOrBadNames) {
  testing::TempDir dir;
  const std::string ca_dir = dir.path() + "/tls";
  auto run = [&](std::vector<std::string> args, std::string* err = nullptr) {
    std::ostringstream o, e;
    const int code = cli::Run(args, o, e);
    if (err) *err = e.str();
    return code;
  };
  std::string err;
  EXPECT_EQ(run({"certs", "station", "bay-1", "--dir", ca_dir}, &err), 1);
  EXPECT_THAT(err, HasSubstr("stephub certs init"));
  ASSERT_EQ(
      run({"certs", "init", "--dir", ca_dir, "--clinic", "Physio Nord"}, &err),
      0)
      << err;
  EXPECT_EQ(run({"certs", "init", "--dir", ca_dir}, &err), 1);
  EXPECT_THAT(err, HasSubstr("ca.key exists"));
  ASSERT_EQ(run({"certs", "hub", "--dir", ca_dir, "--name",
                 "hub.clinic.lan,192.168.1.10"},
                &err),
            0)
      << err;
  ASSERT_EQ(run({"certs", "station", "bay-1", "--dir", ca_dir}, &err), 0)
      << err;
  EXPECT_EQ(run({"certs", "station", "bay-1", "--dir", ca_dir}, &err), 1);
  EXPECT_THAT(err, HasSubstr("bay-1.key exists"));
  EXPECT_EQ(run({"certs", "station", "Bay 1", "--dir", ca_dir}, &err), 2);
  EXPECT_THAT(err, HasSubstr("not a station id"));
  EXPECT_EQ(
      run({"certs", "hub", "--dir", ca_dir, "--name", "a b", "--force"}, &err),
      1);
  EXPECT_THAT(err, HasSubstr("neither a DNS name nor an IP address"));

  // What was written reads back as a working set: a hub serving with it
  // admits the station.
  const std::string ca = *pki::ReadFile(ca_dir + "/ca.crt");
  auto hub_cert = pki::ParseCert(*pki::ReadFile(ca_dir + "/hub.crt"));
  ASSERT_TRUE(hub_cert.ok());
  EXPECT_THAT(hub_cert->dns_names, ::testing::Contains("hub.clinic.lan"));
  EXPECT_THAT(hub_cert->ip_addresses, ::testing::Contains("192.168.1.10"));
  EXPECT_EQ(hub_cert->issuer_common_name, "Physio Nord StepHub CA");
  api::HubOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = dir.path();  // its tls/ is where certs wrote
  auto hub = api::HubServer::Start(options);
  ASSERT_TRUE(hub.ok()) << hub.status();
  const pki::KeyAndCert bay1{*pki::ReadFile(ca_dir + "/stations/bay-1.key"),
                             *pki::ReadFile(ca_dir + "/stations/bay-1.crt")};
  EXPECT_TRUE(WelcomedAsBay1(
      (*hub)->port(),
      tls::ChannelCredentials({ca, bay1.cert_pem, bay1.key_pem}, false)));
}

}  // namespace
}  // namespace stephub
