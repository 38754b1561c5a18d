// A station's samples belong to the set they were taken in, however late
// they arrive: a station that drops off mid-set, while the therapist ends
// that set and starts the next, delivers its backlog on reconnecting, and
// both sets come out exactly as if the data had arrived in time.
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/simulator.h"
#include "hub/api/hub_server.h"
#include "hub/scoring/scoring_config.h"
#include "hub/store/store.h"
#include "station/sensors/sensors.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "stephub/v1/dashboard.grpc.pb.h"
#include "stephub/v1/station_link.grpc.pb.h"
#include "tests/test_hub.h"
#include "tests/testing.h"
#include "tools/cli.h"

namespace stephub {
namespace {

using Stream = grpc::ClientReaderWriter<v1::StationMessage, v1::HubMessage>;

// Hub time minus station time: the station's clock estimate, held fixed.
constexpr int64_t kOffsetUs = 1'700'000'000'000'000;
constexpr int64_t kBatchUs = 25'000;
constexpr uint32_t kPlateId = 1;

const std::map<Placement, std::pair<uint32_t, v1::Placement>>& ImuIds() {
  static const auto* ids =
      new std::map<Placement, std::pair<uint32_t, v1::Placement>>{
          {Placement::kSacrum, {10, v1::PLACEMENT_SACRUM}},
          {Placement::kSternum, {11, v1::PLACEMENT_STERNUM}},
          {Placement::kThigh, {12, v1::PLACEMENT_THIGH}},
          {Placement::kShank, {13, v1::PLACEMENT_SHANK}}};
  return *ids;
}

v1::StationHello HelloOf(const std::string& station_id) {
  v1::StationHello hello;
  hello.set_station_id(station_id);
  hello.set_boot_id("boot-1");
  hello.set_calibration_movement(true);
  for (const auto& [placement, id] : ImuIds()) {
    v1::SensorInfo* imu = hello.add_sensors();
    imu->set_sensor_id(id.first);
    imu->set_kind(v1::SENSOR_KIND_IMU);
    imu->set_placement(id.second);
    imu->set_rate_hz(200);
  }
  v1::SensorInfo* plate = hello.add_sensors();
  plate->set_sensor_id(kPlateId);
  plate->set_kind(v1::SENSOR_KIND_FORCE_PLATE);
  plate->set_placement(v1::PLACEMENT_STANCE_FOOT);
  plate->set_rate_hz(1000);
  return hello;
}

// Two sets on one station clock: `first`, a pause, then `second`.
struct Session {
  Recording first, second;
  int64_t end_us = 0;
};

Session TwoSets() {
  PatientProfile a = *ProfileByName("level");
  a.repetitions = 5;
  a.stance_side = StanceSide::kLeft;
  PatientProfile b = *ProfileByName("trendelenburg");
  b.repetitions = 5;
  b.stance_side = StanceSide::kRight;
  Session s;
  s.first = SimulateRecording(a, 3);
  s.second = SimulateRecording(b, 4);
  // The second set's samples follow the first's after 4 s.
  const int64_t shift =
      s.first.force.back().t_us + 4'000'000 - s.second.force.front().t_us;
  for (auto& [placement, samples] : s.second.imu) {
    for (ImuSample& sample : samples) sample.t_us += shift;
  }
  for (ForceSample& sample : s.second.force) sample.t_us += shift;
  for (TruthRepetition& t : s.second.truth) {
    t.start_us += shift;
    t.end_us += shift;
  }
  s.end_us = s.second.force.back().t_us;
  return s;
}

// The station's batches: every sensor's samples of each 25 ms, numbered.
std::vector<v1::SampleBatch> BatchesOf(const Session& session) {
  std::map<Placement, std::vector<ImuSample>> imu;
  std::vector<ForceSample> force;
  for (const Recording* rec : {&session.first, &session.second}) {
    for (const auto& [placement, samples] : rec->imu) {
      imu[placement].insert(imu[placement].end(), samples.begin(),
                            samples.end());
    }
    force.insert(force.end(), rec->force.begin(), rec->force.end());
  }
  std::map<Placement, size_t> next_imu;
  size_t next_force = 0;
  // The index of the first sample at or after `end` from `from` on.
  auto until = [](const auto& samples, size_t from, int64_t end) {
    while (from < samples.size() && samples[from].t_us < end) ++from;
    return from;
  };
  std::vector<v1::SampleBatch> batches;
  for (int64_t t = force.front().t_us; t <= session.end_us; t += kBatchUs) {
    v1::SampleBatch batch;
    batch.set_seq(batches.size() + 1);
    for (const auto& [placement, samples] : imu) {
      size_t& next = next_imu[placement];
      const size_t end = until(samples, next, t + kBatchUs);
      station::AppendImuSamples(ImuIds().at(placement).first, samples, next,
                                end, 0, &batch);
      next = end;
    }
    const size_t force_end = until(force, next_force, t + kBatchUs);
    station::AppendForceSamples(kPlateId, force, next_force, force_end, 0,
                                &batch);
    next_force = force_end;
    batches.push_back(std::move(batch));
  }
  return batches;
}

// The last sample time of a batch.
int64_t EndOf(const v1::SampleBatch& batch) {
  int64_t end = 0;
  for (const auto& imu : batch.imu()) {
    if (!imu.t_us().empty()) end = std::max(end, *imu.t_us().rbegin());
  }
  for (const auto& force : batch.force()) {
    if (!force.t_us().empty()) end = std::max(end, *force.t_us().rbegin());
  }
  return end;
}

class SetPlacementTest : public ::testing::Test {
 protected:
  void SetUp() override { StartHub({}); }

  void StartHub(const scoring::ScoringConfig& scoring) {
    hub_.reset();
    api::HubOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_dir = dir_.path();
    testing::UseTestTls(&options);
    options.scoring = scoring;
    options.clock = [this] { return absl::FromUnixMicros(hub_now_us_.load()); };
    auto hub = testing::StartHub(options);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(*hub);
    channel_ = testing::StaffChannel(hub_->port());
    setenv("STEPHUB_TOKEN", testing::SignIn(hub_->port()).c_str(), 1);
    clinic_ = v1::Clinic::NewStub(channel_);
  }

  // A connected station stream.
  struct Link {
    std::unique_ptr<v1::StationLink::Stub> stub;  // with the station's cert
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<Stream> stream;
    uint64_t durable_seq = 0;
  };

  Link Connect(const std::string& station_id) {
    Link link;
    link.context = std::make_unique<grpc::ClientContext>();
    link.context->set_deadline(std::chrono::system_clock::now() +
                               std::chrono::seconds(60));
    link.stub = v1::StationLink::NewStub(
        testing::StationChannel(hub_->port(), station_id));
    link.stream = link.stub->Stream(link.context.get());
    v1::StationMessage hello;
    *hello.mutable_hello() = HelloOf(station_id);
    EXPECT_TRUE(link.stream->Write(hello));
    v1::HubMessage welcome;
    EXPECT_TRUE(link.stream->Read(&welcome));
    EXPECT_TRUE(welcome.has_welcome());
    link.durable_seq = welcome.welcome().durable_seq();
    v1::StationMessage clock;
    clock.mutable_clock_offset()->set_offset_us(kOffsetUs);
    clock.mutable_clock_offset()->set_uncertainty_us(500);
    clock.mutable_clock_offset()->set_round_trip_us(1000);
    EXPECT_TRUE(link.stream->Write(clock));
    // The therapist's next action is placed by this estimate.
    EXPECT_TRUE(testing::WaitFor([&] {
      v1::ListStationsResponse resp;
      grpc::ClientContext ctx;
      clinic_->ListStations(&ctx, {}, &resp);
      for (const auto& s : resp.stations()) {
        if (s.station_id() == station_id && s.online() &&
            s.clock().offset_us() == kOffsetUs) {
          return true;
        }
      }
      return false;
    }));
    return link;
  }

  // Sends batches [from, to) and waits until the hub holds them.
  static void Send(Link& link, const std::vector<v1::SampleBatch>& batches,
                   size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      v1::StationMessage m;
      *m.mutable_batch() = batches[i];
      ASSERT_TRUE(link.stream->Write(m)) << "batch " << i + 1;
    }
    v1::HubMessage msg;
    while (link.durable_seq < to && link.stream->Read(&msg)) {
      if (msg.has_ack()) link.durable_seq = msg.ack().durable_seq();
    }
    ASSERT_GE(link.durable_seq, to);
  }

  static void Close(Link& link) {
    link.stream->WritesDone();
    v1::HubMessage msg;
    while (link.stream->Read(&msg)) {
    }
    EXPECT_TRUE(link.stream->Finish().ok());
  }

  // The therapist's actions, at a time on the station's clock.
  int64_t StartSet(const std::string& station_id, int64_t patient_id,
                   StanceSide side, int64_t station_us) {
    hub_now_us_ = station_us + kOffsetUs;
    v1::StartSetRequest req;
    req.set_station_id(station_id);
    req.set_patient_id(patient_id);
    req.set_stance_side(side == StanceSide::kLeft ? v1::STANCE_SIDE_LEFT
                                                  : v1::STANCE_SIDE_RIGHT);
    v1::ExerciseSet set;
    grpc::ClientContext ctx;
    const grpc::Status status = clinic_->StartSet(&ctx, req, &set);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(set.station_start_us(), station_us);
    return set.set_id();
  }
  void EndSet(int64_t set_id, int64_t station_us) {
    hub_now_us_ = station_us + kOffsetUs;
    v1::EndSetRequest req;
    req.set_set_id(set_id);
    v1::ExerciseSet set;
    grpc::ClientContext ctx;
    const grpc::Status status = clinic_->EndSet(&ctx, req, &set);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(set.station_end_us(), station_us);
  }
  void CheckOutage(bool restart_hub);

  int64_t AddPatient(const std::string& name) {
    v1::CreatePatientRequest req;
    req.set_display_name(name);
    v1::Patient patient;
    grpc::ClientContext ctx;
    EXPECT_TRUE(clinic_->CreatePatient(&ctx, req, &patient).ok());
    return patient.patient_id();
  }

  testing::TempDir dir_;
  std::atomic<int64_t> hub_now_us_{kOffsetUs};
  std::unique_ptr<api::HubServer> hub_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Clinic::Stub> clinic_;
};

// The first batch whose samples reach past t_us.
size_t BatchesUntil(const std::vector<v1::SampleBatch>& batches, int64_t t_us) {
  size_t n = 0;
  while (n < batches.size() && EndOf(batches[n]) <= t_us) ++n;
  return n;
}

// The station drops off in the middle of the first set's third repetition;
// both set changes happen while it is away (and, if `restart_hub`, the hub
// restarts then too); its backlog arrives on reconnecting, after the second
// set has begun. Both sets must equal those of a station that stayed online.
void SetPlacementTest::CheckOutage(bool restart_hub) {
  const Session session = TwoSets();
  const std::vector<v1::SampleBatch> batches = BatchesOf(session);
  // The therapist starts each set as the patient steps on, and ends it a
  // second after the last repetition.
  const int64_t start_a = session.first.force.front().t_us + 300'000;
  const int64_t end_a = session.first.truth.back().end_us + 1'000'000;
  const int64_t start_b = session.second.force.front().t_us + 300'000;
  const int64_t end_b = session.end_us;
  const size_t until_end_a = BatchesUntil(batches, end_a);
  const size_t until_start_b = BatchesUntil(batches, start_b);
  const int64_t patient_a = AddPatient("Patient A");
  const int64_t patient_b = AddPatient("Patient B");

  // In time: each action once the data up to it has arrived.
  Link in_time = Connect("bay-steady");
  const int64_t steady_a =
      StartSet("bay-steady", patient_a, StanceSide::kLeft, start_a);
  ASSERT_NO_FATAL_FAILURE(Send(in_time, batches, 0, until_end_a));
  EndSet(steady_a, end_a);
  ASSERT_NO_FATAL_FAILURE(Send(in_time, batches, until_end_a, until_start_b));
  const int64_t steady_b =
      StartSet("bay-steady", patient_b, StanceSide::kRight, start_b);
  ASSERT_NO_FATAL_FAILURE(
      Send(in_time, batches, until_start_b, batches.size()));
  EndSet(steady_b, end_b);
  Close(in_time);

  Link before = Connect("bay-wifi");
  const int64_t wifi_a =
      StartSet("bay-wifi", patient_a, StanceSide::kLeft, start_a);
  const size_t outage = BatchesUntil(
      batches,
      (session.first.truth[2].start_us + session.first.truth[2].end_us) / 2);
  ASSERT_NO_FATAL_FAILURE(Send(before, batches, 0, outage));
  Close(before);
  EndSet(wifi_a, end_a);
  const int64_t wifi_b =
      StartSet("bay-wifi", patient_b, StanceSide::kRight, start_b);
  if (restart_hub) {
    ASSERT_NO_FATAL_FAILURE(StartHub({}));
  }
  Link after = Connect("bay-wifi");
  ASSERT_EQ(after.durable_seq, outage);
  ASSERT_NO_FATAL_FAILURE(Send(after, batches, outage, batches.size()));
  EndSet(wifi_b, end_b);
  Close(after);
  hub_->Shutdown();
  hub_.reset();

  auto store = store::OpenSqliteStore(dir_.path() + "/stephub.db");
  ASSERT_TRUE(store.ok()) << store.status();
  for (const auto& [steady, wifi, truth] :
       {std::tuple{steady_a, wifi_a, &session.first.truth},
        std::tuple{steady_b, wifi_b, &session.second.truth}}) {
    SCOPED_TRACE(absl::StrCat("set ", wifi));
    auto want = (*store)->RepetitionsOfSet(steady);
    auto got = (*store)->RepetitionsOfSet(wifi);
    ASSERT_TRUE(want.ok() && got.ok());
    ASSERT_EQ(want->size(), truth->size());
    ASSERT_EQ(got->size(), want->size());
    for (size_t i = 0; i < want->size(); ++i) {
      v1::Repetition a = (*want)[i], b = (*got)[i];
      for (v1::Repetition* r : {&a, &b}) {
        r->clear_set_id();
        r->clear_station_id();
        r->clear_scored_at();
      }
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(a, b))
          << "repetition " << i + 1 << "\nin time:\n"
          << a.DebugString() << "after the outage:\n"
          << b.DebugString();
    }
  }
}

TEST_F(SetPlacementTest, BacklogAfterAnOutageLandsInTheSetsItWasTakenIn) {
  CheckOutage(false);
}

// The first set, ended while its station was away, is still waiting for the
// rest of its data when the hub restarts: it is scored to its end all the
// same.
TEST_F(SetPlacementTest, SetAwaitingItsDataSurvivesAHubRestart) {
  CheckOutage(true);
}

// A stricter (or laxer) threshold, re-scored from the stored samples: the
// new results are the set's current ones, the old ones stay beside them.
TEST_F(SetPlacementTest, RescoringKeepsTheOldResultsBesideTheNew) {
  const Session session = TwoSets();
  const std::vector<v1::SampleBatch> batches = BatchesOf(session);
  const int64_t start = session.second.force.front().t_us + 300'000;
  const size_t from = BatchesUntil(batches, start);
  const int64_t patient = AddPatient("Patient C");
  Link link = Connect("bay-5");
  ASSERT_NO_FATAL_FAILURE(Send(link, batches, 0, from));
  const int64_t set_id = StartSet("bay-5", patient, StanceSide::kRight, start);
  ASSERT_NO_FATAL_FAILURE(Send(link, batches, from, batches.size()));
  EndSet(set_id, session.end_us);
  Close(link);

  auto progress_of_set = [&]() {
    auto dashboard = v1::Dashboard::NewStub(channel_);
    v1::GetPatientProgressRequest req;
    req.set_patient_id(patient);
    v1::PatientProgress progress;
    grpc::ClientContext ctx;
    EXPECT_TRUE(dashboard->GetPatientProgress(&ctx, req, &progress).ok());
    EXPECT_EQ(progress.sets_size(), 1);
    return progress.sets(0);
  };
  const v1::SetSummary before = progress_of_set();
  ASSERT_EQ(before.repetitions(), session.second.truth.size());
  const std::string old_version = before.repetition_list(0).scoring_version();
  EXPECT_EQ(old_version, scoring::kScoringVersion);
  // Halfway between the smallest and the largest drop: some repetitions
  // change from compensated to clean (or back).
  double least = 1e9, most = 0;
  for (const auto& r : before.repetition_list()) {
    least = std::min(least, std::abs(r.peak_pelvic_drop_deg()));
    most = std::max(most, std::abs(r.peak_pelvic_drop_deg()));
  }
  scoring::ScoringConfig stricter;
  stricter.pelvic_compensation_threshold_deg =
      std::round((least + most) / 2 * 10) / 10;
  // Meanwhile the set's batches were folded into sample blocks, as the hub
  // does minutes after they arrive: re-scoring reads them from there.
  hub_.reset();
  {
    auto store = store::OpenSqliteStore(dir_.path() + "/stephub.db");
    ASSERT_TRUE(store.ok()) << store.status();
    auto folded = (*store)->CompactSamples(absl::Now() + absl::Minutes(2), 100);
    ASSERT_TRUE(folded.ok()) << folded.status();
    EXPECT_EQ(folded->batches, static_cast<int64_t>(batches.size()));
  }
  auto info = store::VerifyClinicDatabase(dir_.path() + "/stephub.db");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_GT(info->sample_blocks, 0);
  ASSERT_NO_FATAL_FAILURE(StartHub(stricter));
  // The station has since been rebuilt with a sacral IMU only: re-scoring
  // still reads the set's samples by the sensors it had then.
  {
    grpc::ClientContext ctx;
    auto link = v1::StationLink::NewStub(
        testing::StationChannel(hub_->port(), "bay-5"));
    auto stream = link->Stream(&ctx);
    v1::StationMessage hello;
    *hello.mutable_hello() = testing::SacrumHello("bay-5", "boot-2");
    ASSERT_TRUE(stream->Write(hello));
    v1::HubMessage welcome;
    ASSERT_TRUE(stream->Read(&welcome));
    stream->WritesDone();
    while (stream->Read(&welcome)) {
    }
    EXPECT_TRUE(stream->Finish().ok());
  }

  std::ostringstream out, err;
  ASSERT_EQ(cli::Run({"--ca_file", testing::TestPki::Get().ca_file(), "--hub",
                      "127.0.0.1:" + std::to_string(hub_->port()), "rescore",
                      "--set", std::to_string(set_id)},
                     out, err),
            0)
      << err.str();
  const std::string new_version = scoring::ScoringVersionOf(stricter);
  EXPECT_NE(new_version, old_version);
  EXPECT_THAT(out.str(), ::testing::HasSubstr("-> " + new_version))
      << out.str();

  // Both versions are listed, the hub's new one marked as its own.
  {
    std::ostringstream versions, verr;
    ASSERT_EQ(cli::Run({"--ca_file", testing::TestPki::Get().ca_file(), "--hub",
                        "127.0.0.1:" + std::to_string(hub_->port()),
                        "scoring-versions"},
                       versions, verr),
              0)
        << verr.str();
    const std::string n = std::to_string(before.repetitions());
    const std::vector<std::string> lines =
        absl::StrSplit(versions.str(), '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), 2u) << versions.str();
    EXPECT_EQ(lines[0][0], ' ');
    EXPECT_THAT(lines[0],
                ::testing::EndsWith(absl::StrCat(
                    n, " repetitions  current for 0 sets  ", old_version)));
    EXPECT_EQ(lines[1][0], '*');
    EXPECT_THAT(lines[1],
                ::testing::EndsWith(absl::StrCat(
                    n, " repetitions  current for 1 sets  ", new_version)));
  }

  const v1::SetSummary after = progress_of_set();
  ASSERT_EQ(after.repetitions(), before.repetitions());
  uint32_t clean = 0;
  for (int i = 0; i < after.repetition_list_size(); ++i) {
    const v1::Repetition& was = before.repetition_list(i);
    const v1::Repetition& now = after.repetition_list(i);
    EXPECT_EQ(now.scoring_version(), new_version);
    // Only the threshold changed: the same repetitions, the same drops.
    EXPECT_EQ(now.start_us(), was.start_us());
    EXPECT_DOUBLE_EQ(now.peak_pelvic_drop_deg(), was.peak_pelvic_drop_deg());
    // By every sensor the station had then, not the sacral IMU it has now.
    EXPECT_EQ(now.segmented_by(), "knee flexion");
    EXPECT_DOUBLE_EQ(now.metrics().knee_flexion_deg(),
                     was.metrics().knee_flexion_deg());
    EXPECT_EQ(now.clean(), std::abs(now.peak_pelvic_drop_deg()) <=
                               stricter.pelvic_compensation_threshold_deg);
    clean += now.clean();
  }
  EXPECT_EQ(after.clean_repetitions(), clean);
  EXPECT_NE(after.clean_repetitions(), before.clean_repetitions());

  hub_.reset();
  auto store = store::OpenSqliteStore(dir_.path() + "/stephub.db");
  ASSERT_TRUE(store.ok()) << store.status();
  auto versions = (*store)->ScoringVersionsOfSet(set_id);
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(*versions, (std::vector<std::string>{old_version, new_version}));
  auto old = (*store)->RepetitionsOfSetVersion(set_id, old_version);
  ASSERT_TRUE(old.ok());
  ASSERT_EQ(old->size(), before.repetitions());
  for (size_t i = 0; i < old->size(); ++i) {
    EXPECT_EQ((*old)[i].clean(), before.repetition_list(i).clean());
  }
}

}  // namespace
}  // namespace stephub
