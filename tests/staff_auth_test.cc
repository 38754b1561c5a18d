// Who may call what: every staff RPC refuses a call without a valid
// session, each role is held to its calls, sessions expire, and the audit
// log says who touched which patient's record. Real hub on loopback.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>

#include "absl/status/statusor.h"
#include "common/staff_channel.h"
#include "hub/api/hub_server.h"
#include "stephub/v1/auth.grpc.pb.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "stephub/v1/dashboard.grpc.pb.h"
#include "stephub/v1/maintenance.grpc.pb.h"
#include "stephub/v1/reports.grpc.pb.h"
#include "stephub/v1/station_link.grpc.pb.h"
#include "tests/test_hub.h"
#include "tests/testing.h"

namespace stephub {
namespace {

using ::testing::HasSubstr;

constexpr char kTherapist[] = "tina";
constexpr char kTherapistPassword[] = "tina's password";
constexpr char kAdmin[] = "it-admin";
constexpr char kAdminPassword[] = "admin's password";

// The calls only an admin may make; the rest of the staff calls are a
// therapist's (some, like ListStations, are both's).
const std::set<std::string> kAdminCalls = {
    "/stephub.v1.Clinic/CreateTherapist", "/stephub.v1.Clinic/Rescore",
    "/stephub.v1.Clinic/RevokeStation",   "/stephub.v1.Maintenance/Backup",
    "/stephub.v1.Auth/AddUser",           "/stephub.v1.Auth/ListUsers",
    "/stephub.v1.Auth/SetUserDisabled",   "/stephub.v1.Auth/ListAudit"};
const std::set<std::string> kEitherRole = {
    "/stephub.v1.Clinic/ListTherapists",
    "/stephub.v1.Clinic/ListStations",
    "/stephub.v1.Clinic/ListScoringVersions",
    "/stephub.v1.Auth/Logout",
    "/stephub.v1.Auth/WhoAmI",
    "/stephub.v1.Auth/ChangePassword"};
// Not staff calls: sign-in itself, and stations (certificates, not people).
const std::set<std::string> kNotStaff = {"/stephub.v1.Auth/Login",
                                         "/stephub.v1.StationLink/Stream"};

// Every method of the hub's services, as "/package.Service/Method".
std::vector<std::string> AllMethods() {
  std::vector<std::string> out;
  for (const google::protobuf::FileDescriptor* file :
       {v1::CreatePatientRequest::descriptor()->file(),
        v1::WatchClinicRequest::descriptor()->file(),
        v1::ExportRequest::descriptor()->file(),
        v1::BackupRequest::descriptor()->file(),
        v1::LoginRequest::descriptor()->file(),
        v1::StationMessage::descriptor()->file()}) {
    for (int s = 0; s < file->service_count(); ++s) {
      const auto* service = file->service(s);
      for (int m = 0; m < service->method_count(); ++m) {
        out.push_back(absl::StrCat("/", service->full_name(), "/",
                                   service->method(m)->name()));
      }
    }
  }
  return out;
}

// One call of `method` with an empty request through `channel`; its status.
grpc::Status CallWithEmptyRequest(const std::shared_ptr<grpc::Channel>& channel,
                                  const std::string& method) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  // Short: an allowed WatchClinic runs until it (DEADLINE_EXCEEDED, which
  // is past the check this test is about).
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::CompletionQueue cq;
  grpc::ByteBuffer request, response;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  auto call = stub.PrepareUnaryCall(&ctx, method, request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

class StaffAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api::AddStaffAccount(dir_.path(), kTherapist, "Tina",
                                     auth::kTherapist, kTherapistPassword)
                    .ok());
    ASSERT_TRUE(api::AddStaffAccount(dir_.path(), kAdmin, "IT", auth::kAdmin,
                                     kAdminPassword)
                    .ok());
    api::HubOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_dir = dir_.path();
    testing::UseTestTls(&options);
    options.staff_auth.clock = [this] {
      return absl::Now() + absl::Seconds(skew_s_.load());
    };
    auto hub = testing::StartHub(options);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(*hub);
    address_ = absl::StrCat("127.0.0.1:", hub_->port());
  }

  std::shared_ptr<grpc::Channel> As(const std::string& token) {
    return CreateStaffChannel(address_, testing::StaffCredentials(), token);
  }

  // An admin disables the therapist's account.
  absl::StatusOr<v1::StaffUser> DisableTherapist() {
    auto admin = v1::Auth::NewStub(
        As(testing::SignIn(hub_->port(), kAdmin, kAdminPassword)));
    grpc::ClientContext ctx;
    v1::SetUserDisabledRequest req;
    req.set_username(kTherapist);
    req.set_disabled(true);
    v1::StaffUser user;
    const grpc::Status s = admin->SetUserDisabled(&ctx, req, &user);
    if (!s.ok()) return absl::InternalError(s.error_message());
    return user;
  }

  testing::TempDir dir_;
  std::atomic<int64_t> skew_s_{0};
  std::unique_ptr<api::HubServer> hub_;
  std::string address_;
};

TEST_F(StaffAuthTest, EveryStaffCallNeedsASession) {
  const auto anonymous = As("");
  const auto forged = As("sth_made_up_token");
  int checked = 0;
  for (const std::string& method : AllMethods()) {
    if (kNotStaff.count(method)) continue;
    for (const auto& channel : {anonymous, forged}) {
      const grpc::Status status = CallWithEmptyRequest(channel, method);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << ": " << status.error_message();
    }
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

TEST_F(StaffAuthTest, EachRoleIsHeldToItsCalls) {
  const auto therapist =
      As(testing::SignIn(hub_->port(), kTherapist, kTherapistPassword));
  const auto admin = As(testing::SignIn(hub_->port(), kAdmin, kAdminPassword));
  for (const std::string& method : AllMethods()) {
    if (kNotStaff.count(method) || kEitherRole.count(method)) continue;
    const bool admin_call = kAdminCalls.count(method) > 0;
    const grpc::Status refused =
        CallWithEmptyRequest(admin_call ? therapist : admin, method);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << method << ": " << refused.error_message();
    EXPECT_THAT(refused.error_message(),
                HasSubstr(admin_call ? "needs admin" : "needs therapist"))
        << method;
    // The role that may make the call gets past the check (to its own
    // answer about the empty request).
    const grpc::Status allowed =
        CallWithEmptyRequest(admin_call ? admin : therapist, method);
    EXPECT_NE(allowed.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << method << ": " << allowed.error_message();
    EXPECT_NE(allowed.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << method << ": " << allowed.error_message();
  }
  // The clinic summary names every patient: an admin's report.
  auto reports = v1::Reports::NewStub(therapist);
  grpc::ClientContext ctx;
  v1::ExportRequest req;
  req.set_kind(v1::REPORT_KIND_CLINIC);
  req.set_format(v1::REPORT_FORMAT_CSV);
  req.set_from("2026-01-01");
  req.set_to("2026-01-31");
  auto reader = reports->Export(&ctx, req);
  v1::ReportChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(StaffAuthTest, ExpiredAndEndedSessionsAreRefused) {
  const std::string token =
      testing::SignIn(hub_->port(), kTherapist, kTherapistPassword);
  auto clinic = v1::Clinic::NewStub(As(token));
  {
    grpc::ClientContext ctx;
    v1::ListPatientsResponse resp;
    ASSERT_TRUE(clinic->ListPatients(&ctx, {}, &resp).ok());
  }
  skew_s_ = 12 * 3600;  // the working day is over
  {
    grpc::ClientContext ctx;
    v1::ListPatientsResponse resp;
    const grpc::Status s = clinic->ListPatients(&ctx, {}, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(s.error_message(), HasSubstr("expired"));
  }
  skew_s_ = 0;
  // Signed out: the token is dead, whatever its expiry.
  const std::string second =
      testing::SignIn(hub_->port(), kTherapist, kTherapistPassword);
  auto auth = v1::Auth::NewStub(As(second));
  {
    grpc::ClientContext ctx;
    v1::LogoutResponse resp;
    ASSERT_TRUE(auth->Logout(&ctx, {}, &resp).ok());
  }
  grpc::ClientContext ctx;
  v1::StaffUser me;
  EXPECT_EQ(auth->WhoAmI(&ctx, {}, &me).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(StaffAuthTest, DisablingAnAccountEndsItsSessionsAtOnce) {
  const auto therapist =
      As(testing::SignIn(hub_->port(), kTherapist, kTherapistPassword));
  auto admin = v1::Auth::NewStub(
      As(testing::SignIn(hub_->port(), kAdmin, kAdminPassword)));
  auto disabled = DisableTherapist();
  ASSERT_TRUE(disabled.ok()) << disabled.status();
  EXPECT_TRUE(disabled->disabled());
  EXPECT_EQ(CallWithEmptyRequest(therapist, "/stephub.v1.Clinic/ListPatients")
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(
      testing::SignIn(hub_->port(), kTherapist, kTherapistPassword).empty());
  // An admin cannot lock themself out.
  grpc::ClientContext self_ctx;
  v1::SetUserDisabledRequest self;
  self.set_username(kAdmin);
  self.set_disabled(true);
  v1::StaffUser user;
  EXPECT_EQ(admin->SetUserDisabled(&self_ctx, self, &user).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(StaffAuthTest, ALiveWatchEndsWithItsSession) {
  const auto therapist =
      As(testing::SignIn(hub_->port(), kTherapist, kTherapistPassword));
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
  auto watch = v1::Dashboard::NewStub(therapist)->WatchClinic(&watch_ctx, {});
  v1::ClinicEvent event;
  ASSERT_TRUE(watch->Read(&event));
  ASSERT_TRUE(event.has_snapshot());

  ASSERT_TRUE(DisableTherapist().ok());

  // The next thing that happens in the clinic (a bay comes online) is not
  // sent to the disabled account: its watch ends instead.
  testing::StationCall station = testing::OpenStationCall(
      hub_->port(), testing::StationCredentials("bay-2"));
  ASSERT_TRUE(testing::Send(station, testing::SacrumHello("bay-2", "boot-b")));
  while (watch->Read(&event)) {
    EXPECT_FALSE(event.has_station()) << event.DebugString();
  }
  const grpc::Status ended = watch->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << ended.error_message();
  station.context->TryCancel();
  testing::Drain(station);
}

TEST_F(StaffAuthTest, AuditLogSaysWhoTouchedWhichPatient) {
  const auto therapist =
      As(testing::SignIn(hub_->port(), kTherapist, kTherapistPassword));
  auto clinic = v1::Clinic::NewStub(therapist);
  v1::Patient patient;
  {
    grpc::ClientContext ctx;
    v1::CreatePatientRequest req;
    req.set_display_name("Pat Example");
    ASSERT_TRUE(clinic->CreatePatient(&ctx, req, &patient).ok());
  }
  // A bay comes online and the therapist runs a set on it.
  testing::StationCall station = testing::OpenStationCall(
      hub_->port(), testing::StationCredentials("bay-1"));
  ASSERT_TRUE(testing::Send(station, testing::SacrumHello("bay-1", "boot-a")));
  ASSERT_TRUE(testing::WaitFor([&] {
    const v1::ListStationsResponse listed = testing::ListStations(hub_->port());
    for (const auto& s : listed.stations()) {
      if (s.station_id() == "bay-1" && s.online()) return true;
    }
    return false;
  }));
  v1::ExerciseSet set;
  {
    grpc::ClientContext ctx;
    v1::StartSetRequest req;
    req.set_station_id("bay-1");
    req.set_patient_id(patient.patient_id());
    req.set_stance_side(v1::STANCE_SIDE_LEFT);
    ASSERT_TRUE(clinic->StartSet(&ctx, req, &set).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::GetPatientProgressRequest req;
    req.set_patient_id(patient.patient_id());
    v1::PatientProgress progress;
    ASSERT_TRUE(v1::Dashboard::NewStub(therapist)
                    ->GetPatientProgress(&ctx, req, &progress)
                    .ok());
  }
  {
    grpc::ClientContext ctx;
    v1::ExportRequest req;
    req.set_patient_id(patient.patient_id());
    req.set_format(v1::REPORT_FORMAT_FHIR);
    auto reader = v1::Reports::NewStub(therapist)->Export(&ctx, req);
    v1::ReportChunk chunk;
    while (reader->Read(&chunk)) {
    }
    ASSERT_TRUE(reader->Finish().ok());
  }
  station.context->TryCancel();
  testing::Drain(station);

  auto admin = v1::Auth::NewStub(
      As(testing::SignIn(hub_->port(), kAdmin, kAdminPassword)));
  grpc::ClientContext ctx;
  v1::ListAuditRequest req;
  req.set_patient_id(patient.patient_id());
  v1::ListAuditResponse audit;
  ASSERT_TRUE(admin->ListAudit(&ctx, req, &audit).ok());
  std::vector<std::string> entries;
  for (const v1::AuditEntry& e : audit.entries()) {
    entries.push_back(
        absl::StrCat(e.username(), " ", e.action(), " ", e.detail()));
    EXPECT_EQ(e.patient_id(), patient.patient_id());
  }
  EXPECT_THAT(
      entries,
      ::testing::ElementsAre(
          "tina report_exported REPORT_FORMAT_FHIR", "tina progress_viewed ",
          absl::StrCat("tina set_started set ", set.set_id(), " on bay-1"),
          "tina patient_added "));
  // A therapist may not read the log.
  grpc::ClientContext denied_ctx;
  EXPECT_EQ(v1::Auth::NewStub(therapist)
                ->ListAudit(&denied_ctx, req, &audit)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(StaffAuthTest, RepeatedWrongPasswordsLockTheNameOut) {
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(testing::SignIn(hub_->port(), kTherapist, "guessing").empty());
  }
  auto auth = v1::Auth::NewStub(As(""));
  grpc::ClientContext ctx;
  v1::LoginRequest req;
  req.set_username(kTherapist);
  req.set_password(kTherapistPassword);
  v1::LoginResponse resp;
  const grpc::Status s = auth->Login(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("try again in"));
  // Another person is not held up.
  EXPECT_FALSE(testing::SignIn(hub_->port(), kAdmin, kAdminPassword).empty());
}

}  // namespace
}  // namespace stephub
