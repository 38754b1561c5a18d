// Helpers shared by the integration tests.
#ifndef STEPHUB_TESTS_TESTING_H_
#define STEPHUB_TESTS_TESTING_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "common/pki.h"
#include "stephub/v1/clinic.pb.h"
#include "stephub/v1/station_link.grpc.pb.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::testing {

// A fresh directory under the test's temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A hello announcing a sacral IMU (sensor 10, 200 Hz).
v1::StationHello SacrumHello(const std::string& station_id,
                             const std::string& boot_id);

// `n` quiet-standing samples of sensor 10 from t0_us at 200 Hz.
v1::SampleBatch StandingBatch(uint64_t seq, int64_t t0_us, int n);

// A child process (a real stephub binary) with its stdout and stderr in a
// log file. Killed with SIGKILL on destruction if still running.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string log_file);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  void Signal(int signal);
  // Waits for the exit; returns the exit code, or 128 + signal number.
  int Wait();
  // True if it exited within `timeout` (its code then in *exit_code).
  bool WaitFor(absl::Duration timeout, int* exit_code);
  std::string Log() const;

 private:
  int pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  std::string log_file_;
};

// The staff account every test hub has (test_hub.h AddTestStaff): a
// therapist and an admin.
inline constexpr char kTestStaffUser[] = "test-staff";
inline constexpr char kTestStaffPassword[] = "test staff password";

// Signs in at 127.0.0.1:port and returns the bearer token; empty when the
// hub refuses (the test's calls then fail with UNAUTHENTICATED).
std::string SignIn(int port, const std::string& user = kTestStaffUser,
                   const std::string& password = kTestStaffPassword);


// The test binary's clinic PKI, made once into a temporary directory laid
// out as `stephub certs` lays out its own: ca.crt and ca.key, hub.crt and
// hub.key (for localhost and 127.0.0.1), stations/ID.crt and .key (made on
// first use). Every test reaches the hub through it, over TLS.
class TestPki {
 public:
  static TestPki& Get();
  const std::string& dir() const { return dir_; }
  const pki::KeyAndCert& ca() const { return ca_; }
  std::string ca_file() const { return dir_ + "/ca.crt"; }
  std::string hub_cert_file() const { return dir_ + "/hub.crt"; }
  std::string hub_key_file() const { return dir_ + "/hub.key"; }
  // The station's certificate and key, written to stations/ID.crt and .key
  // (on the first call of any of these three).
  const pki::KeyAndCert& Station(const std::string& station_id);
  std::string station_cert_file(const std::string& station_id);
  std::string station_key_file(const std::string& station_id);

 private:
  TestPki();
  std::string StationPath(const std::string& station_id,
                          const char* extension) const;
  std::string dir_;
  pki::KeyAndCert ca_;
  std::map<std::string, pki::KeyAndCert> stations_;
};

// api::HubOptions serving TLS with the test PKI (a template so that this
// header needs none of the hub's).
template <typename HubOptions>
void UseTestTls(HubOptions* options) {
  TestPki& pki = TestPki::Get();
  options->tls_ca_file = pki.ca_file();
  options->tls_cert_file = pki.hub_cert_file();
  options->tls_key_file = pki.hub_key_file();
}
// station::StationOptions streaming as `station_id` with its test
// certificate.
template <typename StationOptions>
void UseTestTls(StationOptions* options, const std::string& station_id) {
  options->tls_ca_cert_pem = TestPki::Get().ca().cert_pem;
  options->tls_identity = TestPki::Get().Station(station_id);
}
// Clinic.RevokeStation at the hub at 127.0.0.1:port, as staff.
grpc::Status RevokeStation(int port, const std::string& station_id,
                           v1::RevokeStationResponse* response);

// A replacement Pi's certificate for a revoked station: from the test CA,
// issued the second after the revocation (Unix seconds), returned once the
// clock has passed that second so that the hub accepts it.
pki::KeyAndCert ReplacementCertificate(const std::string& station_id,
                                       int64_t revoked_at_seconds);

// stephub-hub flags serving TLS with the test PKI.
std::vector<std::string> HubTlsFlags();
// `stephub` CLI arguments reaching the hub at 127.0.0.1:port over TLS.
std::vector<std::string> CliHubArgs(int port);

// A staff tool's credentials for the hub: TLS trusting the test CA, no
// client certificate.
std::shared_ptr<grpc::ChannelCredentials> StaffCredentials();
// A staff tool's channel to the hub at 127.0.0.1:port, over TLS, whose
// calls carry a fresh sign-in's token.
std::shared_ptr<grpc::Channel> StaffChannel(
    int port, const std::string& user = kTestStaffUser,
    const std::string& password = kTestStaffPassword,
    const grpc::ChannelArguments& args = grpc::ChannelArguments());
// A station's credentials: TLS with its test certificate.
std::shared_ptr<grpc::ChannelCredentials> StationCredentials(
    const std::string& station_id);
std::shared_ptr<grpc::Channel> StationChannel(
    int port, const std::string& station_id,
    const grpc::ChannelArguments& args = {});

// A StationLink stream to the hub at 127.0.0.1:port with `credentials`
// (StationCredentials(id) for a station), bounded to 20 s.
struct StationCall {
  std::unique_ptr<v1::StationLink::Stub> stub;
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StationMessage, v1::HubMessage>>
      stream;
};
StationCall OpenStationCall(
    int port, std::shared_ptr<grpc::ChannelCredentials> credentials);
bool Send(StationCall& call, const v1::StationHello& hello);
bool Send(StationCall& call, const v1::SampleBatch& batch);
// Reads until an ack covering `seq` arrives; false if the stream ends.
bool AwaitAck(StationCall& call, uint64_t seq);
// Reads to the end of the stream and returns its status.
grpc::Status Drain(StationCall& call);

// The hub's station list (Clinic.ListStations) at 127.0.0.1:port; empty
// when the hub does not answer within 5 s.
v1::ListStationsResponse ListStations(int port);

// One HTTP/1.1 exchange with 127.0.0.1:port: over TLS trusting the test
// CA (the hub's web dashboard), or plain (ChromeDriver, a hub run
// insecure_dev). `raw`, when given, is sent as is instead of a request
// built from the rest. Bounded to 60 s.
enum class Transport { kHttps, kHttp };
struct HttpReply {
  int status = 0;  // 0: no answer (the message says why)
  std::string content_type;
  std::string body;
  std::string set_cookie;
};
HttpReply HttpExchange(
    int port, const std::string& method, const std::string& target,
    const std::string& body = "", const std::string& raw = "",
    const std::vector<std::pair<std::string, std::string>>& headers = {},
    Transport transport = Transport::kHttps);

// A dashboard sign-in (POST /api/login): the session cookie to send back
// and the CSRF token its POSTs carry. Empty on failure.
struct WebSession {
  std::string cookie;  // "stephub_session=..."
  std::string csrf;
  std::vector<std::pair<std::string, std::string>> headers() const;
};
WebSession WebSignIn(int port, const std::string& user = kTestStaffUser,
                     const std::string& password = kTestStaffPassword);

// A dashboard connection held open over TLS (trusting the test CA), as a
// live page holds one: sends `request` as is and reads the response's head.
class OpenWebPage {
 public:
  OpenWebPage(int port, const std::string& request);
  ~OpenWebPage();
  // The status line and headers; empty if none came within 60 s.
  const std::string& head() const { return head_; }

 private:
  struct Connection;
  std::unique_ptr<Connection> connection_;
  std::string head_;
};

// What `command` (run by the shell) writes to its standard output; empty if
// it cannot run. For reading reports back with poppler's tools.
std::string CommandOutput(const std::string& command);

// A PDF as poppler reads it back: its text (pdftotext -layout; pages end
// in a form feed), pdfinfo, pdffonts, its page count by pdfinfo, and how
// many pages pdftoppm rendered to an image of some substance.
struct PdfReadBack {
  std::string text, info, fonts;
  int pages = 0;
  int pages_rendered = 0;
};
// Works in a directory of its own, removed afterwards unless
// STEPHUB_KEEP_TEST_DIRS is set (for a look at the pages).
PdfReadBack ReadPdf(const std::string& pdf);

// `a` followed by `b` (argument lists).
std::vector<std::string> Concat(std::vector<std::string> a,
                                const std::vector<std::string>& b);

// Polls `done` until it holds or `timeout` passes; returns its last value.
bool WaitFor(const std::function<bool()>& done,
             absl::Duration timeout = absl::Seconds(20));

}  // namespace stephub::testing

#endif  // STEPHUB_TESTS_TESTING_H_
