// The clinic's programming rules on hand-built histories, with exact values.
#include "hub/progress/progress.h"

#include <vector>

#include "gtest/gtest.h"

namespace stephub::progress {
namespace {

// The clinic is an hour east of UTC (a fixed zone: no tzdata needed).
const absl::TimeZone kClinic = absl::FixedTimeZone(3600);

absl::Time At(int y, int m, int d, int hh, int mm = 0) {
  return absl::FromCivil(absl::CivilMinute(y, m, d, hh, mm), kClinic);
}

RepetitionOutcome Rep(
    double drop_deg, QualityCategory category = QualityCategory::kNotAssessed) {
  return {drop_deg, std::abs(drop_deg) <= 5.0, category};
}

SetRecord Set(int64_t id, absl::Time start, std::vector<double> drops,
              StanceSide side = StanceSide::kLeft,
              std::string load = "bodyweight", int level = 2) {
  SetRecord s;
  s.set_id = id;
  s.side = side;
  s.started_at = start;
  s.ended_at = start + absl::Minutes(10);
  s.load = std::move(load);
  s.level = level;
  for (double d : drops) s.repetitions.push_back(Rep(d));
  return s;
}

TEST(SummariseSet, CountsMeansWorstAndCategories) {
  const std::vector<RepetitionOutcome> reps = {
      Rep(3.0, QualityCategory::kGood), Rep(6.5, QualityCategory::kModerate),
      Rep(-5.5, QualityCategory::kPoor), Rep(1.0)};
  const SetSummary s = SummariseSet(reps);
  EXPECT_EQ(s.repetitions, 4u);
  EXPECT_EQ(s.clean_repetitions, 2u);
  EXPECT_DOUBLE_EQ(s.clean_percent, 50.0);
  EXPECT_DOUBLE_EQ(s.mean_pelvic_drop_deg, 1.25);
  EXPECT_DOUBLE_EQ(s.worst_pelvic_drop_deg, 6.5);
  EXPECT_EQ(s.good, 1u);
  EXPECT_EQ(s.moderate, 1u);
  EXPECT_EQ(s.poor, 1u);
  EXPECT_EQ(s.not_assessed, 1u);
  EXPECT_EQ(SummariseSet({}).repetitions, 0u);
}

// Week 0 (from Monday 2 Nov 2026): Mon (two sets), Tue morning (less than
// 24 h after Monday's end), Thu, Sat: four sessions, one too soon. Week 1:
// Monday only. Week 2, holding as_of: Monday and Tuesday so far.
TEST(ComputeProgress, SessionsWeeksAndTheTwentyFourHourRule) {
  const std::vector<SetRecord> sets = {
      Set(1, At(2026, 11, 2, 9), {1}),
      Set(2, At(2026, 11, 2, 9, 30), {1}),
      Set(3, At(2026, 11, 3, 8), {1}),
      Set(4, At(2026, 11, 5, 9), {1}),
      Set(5, At(2026, 11, 7, 10), {1}),
      Set(6, At(2026, 11, 9, 9), {1}),
      Set(7, At(2026, 11, 16, 9), {1}),
      Set(8, At(2026, 11, 17, 18), {1}),
      // After as_of: not shown.
      Set(9, At(2026, 11, 20, 9), {1}),
  };
  const PatientProgress p =
      ComputeProgress(sets, At(2026, 11, 18, 12), kClinic);
  ASSERT_EQ(p.sessions.size(), 7u);
  EXPECT_EQ(p.sessions[0].set_ids, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(p.sessions[0].day, absl::CivilDay(2026, 11, 2));
  EXPECT_EQ(p.sessions[0].ended_at, At(2026, 11, 2, 9, 40));
  EXPECT_FALSE(p.sessions[0].since_previous.has_value());
  EXPECT_EQ(p.sessions[1].since_previous, absl::Hours(22) + absl::Minutes(20));
  EXPECT_TRUE(p.sessions[1].too_soon);
  EXPECT_EQ(p.sessions[2].since_previous, absl::Hours(48) + absl::Minutes(50));
  EXPECT_FALSE(p.sessions[2].too_soon);

  ASSERT_EQ(p.weeks.size(), 3u);
  EXPECT_EQ(p.weeks[0].monday, absl::CivilDay(2026, 11, 2));
  EXPECT_EQ(p.weeks[0].sessions, 4);
  EXPECT_EQ(p.weeks[0].sessions_too_soon, 1);
  EXPECT_EQ(p.weeks[0].adherence, Adherence::kOnTarget);
  EXPECT_EQ(p.weeks[1].sessions, 1);
  EXPECT_EQ(p.weeks[1].adherence, Adherence::kBelowTarget);
  EXPECT_EQ(p.weeks[2].sessions, 2);
  EXPECT_EQ(p.weeks[2].adherence, Adherence::kInProgress);
  EXPECT_EQ(p.weeks_since_start, 2);
  EXPECT_EQ(p.horizon, "week 3 of the 8-12 week programme");
}

TEST(ComputeProgress, FiveSessionsInAWeekAreAboveTarget) {
  std::vector<SetRecord> sets;
  for (int day = 2; day <= 6; ++day) {
    sets.push_back(Set(day, At(2026, 11, day, 9), {1}));
  }
  const PatientProgress p = ComputeProgress(sets, At(2026, 11, 10, 9), kClinic);
  ASSERT_EQ(p.weeks.size(), 2u);
  EXPECT_EQ(p.weeks[0].adherence, Adherence::kAboveTarget);
  EXPECT_EQ(p.weeks[1].adherence, Adherence::kInProgress);
}

TEST(ComputeProgress, DaysFollowTheClinicsZone) {
  // 23:30 UTC on Sunday is Monday 00:30 at the clinic.
  const std::vector<SetRecord> sets = {
      Set(1,
          absl::FromCivil(absl::CivilMinute(2026, 11, 8, 23, 30),
                          absl::UTCTimeZone()),
          {1})};
  const PatientProgress p = ComputeProgress(sets, At(2026, 11, 9, 12), kClinic);
  ASSERT_EQ(p.sessions.size(), 1u);
  EXPECT_EQ(p.sessions[0].day, absl::CivilDay(2026, 11, 9));
  EXPECT_EQ(p.weeks[0].monday, absl::CivilDay(2026, 11, 9));
}

TEST(ComputeProgress, PastTheHorizon) {
  const std::vector<SetRecord> sets = {Set(1, At(2026, 1, 5, 9), {1})};
  const PatientProgress p = ComputeProgress(sets, At(2026, 4, 15, 9), kClinic);
  EXPECT_EQ(p.weeks_since_start, 14);
  EXPECT_EQ(p.horizon, "week 15: past the 8-12 week programme");
}

TEST(FitTrend, SlopeAndStandardErrorOfTheSlope) {
  const std::vector<double> x = {0, 1, 2, 3};
  const std::vector<double> y = {8.0, 7.0, 5.5, 4.5};
  const Trend t = FitTrend(x, y);
  EXPECT_EQ(t.weeks, 4);
  ASSERT_TRUE(t.slope_per_week && t.slope_stderr);
  EXPECT_NEAR(*t.slope_per_week, -1.2, 1e-12);
  // Residuals -0.05, 0.15, -0.15, 0.05: sqrt(0.05 / 2 / 5).
  EXPECT_NEAR(*t.slope_stderr, std::sqrt(0.005), 1e-12);

  const Trend two =
      FitTrend(std::vector<double>{0, 2}, std::vector<double>{6, 5});
  EXPECT_NEAR(*two.slope_per_week, -0.5, 1e-12);
  EXPECT_FALSE(two.slope_stderr.has_value());
  EXPECT_FALSE(FitTrend(std::vector<double>{1}, std::vector<double>{3})
                   .slope_per_week.has_value());
}

TEST(ComputeProgress, WeeklyTrendOfDropAndCleanShare) {
  // One set a week; weekly mean drops 8, 7, 5.5, 4.5 (as above) and clean
  // shares 0, 50, 50, 100 %.
  const std::vector<SetRecord> sets = {
      Set(1, At(2026, 11, 2, 9), {8, 8}),
      Set(2, At(2026, 11, 9, 9), {10, 4}),
      Set(3, At(2026, 11, 16, 9), {7, 4}),
      Set(4, At(2026, 11, 23, 9), {4.5, 4.5}),
  };
  const PatientProgress p = ComputeProgress(sets, At(2026, 11, 24, 9), kClinic);
  ASSERT_EQ(p.sides.size(), 1u);
  const SideProgress& left = p.sides[0];
  EXPECT_EQ(left.side, StanceSide::kLeft);
  ASSERT_EQ(left.weekly.size(), 4u);
  EXPECT_DOUBLE_EQ(left.weekly[1].mean_pelvic_drop_deg, 7.0);
  EXPECT_DOUBLE_EQ(left.weekly[1].clean_percent, 50.0);
  EXPECT_NEAR(*left.pelvic_drop_trend.slope_per_week, -1.2, 1e-12);
  EXPECT_NEAR(*left.pelvic_drop_trend.slope_stderr, std::sqrt(0.005), 1e-12);
  // Clean share 0, 50, 50, 100: slope 150 / 5 = 30 points a week.
  EXPECT_NEAR(*left.clean_trend.slope_per_week, 30.0, 1e-9);
}

TEST(ComputeProgress, ReadyOnlyWhenEveryRepetitionOfTheLatestSetIsClean) {
  std::vector<SetRecord> sets = {
      Set(1, At(2026, 11, 2, 9), {1, 2, 3}, StanceSide::kLeft, "band"),
      Set(2, At(2026, 11, 4, 9), {1, 6, 2, 7.5, 3, -6, 1, 5.5, 2, 1, 0.5, 1},
          StanceSide::kLeft, "band"),
  };
  PatientProgress p = ComputeProgress(sets, At(2026, 11, 4, 12), kClinic);
  ASSERT_EQ(p.sides.size(), 1u);
  Readiness r = p.sides[0].readiness;
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.latest_set_id, 2);
  EXPECT_EQ(r.reason,
            "3 of 12 repetitions dropped > 5°; 1 of 12 repetitions hiked > 5°");
  EXPECT_EQ(r.next_step, "stay at band until every repetition is clean");

  sets.push_back(
      Set(3, At(2026, 11, 6, 9), {1, 2, 4.9, 0}, StanceSide::kLeft, "band"));
  // An empty set (ended at once) does not hide the last real one.
  sets.push_back(Set(4, At(2026, 11, 6, 10), {}, StanceSide::kLeft, "band"));
  p = ComputeProgress(sets, At(2026, 11, 6, 12), kClinic);
  r = p.sides[0].readiness;
  EXPECT_TRUE(r.ready);
  EXPECT_EQ(r.latest_set_id, 3);
  EXPECT_EQ(r.reason, "all 4 repetitions at band were clean");
  EXPECT_EQ(r.next_step, "add weight (a weighted vest or dumbbell)");
}

TEST(ComputeProgress, RepetitionsWithoutThePelvisSeenAreNotClean) {
  SetRecord set = Set(1, At(2026, 11, 2, 9), {2, 3, 1});
  set.repetitions[2] = {0, false, QualityCategory::kNotAssessed, false};
  const std::vector<SetRecord> sets = {set};
  const PatientProgress p = ComputeProgress(sets, At(2026, 11, 2, 12), kClinic);
  const Readiness& r = p.sides[0].readiness;
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.reason,
            "1 of 3 repetitions had no pelvic drop measured (no usable sacral "
            "IMU)");
  const SetSummary s = SummariseSet(set.repetitions);
  EXPECT_DOUBLE_EQ(s.mean_pelvic_drop_deg, 2.5);  // of the two measured
  EXPECT_EQ(s.clean_repetitions, 2u);
}

TEST(ComputeProgress, NextStepFollowsTheProgramme) {
  struct Case {
    std::string load;
    int level;
    std::string next;
  };
  const std::vector<Case> cases = {
      {"bodyweight", 2, "add a resistance band"},
      {"band", 2, "add weight (a weighted vest or dumbbell)"},
      {"band + 5kg vest", 2, "use a higher step"},
      {"30 cm step", 2, "stand on an unstable surface (foam pad)"},
      {"foam pad", 2,
       "move to level 3: single-leg squat to 60-80° knee flexion, hip "
       "abduction machine, hip thrust, Bulgarian split squat"},
      {"5kg vest", 3, "increase the level-3 load"},
      {"something else", 2,
       "progress the load along the programme: band, then added weight, a "
       "higher step, an unstable surface"},
  };
  for (const Case& c : cases) {
    const std::vector<SetRecord> sets = {Set(
        1, At(2026, 11, 2, 9), {1, 2}, StanceSide::kRight, c.load, c.level)};
    const PatientProgress p =
        ComputeProgress(sets, At(2026, 11, 2, 12), kClinic);
    ASSERT_EQ(p.sides.size(), 1u);
    EXPECT_TRUE(p.sides[0].readiness.ready) << c.load;
    EXPECT_EQ(p.sides[0].readiness.next_step, c.next) << c.load;
  }
}

TEST(ClassifyLoad, HighestRungNamed) {
  EXPECT_EQ(ClassifyLoad("Bodyweight"), LoadStep::kBodyweight);
  EXPECT_EQ(ClassifyLoad(""), LoadStep::kBodyweight);
  EXPECT_EQ(ClassifyLoad("red band"), LoadStep::kBand);
  EXPECT_EQ(ClassifyLoad("bodyweight + band"), LoadStep::kBand);
  EXPECT_EQ(ClassifyLoad("5 kg dumbbell"), LoadStep::kWeight);
  EXPECT_EQ(ClassifyLoad("band + 5kg vest"), LoadStep::kWeight);
  EXPECT_EQ(ClassifyLoad("25cm step, 5kg"), LoadStep::kHigherStep);
  EXPECT_EQ(ClassifyLoad("BOSU"), LoadStep::kUnstableSurface);
  EXPECT_EQ(ClassifyLoad("therapist's choice"), LoadStep::kUnknown);
}

TEST(ComputeProgress, LevelOneAddsABandAfterTwentyCleanRepetitions) {
  std::vector<double> drops(19, 1.0);
  std::vector<SetRecord> sets = {
      Set(1, At(2026, 11, 2, 9), drops, StanceSide::kLeft, "bodyweight", 1)};
  PatientProgress p = ComputeProgress(sets, At(2026, 11, 2, 12), kClinic);
  EXPECT_FALSE(p.sides[0].readiness.ready);
  EXPECT_EQ(p.sides[0].readiness.reason,
            "19 clean repetitions of 20 needed in the latest set");
  drops.push_back(1.0);
  drops.push_back(7.0);
  sets.push_back(
      Set(2, At(2026, 11, 4, 9), drops, StanceSide::kLeft, "bodyweight", 1));
  p = ComputeProgress(sets, At(2026, 11, 4, 12), kClinic);
  EXPECT_TRUE(p.sides[0].readiness.ready);
  EXPECT_EQ(p.sides[0].readiness.next_step, "add a resistance band");
}

TEST(ComputeProgress, AsymmetryWhenBothSidesAreTrained) {
  std::vector<SetRecord> sets = {
      Set(1, At(2026, 11, 2, 9), {6, 8, 4}, StanceSide::kLeft),
      Set(2, At(2026, 11, 2, 9, 20), {2, 1, 3}, StanceSide::kRight),
  };
  PatientProgress p = ComputeProgress(sets, At(2026, 11, 3, 9), kClinic);
  ASSERT_EQ(p.sides.size(), 2u);
  EXPECT_EQ(p.sides[0].side, StanceSide::kLeft);
  EXPECT_EQ(p.sides[1].side, StanceSide::kRight);
  ASSERT_TRUE(p.asymmetry.has_value());
  EXPECT_DOUBLE_EQ(p.asymmetry->left_mean_pelvic_drop_deg, 6.0);
  EXPECT_DOUBLE_EQ(p.asymmetry->right_mean_pelvic_drop_deg, 2.0);
  EXPECT_DOUBLE_EQ(p.asymmetry->pelvic_drop_difference_deg, 4.0);
  EXPECT_NEAR(p.asymmetry->left_clean_percent, 100.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(p.asymmetry->right_clean_percent, 100.0);

  // Only the recent 4 weeks count once both sides have some there.
  sets.push_back(Set(3, At(2026, 12, 14, 9), {2}, StanceSide::kLeft));
  sets.push_back(Set(4, At(2026, 12, 14, 9, 20), {1}, StanceSide::kRight));
  p = ComputeProgress(sets, At(2026, 12, 15, 9), kClinic);
  EXPECT_DOUBLE_EQ(p.asymmetry->pelvic_drop_difference_deg, 1.0);
  EXPECT_EQ(p.asymmetry->left_repetitions, 1u);

  const std::vector<SetRecord> one_side = {sets[0]};
  EXPECT_FALSE(ComputeProgress(one_side, At(2026, 11, 3, 9), kClinic)
                   .asymmetry.has_value());
}

}  // namespace
}  // namespace stephub::progress
