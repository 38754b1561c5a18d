// StationLink and Clinic against bad input: every mistake gets a precise
// status, data accepted before it stays stored, and other stations carry on.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "hub/api/hub_server.h"
#include "hub/store/store.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "stephub/v1/station_link.grpc.pb.h"
#include "tests/test_hub.h"
#include "tests/testing.h"

namespace stephub {
namespace {

using ::testing::HasSubstr;

class StationLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api::HubOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_dir = dir_.path();
    testing::UseTestTls(&options);
    auto hub = testing::StartHub(options);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(*hub);
    channel_ = testing::StaffChannel(hub_->port());
    clinic_ = v1::Clinic::NewStub(channel_);
  }

  using Call = testing::StationCall;

  // A stream on a channel with `station_id`'s certificate.
  Call Open(const std::string& station_id = "bay-1") {
    return testing::OpenStationCall(hub_->port(),
                                    testing::StationCredentials(station_id));
  }

  void ListSessions(int64_t patient_id, v1::ListSessionsResponse* sessions) {
    grpc::ClientContext ctx;
    v1::ListSessionsRequest req;
    req.set_patient_id(patient_id);
    ASSERT_TRUE(clinic_->ListSessions(&ctx, req, sessions).ok());
  }

  testing::TempDir dir_;
  std::unique_ptr<api::HubServer> hub_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Clinic::Stub> clinic_;
};

TEST(HubStart, UnknownTimeZoneIsRefusedWithTheName) {
  testing::TempDir dir;
  api::HubOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = dir.path();
  options.time_zone = "Mars/Olympus_Mons";
  testing::UseTestTls(&options);
  auto hub = testing::StartHub(options);
  ASSERT_FALSE(hub.ok());
  EXPECT_EQ(hub.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(hub.status().message()),
              HasSubstr("unknown time zone \"Mars/Olympus_Mons\""));
}

TEST(HubStart, StreamCommitDelayOutsideItsRangeIsRefused) {
  testing::TempDir dir;
  api::HubOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = dir.path();
  options.stream_commit_delay = absl::Seconds(5);
  testing::UseTestTls(&options);
  auto hub = testing::StartHub(options);
  ASSERT_FALSE(hub.ok());
  EXPECT_EQ(hub.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(hub.status().message()),
              HasSubstr("stream commit delay 5s is outside 0 to 1s"));
}

TEST_F(StationLinkTest, BatchBeforeHelloIsFailedPrecondition) {
  Call call = Open();
  Send(call, testing::StandingBatch(1, 0, 5));
  grpc::Status status = Drain(call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("hello"));
}

TEST_F(StationLinkTest, RepeatedSequenceIsRejectedAndAcceptedDataKept) {
  Call call = Open("bay-1");
  ASSERT_TRUE(Send(call, testing::SacrumHello("bay-1", "boot-a")));
  ASSERT_TRUE(Send(call, testing::StandingBatch(1, 0, 5)));
  ASSERT_TRUE(AwaitAck(call, 1));
  Send(call, testing::StandingBatch(1, 100000, 5));
  grpc::Status status = Drain(call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("repeats"));

  // Reconnecting resumes after the batch that was stored.
  Call again = Open("bay-1");
  ASSERT_TRUE(Send(again, testing::SacrumHello("bay-1", "boot-a")));
  v1::HubMessage welcome;
  ASSERT_TRUE(again.stream->Read(&welcome));
  ASSERT_TRUE(welcome.has_welcome());
  EXPECT_EQ(welcome.welcome().durable_seq(), 1u);
  ASSERT_TRUE(Send(again, testing::StandingBatch(2, 100000, 5)));
  EXPECT_TRUE(AwaitAck(again, 2));
  again.stream->WritesDone();
  EXPECT_TRUE(Drain(again).ok());
}

// One sample far ahead (a glitching clock) must not make every later batch
// look as if it went back: the stream goes on, the step is recorded.
TEST_F(StationLinkTest, TimeGoingBackAcrossBatchesIsAcceptedAndRecorded) {
  Call call = Open("bay-4");
  ASSERT_TRUE(Send(call, testing::SacrumHello("bay-4", "boot-d")));
  ASSERT_TRUE(Send(call, testing::StandingBatch(1, 0, 5)));
  v1::SampleBatch glitch = testing::StandingBatch(2, 25'000, 5);
  glitch.mutable_imu(0)->set_t_us(4, int64_t{1} << 50);
  ASSERT_TRUE(Send(call, glitch));
  for (uint64_t seq = 3; seq <= 5; ++seq) {
    ASSERT_TRUE(
        Send(call, testing::StandingBatch(
                       seq, static_cast<int64_t>(seq - 1) * 25'000, 5)));
  }
  EXPECT_TRUE(AwaitAck(call, 5));
  call.stream->WritesDone();
  EXPECT_TRUE(Drain(call).ok());
  hub_.reset();  // every event written

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/stephub.db").c_str(), &db),
            SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT station_id, detail FROM events WHERE "
                               "kind = 'station_clock_back'",
                               -1, &stmt, nullptr),
            SQLITE_OK);
  std::vector<std::string> details;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
                 "bay-4");
    details.emplace_back(
        reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1)));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  // Only the batch after the glitch starts before the last sample.
  ASSERT_EQ(details.size(), 1u);
  EXPECT_THAT(details[0], HasSubstr("batch 3 starts at t_us 50000"));
}

TEST_F(StationLinkTest, NanSampleIsInvalidArgumentNamingTheValue) {
  Call call = Open("bay-2");
  ASSERT_TRUE(Send(call, testing::SacrumHello("bay-2", "boot-b")));
  v1::SampleBatch batch = testing::StandingBatch(1, 0, 5);
  batch.mutable_imu(0)->set_gy_radps(3,
                                     std::numeric_limits<float>::quiet_NaN());
  Send(call, batch);
  grpc::Status status = Drain(call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("gy_radps[3]"));
  EXPECT_THAT(status.error_message(), HasSubstr("finite"));
}

TEST_F(StationLinkTest, OtherBadInputGetsPreciseStatuses) {
  struct Case {
    const char* name;
    std::function<void(v1::StationHello&, v1::SampleBatch&)> spoil;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"unknown sensor",
       [](auto&, auto& b) { b.mutable_imu(0)->set_sensor_id(99); },
       "not announced"},
      {"time goes back",
       [](auto&, auto& b) { b.mutable_imu(0)->set_t_us(2, 0); },
       "strictly increase"},
      {"columns differ",
       [](auto&, auto& b) { b.mutable_imu(0)->add_ax_mps2(1); },
       "differ in length"},
      {"sequence gap", [](auto&, auto& b) { b.set_seq(5); }, "gap"},
      {"bad station id", [](auto& h, auto&) { h.set_station_id("Bay 1!"); },
       "station_id"},
      {"imu at the foot",
       [](auto& h, auto&) {
         h.mutable_sensors(0)->set_placement(v1::PLACEMENT_STANCE_FOOT);
       },
       "body placement"},
      {"placement no version knows",
       [](auto& h, auto&) {
         h.mutable_sensors(0)->set_placement(static_cast<v1::Placement>(77));
       },
       "body placement"},
      {"rate not a number",
       [](auto& h, auto&) {
         h.mutable_sensors(0)->set_rate_hz(
             std::numeric_limits<double>::quiet_NaN());
       },
       "rate_hz"},
      {"infinite acceleration",
       [](auto&, auto& b) {
         b.mutable_imu(0)->set_az_mps2(1,
                                       std::numeric_limits<float>::infinity());
       },
       "az_mps2[1] is not a finite number"},
      {"acceleration beyond physics",
       [](auto&, auto& b) { b.mutable_imu(0)->set_ax_mps2(0, -1e6f); },
       "exceeds"},
      {"negative time",
       [](auto&, auto& b) { b.mutable_imu(0)->set_t_us(0, -1); },
       "outside [0, 2^62)"},
      {"repeated timestamp",
       [](auto&, auto& b) { b.mutable_imu(0)->set_t_us(3, b.imu(0).t_us(2)); },
       "strictly increase"},
      {"sensor twice in a batch",
       [](auto&, auto& b) { *b.add_imu() = b.imu(0); }, "appears twice"},
      {"too many samples",
       [](auto&, auto& b) { b = testing::StandingBatch(1, 1000, 5001); },
       "5001 samples in one batch, more than the limit of 5000"},
      {"control characters in boot_id",
       [](auto& h, auto&) { h.set_boot_id("boot\x1b[2Jx"); },
       "boot_id must not contain control characters"},
      {"software version too long",
       [](auto& h, auto&) { h.set_software_version(std::string(65, 'v')); },
       "software_version must be 0 to 64 characters (got 65)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::StationHello hello = testing::SacrumHello("bay-3", c.name);
    v1::SampleBatch batch = testing::StandingBatch(1, 1000, 5);
    c.spoil(hello, batch);
    Call call = Open("bay-3");
    Send(call, hello);
    Send(call, batch);
    grpc::Status status = Drain(call);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr(c.expect));
  }
}

TEST_F(StationLinkTest, StaffInputOutOfRangeIsInvalidArgument) {
  {
    // Seconds whose microseconds would overflow.
    v1::RescoreRequest request;
    request.mutable_since()->set_seconds(std::numeric_limits<int64_t>::max());
    v1::RescoreResponse response;
    grpc::ClientContext ctx;
    const grpc::Status status = clinic_->Rescore(&ctx, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("since must be a time"));
  }
  {
    v1::StartSetRequest request;
    request.set_station_id("bay-1");
    request.set_patient_id(1);
    request.set_stance_side(v1::STANCE_SIDE_LEFT);
    request.set_load("5 kg\x1b[8m");
    v1::ExerciseSet set;
    grpc::ClientContext ctx;
    const grpc::Status status = clinic_->StartSet(&ctx, request, &set);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(),
                HasSubstr("load must not contain control characters"));
  }
}

// One stream per station: a newer one (the station reconnecting after a
// cut the hub has not noticed yet) replaces the older, which is ended; what
// the older had acknowledged stays.
TEST_F(StationLinkTest, ANewerStreamOfTheSameStationReplacesTheOlder) {
  Call first = Open();
  ASSERT_TRUE(Send(first, testing::SacrumHello("bay-1", "boot-a")));
  ASSERT_TRUE(Send(first, testing::StandingBatch(1, 0, 5)));
  ASSERT_TRUE(AwaitAck(first, 1));

  Call second = Open();
  ASSERT_TRUE(Send(second, testing::SacrumHello("bay-1", "boot-a")));
  v1::HubMessage welcome;
  ASSERT_TRUE(second.stream->Read(&welcome));
  ASSERT_TRUE(welcome.has_welcome());
  EXPECT_EQ(welcome.welcome().durable_seq(), 1u);
  EXPECT_EQ(Drain(first).error_code(), grpc::StatusCode::CANCELLED);

  ASSERT_TRUE(Send(second, testing::StandingBatch(2, 25'000, 5)));
  EXPECT_TRUE(AwaitAck(second, 2));
  second.stream->WritesDone();
  EXPECT_TRUE(Drain(second).ok());
}

TEST_F(StationLinkTest, StartSetOnUnknownStationIsNotFound) {
  v1::CreatePatientRequest patient_request;
  patient_request.set_display_name("Test Patient");
  v1::Patient patient;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(clinic_->CreatePatient(&ctx, patient_request, &patient).ok());
  }
  v1::StartSetRequest request;
  request.set_station_id("bay-nowhere");
  request.set_patient_id(patient.patient_id());
  request.set_stance_side(v1::STANCE_SIDE_LEFT);
  v1::ExerciseSet set;
  grpc::ClientContext ctx;
  grpc::Status status = clinic_->StartSet(&ctx, request, &set);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("bay-nowhere"));

  grpc::ClientContext ctx2;
  v1::CreatePatientRequest empty;
  EXPECT_EQ(clinic_->CreatePatient(&ctx2, empty, &patient).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(StationLinkTest, TherapistAndSessionAreRecordedOnTheSet) {
  Call call = Open("bay-t");
  ASSERT_TRUE(Send(call, testing::SacrumHello("bay-t", "boot-t")));
  v1::HubMessage welcome;
  ASSERT_TRUE(call.stream->Read(&welcome));
  v1::Therapist therapist;
  {
    grpc::ClientContext ctx;
    v1::CreateTherapistRequest req;
    req.set_display_name("Tess Physio");
    ASSERT_TRUE(clinic_->CreateTherapist(&ctx, req, &therapist).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::CreateTherapistRequest nameless;
    EXPECT_EQ(clinic_->CreateTherapist(&ctx, nameless, &therapist).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  v1::Patient patient;
  {
    grpc::ClientContext ctx;
    v1::CreatePatientRequest req;
    req.set_display_name("Pat");
    ASSERT_TRUE(clinic_->CreatePatient(&ctx, req, &patient).ok());
  }
  v1::StartSetRequest start;
  start.set_station_id("bay-t");
  start.set_patient_id(patient.patient_id());
  start.set_stance_side(v1::STANCE_SIDE_LEFT);
  start.set_therapist_id(therapist.therapist_id() + 100);
  v1::ExerciseSet set;
  {
    grpc::ClientContext ctx;
    const grpc::Status status = clinic_->StartSet(&ctx, start, &set);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(status.error_message(), HasSubstr("no therapist"));
  }
  start.set_therapist_id(therapist.therapist_id());
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(clinic_->StartSet(&ctx, start, &set).ok());
  }
  EXPECT_EQ(set.therapist_id(), therapist.therapist_id());
  v1::ListTherapistsResponse list;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(clinic_->ListTherapists(&ctx, {}, &list).ok());
  }
  ASSERT_EQ(list.therapists_size(), 1);
  EXPECT_EQ(list.therapists(0).display_name(), "Tess Physio");

  // The day's first set began the patient's session; a second set the same
  // day joins it.
  EXPECT_GT(set.session_id(), 0);
  {
    grpc::ClientContext ctx;
    v1::EndSetRequest end;
    end.set_set_id(set.set_id());
    v1::ExerciseSet ended;
    ASSERT_TRUE(clinic_->EndSet(&ctx, end, &ended).ok());
  }
  v1::ExerciseSet second;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(clinic_->StartSet(&ctx, start, &second).ok());
  }
  EXPECT_EQ(second.session_id(), set.session_id());
  v1::Session noted;
  {
    grpc::ClientContext ctx;
    v1::SetSessionNoteRequest note;
    note.set_session_id(set.session_id());
    note.set_note("left hip sore after set 2");
    ASSERT_TRUE(clinic_->SetSessionNote(&ctx, note, &noted).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::SetSessionNoteRequest note;
    note.set_session_id(set.session_id() + 100);
    note.set_note("nobody's");
    EXPECT_EQ(clinic_->SetSessionNote(&ctx, note, &noted).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  v1::ListSessionsResponse sessions;
  ASSERT_NO_FATAL_FAILURE(ListSessions(patient.patient_id(), &sessions));
  ASSERT_EQ(sessions.sessions_size(), 1);
  EXPECT_EQ(sessions.sessions(0).note(), "left hip sore after set 2");
  EXPECT_EQ(sessions.sessions(0).set_ids_size(), 2);
  EXPECT_EQ(sessions.sessions(0).day().size(), 10u);  // YYYY-MM-DD
  call.stream->WritesDone();
  Drain(call);
}

// Start and end are locked per station, not clinic-wide: calls racing on
// one station still leave it one set, ended once, while other stations'
// calls go on beside them; the patient's day stays one session.
TEST_F(StationLinkTest, RacingSetCallsLeaveEachStationOneSet) {
  constexpr int kStations = 3;
  constexpr int kCallsEach = 4;
  std::vector<Call> calls;
  for (int i = 0; i < kStations; ++i) {
    const std::string id = "bay-race-" + std::to_string(i);
    calls.push_back(Open(id));
    ASSERT_TRUE(Send(calls.back(), testing::SacrumHello(id, "boot-r")));
    v1::HubMessage welcome;
    ASSERT_TRUE(calls.back().stream->Read(&welcome));
  }
  v1::Patient patient;
  {
    grpc::ClientContext ctx;
    v1::CreatePatientRequest req;
    req.set_display_name("Rae");
    ASSERT_TRUE(clinic_->CreatePatient(&ctx, req, &patient).ok());
  }
  struct Outcome {
    grpc::Status status;
    v1::ExerciseSet set;
  };
  // Every station's calls at once, each on its own thread.
  auto race = [&](auto call_for) {
    std::vector<Outcome> outcomes(kStations * kCallsEach);
    std::vector<std::thread> threads;
    for (int i = 0; i < kStations * kCallsEach; ++i) {
      threads.emplace_back([&, i] {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
        outcomes[i].status = call_for(i / kCallsEach, &ctx, &outcomes[i].set);
      });
    }
    for (auto& t : threads) t.join();
    return outcomes;
  };
  const auto started =
      race([&](int station, grpc::ClientContext* ctx, v1::ExerciseSet* set) {
        v1::StartSetRequest req;
        req.set_station_id("bay-race-" + std::to_string(station));
        req.set_patient_id(patient.patient_id());
        req.set_stance_side(v1::STANCE_SIDE_LEFT);
        return clinic_->StartSet(ctx, req, set);
      });
  std::vector<int64_t> set_of(kStations, 0);
  for (int i = 0; i < kStations * kCallsEach; ++i) {
    const Outcome& o = started[i];
    if (o.status.ok()) {
      EXPECT_EQ(set_of[i / kCallsEach], 0)
          << "two sets on station " << i / kCallsEach;
      set_of[i / kCallsEach] = o.set.set_id();
    } else {
      EXPECT_EQ(o.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
      EXPECT_THAT(o.status.error_message(), HasSubstr("already running set"));
    }
  }
  for (int s = 0; s < kStations; ++s) EXPECT_NE(set_of[s], 0) << s;

  const auto ended =
      race([&](int station, grpc::ClientContext* ctx, v1::ExerciseSet* set) {
        v1::EndSetRequest req;
        req.set_set_id(set_of[station]);
        return clinic_->EndSet(ctx, req, set);
      });
  std::vector<int> ends(kStations, 0);
  for (int i = 0; i < kStations * kCallsEach; ++i) {
    const Outcome& o = ended[i];
    if (o.status.ok()) {
      ++ends[i / kCallsEach];
      EXPECT_EQ(o.set.set_id(), set_of[i / kCallsEach]);
    } else {
      EXPECT_EQ(o.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
      EXPECT_THAT(o.status.error_message(), HasSubstr("already ended"));
    }
  }
  for (int s = 0; s < kStations; ++s) EXPECT_EQ(ends[s], 1) << s;

  v1::ListSessionsResponse sessions;
  ASSERT_NO_FATAL_FAILURE(ListSessions(patient.patient_id(), &sessions));
  ASSERT_EQ(sessions.sessions_size(), 1);
  EXPECT_EQ(sessions.sessions(0).set_ids_size(), kStations);
  for (auto& call : calls) {
    call.stream->WritesDone();
    Drain(call);
  }
}

TEST_F(StationLinkTest, GoodStationKeepsStreamingWhileAnotherMisbehaves) {
  Call good = Open("bay-good");
  ASSERT_TRUE(Send(good, testing::SacrumHello("bay-good", "boot-g")));
  ASSERT_TRUE(Send(good, testing::StandingBatch(1, 0, 5)));
  ASSERT_TRUE(AwaitAck(good, 1));

  Call bad = Open("bay-bad");
  Send(bad, testing::SacrumHello("bay-bad", "boot-x"));
  v1::SampleBatch nan = testing::StandingBatch(1, 0, 5);
  nan.mutable_imu(0)->set_az_mps2(0, std::nanf(""));
  Send(bad, nan);
  EXPECT_EQ(Drain(bad).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  for (uint64_t seq = 2; seq <= 20; ++seq) {
    ASSERT_TRUE(Send(good, testing::StandingBatch(seq, seq * 100000, 5)));
  }
  EXPECT_TRUE(AwaitAck(good, 20));
  good.stream->WritesDone();
  EXPECT_TRUE(Drain(good).ok());

  hub_.reset();  // everything acknowledged must be in the database
  auto store = store::OpenSqliteStore(dir_.path() + "/stephub.db");
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*(*store)->CountBatches("bay-good"), 20);
  EXPECT_EQ(*(*store)->CountBatches("bay-bad"), 0);
}

}  // namespace
}  // namespace stephub

namespace stephub {
namespace {

class StationLinkClockAndHealthTest : public StationLinkTest {
 protected:
  static bool SendMessage(Call& call, const v1::StationMessage& m) {
    return call.stream->Write(m);
  }
  v1::StationStatus StatusOf(const std::string& station_id) {
    v1::ListStationsResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(clinic_->ListStations(&ctx, {}, &resp).ok());
    for (const auto& s : resp.stations()) {
      if (s.station_id() == station_id) return s;
    }
    return {};
  }
};

TEST_F(StationLinkClockAndHealthTest, PingIsAnsweredWithHubTimes) {
  Call call = Open("bay-1");
  ASSERT_TRUE(Send(call, testing::SacrumHello("bay-1", "boot-a")));
  v1::StationMessage ping;
  ping.mutable_clock_ping()->set_ping_id(7);
  ping.mutable_clock_ping()->set_station_send_us(123456);
  const int64_t before_us = absl::ToUnixMicros(absl::Now());
  ASSERT_TRUE(SendMessage(call, ping));
  v1::HubMessage msg;
  bool got = false;
  while (!got && call.stream->Read(&msg)) got = msg.has_clock_pong();
  ASSERT_TRUE(got);
  const int64_t after_us = absl::ToUnixMicros(absl::Now());
  EXPECT_EQ(msg.clock_pong().ping_id(), 7u);
  EXPECT_EQ(msg.clock_pong().station_send_us(), 123456);
  EXPECT_GE(msg.clock_pong().hub_receive_us(), before_us);
  EXPECT_LE(msg.clock_pong().hub_receive_us(), msg.clock_pong().hub_send_us());
  EXPECT_LE(msg.clock_pong().hub_send_us(), after_us);
  call.stream->WritesDone();
  EXPECT_TRUE(Drain(call).ok());
}

TEST_F(StationLinkClockAndHealthTest, HealthAndClockShowInTheStationList) {
  Call call = Open();
  v1::StationHello hello = testing::SacrumHello("bay-1", "boot-a");
  hello.set_spool_dropped_samples(400);
  hello.set_spool_dropped_batches(2);
  ASSERT_TRUE(Send(call, hello));
  v1::StationMessage health;
  v1::SensorHealth* h = health.mutable_health()->add_sensors();
  h->set_sensor_id(10);
  h->set_state(v1::SENSOR_STATE_NO_DATA);
  h->set_detail("no samples from lsm6dsox_accel for 1.2 s");
  ASSERT_TRUE(SendMessage(call, health));
  v1::StationMessage clock;
  clock.mutable_clock_offset()->set_offset_us(-42);
  clock.mutable_clock_offset()->set_uncertainty_us(300);
  clock.mutable_clock_offset()->set_round_trip_us(600);
  ASSERT_TRUE(SendMessage(call, clock));
  ASSERT_TRUE(testing::WaitFor([&] {
    const v1::StationStatus s = StatusOf("bay-1");
    return s.sensor_health_size() == 1 && s.has_clock();
  }));
  const v1::StationStatus s = StatusOf("bay-1");
  EXPECT_EQ(s.sensor_health(0).state(), v1::SENSOR_STATE_NO_DATA);
  EXPECT_THAT(s.sensor_health(0).detail(), HasSubstr("lsm6dsox"));
  EXPECT_EQ(s.clock().offset_us(), -42);
  EXPECT_EQ(s.clock().uncertainty_us(), 300);
  EXPECT_EQ(s.spool_dropped_samples(), 400u);
  call.stream->WritesDone();
  EXPECT_TRUE(Drain(call).ok());
}

TEST_F(StationLinkClockAndHealthTest, BadHealthOrClockIsInvalidArgument) {
  struct Case {
    const char* name;
    std::function<void(v1::StationMessage*)> make;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"unknown sensor",
       [](v1::StationMessage* m) {
         auto* h = m->mutable_health()->add_sensors();
         h->set_sensor_id(99);
         h->set_state(v1::SENSOR_STATE_OK);
       },
       "sensor 99"},
      {"no state",
       [](v1::StationMessage* m) {
         m->mutable_health()->add_sensors()->set_sensor_id(10);
       },
       "state"},
      {"negative round trip",
       [](v1::StationMessage* m) {
         m->mutable_clock_offset()->set_round_trip_us(-5);
       },
       "round_trip_us"},
      {"control characters in a detail",
       [](v1::StationMessage* m) {
         auto* h = m->mutable_health()->add_sensors();
         h->set_sensor_id(10);
         h->set_state(v1::SENSOR_STATE_FAULT);
         h->set_detail("ok\rFAILED");
       },
       "sensor 10: health detail must not contain control characters"},
      {"detail too long",
       [](v1::StationMessage* m) {
         auto* h = m->mutable_health()->add_sensors();
         h->set_sensor_id(10);
         h->set_state(v1::SENSOR_STATE_OK);
         h->set_detail(std::string(513, 'd'));
       },
       "health detail must be 0 to 512 characters"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Call call = Open("bay-9");
    ASSERT_TRUE(Send(call, testing::SacrumHello("bay-9", "boot-z")));
    v1::StationMessage m;
    c.make(&m);
    SendMessage(call, m);
    grpc::Status status = Drain(call);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr(c.says));
  }
  // Before the hello, even a ping is out of order.
  Call call = Open();
  v1::StationMessage ping;
  ping.mutable_clock_ping()->set_ping_id(1);
  SendMessage(call, ping);
  EXPECT_EQ(Drain(call).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(StationLinkClockAndHealthTest, GapIsAcceptedOnlyWhenTheStationOwnsIt) {
  Call call = Open("bay-1");
  ASSERT_TRUE(Send(call, testing::SacrumHello("bay-1", "boot-a")));
  ASSERT_TRUE(Send(call, testing::StandingBatch(1, 0, 5)));
  ASSERT_TRUE(AwaitAck(call, 1));
  // Batches 2-4 were lost to a damaged spool; the station says so.
  v1::SampleBatch after_loss = testing::StandingBatch(5, 400000, 5);
  after_loss.set_follows_spool_loss(true);
  ASSERT_TRUE(Send(call, after_loss));
  ASSERT_TRUE(AwaitAck(call, 5));
  // An unannounced gap is still refused.
  Send(call, testing::StandingBatch(9, 800000, 5));
  grpc::Status status = Drain(call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("follows_spool_loss"));
}

}  // namespace
}  // namespace stephub
