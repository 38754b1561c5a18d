// The whole chain on loopback: two simulated stations stream sets to an
// in-process hub concurrently; a WatchClinic subscriber sees every
// repetition scored; acks cover every batch; and the record survives a
// hub restart.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/simulator.h"
#include "hub/api/hub_server.h"
#include "hub/store/store.h"
#include "station/sensors/sensors.h"
#include "station/station.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "stephub/v1/dashboard.grpc.pb.h"
#include "tests/testing.h"
#include "tools/cli.h"

namespace stephub {
namespace {

// Collects every WatchClinic event on a thread of its own.
class Watcher {
 public:
  explicit Watcher(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::Dashboard::NewStub(channel)) {
    thread_ = std::thread([this] {
      auto reader = stub_->WatchClinic(&context_, {});
      v1::ClinicEvent event;
      while (reader->Read(&event)) {
        std::lock_guard<std::mutex> lock(mu_);
        events_.push_back(event);
      }
      reader->Finish();
    });
  }
  ~Watcher() {
    context_.TryCancel();
    thread_.join();
  }
  std::vector<v1::ClinicEvent> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  int Count(v1::ClinicEvent::EventCase which) {
    int n = 0;
    for (const auto& e : events()) n += e.event_case() == which;
    return n;
  }

 private:
  std::unique_ptr<v1::Dashboard::Stub> stub_;
  grpc::ClientContext context_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<v1::ClinicEvent> events_;
};

PatientProfile ShortProfile(const std::string& name, StanceSide side) {
  auto profile = ProfileByName(name);
  EXPECT_TRUE(profile.ok());
  profile->repetitions = 5;
  profile->stance_side = side;
  return *profile;
}

struct Bay {
  std::string station_id;
  PatientProfile profile;
  boost::asio::io_context io;
  std::unique_ptr<station::Station> station;
  std::thread thread;
  absl::Status result;
};

TEST(HubEndToEnd, TwoStationsScoredStoredAndKeptAcrossRestart) {
  testing::TempDir dir;
  api::HubOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = dir.path();
  auto started = api::HubServer::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<api::HubServer> hub = std::move(*started);
  const std::string address = "127.0.0.1:" + std::to_string(hub->port());
  auto channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto clinic = v1::Clinic::NewStub(channel);
  auto watcher = std::make_unique<Watcher>(channel);

  std::vector<Bay> bays(2);
  bays[0].station_id = "bay-1";
  bays[0].profile = ShortProfile("level", StanceSide::kLeft);
  bays[1].station_id = "bay-2";
  bays[1].profile = ShortProfile("trendelenburg", StanceSide::kRight);
  // bay-2's patient also wears a wrist IMU: the station announces it and the
  // hub scores the arm strategy from it.
  bays[1].profile.wrist_imu = true;
  for (size_t i = 0; i < bays.size(); ++i) {
    station::StationOptions so;
    so.hub_address = address;
    so.station_id = bays[i].station_id;
    so.exit_after_set = true;
    so.real_time = false;  // virtual clock, paced by the hub's acks
    so.spool.dir = dir.path() + "/spool-" + bays[i].station_id;
    const int64_t start = station::MonotonicMicros();
    // Every simulated patient starts out on the left leg; bay-2's set is
    // for the right, so its patient must follow the side the hub sends.
    PatientProfile standing_left = bays[i].profile;
    standing_left.stance_side = StanceSide::kLeft;
    bays[i].station = std::make_unique<station::Station>(
        bays[i].io, so,
        station::MakeSimulatedSource(standing_left, 7 + i, start));
    bays[i].thread =
        std::thread([&b = bays[i]] { b.result = b.station->Run(); });
  }
  ASSERT_TRUE(testing::WaitFor([&] {
    v1::ListStationsResponse resp;
    grpc::ClientContext ctx;
    clinic->ListStations(&ctx, {}, &resp);
    int online = 0;
    for (const auto& s : resp.stations()) online += s.online();
    return online == 2;
  }));

  std::map<std::string, int64_t> patient_of;
  for (const Bay& b : bays) {
    std::ostringstream out, err;
    ASSERT_EQ(cli::Run({"--hub", address, "patients", "add",
                        "Patient " + b.station_id},
                       out, err),
              0)
        << err.str();
    v1::ListPatientsResponse list;
    grpc::ClientContext ctx;
    ASSERT_TRUE(clinic->ListPatients(&ctx, {}, &list).ok());
    patient_of[b.station_id] = list.patients().rbegin()->patient_id();
    v1::StartSetRequest req;
    req.set_station_id(b.station_id);
    req.set_patient_id(patient_of[b.station_id]);
    req.set_stance_side(b.profile.stance_side == StanceSide::kLeft
                            ? v1::STANCE_SIDE_LEFT
                            : v1::STANCE_SIDE_RIGHT);
    v1::ExerciseSet set;
    grpc::ClientContext set_ctx;
    ASSERT_TRUE(clinic->StartSet(&set_ctx, req, &set).ok());
  }

  // Each station exits once its set is played and acknowledged.
  const bool finished = testing::WaitFor(
      [&] {
        for (const Bay& b : bays) {
          if (b.station->acked_seq() == 0 ||
              b.station->acked_seq() != b.station->last_seq()) {
            return false;
          }
        }
        return watcher->Count(v1::ClinicEvent::kRepetition) >= 10;
      },
      absl::Seconds(90));
  for (Bay& b : bays) {
    if (!finished) b.station->Stop();
    b.thread.join();
    EXPECT_TRUE(b.result.ok()) << b.station_id << ": " << b.result;
  }
  ASSERT_TRUE(finished);
  for (Bay& b : bays) {
    EXPECT_GT(b.station->last_seq(), 0u);
    EXPECT_EQ(b.station->acked_seq(), b.station->last_seq()) << b.station_id;
  }
  for (const Bay& b : bays) {
    v1::EndSetRequest req;
    req.set_station_id(b.station_id);
    v1::ExerciseSet set;
    grpc::ClientContext ctx;
    ASSERT_TRUE(clinic->EndSet(&ctx, req, &set).ok());
  }
  ASSERT_TRUE(testing::WaitFor(
      [&] { return watcher->Count(v1::ClinicEvent::kSetEnded) == 2; }));

  // Every repetition arrived scored, numbered 1..5 per set.
  std::map<std::string, std::vector<v1::Repetition>> reps;
  for (const auto& e : watcher->events()) {
    if (e.has_repetition())
      reps[e.repetition().station_id()].push_back(e.repetition());
  }
  for (const Bay& b : bays) {
    ASSERT_EQ(reps[b.station_id].size(), 5u) << b.station_id;
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(reps[b.station_id][i].number(), i + 1);
      EXPECT_FALSE(reps[b.station_id][i].scoring_version().empty());
      // The simulated station has every sensor: the other metrics and the
      // quality scale come along.
      const v1::Repetition& r = reps[b.station_id][i];
      EXPECT_EQ(r.segmented_by(), "knee flexion") << r.DebugString();
      EXPECT_TRUE(r.metrics().has_knee_flexion_deg()) << r.DebugString();
      EXPECT_TRUE(r.metrics().has_peak_trunk_lean_deg()) << r.DebugString();
      EXPECT_TRUE(r.metrics().has_cop_ml_range_mm()) << r.DebugString();
      EXPECT_TRUE(r.quality().has_pelvis()) << r.DebugString();
      // Arm strategy only where a wrist IMU is worn; never guessed.
      EXPECT_EQ(r.quality().has_arm_strategy(), b.station_id == "bay-2")
          << r.DebugString();
      EXPECT_NE(r.quality().category(), v1::QUALITY_CATEGORY_UNSPECIFIED);
    }
  }
  // The level pelvis is clean; the Trendelenburg pelvis drops.
  for (const auto& r : reps["bay-1"]) EXPECT_TRUE(r.clean()) << r.DebugString();
  for (const auto& r : reps["bay-2"]) {
    EXPECT_EQ(r.verdict(), v1::VERDICT_PELVIC_DROP) << r.DebugString();
  }

  // Restart: the record is all there.
  watcher.reset();
  hub.reset();
  {
    auto store = store::OpenSqliteStore(dir.path() + "/stephub.db");
    ASSERT_TRUE(store.ok()) << store.status();
    for (const Bay& b : bays) {
      EXPECT_EQ(*(*store)->CountBatches(b.station_id),
                static_cast<int64_t>(b.station->last_seq()));
    }
  }
  started = api::HubServer::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  hub = std::move(*started);
  channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(hub->port()),
                                grpc::InsecureChannelCredentials());
  auto dashboard = v1::Dashboard::NewStub(channel);
  for (const Bay& b : bays) {
    v1::GetPatientProgressRequest req;
    req.set_patient_id(patient_of[b.station_id]);
    v1::PatientProgress progress;
    grpc::ClientContext ctx;
    ASSERT_TRUE(dashboard->GetPatientProgress(&ctx, req, &progress).ok());
    ASSERT_EQ(progress.sets_size(), 1);
    EXPECT_EQ(progress.sets(0).repetitions(), 5u);
    EXPECT_EQ(progress.sets(0).set().state(), v1::SET_STATE_ENDED);
    for (int i = 0; i < 5; ++i) {
      EXPECT_DOUBLE_EQ(
          progress.sets(0).repetition_list(i).peak_pelvic_drop_deg(),
          reps[b.station_id][i].peak_pelvic_drop_deg());
    }
    // One session in the programme's first week; the side trained, with
    // readiness from this set.
    ASSERT_EQ(progress.sessions_size(), 1);
    EXPECT_EQ(progress.horizon(), "week 1 of the 8-12 week programme");
    ASSERT_EQ(progress.sides_size(), 1);
    const v1::Readiness& readiness = progress.sides(0).readiness();
    EXPECT_EQ(readiness.latest_set_id(), progress.sets(0).set().set_id());
    EXPECT_EQ(readiness.ready(), progress.sets(0).clean_repetitions() == 5u);
    if (b.station_id == "bay-2") {
      // The Trendelenburg patient: not ready, and told why.
      EXPECT_FALSE(readiness.ready());
      EXPECT_TRUE(absl::StrContains(readiness.reason(), "dropped > 5°"))
          << readiness.reason();
    }
    std::ostringstream text, err;
    ASSERT_EQ(cli::Run({"--hub", "127.0.0.1:" + std::to_string(hub->port()),
                        "progress", std::to_string(patient_of[b.station_id])},
                       text, err),
              0)
        << err.str();
    EXPECT_TRUE(absl::StrContains(text.str(), "Programme: week 1 of the"))
        << text.str();
    EXPECT_TRUE(absl::StrContains(text.str(), "next: ")) << text.str();
  }
  // A backup taken through the CLI while the hub runs holds both sets.
  {
    const std::string file = dir.path() + "/clinic-backup.db";
    std::ostringstream out, err;
    ASSERT_EQ(cli::Run({"--hub", "127.0.0.1:" + std::to_string(hub->port()),
                        "backup", file},
                       out, err),
              0)
        << err.str();
    EXPECT_TRUE(absl::StrContains(out.str(), "integrity ok")) << out.str();
    auto info = store::VerifyClinicDatabase(file);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->sets, 2);
    EXPECT_EQ(info->repetitions, 10);
    EXPECT_GT(info->sample_batches, 0);
    EXPECT_FALSE(std::filesystem::exists(file + ".partial"));
  }
  // The CSV report has a header and one row per repetition.
  std::ostringstream csv, err;
  ASSERT_EQ(
      cli::Run({"--hub", "127.0.0.1:" + std::to_string(hub->port()), "report",
                std::to_string(patient_of["bay-2"]), "--format", "csv"},
               csv, err),
      0)
      << err.str();
  const std::string text = csv.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 6);
  EXPECT_EQ(text.rfind("patient_id,patient,set_id,station_id", 0), 0u);
  // Every row has every column; a simulated bay is assessed on its quality.
  const std::vector<std::string> lines = absl::StrSplit(text, '\n');
  const auto columns = [](const std::string& line) {
    return std::count(line.begin(), line.end(), ',');
  };
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    EXPECT_EQ(columns(lines[i]), columns(lines[0])) << lines[i];
    EXPECT_TRUE(absl::StrContains(lines[i], ",good,") ||
                absl::StrContains(lines[i], ",moderate,") ||
                absl::StrContains(lines[i], ",poor,"))
        << lines[i];
  }
}

}  // namespace
}  // namespace stephub
