// Per-patient progress from scored repetitions, encoding the clinic's
// programming rules (DOMAIN.md): sets, sessions and weeks against the 3-4
// sessions a week target and the 24 h rule, trends over the 8-12 week
// programme, readiness to progress the load, and left/right asymmetry.
// Pure functions over plain structs: no storage and no protobuf.
#ifndef STEPHUB_HUB_PROGRESS_PROGRESS_H_
#define STEPHUB_HUB_PROGRESS_PROGRESS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/samples.h"

namespace stephub::progress {

enum class QualityCategory { kNotAssessed, kGood, kModerate, kPoor };

struct RepetitionOutcome {
  double peak_pelvic_drop_deg = 0;  // signed: + drop, - hike
  bool clean = false;
  QualityCategory category = QualityCategory::kNotAssessed;
  // The station saw the pelvis (a usable sacral IMU); if not, the
  // repetition is not clean and its drop (0) is left out of means.
  bool pelvis_assessed = true;
};

struct SetSummary {
  uint32_t repetitions = 0;
  uint32_t clean_repetitions = 0;
  double clean_percent = 0;  // 0 when there are no repetitions
  // Mean of the signed per-rep peaks the sacral IMU measured.
  double mean_pelvic_drop_deg = 0;
  double worst_pelvic_drop_deg = 0;  // the peak with the largest magnitude
  // How many repetitions fell in each quality category.
  uint32_t good = 0, moderate = 0, poor = 0, not_assessed = 0;
};

SetSummary SummariseSet(absl::Span<const RepetitionOutcome> repetitions);

// One set as the progress view needs it.
struct SetRecord {
  int64_t set_id = 0;
  StanceSide side = StanceSide::kLeft;
  absl::Time started_at;
  std::optional<absl::Time> ended_at;
  std::string exercise = "lateral_step_down";
  std::string load = "bodyweight";  // free text, as the therapist typed it
  int level = 2;                    // programme level 1-3
  std::vector<RepetitionOutcome> repetitions;
};

// The rungs of the load ladder a lateral step-down climbs (DOMAIN.md:
// band, added weight, higher step, unstable surface, then level 3).
enum class LoadStep {
  kBodyweight,
  kBand,
  kWeight,
  kHigherStep,
  kUnstableSurface,
  kUnknown,  // free text that names none of them
};

// The highest rung a load's free text names ("band + 5kg vest" is weight).
LoadStep ClassifyLoad(const std::string& load);
std::string LoadStepName(LoadStep step);

struct ProgressConfig {
  // A repetition whose pelvis dropped (or hiked) beyond this is not clean;
  // the same threshold scoring uses (ScoringConfig).
  double compensation_threshold_deg = 5.0;
  int sessions_per_week_min = 3;
  int sessions_per_week_max = 4;
  absl::Duration min_between_sessions = absl::Hours(24);
  int horizon_weeks_min = 8;
  int horizon_weeks_max = 12;
  // Level 1: a band is added once this many clean repetitions are done in
  // a set.
  int level1_clean_repetitions_for_band = 20;
  // Asymmetry compares each side's repetitions of this recent period.
  absl::Duration asymmetry_window = absl::Hours(24 * 28);
};

// A patient's visit: the sets started on one day in the clinic's zone.
struct Session {
  absl::CivilDay day;
  absl::Time started_at;  // its first set's start
  absl::Time ended_at;    // its last set's end (or start, if not ended)
  std::vector<int64_t> set_ids;
  std::vector<std::string> loads;  // distinct, in order of use
  std::vector<int> levels;         // distinct, in order of use
  // From the previous session's end to this one's start.
  std::optional<absl::Duration> since_previous;
  bool too_soon = false;  // since_previous < min_between_sessions
};

enum class Adherence {
  kBelowTarget,  // fewer sessions than sessions_per_week_min
  kOnTarget,
  kAboveTarget,  // more than sessions_per_week_max
  kInProgress,   // the current week, not over yet and not yet below
};

// A calendar week (Monday to Sunday, clinic zone) of the programme.
struct Week {
  int index = 0;  // 0 = the week of the first session
  absl::CivilDay monday;
  int sessions = 0;
  int sessions_too_soon = 0;
  Adherence adherence = Adherence::kBelowTarget;
};

// Least-squares slope over weekly values, with its standard error.
struct Trend {
  int weeks = 0;                         // weeks with data
  std::optional<double> slope_per_week;  // needs 2 weeks
  std::optional<double> slope_stderr;    // needs 3 weeks
};

// One week's repetitions on one side.
struct WeeklyPoint {
  int week_index = 0;
  uint32_t repetitions = 0;
  double mean_pelvic_drop_deg = 0;
  double clean_percent = 0;
};

struct Readiness {
  bool ready = false;
  // Why not, in the therapist's words ("3 of 12 repetitions dropped > 5°"),
  // or what was achieved.
  std::string reason;
  int64_t latest_set_id = 0;
  std::string current_load;
  int current_level = 0;
  std::string next_step;  // what the programme suggests next
};

struct SideProgress {
  StanceSide side = StanceSide::kLeft;
  std::vector<int64_t> set_ids;  // oldest first
  std::vector<SetSummary> sets;  // matching set_ids
  std::vector<WeeklyPoint> weekly;
  Trend pelvic_drop_trend;  // degrees per week (down is better)
  Trend clean_trend;        // percentage points per week (up is better)
  Readiness readiness;
};

// Mean pelvic drop and clean share of each side over the asymmetry window.
struct Asymmetry {
  double left_mean_pelvic_drop_deg = 0;
  double right_mean_pelvic_drop_deg = 0;
  double left_clean_percent = 0;
  double right_clean_percent = 0;
  uint32_t left_repetitions = 0;
  uint32_t right_repetitions = 0;
  // Left minus right; positive: the left stance side drops more.
  double pelvic_drop_difference_deg = 0;
};

struct PatientProgress {
  std::vector<Session> sessions;  // oldest first
  std::vector<Week> weeks;        // from the first session's week to as_of's
  int weeks_since_start = 0;      // completed weeks since the first session
  // "week 3 of the 8-12 week programme"
  std::string horizon;
  std::vector<SideProgress> sides;     // sides trained, left first
  std::optional<Asymmetry> asymmetry;  // when both sides were trained
};

// `unordered`: the patient's sets in any order; `as_of` is now (weeks after
// it are not shown, the week holding it is in progress); days and weeks are
// the clinic's, in `zone`.
PatientProgress ComputeProgress(absl::Span<const SetRecord> unordered,
                                absl::Time as_of, absl::TimeZone zone,
                                const ProgressConfig& config = {});

// Exposed for tests: ordinary least squares of y on x.
Trend FitTrend(absl::Span<const double> x, absl::Span<const double> y);

}  // namespace stephub::progress

#endif  // STEPHUB_HUB_PROGRESS_PROGRESS_H_
