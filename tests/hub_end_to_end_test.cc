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
#include "common/staff_channel.h"
#include "hub/api/hub_server.h"
#include "hub/store/store.h"
#include "station/sensors/sensors.h"
#include "station/station.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "stephub/v1/dashboard.grpc.pb.h"
#include "tests/test_hub.h"
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
  testing::UseTestTls(&options);
  auto started = testing::StartHub(options);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<api::HubServer> hub = std::move(*started);
  const std::string address = "127.0.0.1:" + std::to_string(hub->port());
  auto channel = testing::StaffChannel(hub->port());
  setenv("STEPHUB_TOKEN", testing::SignIn(hub->port()).c_str(), 1);
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
    testing::UseTestTls(&so, bays[i].station_id);
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
    ASSERT_EQ(cli::Run({"--ca_file", testing::TestPki::Get().ca_file(), "--hub",
                        address, "patients", "add", "Patient " + b.station_id},
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

  // The live trace: each bay's pelvis 25 times a second of its data, the
  // Trendelenburg one dropping as far as its repetitions' peaks.
  std::map<std::string, std::vector<std::pair<int64_t, float>>> trace;
  for (const auto& e : watcher->events()) {
    if (!e.has_pelvis_trace()) continue;
    const v1::PelvisTrace& t = e.pelvis_trace();
    ASSERT_EQ(t.t_us_size(), t.pelvic_drop_deg_size());
    for (int k = 0; k < t.t_us_size(); ++k) {
      trace[t.station_id()].emplace_back(t.t_us(k), t.pelvic_drop_deg(k));
    }
  }
  for (const Bay& b : bays) {
    SCOPED_TRACE(b.station_id);
    const auto& points = trace[b.station_id];
    ASSERT_GT(points.size(), 100u);
    for (size_t k = 1; k < points.size(); ++k) {
      ASSERT_EQ(points[k].first - points[k - 1].first, 40'000) << k;
    }
    double deepest_rep = 0, deepest_trace = 0;
    for (const auto& r : reps[b.station_id]) {
      deepest_rep = std::max(deepest_rep, r.peak_pelvic_drop_deg());
    }
    for (const auto& p : points) {
      deepest_trace = std::max<double>(deepest_trace, p.second);
    }
    // 25 points a second can miss the very peak by a little.
    EXPECT_NEAR(deepest_trace, deepest_rep, 0.5);
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
  started = testing::StartHub(options);
  ASSERT_TRUE(started.ok()) << started.status();
  hub = std::move(*started);
  channel = testing::StaffChannel(hub->port());
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
    ASSERT_EQ(cli::Run({"--ca_file", testing::TestPki::Get().ca_file(), "--hub",
                        "127.0.0.1:" + std::to_string(hub->port()), "progress",
                        std::to_string(patient_of[b.station_id])},
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
    ASSERT_EQ(
        cli::Run({"--ca_file", testing::TestPki::Get().ca_file(), "--hub",
                  "127.0.0.1:" + std::to_string(hub->port()), "backup", file},
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
  ASSERT_EQ(cli::Run({"--ca_file", testing::TestPki::Get().ca_file(), "--hub",
                      "127.0.0.1:" + std::to_string(hub->port()), "report",
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

  // The progress report as a PDF, through the CLI: the Trendelenburg
  // patient's set, read back with poppler's pdftotext.
  const std::string pdf = dir.path() + "/report.pdf";
  std::ostringstream pdf_out, pdf_err;
  ASSERT_EQ(cli::Run({"--ca_file", testing::TestPki::Get().ca_file(), "--hub",
                      "127.0.0.1:" + std::to_string(hub->port()), "report",
                      std::to_string(patient_of["bay-2"]), "--format", "pdf",
                      "-o", pdf},
                     pdf_out, pdf_err),
            0)
      << pdf_err.str();
  const std::string pdf_text =
      testing::CommandOutput("pdftotext -layout " + pdf + " -");
  EXPECT_TRUE(absl::StrContains(pdf_text, "Patient bay-2")) << pdf_text;
  EXPECT_TRUE(absl::StrContains(pdf_text, "Sessions attended: 1")) << pdf_text;
  EXPECT_TRUE(absl::StrContains(pdf_text, "not ready: 5 of 5 repetitions"))
      << pdf_text;
  std::ostringstream usage, usage_err;
  EXPECT_EQ(cli::Run({"--ca_file", testing::TestPki::Get().ca_file(), "--hub",
                      "127.0.0.1:" + std::to_string(hub->port()), "report", "1",
                      "--format", "pdf"},
                     usage, usage_err),
            2);
  EXPECT_TRUE(absl::StrContains(usage_err.str(), "needs -o FILE"));
}

// 100 subscribers that never read, each on a connection of its own (as 100
// forgotten browser tabs would be), while a station streams a long set as
// fast as the hub takes it: ingest goes on, the healthy subscriber gets
// every repetition in order without missing anything, and what the hub
// holds for the stalled ones stays within their bounded queues, which
// overflow instead of growing.
TEST(HubEndToEnd, StalledWatchersNeitherSlowIngestNorTheHealthyWatcher) {
  testing::TempDir dir;
  api::HubOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = dir.path();
  testing::UseTestTls(&options);
  auto started = testing::StartHub(options);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<api::HubServer> hub = std::move(*started);
  const std::string address = "127.0.0.1:" + std::to_string(hub->port());

  constexpr int kStalled = 100;
  struct Stalled {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::Dashboard::Stub> stub;
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::ClinicEvent>> reader;
  };
  std::vector<std::unique_ptr<Stalled>> stalled;
  // One sign-in for all of them: each is a separate connection.
  const std::string token = testing::SignIn(hub->port());
  setenv("STEPHUB_TOKEN", token.c_str(), 1);
  for (int i = 0; i < kStalled; ++i) {
    auto s = std::make_unique<Stalled>();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // A plain 64 KiB receive window, not one grown by bandwidth probes: the
    // hub's own queue must then take the backlog.
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
    s->channel = CreateStaffChannel(address, testing::StaffCredentials(),
                                    token, args);
    s->stub = v1::Dashboard::NewStub(s->channel);
    s->reader = s->stub->WatchClinic(&s->context, {});
    stalled.push_back(std::move(s));
  }
  auto channel =
      CreateStaffChannel(address, testing::StaffCredentials(), token);
  auto clinic = v1::Clinic::NewStub(channel);
  Watcher healthy(channel);
  ASSERT_TRUE(testing::WaitFor([&] {
    return hub->live_stats().subscribers == kStalled + 1;
  })) << hub->live_stats().subscribers;

  Bay bay;
  bay.station_id = "bay-1";
  bay.profile = ShortProfile("trendelenburg", StanceSide::kLeft);
  bay.profile.repetitions = 120;
  station::StationOptions so;
  so.hub_address = address;
  so.station_id = bay.station_id;
  testing::UseTestTls(&so, bay.station_id);
  so.exit_after_set = true;
  so.real_time = false;  // as fast as the hub acknowledges
  so.spool.dir = dir.path() + "/spool";
  bay.station = std::make_unique<station::Station>(
      bay.io, so,
      station::MakeSimulatedSource(bay.profile, 3, station::MonotonicMicros()));
  bay.thread = std::thread([&] { bay.result = bay.station->Run(); });
  ASSERT_TRUE(testing::WaitFor([&] {
    v1::ListStationsResponse resp;
    grpc::ClientContext ctx;
    clinic->ListStations(&ctx, {}, &resp);
    return resp.stations_size() == 1 && resp.stations(0).online();
  }));
  std::ostringstream out, err;
  ASSERT_EQ(cli::Run({"--ca_file", testing::TestPki::Get().ca_file(), "--hub",
                      address, "patients", "add", "Patient"},
                     out, err),
            0)
      << err.str();
  v1::StartSetRequest req;
  req.set_station_id(bay.station_id);
  req.set_patient_id(1);
  req.set_stance_side(v1::STANCE_SIDE_LEFT);
  v1::ExerciseSet set;
  grpc::ClientContext set_ctx;
  ASSERT_TRUE(clinic->StartSet(&set_ctx, req, &set).ok());

  // Bounded waits: they fail the test if ingest or delivery stalls.
  const bool streamed = testing::WaitFor(
      [&] {
        return bay.station->acked_seq() != 0 &&
               bay.station->acked_seq() == bay.station->last_seq() &&
               healthy.Count(v1::ClinicEvent::kRepetition) >= 120;
      },
      absl::Seconds(120));
  if (!streamed) bay.station->Stop();
  bay.thread.join();
  ASSERT_TRUE(streamed) << healthy.Count(v1::ClinicEvent::kRepetition)
                        << " repetitions seen";
  EXPECT_TRUE(bay.result.ok()) << bay.result;

  const live::LiveBus::Stats stats = hub->live_stats();
  // Each stalled subscriber's queue filled and was dropped rather than
  // grown; none holds more than the hub's per-subscriber bound (1024).
  EXPECT_GE(stats.backlogs_dropped, static_cast<uint64_t>(kStalled));
  EXPECT_LE(stats.most_queued, 1024u);
  EXPECT_LE(stats.queued_events, (kStalled + 1) * 1024u);
  std::vector<uint32_t> numbers;
  for (const auto& e : healthy.events()) {
    EXPECT_FALSE(e.has_missed()) << "the healthy watcher missed events";
    if (e.has_repetition()) numbers.push_back(e.repetition().number());
  }
  ASSERT_EQ(numbers.size(), 120u);
  for (uint32_t i = 0; i < 120; ++i) EXPECT_EQ(numbers[i], i + 1);

  for (auto& s : stalled) s->context.TryCancel();
  stalled.clear();
}

}  // namespace
}  // namespace stephub
