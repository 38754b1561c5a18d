// Fault test: a hub and three stations on loopback, all real binaries. While
// the patients exercise, the hub is killed with SIGKILL at five random
// moments (the seed is printed; STEPHUB_FAULT_SEED replays one) and every
// station once, each restarted at once on the same data. After every kill
// the database passes SQLite's integrity check. Afterwards the
// hub's database must hold every sample the stations spooled exactly once
// (per-station sequence continuity, no sample twice, the only hole being the
// time each station was dead), and every repetition the simulated patients
// performed must be scored exactly once.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/simulator.h"
#include "hub/store/store.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "tests/test_hub.h"
#include "tests/testing.h"

namespace stephub {
namespace {

constexpr int kRepetitions = 4;
constexpr int64_t kImuPeriodUs = 5'000;    // 200 Hz
constexpr int64_t kPlatePeriodUs = 1'000;  // 1 kHz

struct StationUnderTest {
  std::string id;
  std::string profile;
  uint64_t seed = 0;
  v1::StanceSide side = v1::STANCE_SIDE_LEFT;
  std::string config_file;
  std::string spool_dir;
  std::unique_ptr<testing::ChildProcess> process;
  int starts = 0;
};

class FaultTest : public ::testing::Test {
 protected:
  void StartHub(int port) {
    ++hub_starts_;
    ASSERT_TRUE(testing::AddTestStaff(dir_.path()).ok());
    hub_ = std::make_unique<testing::ChildProcess>(
        testing::Concat(
            {STEPHUB_HUB_BINARY, absl::StrCat("--listen=127.0.0.1:", port),
             "--web_listen=", absl::StrCat("--data_dir=", dir_.path())},
            testing::HubTlsFlags()),
        absl::StrCat(dir_.path(), "/hub-", hub_starts_, ".log"));
    ASSERT_TRUE(hub_->started());
    const std::string marker = "listening on port ";
    ASSERT_TRUE(testing::WaitFor(
        [&] { return hub_->Log().find(marker) != std::string::npos; },
        absl::Seconds(20)))
        << hub_->Log();
    const std::string log = hub_->Log();
    port_ = std::atoi(log.c_str() + log.find(marker) + marker.size());
    ASSERT_GT(port_, 0);
  }

  void StartStation(StationUnderTest& s) {
    ++s.starts;
    s.process = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{STEPHUB_STATION_BINARY,
                                 "--config=" + s.config_file,
                                 "--exit_after_set", "--quiet"},
        absl::StrCat(dir_.path(), "/", s.id, "-", s.starts, ".log"));
    ASSERT_TRUE(s.process->started());
  }

  void WriteConfig(StationUnderTest& s) {
    s.spool_dir = absl::StrCat(dir_.path(), "/spool-", s.id);
    s.config_file = absl::StrCat(dir_.path(), "/", s.id, ".textproto");
    std::ofstream out(s.config_file);
    out << "station_id: \"" << s.id << "\"\n"
        << "hub_address: \"127.0.0.1:" << port_ << "\"\n"
        << "spool { dir: \"" << s.spool_dir << "\" sync_interval_ms: 50 }\n"
        << "link { max_backoff_ms: 500 tls_ca_file: \""
        << testing::TestPki::Get().ca_file() << "\" tls_cert_file: \""
        << testing::TestPki::Get().station_cert_file(s.id)
        << "\" tls_key_file: \""
        << testing::TestPki::Get().station_key_file(s.id) << "\" }\n"
        << "sensors { sim { profile: \"" << s.profile << "\" seed: " << s.seed
        << " repetitions: " << kRepetitions << " } }\n";
  }

  v1::ListStationsResponse Stations() { return testing::ListStations(port_); }

  // Highest durable sequence number the hub reports for each station.
  uint64_t MinDurableSeq() {
    uint64_t least = UINT64_MAX;
    auto resp = Stations();
    if (resp.stations_size() < 3) return 0;
    for (const auto& st : resp.stations()) {
      least = std::min<uint64_t>(least, st.durable_seq());
    }
    return least;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ChildProcess> hub_;
  int hub_starts_ = 0;
  int port_ = 0;
};

// When the station noted its set began (station clock), from its state file.
int64_t SetStartOf(const StationUnderTest& s) {
  std::ifstream in(s.spool_dir + ".current_set");
  int64_t set_id = 0, start_us = 0;
  in >> set_id >> start_us;
  return start_us;
}

TEST_F(FaultTest, KilledHubAndStationsLoseNothingAndCountNothingTwice) {
  ASSERT_NO_FATAL_FAILURE(StartHub(0));
  std::vector<StationUnderTest> stations(3);
  const char* profiles[] = {"level", "moderate", "trendelenburg"};
  for (int i = 0; i < 3; ++i) {
    stations[i].id = absl::StrCat("bay-", i + 1);
    stations[i].profile = profiles[i];
    stations[i].seed = 11 + i;
    stations[i].side = i == 1 ? v1::STANCE_SIDE_RIGHT : v1::STANCE_SIDE_LEFT;
  }
  for (auto& s : stations) {
    WriteConfig(s);
    ASSERT_NO_FATAL_FAILURE(StartStation(s));
  }
  ASSERT_TRUE(testing::WaitFor([&] {
    int online = 0;
    const v1::ListStationsResponse resp = Stations();
    for (const auto& st : resp.stations()) online += st.online();
    return online == 3;
  }));

  // A patient and a set on every bay.
  {
    auto channel = testing::StaffChannel(port_);
    auto clinic = v1::Clinic::NewStub(channel);
    for (const auto& s : stations) {
      v1::CreatePatientRequest preq;
      preq.set_display_name("Patient " + s.id);
      v1::Patient patient;
      grpc::ClientContext pctx;
      ASSERT_TRUE(clinic->CreatePatient(&pctx, preq, &patient).ok());
      v1::StartSetRequest req;
      req.set_station_id(s.id);
      req.set_patient_id(patient.patient_id());
      req.set_stance_side(s.side);
      v1::ExerciseSet set;
      grpc::ClientContext ctx;
      ASSERT_TRUE(clinic->StartSet(&ctx, req, &set).ok());
    }
  }

  // Kill the hub at random moments while batches stream; after each kill
  // the database must be intact before the hub comes back on the same port.
  uint64_t seed = std::random_device{}();
  if (const char* replay = std::getenv("STEPHUB_FAULT_SEED")) {
    seed = std::strtoull(replay, nullptr, 10);
  }
  std::cout << "fault seed " << seed << " (STEPHUB_FAULT_SEED replays it)\n";
  SCOPED_TRACE(absl::StrCat("STEPHUB_FAULT_SEED=", seed));
  std::mt19937_64 rng(seed);
  auto kill_hub = [&] {
    hub_->Signal(SIGKILL);
    hub_->Wait();
    const auto intact =
        store::VerifyClinicDatabase(dir_.path() + "/stephub.db");
    EXPECT_TRUE(intact.ok())
        << "after hub kill " << hub_starts_ << ": " << intact.status();
    ASSERT_NO_FATAL_FAILURE(StartHub(port_));
  };
  // Every station streaming first (25 ms batches: 40 are a second).
  ASSERT_TRUE(testing::WaitFor([&] { return MinDurableSeq() >= 40; },
                               absl::Seconds(30)));
  constexpr int kHubKills = 5;
  std::uniform_int_distribution<int> pause_ms(100, 2500);
  for (int kill = 0; kill < kHubKills; ++kill) {
    absl::SleepFor(absl::Milliseconds(pause_ms(rng)));
    ASSERT_NO_FATAL_FAILURE(kill_hub());
    if (kill == 1) {
      for (auto& s : stations) {
        s.process->Signal(SIGKILL);
        s.process->Wait();
      }
      for (auto& s : stations) ASSERT_NO_FATAL_FAILURE(StartStation(s));
    }
  }

  // Each station exits once its set is played and stored at the hub.
  for (auto& s : stations) {
    int code = -1;
    ASSERT_TRUE(s.process->WaitFor(absl::Seconds(90), &code))
        << s.id << " did not finish:\n"
        << s.process->Log();
    EXPECT_EQ(code, 0) << s.process->Log();
  }
  hub_->Signal(SIGTERM);
  hub_->Wait();

  auto store = store::OpenSqliteStore(dir_.path() + "/stephub.db");
  ASSERT_TRUE(store.ok()) << store.status();
  for (const auto& s : stations) {
    SCOPED_TRACE(s.id);
    // The station's spool knows how many batches it ever appended: its log
    // says so when it stops.
    const std::string log = s.process->Log();
    const auto stopped = log.rfind("event=stopped ");
    ASSERT_NE(stopped, std::string::npos) << log;
    const auto at = log.find(" last_seq=", stopped);
    ASSERT_NE(at, std::string::npos) << log;
    const uint64_t last_seq =
        std::stoull(log.substr(at + std::string(" last_seq=").size()));
    ASSERT_GT(last_seq, 400u);

    std::set<std::string> boots;
    std::vector<uint64_t> seqs;
    std::map<uint32_t, std::vector<int64_t>> times;    // per sensor
    std::map<uint32_t, std::vector<uint64_t>> seq_of;  // batch of each sample
    ASSERT_TRUE((*store)
                    ->VisitBatches(
                        s.id, absl::InfinitePast(),
                        [&](const store::BatchRecord& b) {
                          boots.insert(b.boot_id);
                          seqs.push_back(b.seq);
                          v1::SampleBatch batch;
                          EXPECT_TRUE(batch.ParseFromString(b.payload));
                          for (const auto& imu : batch.imu()) {
                            auto& t = times[imu.sensor_id()];
                            t.insert(t.end(), imu.t_us().begin(),
                                     imu.t_us().end());
                            seq_of[imu.sensor_id()].resize(t.size(), b.seq);
                          }
                          for (const auto& f : batch.force()) {
                            auto& t = times[f.sensor_id()];
                            t.insert(t.end(), f.t_us().begin(), f.t_us().end());
                          }
                          return true;
                        })
                    .ok());
    // One boot: the spool survived the kill. Every batch 1..last_seq once.
    EXPECT_EQ(boots.size(), 1u);
    ASSERT_EQ(seqs.size(), last_seq);
    std::sort(seqs.begin(), seqs.end());
    for (uint64_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i + 1);

    // No sample twice, and no hole but the one the station's death made.
    ASSERT_EQ(times.size(), 5u);  // the plate and four IMUs
    int64_t hole_from = 0, hole_to = 0;
    for (const auto& [sensor, t] : times) {
      const int64_t period = sensor == 1 ? kPlatePeriodUs : kImuPeriodUs;
      int holes = 0;
      for (size_t i = 1; i < t.size(); ++i) {
        ASSERT_GT(t[i], t[i - 1]) << "sensor " << sensor << " sample " << i;
        if (t[i] - t[i - 1] > period * 3 / 2) {
          ++holes;
          if (holes > 1) {
            ADD_FAILURE() << "sensor " << sensor << ": hole of "
                          << (t[i] - t[i - 1]) << " us at sample " << i
                          << " of " << t.size() << " (batch "
                          << (sensor == 1 ? 0 : seq_of[sensor][i]) << ")";
          }
          if (sensor != 1) {
            hole_from = t[i - 1];
            hole_to = t[i];
          }
        }
      }
      EXPECT_EQ(holes, 1) << "sensor " << sensor;
    }

    // Every repetition scored once: the simulated patient's set is a
    // function of profile, seed and start, so its truth can be recomputed.
    auto profile = ProfileByName(s.profile);
    ASSERT_TRUE(profile.ok());
    profile->repetitions = kRepetitions;
    profile->stance_side = s.side == v1::STANCE_SIDE_RIGHT ? StanceSide::kRight
                                                           : StanceSide::kLeft;
    const int64_t set_start = SetStartOf(s);
    ASSERT_GT(set_start, 0);
    StepDownSimulator simulator(*profile, s.seed, set_start);
    simulator.BeginSet(set_start);
    SimulatedSamples ignored;
    simulator.GenerateUntil(set_start + 120'000'000, &ignored);
    ASSERT_TRUE(simulator.set_finished());
    const auto& truth = simulator.truth();
    ASSERT_EQ(truth.size(), static_cast<size_t>(kRepetitions));

    auto sets = (*store)->ActiveSets();
    ASSERT_TRUE(sets.ok());
    int64_t set_id = 0;
    for (const auto& set : *sets) {
      if (set.station_id() == s.id) set_id = set.set_id();
    }
    ASSERT_NE(set_id, 0);
    auto reps = (*store)->RepetitionsOfSet(set_id);
    ASSERT_TRUE(reps.ok());
    // A repetition the station's death cut into cannot be measured whole
    // and is not counted; every other one is, once, and matches truth.
    size_t expected = 0;
    for (const auto& t : truth) {
      const bool cut =
          t.start_us < hole_to + 300'000 && t.end_us > hole_from - 300'000;
      expected += !cut;
    }
    std::set<uint32_t> numbers;
    for (const auto& r : *reps) numbers.insert(r.number());
    EXPECT_EQ(numbers.size(), reps->size()) << "a repetition number twice";
    EXPECT_GE(reps->size(), expected);
    EXPECT_LE(reps->size(), static_cast<size_t>(kRepetitions));
    for (const auto& r : *reps) {
      const TruthRepetition* match = nullptr;
      for (const auto& t : truth) {
        if (std::abs(t.start_us - r.start_us()) < 400'000) match = &t;
      }
      ASSERT_NE(match, nullptr)
          << "a repetition that never happened: " << r.DebugString();
      EXPECT_NEAR(r.peak_pelvic_drop_deg(), *match->peak_pelvic_drop_deg, 1.5)
          << r.DebugString();
    }
  }
}

// SIGTERM: the station stops sampling, spools and syncs what it sampled,
// lets the hub acknowledge it, closes the stream and exits with status 0.
TEST_F(FaultTest, SigtermStopsTheStationCleanly) {
  ASSERT_NO_FATAL_FAILURE(StartHub(0));
  StationUnderTest s;
  s.id = "bay-1";
  s.profile = "level";
  s.seed = 1;
  WriteConfig(s);
  ++s.starts;
  s.process = std::make_unique<testing::ChildProcess>(
      std::vector<std::string>{STEPHUB_STATION_BINARY,
                               "--config=" + s.config_file, "--log-level=info"},
      absl::StrCat(dir_.path(), "/", s.id, "-sigterm.log"));
  ASSERT_TRUE(testing::WaitFor([&] {
    const v1::ListStationsResponse resp = Stations();
    return resp.stations_size() == 1 && resp.stations(0).durable_seq() >= 20;
  })) << s.process->Log();
  s.process->Signal(SIGTERM);
  int code = -1;
  ASSERT_TRUE(s.process->WaitFor(absl::Seconds(10), &code)) << s.process->Log();
  EXPECT_EQ(code, 0) << s.process->Log();
  const std::string log = s.process->Log();
  EXPECT_NE(log.find("event=signal"), std::string::npos) << log;
  const auto stopped = log.rfind("event=stopped ");
  ASSERT_NE(stopped, std::string::npos) << log;
  const auto last = log.find(" last_seq=", stopped);
  const auto acked = log.find(" acked_seq=", stopped);
  ASSERT_NE(last, std::string::npos);
  ASSERT_NE(acked, std::string::npos);
  // Everything it sampled reached the hub before it went.
  EXPECT_EQ(std::stoull(log.substr(last + 10)),
            std::stoull(log.substr(acked + 11)))
      << log;
}

}  // namespace
}  // namespace stephub
