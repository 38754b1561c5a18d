// Tests of SetScorer and ScoreRecording against the simulator's truth.
#include "hub/scoring/scoring.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/recording.h"
#include "common/simulator.h"
#include "gtest/gtest.h"

namespace stephub::scoring {
namespace {

PatientProfile Profile(const std::string& name, StanceSide side) {
  PatientProfile p = *ProfileByName(name);
  p.stance_side = side;
  return p;
}

// A station with only the recording's sacral IMU (and its protocol).
StationSensors SacrumOnly(const Recording& rec) {
  StationSensors sensors;
  sensors.imus = {Placement::kSacrum};
  sensors.calibration_movement = rec.meta.calibration_movement;
  return sensors;
}

const std::vector<ImuSample>& Sacrum(const Recording& rec) {
  return rec.imu.at(Placement::kSacrum);
}

// Peak pelvic drop errors against truth, accumulated over recordings.
struct Accuracy {
  void Add(double error) {
    max_abs = std::max(max_abs, std::abs(error));
    sum_sq += error * error;
    ++n;
  }
  double rmse() const { return n ? std::sqrt(sum_sq / n) : 0; }
  double max_abs = 0;
  double sum_sq = 0;
  int n = 0;
};

// Checks one scored recording against its truth: the exact rep count, each
// rep's peak pelvic drop and span, and the verdict where truth is clear-cut.
void CheckAgainstTruth(const Recording& rec,
                       const std::vector<Repetition>& reps,
                       const std::string& label, Accuracy* accuracy) {
  ASSERT_EQ(reps.size(), rec.truth.size()) << label;
  for (size_t i = 0; i < reps.size(); ++i) {
    const Repetition& r = reps[i];
    const TruthRepetition& t = rec.truth[i];
    const double error = r.peak_pelvic_drop_deg - *t.peak_pelvic_drop_deg;
    accuracy->Add(error);
    EXPECT_LT(std::abs(error), 1.5) << label << " rep " << i + 1;
    EXPECT_EQ(r.number, static_cast<int>(i) + 1);
    EXPECT_FALSE(r.partial);
    // Starts where the pelvis leaves standing; ends as it is nearly back.
    EXPECT_NEAR(r.start_us, t.start_us, 300'000) << label;
    EXPECT_LE(r.end_us, t.end_us) << label;
    EXPECT_GT(r.end_us, t.end_us - 500'000) << label;
    EXPECT_GT(r.deepest_us, r.start_us);
    EXPECT_LT(r.deepest_us, r.end_us);
    const ScoringConfig config;
    if (std::abs(std::abs(*t.peak_pelvic_drop_deg) -
                 config.pelvic_compensation_threshold_deg) > 1.5) {
      EXPECT_EQ(r.verdict, ClassifyPelvicDrop(*t.peak_pelvic_drop_deg, config))
          << label << " rep " << i + 1;
    }
  }
}

TEST(ClassifyPelvicDrop, UsesTheThresholdBothWays) {
  const ScoringConfig config;  // 5 deg
  EXPECT_EQ(ClassifyPelvicDrop(0, config), Verdict::kClean);
  EXPECT_EQ(ClassifyPelvicDrop(5.0, config), Verdict::kClean);
  EXPECT_EQ(ClassifyPelvicDrop(5.01, config), Verdict::kPelvicDrop);
  EXPECT_EQ(ClassifyPelvicDrop(-5.0, config), Verdict::kClean);
  EXPECT_EQ(ClassifyPelvicDrop(-7, config), Verdict::kPelvicHike);
  EXPECT_EQ(ClassifyPelvicDrop(3, ScoringConfig{2.5}), Verdict::kPelvicDrop);
}

// The acceptance test: every profile, both stance sides, several patients.
TEST(ScoreRecording, MatchesSimulatorTruth) {
  Accuracy accuracy;
  for (const std::string& name : AllProfileNames()) {
    for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
      for (uint64_t seed = 1; seed <= 5; ++seed) {
        const Recording rec = SimulateRecording(Profile(name, side), seed);
        const std::string label =
            absl::StrFormat("%s/%s/seed %d", name, StanceSideName(side), seed);
        CheckAgainstTruth(rec, ScoreRecording(rec), label, &accuracy);
      }
    }
  }
  std::cout << absl::StrFormat(
      "peak pelvic drop vs truth over %d reps: max |error| %.3f deg, "
      "RMSE %.3f deg\n",
      accuracy.n, accuracy.max_abs, accuracy.rmse());
  RecordProperty("peak_drop_max_abs_error_deg",
                 absl::StrFormat("%.3f", accuracy.max_abs));
  RecordProperty("peak_drop_rmse_deg",
                 absl::StrFormat("%.3f", accuracy.rmse()));
  EXPECT_EQ(accuracy.n,
            static_cast<int>(AllProfileNames().size()) * 2 * 5 * 10);
  EXPECT_LT(accuracy.max_abs, 0.75);
  EXPECT_LT(accuracy.rmse(), 0.3);
}

TEST(ScoreRecording, PauseAtTheBottomIsNotDoubleCounted) {
  Accuracy accuracy;
  for (const char* name : {"level", "trendelenburg"}) {
    PatientProfile p = Profile(name, StanceSide::kRight);
    p.hold_s = 3;
    p.repetitions = 6;
    const Recording rec = SimulateRecording(p, 21);
    CheckAgainstTruth(rec, ScoreRecording(rec), name, &accuracy);
  }
  EXPECT_LT(accuracy.max_abs, 0.75);
}

TEST(SetScorer, RepCutOffByTheEndOfTheSetIsPartialAndNotCounted) {
  const Recording rec =
      SimulateRecording(Profile("trendelenburg", StanceSide::kLeft), 31);
  const int64_t cut = rec.truth.back().start_us + 1'000'000;  // near bottom
  SetScorer scorer(StanceSide::kLeft, SacrumOnly(rec));
  std::vector<Repetition> reps;
  for (const ImuSample& s : Sacrum(rec)) {
    if (s.t_us > cut) break;
    for (const Repetition& r : scorer.AddSacrumSamples({&s, 1})) {
      reps.push_back(r);
    }
  }
  EXPECT_EQ(reps.size(), rec.truth.size() - 1);
  EXPECT_EQ(scorer.repetitions_counted(), static_cast<int>(reps.size()));
  const std::optional<Repetition> partial = scorer.Finish();
  ASSERT_TRUE(partial.has_value());
  EXPECT_TRUE(partial->partial);
  EXPECT_EQ(partial->number, 0);
  EXPECT_NEAR(partial->start_us, rec.truth.back().start_us, 300'000);
  EXPECT_LE(partial->end_us, cut);
  EXPECT_GT(partial->peak_pelvic_drop_deg, 5);
  EXPECT_EQ(scorer.repetitions_counted(), static_cast<int>(reps.size()));
  // The set is over: nothing more is scored or counted.
  EXPECT_TRUE(scorer.AddSacrumSamples(Sacrum(rec)).empty());
  EXPECT_FALSE(scorer.Finish().has_value());
  // Offline scoring of the same cut recording leaves the partial rep out.
  Recording cut_rec = rec;
  for (auto& [placement, imu] : cut_rec.imu) {
    imu.erase(std::find_if(imu.begin(), imu.end(),
                           [cut](const ImuSample& s) { return s.t_us > cut; }),
              imu.end());
  }
  cut_rec.force.erase(
      std::find_if(cut_rec.force.begin(), cut_rec.force.end(),
                   [cut](const ForceSample& s) { return s.t_us > cut; }),
      cut_rec.force.end());
  EXPECT_EQ(ScoreRecording(cut_rec).size(), rec.truth.size() - 1);
}

TEST(SetScorer, FinishBetweenRepsHasNoPartial) {
  const Recording rec =
      SimulateRecording(Profile("level", StanceSide::kLeft), 2);
  SetScorer scorer(StanceSide::kLeft, SacrumOnly(rec));
  scorer.AddSacrumSamples(Sacrum(rec));
  EXPECT_EQ(scorer.repetitions_counted(), 10);
  EXPECT_FALSE(scorer.Finish().has_value());
}

TEST(SetScorer, HowSamplesAreBatchedDoesNotMatter) {
  const Recording rec =
      SimulateRecording(Profile("moderate", StanceSide::kRight), 4);
  const std::vector<Repetition> offline = ScoreRecording(rec);
  // Every sensor, fed in station batches of different lengths (stations
  // send 20-50 ms; the scorer waits at most 100 ms for a lagging sensor).
  for (int64_t batch_us : {5'000, 37'000, 90'000}) {
    SetScorer scorer(StanceSide::kRight, SensorsOf(rec));
    std::vector<Repetition> online;
    std::map<Placement, size_t> next;
    size_t next_force = 0;
    for (int64_t to = batch_us; to < rec.force.back().t_us + batch_us;
         to += batch_us) {
      for (const auto& [placement, samples] : rec.imu) {
        size_t& i = next[placement];
        const size_t begin = i;
        while (i < samples.size() && samples[i].t_us < to) ++i;
        for (const Repetition& r : scorer.AddImuSamples(
                 placement,
                 absl::MakeConstSpan(samples).subspan(begin, i - begin))) {
          online.push_back(r);
        }
      }
      const size_t begin = next_force;
      while (next_force < rec.force.size() && rec.force[next_force].t_us < to) {
        ++next_force;
      }
      for (const Repetition& r :
           scorer.AddForceSamples(absl::MakeConstSpan(rec.force).subspan(
               begin, next_force - begin))) {
        online.push_back(r);
      }
    }
    ASSERT_EQ(online.size(), offline.size()) << batch_us;
    for (size_t i = 0; i < online.size(); ++i) {
      EXPECT_EQ(online[i].start_us, offline[i].start_us);
      EXPECT_EQ(online[i].end_us, offline[i].end_us);
      EXPECT_EQ(online[i].peak_pelvic_drop_deg,
                offline[i].peak_pelvic_drop_deg);
      EXPECT_EQ(online[i].knee_valgus_deg, offline[i].knee_valgus_deg);
      EXPECT_EQ(online[i].cop_ml_range_mm, offline[i].cop_ml_range_mm);
    }
  }
  // A sacrum-only station: any number of samples per call.
  Recording sacrum_only = rec;
  sacrum_only.force.clear();
  std::erase_if(sacrum_only.imu,
                [](const auto& kv) { return kv.first != Placement::kSacrum; });
  const std::vector<Repetition> sacrum_offline = ScoreRecording(sacrum_only);
  for (size_t batch : {1u, 37u, 1000u}) {
    SetScorer scorer(StanceSide::kRight, SacrumOnly(rec));
    std::vector<Repetition> online;
    const absl::Span<const ImuSample> all(Sacrum(rec));
    for (size_t i = 0; i < all.size(); i += batch) {
      for (const Repetition& r :
           scorer.AddSacrumSamples(all.subspan(i, batch))) {
        online.push_back(r);
      }
    }
    ASSERT_EQ(online.size(), sacrum_offline.size());
    for (size_t i = 0; i < online.size(); ++i) {
      EXPECT_EQ(online[i].start_us, sacrum_offline[i].start_us);
      EXPECT_EQ(online[i].end_us, sacrum_offline[i].end_us);
      EXPECT_EQ(online[i].peak_pelvic_drop_deg,
                sacrum_offline[i].peak_pelvic_drop_deg);
    }
  }
}

TEST(SetScorer, CalibratesAfterOneSecondOfStillness) {
  const Recording rec =
      SimulateRecording(Profile("trendelenburg", StanceSide::kLeft), 5);
  SetScorer scorer(StanceSide::kLeft, SacrumOnly(rec));
  const auto& imu = Sacrum(rec);
  size_t i = 0;
  for (; imu[i].t_us < 900'000; ++i) scorer.AddSacrumSamples({&imu[i], 1});
  EXPECT_FALSE(scorer.calibrated());
  EXPECT_FALSE(scorer.current_pelvic_drop_deg().has_value());
  for (; imu[i].t_us <= 1'100'000; ++i) scorer.AddSacrumSamples({&imu[i], 1});
  EXPECT_TRUE(scorer.calibrated());
  ASSERT_TRUE(scorer.current_pelvic_drop_deg().has_value());
  EXPECT_NEAR(*scorer.current_pelvic_drop_deg(), 0, 0.3);
  // Live feedback at the first rep's deepest point shows the drop.
  const TruthRepetition& first = rec.truth[0];
  for (; imu[i].t_us < first.start_us + 1'300'000; ++i) {
    scorer.AddSacrumSamples({&imu[i], 1});
  }
  EXPECT_NEAR(*scorer.current_pelvic_drop_deg(), *first.peak_pelvic_drop_deg,
              0.75);
}

// The live trace: 25 points a second from calibration on, whatever the
// batching, the deepest of them near the repetition's peak; never more than
// 256 waiting for a caller that does not take them.
TEST(SetScorer, LivePelvicTraceIsTwentyFivePointsASecondAfterCalibration) {
  const Recording rec =
      SimulateRecording(Profile("trendelenburg", StanceSide::kLeft), 5);
  SetScorer scorer(StanceSide::kLeft, SacrumOnly(rec));
  const auto& imu = Sacrum(rec);
  const TruthRepetition& first = rec.truth[0];
  std::vector<PelvicTracePoint> trace;
  size_t i = 0;
  // Batches of 7 samples (35 ms): not a multiple of the spacing.
  for (; i < imu.size() && imu[i].t_us < first.end_us; i += 7) {
    const size_t n = std::min<size_t>(7, imu.size() - i);
    scorer.AddSacrumSamples({&imu[i], n});
    for (const PelvicTracePoint& p : scorer.TakePelvicTrace()) {
      trace.push_back(p);
    }
  }
  ASSERT_GT(trace.size(), 10u);
  EXPECT_GE(trace.front().t_us, 1'000'000);  // not before calibration
  double deepest = 0;
  for (size_t k = 1; k < trace.size(); ++k) {
    EXPECT_EQ(trace[k].t_us - trace[k - 1].t_us, kPelvicTraceSpacingUs);
    deepest = std::max(deepest, trace[k].pelvic_drop_deg);
  }
  EXPECT_NEAR(deepest, *first.peak_pelvic_drop_deg, 0.75);
  // Up to date with the data given.
  EXPECT_GT(trace.back().t_us, imu[i - 1].t_us - kPelvicTraceSpacingUs);
  for (; i < imu.size(); ++i) scorer.AddSacrumSamples({&imu[i], 1});
  EXPECT_EQ(scorer.TakePelvicTrace().size(), 256u);
  EXPECT_TRUE(scorer.TakePelvicTrace().empty());
}

TEST(ScoreRecording, WorksOnARecordingReadBackFromDisk) {
  const Recording rec =
      SimulateRecording(Profile("moderate", StanceSide::kLeft), 8);
  const std::string dir =
      (std::filesystem::path(::testing::TempDir()) / "stephub_scoring_rt")
          .string();
  ASSERT_TRUE(WriteRecording(dir, rec).ok());
  auto read = ReadRecording(dir);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(read.ok()) << read.status();
  Accuracy accuracy;
  CheckAgainstTruth(*read, ScoreRecording(*read), "read back", &accuracy);
  EXPECT_LT(accuracy.max_abs, 0.75);
}

// Since 0.2 a station without a sacral IMU is scored from its other sensors
// (see multi_sensor_test.cc); without any sensor there is nothing to score.
TEST(ScoreRecording, NoSensorsNoRepetitions) {
  Recording rec = SimulateRecording(Profile("level", StanceSide::kLeft), 1);
  rec.imu.clear();
  rec.force.clear();
  EXPECT_TRUE(ScoreRecording(rec).empty());
}

}  // namespace
}  // namespace stephub::scoring

namespace stephub::scoring {
namespace {

// A station restarted mid-set: half a second of samples is missing from the
// middle of repetition 3. That repetition is dropped (it cannot be measured
// whole), its remainder is not counted as a repetition, and the following
// ones are scored as accurately as before.
TEST(SetScorer, GapInTheDataDropsTheInterruptedRepetitionOnly) {
  for (const char* name : {"level", "moderate", "trendelenburg"}) {
    const Recording rec =
        SimulateRecording(Profile(name, StanceSide::kLeft), 5);
    ASSERT_GE(rec.truth.size(), 5u);
    const TruthRepetition& cut = rec.truth[2];
    const int64_t hole_from = cut.start_us + (cut.end_us - cut.start_us) / 3;
    const int64_t hole_to = hole_from + 500'000;
    std::vector<ImuSample> samples;
    for (const ImuSample& s : Sacrum(rec)) {
      if (s.t_us < hole_from || s.t_us >= hole_to) samples.push_back(s);
    }
    SetScorer scorer(StanceSide::kLeft, SacrumOnly(rec));
    std::vector<Repetition> reps;
    for (size_t i = 0; i < samples.size(); i += 10) {
      const size_t n = std::min<size_t>(10, samples.size() - i);
      for (const Repetition& r : scorer.AddSacrumSamples(
               absl::MakeConstSpan(samples).subspan(i, n))) {
        reps.push_back(r);
      }
    }
    ASSERT_EQ(reps.size(), rec.truth.size() - 1) << name;
    for (size_t i = 0; i < reps.size(); ++i) {
      EXPECT_EQ(reps[i].number, static_cast<int>(i) + 1);
      // Repetitions after the gap line up with truth one further on.
      const TruthRepetition& t = rec.truth[i < 2 ? i : i + 1];
      EXPECT_NEAR(reps[i].start_us, t.start_us, 300'000) << name << " " << i;
      EXPECT_NEAR(reps[i].peak_pelvic_drop_deg, *t.peak_pelvic_drop_deg, 1.0)
          << name << " rep " << i + 1;
    }
  }
}

}  // namespace
}  // namespace stephub::scoring
