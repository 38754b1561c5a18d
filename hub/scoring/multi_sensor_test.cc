// Tests of scoring from every sensor of a station (sacrum, sternum, thigh,
// shank, force plate) against the simulator's truth, and of bad input.
#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <numbers>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/recording.h"
#include "common/simulator.h"
#include "gtest/gtest.h"
#include "hub/scoring/scoring.h"

namespace stephub::scoring {
namespace {

PatientProfile Profile(const std::string& name, StanceSide side) {
  PatientProfile p = *ProfileByName(name);
  p.stance_side = side;
  return p;
}

std::string Label(const std::string& name, StanceSide side, uint64_t seed) {
  return absl::StrFormat("%s/%s/seed %d", name, StanceSideName(side), seed);
}

// Error statistics of one metric against truth.
struct Errors {
  void Add(double error) {
    sum += error;
    sum_sq += error * error;
    max_abs = std::max(max_abs, std::abs(error));
    ++n;
  }
  double bias() const { return n ? sum / n : 0; }
  double rmse() const { return n ? std::sqrt(sum_sq / n) : 0; }
  std::string Summary(const char* what) const {
    return absl::StrFormat("%-22s n %4d  bias %+.3f  RMSE %.3f  max %.3f", what,
                           n, bias(), rmse(), max_abs);
  }
  double sum = 0, sum_sq = 0, max_abs = 0;
  int n = 0;
};

// The sensor at `placement` stops sending after `t_us` (unplugged, flat).
void StopSensorAfter(Recording* rec, Placement placement, int64_t t_us) {
  std::erase_if(rec->imu[placement],
                [t_us](const ImuSample& s) { return s.t_us > t_us; });
}

// The quality category truth gives, on the items the scorer assessed. Truth
// has no free-foot load, so the measured one stands in for it (as in the
// validation tool).
QualityCategory TrueCategory(const Repetition& r, const TruthRepetition& t) {
  QualityInputs in;
  in.peak_pelvic_drop_deg = t.peak_pelvic_drop_deg;
  in.peak_trunk_lean_deg = t.peak_trunk_lean_deg;
  if (r.knee_valgus_deg) in.knee_valgus_deg = t.knee_valgus_deg;
  in.cop_ml_range_mm = t.cop_ml_range_mm;
  in.free_foot_load_fraction = r.free_foot_load_fraction;
  return ScoreQuality(in, ScoringConfig{}).category;
}

struct AllErrors {
  Errors drop, lean, flexion, valgus, cop_range;
  int reps = 0, category_match = 0;
};

void CheckAllSensors(const Recording& rec, const std::vector<Repetition>& reps,
                     const std::string& label, AllErrors* e) {
  ASSERT_EQ(reps.size(), rec.truth.size()) << label;
  for (size_t i = 0; i < reps.size(); ++i) {
    const Repetition& r = reps[i];
    const TruthRepetition& t = rec.truth[i];
    const std::string at = absl::StrFormat("%s rep %d", label, i + 1);
    EXPECT_EQ(r.segmented_by, "knee flexion") << at;
    EXPECT_TRUE(r.problems.empty()) << at << absl::StrJoin(r.problems, "; ");
    EXPECT_NEAR(r.start_us, t.start_us, 300'000) << at;
    EXPECT_LE(r.end_us, t.end_us) << at;
    EXPECT_GT(r.end_us, t.end_us - 500'000) << at;
    e->drop.Add(r.peak_pelvic_drop_deg - *t.peak_pelvic_drop_deg);
    EXPECT_LT(std::abs(r.peak_pelvic_drop_deg - *t.peak_pelvic_drop_deg), 1.5)
        << at;
    ASSERT_TRUE(r.peak_trunk_lean_deg && r.knee_flexion_deg &&
                r.knee_valgus_deg && r.cop_ml_range_mm &&
                r.cop_ml_mean_speed_mm_s && r.free_foot_load_fraction &&
                r.lowering_s && r.rising_s)
        << at;
    e->lean.Add(*r.peak_trunk_lean_deg - *t.peak_trunk_lean_deg);
    e->flexion.Add(*r.knee_flexion_deg - *t.knee_flexion_deg);
    e->valgus.Add(*r.knee_valgus_deg - *t.knee_valgus_deg);
    e->cop_range.Add(*r.cop_ml_range_mm - *t.cop_ml_range_mm);
    ++e->reps;
    e->category_match += r.quality.category == TrueCategory(r, t);
  }
}

TEST(MultiSensor, AllSensorsMatchTruth) {
  AllErrors e;
  for (const std::string& name : AllProfileNames()) {
    for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        // Headings as far off as the clinic's tolerance: the calibration
        // movement at the start of the set finds them.
        PatientProfile p = Profile(name, side);
        p.mount_heading_max_deg = 5;
        const Recording rec = SimulateRecording(p, seed);
        CheckAllSensors(rec, ScoreRecording(rec), Label(name, side, seed), &e);
      }
    }
  }
  std::cout << e.drop.Summary("peak pelvic drop deg") << "\n"
            << e.lean.Summary("peak trunk lean deg") << "\n"
            << e.flexion.Summary("knee flexion deg") << "\n"
            << e.valgus.Summary("knee valgus deg") << "\n"
            << e.cop_range.Summary("COP ML range mm") << "\n"
            << absl::StrFormat("quality category matches truth: %d of %d\n",
                               e.category_match, e.reps);
  EXPECT_EQ(e.reps, static_cast<int>(AllProfileNames().size()) * 2 * 3 * 10);
  EXPECT_LT(e.drop.max_abs, 0.75);
  EXPECT_LT(e.drop.rmse(), 0.3);
  EXPECT_LT(e.lean.rmse(), 2.0);
  EXPECT_LT(e.valgus.rmse(), 2.0);
  EXPECT_LT(e.flexion.rmse(), 3.0);
  EXPECT_LT(e.cop_range.rmse(), 3.0);
  EXPECT_GE(e.category_match, 0.95 * e.reps);
}

// Rep counts and spans from a reduced set of sensors: each segmentation
// source on its own, over every profile, both sides.
void CheckSegmentation(const std::vector<Placement>& imus, bool force_plate,
                       const char* expected_source,
                       const std::vector<std::string>& profiles,
                       int64_t tolerance_us = 300'000, int64_t late_us = 0) {
  Errors start, end;
  int reps = 0;
  for (const std::string& name : profiles) {
    for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        const Recording rec = WithOnlySensors(
            SimulateRecording(Profile(name, side), seed), imus, force_plate);
        const std::string label = Label(name, side, seed);
        const std::vector<Repetition> found = ScoreRecording(rec);
        ASSERT_EQ(found.size(), rec.truth.size()) << label;
        for (size_t i = 0; i < found.size(); ++i) {
          const Repetition& r = found[i];
          const TruthRepetition& t = rec.truth[i];
          EXPECT_EQ(r.segmented_by, expected_source) << label;
          EXPECT_EQ(r.number, static_cast<int>(i) + 1);
          EXPECT_NEAR(r.start_us, t.start_us, tolerance_us) << label;
          EXPECT_LE(r.end_us, t.end_us + late_us) << label;
          EXPECT_GT(r.end_us, t.end_us - 500'000 - (tolerance_us - 300'000))
              << label;
          start.Add((r.start_us - t.start_us) * 1e-3);
          end.Add((r.end_us - t.end_us) * 1e-3);
          ++reps;
        }
      }
    }
  }
  std::cout << expected_source << ": " << reps << " reps\n"
            << start.Summary("  start - truth ms") << "\n"
            << end.Summary("  end - truth ms") << "\n";
}

// Each sensor samples at its own phase (the simulator's share one): every
// one still gets its standing baseline from the same second of standing.
TEST(MultiSensor, SensorsSamplingOutOfPhaseAreAllCalibrated) {
  const std::map<Placement, int64_t> phase_us = {{Placement::kSacrum, 0},
                                                 {Placement::kThigh, 1'300},
                                                 {Placement::kShank, 3'700},
                                                 {Placement::kSternum, 2'500}};
  AllErrors e;
  for (const char* name : {"moderate", "valgus"}) {
    Recording rec = SimulateRecording(Profile(name, StanceSide::kLeft), 2);
    for (auto& [placement, samples] : rec.imu) {
      for (ImuSample& s : samples) s.t_us += phase_us.at(placement);
    }
    for (ForceSample& s : rec.force) s.t_us += 300;
    CheckAllSensors(rec, ScoreRecording(rec), name, &e);
  }
  EXPECT_LT(e.drop.max_abs, 0.75);
  EXPECT_LT(e.flexion.rmse(), 3.0);
}

TEST(MultiSensor, SegmentsOnKneeFlexionFromThighAndShank) {
  CheckSegmentation({Placement::kThigh, Placement::kShank}, false,
                    "knee flexion", AllProfileNames());
}

TEST(MultiSensor, SegmentsOnSacralTiltWithoutLegSensors) {
  CheckSegmentation({Placement::kSacrum, Placement::kSternum}, true,
                    "sacral tilt", AllProfileNames());
}

// Without a sacral IMU the pelvis is not seen: no repetition may pass as
// clean (it would count toward progressing the load).
TEST(MultiSensor, WithoutASacralImuThePelvisIsNotAssessed) {
  const Recording full =
      SimulateRecording(Profile("trendelenburg", StanceSide::kLeft), 2);
  const Recording rec = WithOnlySensors(
      full, {Placement::kThigh, Placement::kShank, Placement::kSternum}, true);
  const std::vector<Repetition> reps = ScoreRecording(rec);
  ASSERT_EQ(reps.size(), rec.truth.size());
  for (const Repetition& r : reps) {
    EXPECT_EQ(r.verdict, Verdict::kNotAssessed);
    EXPECT_FALSE(r.quality.pelvis.has_value());
    EXPECT_NE(std::find(r.problems.begin(), r.problems.end(),
                        "no sacral IMU: pelvic drop not measured"),
              r.problems.end());
    // The other items are still scored.
    EXPECT_TRUE(r.quality.knee.has_value() && r.quality.trunk.has_value());
  }
  for (const Repetition& r : ScoreRecording(full)) {
    EXPECT_NE(r.verdict, Verdict::kNotAssessed);
  }
}

TEST(MultiSensor, SegmentsOnTheForcePlateAlone) {
  // The plate sees the centre of mass, which integrates to its height only
  // up to drift (see ComDepthTracker): spans are coarser than from IMUs. A
  // span starts when the depth last left its baseline, which the integration
  // reaches some 0.2-0.6 s before or after the lowering really starts, and
  // ends once the depth is back within 8 mm, up to 0.75 s before the rise is
  // over: 650 ms holds for the step-downs without touch-downs.
  CheckSegmentation({}, true, "force plate",
                    {"level", "valgus", "fast", "hike", "lean"}, 650'000);
  // While the free foot takes load the plate cannot follow the body; the
  // motion across is bridged from the load read off the foot's landing and
  // lift (see FootLoadIn), and what that gets wrong is put right when the
  // body next comes to rest. A repetition with a touch-down may then end up
  // to 1 s early, or only at that rest (0.3 s after the rise is over), and
  // the next may start up to 1.5 s early while the estimate settles back to
  // standing; each is still counted exactly once.
  CheckSegmentation({}, true, "force plate",
                    {"moderate", "trendelenburg", "touchdown"}, 1'500'000,
                    400'000);
}

// Feeds a recording as the hub does: batches of batch_us of every sensor,
// each sensor's share in turn, then EndBatch.
// `returned_at`: the data time (end of the batch) at which each rep came.
// `most_buffered`: the most the scorer held after any batch.
// `station_clock`: the time the station stamps on a sample of a sensor (the
// plate: nullopt) taken at the recording's time; batches are still cut on
// the recording's.
using StationClock =
    std::function<int64_t(std::optional<Placement> sensor, int64_t t_us)>;
std::vector<Repetition> FeedOnline(SetScorer& scorer, const Recording& rec,
                                   int64_t batch_us,
                                   std::vector<int64_t>* returned_at,
                                   size_t* most_buffered = nullptr,
                                   const StationClock& station_clock = {}) {
  auto stamped = [&station_clock](std::optional<Placement> sensor, auto span) {
    std::vector<typename decltype(span)::value_type> out(span.begin(),
                                                         span.end());
    if (station_clock) {
      for (auto& s : out) s.t_us = station_clock(sensor, s.t_us);
    }
    return out;
  };
  std::vector<Repetition> reps;
  std::map<Placement, size_t> next;
  size_t next_force = 0;
  int64_t last = rec.force.empty() ? 0 : rec.force.back().t_us;
  for (const auto& [placement, samples] : rec.imu) {
    if (!samples.empty()) last = std::max(last, samples.back().t_us);
  }
  for (int64_t to = batch_us; to <= last + batch_us; to += batch_us) {
    auto keep = [&](const std::vector<Repetition>& done) {
      for (const Repetition& r : done) {
        reps.push_back(r);
        if (returned_at) returned_at->push_back(to);
      }
    };
    for (const auto& [placement, samples] : rec.imu) {
      size_t& i = next[placement];
      const size_t begin = i;
      while (i < samples.size() && samples[i].t_us < to) ++i;
      keep(scorer.AddImuSamples(
          placement, stamped(placement, absl::MakeConstSpan(samples).subspan(
                                            begin, i - begin))));
    }
    const size_t begin = next_force;
    while (next_force < rec.force.size() && rec.force[next_force].t_us < to) {
      ++next_force;
    }
    keep(scorer.AddForceSamples(stamped(
        std::nullopt,
        absl::MakeConstSpan(rec.force).subspan(begin, next_force - begin))));
    keep(scorer.EndBatch());
    if (most_buffered) {
      *most_buffered = std::max(*most_buffered, scorer.buffered_samples());
    }
  }
  return reps;
}

// Every sensor's samples over a stretch of data time.
size_t SamplesOver(const Recording& rec, double seconds) {
  size_t per_second = rec.force.empty() ? 0 : 1000;
  per_second += rec.imu.size() * 200;
  return static_cast<size_t>(seconds * per_second);
}

bool Mentions(const Repetition& r, const std::string& text) {
  return std::any_of(
      r.problems.begin(), r.problems.end(),
      [&](const std::string& p) { return p.find(text) != std::string::npos; });
}

// A repetition comes once every sensor has data to its end, and within
// 100 ms of data time after it.
TEST(MultiSensor, RepetitionsComeWhenEverySensorHasDataToTheirEnd) {
  const Recording rec =
      SimulateRecording(Profile("trendelenburg", StanceSide::kLeft), 3);
  SetScorer scorer(StanceSide::kLeft, SensorsOf(rec));
  std::vector<int64_t> returned_at;
  const std::vector<Repetition> reps =
      FeedOnline(scorer, rec, 25'000, &returned_at);
  ASSERT_EQ(reps.size(), rec.truth.size());
  for (size_t i = 0; i < reps.size(); ++i) {
    EXPECT_GE(returned_at[i], reps[i].end_us);
    EXPECT_LE(returned_at[i], reps[i].end_us + 100'000);
  }
}

void ExpectSameRepetitions(const std::vector<Repetition>& got,
                           const std::vector<Repetition>& want,
                           const std::string& label) {
  ASSERT_EQ(got.size(), want.size()) << label;
  for (size_t i = 0; i < got.size(); ++i) {
    const Repetition& a = got[i];
    const Repetition& b = want[i];
    const std::string at = absl::StrFormat("%s rep %d", label, i + 1);
    EXPECT_EQ(a.number, b.number) << at;
    EXPECT_EQ(a.start_us, b.start_us) << at;
    EXPECT_EQ(a.deepest_us, b.deepest_us) << at;
    EXPECT_EQ(a.end_us, b.end_us) << at;
    EXPECT_EQ(a.peak_pelvic_drop_deg, b.peak_pelvic_drop_deg) << at;
    EXPECT_EQ(a.max_pelvic_drop_deg, b.max_pelvic_drop_deg) << at;
    EXPECT_EQ(a.max_pelvic_hike_deg, b.max_pelvic_hike_deg) << at;
    EXPECT_EQ(a.peak_trunk_lean_deg, b.peak_trunk_lean_deg) << at;
    EXPECT_EQ(a.knee_flexion_deg, b.knee_flexion_deg) << at;
    EXPECT_EQ(a.knee_valgus_deg, b.knee_valgus_deg) << at;
    EXPECT_EQ(a.cop_ml_range_mm, b.cop_ml_range_mm) << at;
    EXPECT_EQ(a.cop_ml_mean_speed_mm_s, b.cop_ml_mean_speed_mm_s) << at;
    EXPECT_EQ(a.free_foot_load_fraction, b.free_foot_load_fraction) << at;
    EXPECT_EQ(a.lowering_s, b.lowering_s) << at;
    EXPECT_EQ(a.rising_s, b.rising_s) << at;
    EXPECT_EQ(a.quality.total, b.quality.total) << at;
    EXPECT_EQ(a.segmented_by, b.segmented_by) << at;
    EXPECT_EQ(a.problems, b.problems) << at;
  }
}

// Stations send batches of 20-50 ms, but a backlog after a reconnection
// comes in larger ones: the repetitions and every metric come out the same
// however the samples were batched (also when a sensor stops mid-set and
// repetitions are returned without it).
TEST(MultiSensor, RepetitionsDoNotDependOnBatchSize) {
  // Headings as far off as the tolerance: the calibration movement's fit
  // is part of what must not depend on the batching.
  auto simulate = [](const char* name, StanceSide side, uint64_t seed) {
    PatientProfile p = Profile(name, side);
    p.mount_heading_max_deg = 5;
    return SimulateRecording(p, seed);
  };
  Recording stopping = simulate("moderate", StanceSide::kLeft, 7);
  const int64_t stop = stopping.truth[4].start_us + 500'000;
  StopSensorAfter(&stopping, Placement::kSternum, stop);
  const std::vector<std::pair<std::string, Recording>> recordings = {
      {"moderate", simulate("moderate", StanceSide::kRight, 4)},
      {"trendelenburg", simulate("trendelenburg", StanceSide::kLeft, 3)},
      {"touchdown", simulate("touchdown", StanceSide::kRight, 1)},
      {"sternum stops", stopping},
      // Quick reps on the sacral tilt: its attitude corrected only while
      // still is tracked the same however the samples come.
      {"fast, sacrum only",
       WithOnlySensors(simulate("fast", StanceSide::kRight, 5),
                       {Placement::kSacrum}, false)},
      // The plate alone: touch-downs and the calibration movement are
      // bridged the same however the samples come.
      {"touchdown, plate only",
       WithOnlySensors(simulate("touchdown", StanceSide::kLeft, 2), {}, true)},
  };
  for (const auto& [name, rec] : recordings) {
    SetScorer reference(rec.meta.stance_side, SensorsOf(rec));
    const std::vector<Repetition> want =
        FeedOnline(reference, rec, 25'000, nullptr);
    ASSERT_EQ(want.size(), rec.truth.size()) << name;
    for (int64_t batch_us : {5'000, 200'000, 500'000, 1'000'000, 2'000'000}) {
      SetScorer scorer(rec.meta.stance_side, SensorsOf(rec));
      ExpectSameRepetitions(
          FeedOnline(scorer, rec, batch_us, nullptr), want,
          absl::StrFormat("%s, %d ms batches", name, batch_us / 1000));
    }
  }
}

TEST(MultiSensor, PartialRepetitionAtTheEndOfTheSet) {
  Recording rec = SimulateRecording(Profile("moderate", StanceSide::kRight), 6);
  const int64_t cut = rec.truth.back().start_us + 1'000'000;
  for (auto& [placement, imu] : rec.imu) {
    std::erase_if(imu, [cut](const ImuSample& s) { return s.t_us > cut; });
  }
  std::erase_if(rec.force,
                [cut](const ForceSample& s) { return s.t_us > cut; });
  SetScorer scorer(StanceSide::kRight, SensorsOf(rec));
  const std::vector<Repetition> reps = FeedOnline(scorer, rec, 25'000, nullptr);
  EXPECT_EQ(reps.size(), rec.truth.size() - 1);
  const std::vector<Repetition> rest = scorer.FinishSet();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_TRUE(rest[0].partial);
  EXPECT_EQ(rest[0].number, 0);
  EXPECT_NEAR(rest[0].start_us, rec.truth.back().start_us, 300'000);
  EXPECT_TRUE(rest[0].knee_flexion_deg.has_value());
  EXPECT_FALSE(rest[0].rising_s.has_value());
  EXPECT_TRUE(scorer.FinishSet().empty());
}

// The same on the sacral tilt alone, with quick reps: the rep cut off is
// reported partial, and the ones before are counted once each.
TEST(MultiSensor, PartialQuickRepetitionOnTheSacralTilt) {
  Recording rec =
      WithOnlySensors(SimulateRecording(Profile("fast", StanceSide::kLeft), 6),
                      {Placement::kSacrum}, false);
  const int64_t cut = rec.truth.back().start_us + 500'000;
  StopSensorAfter(&rec, Placement::kSacrum, cut);
  SetScorer scorer(StanceSide::kLeft, SensorsOf(rec));
  const std::vector<Repetition> reps = FeedOnline(scorer, rec, 25'000, nullptr);
  EXPECT_EQ(reps.size(), rec.truth.size() - 1);
  const std::vector<Repetition> rest = scorer.FinishSet();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_TRUE(rest[0].partial);
  EXPECT_EQ(rest[0].segmented_by, "sacral tilt");
  EXPECT_NEAR(rest[0].start_us, rec.truth.back().start_us, 300'000);
}

TEST(MultiSensor, LongPauseAtTheBottomIsOneRepetition) {
  for (const char* name : {"level", "trendelenburg"}) {
    PatientProfile p = Profile(name, StanceSide::kLeft);
    p.hold_s = 3;
    p.repetitions = 6;
    const Recording rec = SimulateRecording(p, 22);
    EXPECT_EQ(ScoreRecording(rec).size(), 6u) << name;
    EXPECT_EQ(ScoreRecording(WithOnlySensors(rec, {Placement::kSacrum}, false))
                  .size(),
              6u)
        << name;
    EXPECT_EQ(ScoreRecording(WithOnlySensors(rec, {}, true)).size(), 6u)
        << name;
  }
}

// Holds of 36-54 s at the bottom, longer than the 30 s of processed samples
// kept behind segmentation: each repetition is still measured on all of its
// data (a knock on the thigh early in the lowering is reported).
TEST(MultiSensor, VeryLongHoldAtTheBottomIsMeasuredWhole) {
  PatientProfile p = Profile("trendelenburg", StanceSide::kLeft);
  p.hold_s = 45;
  p.tempo_variation = 0;
  p.repetitions = 3;
  Recording rec = SimulateRecording(p, 2);
  for (const TruthRepetition& t : rec.truth) {
    for (ImuSample& s : rec.imu[Placement::kThigh]) {
      if (s.t_us >= t.start_us + 800'000 && s.t_us < t.start_us + 820'000) {
        s.ax_mps2 = 156.9;
      }
    }
  }
  const std::vector<Repetition> reps = ScoreRecording(rec);
  ASSERT_EQ(reps.size(), rec.truth.size());
  for (size_t i = 0; i < reps.size(); ++i) {
    EXPECT_GT(reps[i].end_us - reps[i].start_us, 35'000'000);
    EXPECT_TRUE(Mentions(reps[i], "thigh IMU: accelerometer saturated")) << i;
    EXPECT_NEAR(reps[i].peak_pelvic_drop_deg,
                *rec.truth[i].peak_pelvic_drop_deg, 0.75);
  }
}

// One recording after the other, on one clock, as one set.
Recording Concatenated(Recording a, const Recording& b) {
  int64_t end = a.force.empty() ? 0 : a.force.back().t_us;
  for (const auto& [placement, samples] : a.imu) {
    end = std::max(end, samples.back().t_us);
  }
  const int64_t shift = end + 5'000 - b.imu.begin()->second.front().t_us;
  for (const auto& [placement, samples] : b.imu) {
    for (ImuSample s : samples) {
      s.t_us += shift;
      a.imu[placement].push_back(s);
    }
  }
  for (ForceSample s : b.force) {
    s.t_us += shift;
    a.force.push_back(s);
  }
  for (TruthRepetition t : b.truth) {
    t.start_us += shift;
    t.end_us += shift;
    a.truth.push_back(t);
  }
  return a;
}

// A repetition still under way after a minute is dropped, with a note on
// the next one, rather than kept growing; later ones count as usual.
TEST(MultiSensor, RepetitionUnderWayForOverAMinuteIsDropped) {
  PatientProfile p = Profile("level", StanceSide::kLeft);
  p.tempo_variation = 0;
  p.repetitions = 1;
  p.hold_s = 80;
  PatientProfile usual = p;
  usual.hold_s = 0.2;
  usual.repetitions = 3;
  // The same set goes on: no second calibration movement.
  usual.calibration_movement = false;
  // The same seed: the same sensors, strapped on the same way.
  const Recording rec =
      Concatenated(SimulateRecording(p, 2), SimulateRecording(usual, 2));
  for (const Recording& station :
       {rec, WithOnlySensors(rec, {Placement::kSacrum}, false)}) {
    SetScorer scorer(StanceSide::kLeft, SensorsOf(station));
    size_t most = 0;
    const std::vector<Repetition> reps =
        FeedOnline(scorer, station, 25'000, nullptr, &most);
    ASSERT_EQ(reps.size(), 3u);
    EXPECT_TRUE(Mentions(reps[0], "was still under way 60.00 s later"));
    EXPECT_FALSE(Mentions(reps[1], "under way"));
    for (size_t i = 0; i < reps.size(); ++i) {
      EXPECT_EQ(reps[i].number, static_cast<int>(i) + 1);
      EXPECT_NEAR(reps[i].start_us, station.truth[i + 1].start_us, 300'000);
    }
    EXPECT_LT(most, SamplesOver(station, 71)) << most;
  }
}

// Quick shallow reps (35 deg of knee flexion, 4 cm of lowering, 0.5 s
// pauses) on knee flexion.
TEST(MultiSensor, ShallowQuickRepetitionsAreFound) {
  PatientProfile p = Profile("fast", StanceSide::kRight);
  p.knee_flexion_mean_deg = 35;
  p.com_lowering_m = 0.04;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const Recording rec = SimulateRecording(p, seed);
    SetScorer scorer(StanceSide::kRight, SensorsOf(rec));
    const auto reps = FeedOnline(scorer, rec, 25'000, nullptr);
    EXPECT_EQ(reps.size(), rec.truth.size())
        << seed << absl::StrJoin(scorer.set_problems(), "; ")
        << (reps.empty() ? "" : absl::StrJoin(reps[0].problems, "; "))
        << " first " << (reps.empty() ? 0 : reps[0].start_us) << " truth "
        << rec.truth[0].start_us;
  }
}

// The "fast" profile as the validation corpus varies it (sensors up to 15
// deg tilted and 5 deg turned on their segments, every phase at 0.8-0.85 of
// its time, 42-48 deg of knee flexion with the lowering to match), counted
// from the sacral IMU alone and with the plate. In 0.35-0.5 s pauses the
// pelvis is still only briefly while it accelerated 1-4 m/s^2 in the rep
// before: the tilt segmentation follows must not take that acceleration
// for tilt, or the reps merge.
TEST(MultiSensor, QuickShallowRepetitionsOnTheSacralImuAlone) {
  int sets = 0;
  for (double tempo : {0.8, 0.85}) {
    for (double knee_deg : {42.0, 48.0}) {
      for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
        for (uint64_t seed = 1; seed <= 3; ++seed) {
          PatientProfile p = Profile("fast", side);
          p.mount_tilt_max_deg = 15;
          p.mount_heading_max_deg = 5;
          for (double* s : {&p.lower_s, &p.hold_s, &p.rise_s, &p.pause_s}) {
            *s *= tempo;
          }
          p.com_lowering_m *=
              (knee_deg - p.standing_knee_flexion_deg) /
              (p.knee_flexion_mean_deg - p.standing_knee_flexion_deg);
          p.knee_flexion_mean_deg = knee_deg;
          const Recording full = SimulateRecording(p, seed);
          for (bool plate : {false, true}) {
            const Recording rec =
                WithOnlySensors(full, {Placement::kSacrum}, plate);
            const std::string label = absl::StrFormat(
                "%s tempo %g knee %g%s", Label("fast", side, seed), tempo,
                knee_deg, plate ? " with plate" : "");
            const std::vector<Repetition> reps = ScoreRecording(rec);
            ++sets;
            ASSERT_EQ(reps.size(), rec.truth.size()) << label;
            for (size_t i = 0; i < reps.size(); ++i) {
              const Repetition& r = reps[i];
              const TruthRepetition& t = rec.truth[i];
              EXPECT_EQ(r.segmented_by, "sacral tilt") << label;
              EXPECT_EQ(r.number, static_cast<int>(i) + 1) << label;
              EXPECT_FALSE(r.partial) << label;
              EXPECT_NEAR(r.start_us, t.start_us, 300'000) << label;
              EXPECT_LE(r.end_us, t.end_us) << label;
              EXPECT_GT(r.end_us, t.end_us - 500'000) << label;
              EXPECT_LT(
                  std::abs(r.peak_pelvic_drop_deg - *t.peak_pelvic_drop_deg),
                  1.5)
                  << label << " rep " << i + 1;
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(sets, 48);
}

// Bad input: every problem is named on the repetition it touched, and the
// numbers that are given stay right.
TEST(MultiSensor, NonFiniteSamplesAreSkippedAndCounted) {
  Recording rec = SimulateRecording(Profile("moderate", StanceSide::kLeft), 2);
  const TruthRepetition& third = rec.truth[2];
  int poisoned = 0;
  for (ImuSample& s : rec.imu[Placement::kSacrum]) {
    if (s.t_us > third.start_us + 300'000 && poisoned < 3) {
      s.ay_mps2 = std::numeric_limits<double>::quiet_NaN();
      ++poisoned;
    }
  }
  for (ForceSample& s : rec.force) {
    if (s.t_us > third.start_us + 300'000 &&
        s.t_us < third.start_us + 310'000) {
      s.fz_n = std::numeric_limits<double>::infinity();
    }
  }
  const std::vector<Repetition> reps = ScoreRecording(rec);
  ASSERT_EQ(reps.size(), rec.truth.size());
  EXPECT_TRUE(Mentions(reps[2], "sacral IMU: 3 samples with NaN/Inf skipped"));
  EXPECT_TRUE(Mentions(reps[2], "force plate: 10 samples with NaN/Inf"));
  EXPECT_FALSE(Mentions(reps[3], "NaN"));
  EXPECT_NEAR(reps[2].peak_pelvic_drop_deg, *third.peak_pelvic_drop_deg, 0.75);
  EXPECT_TRUE(reps[2].cop_ml_range_mm.has_value());
}

TEST(MultiSensor, TimestampsGoingBackwardsAreIgnored) {
  Recording rec = SimulateRecording(Profile("level", StanceSide::kRight), 4);
  auto& thigh = rec.imu[Placement::kThigh];
  // A stale sample re-sent in the middle of rep 2.
  const auto it = std::find_if(thigh.begin(), thigh.end(), [&](auto& s) {
    return s.t_us > rec.truth[1].start_us + 500'000;
  });
  thigh.insert(it, *(it - 50));
  const std::vector<Repetition> reps = ScoreRecording(rec);
  ASSERT_EQ(reps.size(), rec.truth.size());
  EXPECT_TRUE(Mentions(reps[1],
                       "thigh IMU: 1 samples with timestamps going "
                       "backwards ignored"));
  EXPECT_NEAR(*reps[1].knee_flexion_deg, *rec.truth[1].knee_flexion_deg, 2);
}

// One sample dated far in the future (a corrupt timestamp) in the middle of
// a repetition, on the sensor fed first in each batch and on the plate: it
// is ignored and reported, and every later sample still counts.
TEST(MultiSensor, OneSampleFarInTheFutureIsIgnored) {
  const Recording rec =
      SimulateRecording(Profile("moderate", StanceSide::kLeft), 3);
  const TruthRepetition& third = rec.truth[2];
  auto first_after = [&](const auto& samples) {
    return std::find_if(
               samples.begin(), samples.end(),
               [&](auto& s) { return s.t_us > third.start_us + 700'000; })
        ->t_us;
  };
  const int64_t sacrum_at = first_after(rec.imu.at(Placement::kSacrum));
  const int64_t plate_at = first_after(rec.force);
  auto station_clock = [&](std::optional<Placement> sensor, int64_t t_us) {
    const bool corrupt =
        sensor ? *sensor == Placement::kSacrum && t_us == sacrum_at
               : t_us == plate_at;
    return corrupt ? t_us + 1'000'000'000'000 : t_us;
  };
  for (const Recording& station :
       {rec, WithOnlySensors(rec, {Placement::kSacrum}, false)}) {
    for (int64_t batch_us : {25'000, 500'000}) {
      SetScorer scorer(StanceSide::kLeft, SensorsOf(station));
      const std::vector<Repetition> reps = FeedOnline(
          scorer, station, batch_us, nullptr, nullptr, station_clock);
      ASSERT_EQ(reps.size(), rec.truth.size()) << batch_us;
      EXPECT_TRUE(Mentions(reps[2], "sacral IMU: 1 samples dated far ahead"));
      EXPECT_EQ(Mentions(reps[2], "force plate: 1 samples dated far ahead"),
                !station.force.empty());
      EXPECT_FALSE(Mentions(reps[3], "ahead"));
      for (size_t i = 0; i < reps.size(); ++i) {
        EXPECT_EQ(reps[i].number, static_cast<int>(i) + 1);
        EXPECT_NEAR(reps[i].peak_pelvic_drop_deg,
                    *rec.truth[i].peak_pelvic_drop_deg, 0.75);
      }
    }
  }
}

// The station rebooted in the middle of repetition 4: from then on every
// sensor's time starts again near zero. That repetition is dropped, the
// restart is reported, and the repetitions after it are counted and
// measured as before.
TEST(MultiSensor, RestartOfTheStationClockMidSetKeepsScoring) {
  const Recording rec =
      SimulateRecording(Profile("level", StanceSide::kRight), 6);
  const int64_t reboot = rec.truth[3].start_us + 1'000'000;
  const int64_t back = reboot - 1'000;
  auto station_clock = [&](std::optional<Placement>, int64_t t_us) {
    return t_us < reboot ? t_us : t_us - back;
  };
  for (const Recording& station :
       {rec, WithOnlySensors(rec, {Placement::kSacrum}, false)}) {
    std::vector<Repetition> in_25_ms;
    for (int64_t batch_us : {25'000, 500'000, 1'000'000, 2'000'000}) {
      const std::string label =
          absl::StrFormat("%d sensors, %d ms batches",
                          SensorsOf(station).imus.size(), batch_us / 1000);
      SetScorer scorer(StanceSide::kRight, SensorsOf(station));
      const std::vector<Repetition> reps = FeedOnline(
          scorer, station, batch_us, nullptr, nullptr, station_clock);
      // Every sensor moves to the new clock together, whatever the batches.
      if (in_25_ms.empty()) in_25_ms = reps;
      ExpectSameRepetitions(reps, in_25_ms, label);
      ASSERT_EQ(reps.size(), rec.truth.size() - 1) << label;
      EXPECT_TRUE(Mentions(reps[3], "station clock restarted at 0.00 s"))
          << label << absl::StrJoin(reps[3].problems, "; ");
      EXPECT_TRUE(Mentions(reps[3], "repetition under way was dropped"))
          << label;
      for (size_t i = 0; i < reps.size(); ++i) {
        const TruthRepetition& t = rec.truth[i < 3 ? i : i + 1];
        const std::string at = absl::StrFormat("%s rep %d", label, i + 1);
        EXPECT_EQ(reps[i].number, static_cast<int>(i) + 1) << at;
        EXPECT_NEAR(reps[i].start_us, station_clock({}, t.start_us), 300'000)
            << at;
        EXPECT_NEAR(reps[i].peak_pelvic_drop_deg, *t.peak_pelvic_drop_deg, 0.75)
            << at;
        if (i != 3) {
          EXPECT_TRUE(reps[i].problems.empty())
              << at << absl::StrJoin(reps[i].problems, "; ");
        }
        if (station.imu.size() > 1) {
          EXPECT_NEAR(*reps[i].knee_flexion_deg, *t.knee_flexion_deg, 3) << at;
        }
      }
    }
  }
}

// A station whose clock keeps jumping back (a fault, not a reboot): every
// restart is noted, but what waits for the next repetition stays bounded.
TEST(MultiSensor, ClockJumpingBackOverAndOverKeepsMemoryBounded) {
  const Recording rec =
      SimulateRecording(Profile("level", StanceSide::kLeft), 2);
  const std::vector<ImuSample>& sacrum = rec.imu.at(Placement::kSacrum);
  SetScorer scorer(StanceSide::kLeft);
  // Calibrated while standing.
  scorer.AddSacrumSamples(absl::MakeConstSpan(sacrum).subspan(0, 300));
  ASSERT_TRUE(scorer.calibrated());
  for (int k = 0; k < 5'000; ++k) {
    ImuSample s = sacrum[300];
    s.t_us = 1'000'000'000 - int64_t{k} * 20'000'000;
    scorer.AddSacrumSamples({&s, 1});
    s.t_us += 5'000;
    scorer.AddSacrumSamples({&s, 1});
  }
  EXPECT_LT(scorer.buffered_samples(), 100u);
}

TEST(MultiSensor, SaturationIsReported) {
  Recording rec = SimulateRecording(Profile("level", StanceSide::kLeft), 5);
  const TruthRepetition& fourth = rec.truth[3];
  for (ImuSample& s : rec.imu[Placement::kThigh]) {
    // A knock on the thigh sensor: 20 ms at the 16 g limit.
    if (s.t_us >= fourth.start_us + 400'000 &&
        s.t_us < fourth.start_us + 420'000) {
      s.ax_mps2 = 156.9;
    }
  }
  for (ImuSample& s : rec.imu[Placement::kSternum]) {
    if (s.t_us >= fourth.start_us + 400'000 &&
        s.t_us < fourth.start_us + 420'000) {
      s.gz_radps = -34.9;
    }
  }
  const std::vector<Repetition> reps = ScoreRecording(rec);
  ASSERT_EQ(reps.size(), rec.truth.size());
  EXPECT_TRUE(Mentions(reps[3], "thigh IMU: accelerometer saturated"));
  EXPECT_NEAR(*reps[3].knee_flexion_deg, *fourth.knee_flexion_deg, 2);
  EXPECT_TRUE(Mentions(reps[3], "sternal IMU: gyroscope saturated"));
  EXPECT_FALSE(reps[3].peak_trunk_lean_deg.has_value());
  EXPECT_TRUE(reps[2].peak_trunk_lean_deg.has_value());
}

TEST(MultiSensor, SensorThatStopsMidSetLosesOnlyItsMetrics) {
  Recording rec = SimulateRecording(Profile("moderate", StanceSide::kLeft), 7);
  const int64_t stop = rec.truth[4].start_us + 500'000;
  StopSensorAfter(&rec, Placement::kSternum, stop);
  SetScorer scorer(StanceSide::kLeft, SensorsOf(rec));
  std::vector<int64_t> returned_at;
  const std::vector<Repetition> reps =
      FeedOnline(scorer, rec, 25'000, &returned_at);
  ASSERT_EQ(reps.size(), rec.truth.size());
  for (size_t i = 0; i < reps.size(); ++i) {
    // By the batch whose data passes 100 ms after the rep's end.
    EXPECT_LE(returned_at[i] - 25'000, reps[i].end_us + 100'000);
    EXPECT_EQ(reps[i].peak_trunk_lean_deg.has_value(), i < 4)
        << i << absl::StrJoin(reps[i].problems, "; ");
    EXPECT_EQ(Mentions(reps[i], "sternal IMU: no data after"), i >= 4) << i;
    EXPECT_TRUE(reps[i].knee_valgus_deg.has_value());
    EXPECT_NEAR(reps[i].peak_pelvic_drop_deg,
                *rec.truth[i].peak_pelvic_drop_deg, 0.75);
  }
}

TEST(MultiSensor, SegmentationSourceThatStopsHandsOver) {
  Recording rec = SimulateRecording(Profile("level", StanceSide::kLeft), 8);
  const int64_t stop = rec.truth[5].end_us + 300'000;
  StopSensorAfter(&rec, Placement::kShank, stop);
  const std::vector<Repetition> reps = ScoreRecording(rec);
  ASSERT_EQ(reps.size(), rec.truth.size());
  EXPECT_EQ(reps[5].segmented_by, "knee flexion");
  EXPECT_EQ(reps[6].segmented_by, "sacral tilt");
  EXPECT_TRUE(Mentions(reps[6], "instead of knee flexion"));
  EXPECT_FALSE(reps[6].knee_flexion_deg.has_value());
}

// The patient stands beside the plate for a while before stepping on: the
// IMUs are steady at once, the plate only just before the first repetition.
// Every sensor gets its baseline however long the wait.
Recording PlateSteppedOnLate(double standing_s, uint64_t seed) {
  PatientProfile p = Profile("level", StanceSide::kLeft);
  p.standing_lead_s = standing_s;
  p.repetitions = 3;
  Recording rec = SimulateRecording(p, seed);
  // 2 s before the calibration movement, which starts the set.
  const int64_t on_plate =
      rec.force.front().t_us + static_cast<int64_t>((standing_s - 2) * 1e6);
  for (ForceSample& s : rec.force) {
    if (s.t_us < on_plate) s = {s.t_us, 0, NAN, NAN};
  }
  return rec;
}

TEST(MultiSensor, LongWaitForTheStandingBaselineKeepsEveryBaseline) {
  const Recording rec = PlateSteppedOnLate(15, 3);
  SetScorer scorer(StanceSide::kLeft, SensorsOf(rec));
  const std::vector<Repetition> reps = FeedOnline(scorer, rec, 25'000, nullptr);
  ASSERT_EQ(reps.size(), rec.truth.size());
  EXPECT_TRUE(scorer.set_problems().empty())
      << absl::StrJoin(scorer.set_problems(), "; ");
  for (const Repetition& r : reps) {
    EXPECT_TRUE(r.problems.empty()) << absl::StrJoin(r.problems, "; ");
    EXPECT_TRUE(r.knee_flexion_deg && r.peak_trunk_lean_deg &&
                r.cop_ml_range_mm);
  }
}

// Two minutes before the plate is stepped on: what the scorer holds stays
// bounded (its raw samples, stillness windows and the processed samples of
// the sensors calibrated early), far below what was sent.
TEST(MultiSensor, LongWaitForTheStandingBaselineKeepsMemoryBounded) {
  const Recording rec = PlateSteppedOnLate(120, 4);
  SetScorer scorer(StanceSide::kLeft, SensorsOf(rec));
  size_t most = 0;
  const std::vector<Repetition> reps =
      FeedOnline(scorer, rec, 25'000, nullptr, &most);
  ASSERT_EQ(reps.size(), rec.truth.size());
  EXPECT_TRUE(scorer.set_problems().empty())
      << absl::StrJoin(scorer.set_problems(), "; ");
  for (const Repetition& r : reps) {
    EXPECT_TRUE(r.problems.empty()) << absl::StrJoin(r.problems, "; ");
  }
  EXPECT_LT(most, SamplesOver(rec, 40)) << most;
}

// Segmentation stops (its only source, thigh and shank, lost the shank, and
// no other sensor can segment): the thigh and sternum keep sending for
// minutes, and what is kept of them stays bounded by data time.
TEST(MultiSensor, StalledSegmentationKeepsMemoryBounded) {
  PatientProfile p = Profile("level", StanceSide::kRight);
  p.repetitions = 3;
  p.standing_tail_s = 200;
  Recording rec = WithOnlySensors(
      SimulateRecording(p, 5),
      {Placement::kThigh, Placement::kShank, Placement::kSternum}, false);
  const int64_t stop = rec.truth[1].end_us + 1'000'000;
  StopSensorAfter(&rec, Placement::kShank, stop);
  SetScorer scorer(StanceSide::kRight, SensorsOf(rec));
  size_t most = 0;
  EXPECT_EQ(FeedOnline(scorer, rec, 25'000, nullptr, &most).size(), 2u);
  // At most 70 s behind the newest data of each sensor, against the 3 x 210
  // s sent.
  EXPECT_LT(most, 3 * 71 * 200u) << most;

  // A station none of whose sensors can segment (a sternal IMU alone).
  const Recording sternum = WithOnlySensors(rec, {Placement::kSternum}, false);
  SetScorer alone(StanceSide::kRight, SensorsOf(sternum));
  most = 0;
  EXPECT_TRUE(FeedOnline(alone, sternum, 25'000, nullptr, &most).empty());
  // 30 s behind the newest data, and the stillness window it was found in.
  EXPECT_LT(most, 32 * 200u) << most;
}

TEST(MultiSensor, NoStandingBaselineIsReported) {
  PatientProfile p = Profile("fast", StanceSide::kLeft);
  p.standing_lead_s = 0.3;  // starts moving at once, never still for 1 s
  p.pause_s = 0.4;
  p.standing_tail_s = 0.3;
  p.calibration_movement = false;
  const Recording rec = SimulateRecording(p, 1);
  SetScorer scorer(StanceSide::kLeft, SensorsOf(rec));
  EXPECT_TRUE(FeedOnline(scorer, rec, 25'000, nullptr).empty());
  EXPECT_FALSE(scorer.calibrated());
  const std::vector<std::string> problems = scorer.set_problems();
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems[0].find("no standing baseline yet"), std::string::npos);
}

// The prompted knee bend is not a repetition; it gives every IMU its
// heading on its segment (the simulator mounts them up to 5 deg off).
TEST(MultiSensor, CalibrationMovementIsNotCountedAndFindsHeadings) {
  PatientProfile p = Profile("trendelenburg", StanceSide::kRight);
  p.mount_heading_max_deg = 5;
  const Recording rec = SimulateRecording(p, 4);
  ASSERT_TRUE(rec.meta.calibration_movement);
  SetScorer scorer(StanceSide::kRight, SensorsOf(rec));
  EXPECT_EQ(scorer.step(), SetStep::kStandStill);
  const std::vector<Repetition> reps = FeedOnline(scorer, rec, 25'000, nullptr);
  ASSERT_EQ(reps.size(), rec.truth.size());
  EXPECT_NEAR(reps[0].start_us, rec.truth[0].start_us, 300'000);
  EXPECT_EQ(scorer.step(), SetStep::kStepDowns);
  EXPECT_EQ(scorer.headings().size(), 4u);
  for (const auto& [placement, heading_deg] : scorer.headings()) {
    EXPECT_LE(std::abs(heading_deg), 5.5) << static_cast<int>(placement);
  }
  for (const Repetition& r : reps) EXPECT_TRUE(r.knee_valgus_deg.has_value());
  EXPECT_TRUE(scorer.set_problems().empty());
}

// A set declared to begin with the knee bend whose patient went straight to
// a step-down: the plate sees the stance foot keep its load, so the
// movement counts as the first repetition and valgus is not assessed.
TEST(MultiSensor, StepDownInsteadOfCalibrationMovementStillCounts) {
  PatientProfile p = Profile("moderate", StanceSide::kLeft);
  p.calibration_movement = false;
  const Recording rec = SimulateRecording(p, 2);
  StationSensors sensors = SensorsOf(rec);
  sensors.calibration_movement = true;
  SetScorer scorer(StanceSide::kLeft, sensors);
  const std::vector<Repetition> reps = FeedOnline(scorer, rec, 25'000, nullptr);
  ASSERT_EQ(reps.size(), rec.truth.size());
  EXPECT_TRUE(Mentions(reps[0], "not the calibration movement"));
  for (const Repetition& r : reps) EXPECT_FALSE(r.knee_valgus_deg.has_value());
  EXPECT_TRUE(scorer.headings().empty());
}

PatientProfile WithWrist(PatientProfile p, double arms_use_probability) {
  p.wrist_imu = true;
  p.arms_use_probability = arms_use_probability;
  return p;
}

// Arms used for balance are found on the reps that use them and not on the
// others, over every profile, both legs, and mounts as far off as the
// recording format allows.
TEST(ArmStrategy, FoundOnTheRepsThatUseTheArms) {
  int compared = 0, agreed = 0, used = 0;
  Errors elevation;
  for (const std::string& name : AllProfileNames()) {
    for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        PatientProfile p = WithWrist(Profile(name, side), 0.5);
        p.mount_tilt_max_deg = 15;
        p.mount_heading_max_deg = 5;
        const Recording rec = SimulateRecording(p, seed);
        const std::string label = Label(name, side, seed);
        const std::vector<Repetition> reps = ScoreRecording(rec);
        ASSERT_EQ(reps.size(), rec.truth.size()) << label;
        for (size_t i = 0; i < reps.size(); ++i) {
          const Repetition& r = reps[i];
          const TruthRepetition& t = rec.truth[i];
          const std::string at = absl::StrFormat("%s rep %d", label, i + 1);
          ASSERT_TRUE(r.quality.arm_strategy && r.peak_arm_elevation_deg)
              << at << absl::StrJoin(r.problems, "; ");
          EXPECT_TRUE(r.problems.empty())
              << at << absl::StrJoin(r.problems, "; ");
          ++compared;
          used += *t.arms_used;
          const bool agrees = (*r.quality.arm_strategy == 1) == *t.arms_used;
          agreed += agrees;
          EXPECT_TRUE(agrees) << at << ": lifted " << *r.peak_arm_elevation_deg
                              << " deg, truth " << *t.peak_arm_elevation_deg;
          elevation.Add(*r.peak_arm_elevation_deg - *t.peak_arm_elevation_deg);
          // The item is in the total with the others.
          EXPECT_EQ(r.quality.total, *r.quality.arm_strategy +
                                         r.quality.trunk.value_or(0) +
                                         r.quality.pelvis.value_or(0) +
                                         r.quality.knee.value_or(0) +
                                         r.quality.stance.value_or(0))
              << at;
        }
      }
    }
  }
  std::cout << elevation.Summary("peak arm elevation deg") << "\n"
            << absl::StrFormat(
                   "arm strategy agrees with truth: %d of %d "
                   "(%d reps used the arms)\n",
                   agreed, compared, used);
  EXPECT_GE(agreed, 0.95 * compared);
  EXPECT_GT(used, compared / 4);
  EXPECT_LT(used, 3 * compared / 4);
  EXPECT_LT(elevation.rmse(), 3.0);
}

// The other metrics come from their own sensors: a wrist beside them
// changes them only by the standing window all sensors share.
TEST(ArmStrategy, WristLeavesTheOtherMetricsAlone) {
  const PatientProfile p = Profile("trendelenburg", StanceSide::kRight);
  const std::vector<Repetition> without =
      ScoreRecording(SimulateRecording(p, 2));
  const std::vector<Repetition> with =
      ScoreRecording(SimulateRecording(WithWrist(p, 0.5), 2));
  ASSERT_EQ(with.size(), without.size());
  for (size_t i = 0; i < with.size(); ++i) {
    EXPECT_NEAR(with[i].peak_pelvic_drop_deg, without[i].peak_pelvic_drop_deg,
                0.05);
    EXPECT_NEAR(*with[i].knee_valgus_deg, *without[i].knee_valgus_deg, 0.1);
    EXPECT_EQ(with[i].quality.total - with[i].quality.arm_strategy.value_or(-1),
              without[i].quality.total);
  }
}

TEST(ArmStrategy, NotAssessedWithoutAWrist) {
  // The patient uses the arms, but no sensor sees them.
  const Recording rec =
      SimulateRecording(Profile("trendelenburg", StanceSide::kLeft), 3);
  ASSERT_EQ(rec.imu.count(Placement::kWrist), 0u);
  for (const Repetition& r : ScoreRecording(rec)) {
    EXPECT_FALSE(r.quality.arm_strategy.has_value());
    EXPECT_FALSE(r.peak_arm_elevation_deg.has_value());
    EXPECT_FALSE(Mentions(r, "wrist"));
  }
}

TEST(ArmStrategy, WristThatStopsMidSetIsNotAssessedFromThenOn) {
  Recording rec = SimulateRecording(
      WithWrist(Profile("moderate", StanceSide::kLeft), 0.5), 7);
  const int64_t stop = rec.truth[4].start_us + 500'000;
  StopSensorAfter(&rec, Placement::kWrist, stop);
  SetScorer scorer(StanceSide::kLeft, SensorsOf(rec));
  std::vector<int64_t> returned_at;
  const std::vector<Repetition> reps =
      FeedOnline(scorer, rec, 25'000, &returned_at);
  ASSERT_EQ(reps.size(), rec.truth.size());
  for (size_t i = 0; i < reps.size(); ++i) {
    EXPECT_LE(returned_at[i] - 25'000, reps[i].end_us + 100'000);
    EXPECT_EQ(reps[i].quality.arm_strategy.has_value(), i < 4)
        << i << absl::StrJoin(reps[i].problems, "; ");
    EXPECT_EQ(Mentions(reps[i], "wrist IMU: no data after"), i >= 4) << i;
    EXPECT_EQ(Mentions(reps[i], "arm strategy not assessed"), i >= 4) << i;
    EXPECT_TRUE(reps[i].knee_valgus_deg.has_value());
    EXPECT_TRUE(reps[i].quality.pelvis.has_value());
  }
}

TEST(ArmStrategy, SaturatedWristGyroscopeIsReportedAndNotGuessed) {
  Recording rec = SimulateRecording(
      WithWrist(Profile("level", StanceSide::kRight), 0.5), 5);
  const TruthRepetition& fourth = rec.truth[3];
  for (ImuSample& s : rec.imu[Placement::kWrist]) {
    // The arm knocked against the step: 20 ms at the 2000 deg/s limit.
    if (s.t_us >= fourth.start_us + 400'000 &&
        s.t_us < fourth.start_us + 420'000) {
      s.gx_radps = 34.9;
    }
  }
  const std::vector<Repetition> reps = ScoreRecording(rec);
  ASSERT_EQ(reps.size(), rec.truth.size());
  EXPECT_TRUE(Mentions(reps[3], "wrist IMU: gyroscope saturated"));
  EXPECT_FALSE(reps[3].quality.arm_strategy.has_value());
  EXPECT_TRUE(reps[2].quality.arm_strategy.has_value());
}

// A wrist that is never still while the patient stands (the patient fiddles
// with the strap) gets no baseline; the rest of the station still scores.
TEST(ArmStrategy, RestlessWristHasNoBaselineAndTheRestScores) {
  Recording rec = SimulateRecording(
      WithWrist(Profile("moderate", StanceSide::kLeft), 0.5), 4);
  for (ImuSample& s : rec.imu[Placement::kWrist]) {
    const double t = s.t_us * 1e-6;
    s.gx_radps += 0.8 * std::sin(2 * std::numbers::pi * 1.3 * t);
  }
  const std::vector<Repetition> reps = ScoreRecording(rec);
  ASSERT_EQ(reps.size(), rec.truth.size());
  for (const Repetition& r : reps) {
    EXPECT_FALSE(r.quality.arm_strategy.has_value());
    EXPECT_TRUE(Mentions(r, "wrist IMU: no standing baseline"));
    EXPECT_TRUE(r.quality.pelvis.has_value());
  }
}

}  // namespace
}  // namespace stephub::scoring
