// Accuracy validation of the hub's scoring against recordings with known
// truth (issue 4): repetition matching, error statistics, bounds and the
// report formats, as pure functions; tools/validate_main.cc does the I/O.
#ifndef STEPHUB_TOOLS_VALIDATE_H_
#define STEPHUB_TOOLS_VALIDATE_H_

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "common/recording.h"
#include "hub/scoring/scoring.h"

namespace stephub::validate {

// The per-repetition metrics compared with truth.csv (and, for the arm,
// with our truth_arms.csv).
enum class Metric {
  kPelvicDrop,
  kTrunkLean,
  kKneeFlexion,
  kKneeValgus,
  kCopMlRange,
  kArmElevation,
};
inline constexpr int kMetricCount = 6;
inline constexpr std::array<Metric, kMetricCount> kAllMetrics = {
    Metric::kPelvicDrop, Metric::kTrunkLean,  Metric::kKneeFlexion,
    Metric::kKneeValgus, Metric::kCopMlRange, Metric::kArmElevation};

const char* MetricName(Metric metric);  // "pelvic drop", ...
const char* MetricUnit(Metric metric);  // "deg" or "mm"
// nullopt: the scorer did not assess it / the truth column is empty.
std::optional<double> DetectedValue(const scoring::Repetition& rep,
                                    Metric metric);
std::optional<double> TrueValue(const TruthRepetition& rep, Metric metric);

// Matches detected to true repetitions by time overlap: pairs are taken in
// order of decreasing overlap, each detected and each true repetition at
// most once, so one long detection cannot claim two true reps. Returns, for
// every detected repetition, the index of its true repetition or -1.
std::vector<int> MatchRepetitions(
    absl::Span<const scoring::Repetition> detected,
    absl::Span<const TruthRepetition> truth);

// The quality scale applied to the true metrics of `truth`, over exactly the
// items `detected` assessed (an item the station did not see is left out on
// both sides). Arms used come from truth_arms.csv where the recording has
// it. Inputs without truth (free-foot load, arms without truth_arms.csv, an
// empty column) take the detected value, so that they can neither cause nor
// hide a disagreement.
scoring::QualityItems TrueQuality(const scoring::Repetition& detected,
                                  const TruthRepetition& truth,
                                  const scoring::ScoringConfig& config);

// Error statistics of detected - true.
class ErrorStats {
 public:
  void Add(double error);
  void Merge(const ErrorStats& other);
  int count() const { return count_; }
  std::optional<double> rmse() const;  // nullopt without data
  std::optional<double> bias() const;  // mean error; nullopt without data

 private:
  int count_ = 0;
  double sum_ = 0;
  double sum_squares_ = 0;
};

struct MetricStats {
  ErrorStats errors;
  // Matched repetitions where the scorer or the truth had no value.
  int not_assessed = 0;
};

// One recording, scored and (when it has truth) compared.
struct RecordingResult {
  std::string name;   // the recording folder's name
  std::string error;  // non-empty: it could not be read; nothing else is set
  bool has_truth = false;
  std::vector<scoring::Repetition> detected;
  std::vector<TruthRepetition> truth;
  std::vector<int> match;  // per detected repetition, see MatchRepetitions
  std::array<MetricStats, kMetricCount> metrics;
  int category_compared = 0;
  int category_agreed = 0;
  // Matched reps with both a detected arm strategy item and arm truth.
  int arm_strategy_compared = 0;
  int arm_strategy_agreed = 0;

  int reps_matched() const;
  bool count_exact() const { return detected.size() == truth.size(); }
};

// Scores `recording` with scoring::ScoreRecording (the hub's own code) and
// compares it with its truth, if any.
RecordingResult EvaluateRecording(std::string name, const Recording& recording,
                                  const scoring::ScoringConfig& config);
RecordingResult FailedRecording(std::string name, std::string error);

// Totals over the recordings that have truth (recordings without truth and
// unreadable ones are counted apart).
struct Summary {
  int recordings = 0;  // compared against truth
  int recordings_without_truth = 0;
  int recordings_failed = 0;
  int recordings_count_exact = 0;
  int reps_true = 0;
  int reps_found = 0;
  int reps_matched = 0;
  std::array<MetricStats, kMetricCount> metrics;
  int category_compared = 0;
  int category_agreed = 0;
  int arm_strategy_compared = 0;
  int arm_strategy_agreed = 0;

  const MetricStats& of(Metric metric) const {
    return metrics[static_cast<int>(metric)];
  }
  std::optional<double> rep_count_exact_fraction() const;
  std::optional<double> category_agreement() const;
  // Share of compared reps whose arm strategy item (0/1) equals the truth's
  // arms used; nullopt without a wrist IMU and arm truth.
  std::optional<double> arm_strategy_agreement() const;
};

Summary Summarize(absl::Span<const RecordingResult> results);

// Acceptance bounds of issue 4 (the defaults) or overrides.
struct Bounds {
  double pelvic_drop_rmse_deg = 1.0;
  double pelvic_drop_abs_bias_deg = 0.3;
  double trunk_lean_rmse_deg = 2.0;
  double knee_valgus_rmse_deg = 2.0;
  double rep_count_exact_min = 0.99;
  double category_agreement_min = 0.95;
  // Ours, for the wrist IMU's arm strategy item (not checked without it).
  double arm_strategy_agreement_min = 0.95;
};

enum class BoundOutcome { kMet, kMissed, kNoData };

struct BoundCheck {
  std::string what;   // "pelvic drop RMSE"
  std::string limit;  // "<= 1.00 deg"
  std::optional<double> value;
  bool fraction = false;  // value is a fraction, shown in percent
  BoundOutcome outcome = BoundOutcome::kNoData;
};

std::vector<BoundCheck> CheckBounds(const Summary& summary,
                                    const Bounds& bounds);
// A bound without data is not checked, so it does not fail the run.
bool AnyBoundMissed(absl::Span<const BoundCheck> checks);

// The human-readable report: one line per recording, the metric table and
// the bounds.
std::string FormatReport(absl::Span<const RecordingResult> results,
                         const Summary& summary,
                         absl::Span<const BoundCheck> checks);
// One JSON object (keys in ACCURACY.md); null where there is no data.
std::string FormatSummaryJson(const Summary& summary);
// Every detected repetition of every readable recording, one CSV row each.
std::string FormatRepsCsv(absl::Span<const RecordingResult> results);

}  // namespace stephub::validate

#endif  // STEPHUB_TOOLS_VALIDATE_H_
