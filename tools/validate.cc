// Scoring accuracy against truth: matching, statistics, bounds, reports.
#include "tools/validate.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace stephub::validate {
namespace {

int64_t Overlap(const scoring::Repetition& d, const TruthRepetition& t) {
  return std::min(d.end_us, t.end_us) - std::max(d.start_us, t.start_us);
}

// "0.637 deg" (signed: "+0.637 deg"), or "-" without data.
std::string WithUnit(const std::optional<double>& v, bool is_signed,
                     const char* unit) {
  if (!v) return "-";
  return is_signed ? absl::StrFormat("%+.3f %s", *v, unit)
                   : absl::StrFormat("%.3f %s", *v, unit);
}

std::string Csv(const std::optional<double>& v) {
  return v ? absl::StrFormat("%.3f", *v) : std::string();
}

nlohmann::ordered_json JsonOrNull(const std::optional<double>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

}  // namespace

const char* MetricName(Metric metric) {
  switch (metric) {
    case Metric::kPelvicDrop:
      return "pelvic drop";
    case Metric::kTrunkLean:
      return "trunk lean";
    case Metric::kKneeFlexion:
      return "knee flexion";
    case Metric::kKneeValgus:
      return "knee valgus";
    case Metric::kCopMlRange:
      return "COP ML range";
    case Metric::kArmElevation:
      return "arm elevation";
  }
  return "?";
}

const char* MetricUnit(Metric metric) {
  return metric == Metric::kCopMlRange ? "mm" : "deg";
}

// Detected and true repetitions name their metrics alike; the detected
// pelvic drop is a plain double, the others are optional on both sides.
template <typename Rep>
std::optional<double> MetricOf(const Rep& rep, Metric metric) {
  switch (metric) {
    case Metric::kPelvicDrop:
      if constexpr (std::is_same_v<Rep, scoring::Repetition>) {
        if (rep.verdict == scoring::Verdict::kNotAssessed) return std::nullopt;
      }
      return rep.peak_pelvic_drop_deg;
    case Metric::kTrunkLean:
      return rep.peak_trunk_lean_deg;
    case Metric::kKneeFlexion:
      return rep.knee_flexion_deg;
    case Metric::kKneeValgus:
      return rep.knee_valgus_deg;
    case Metric::kCopMlRange:
      return rep.cop_ml_range_mm;
    case Metric::kArmElevation:
      return rep.peak_arm_elevation_deg;
  }
  return std::nullopt;
}

std::optional<double> DetectedValue(const scoring::Repetition& rep,
                                    Metric metric) {
  return MetricOf(rep, metric);
}

std::optional<double> TrueValue(const TruthRepetition& rep, Metric metric) {
  return MetricOf(rep, metric);
}

std::vector<int> MatchRepetitions(
    absl::Span<const scoring::Repetition> detected,
    absl::Span<const TruthRepetition> truth) {
  // (overlap, detected, true): sorted by overlap, then by index so that ties
  // resolve the same way on every run.
  std::vector<std::tuple<int64_t, int, int>> pairs;
  for (size_t d = 0; d < detected.size(); ++d) {
    for (size_t t = 0; t < truth.size(); ++t) {
      const int64_t overlap = Overlap(detected[d], truth[t]);
      if (overlap > 0) {
        pairs.emplace_back(overlap, static_cast<int>(d), static_cast<int>(t));
      }
    }
  }
  std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) {
    if (std::get<0>(a) != std::get<0>(b))
      return std::get<0>(a) > std::get<0>(b);
    return std::make_pair(std::get<1>(a), std::get<2>(a)) <
           std::make_pair(std::get<1>(b), std::get<2>(b));
  });
  std::vector<int> match(detected.size(), -1);
  std::vector<bool> taken(truth.size(), false);
  for (const auto& [overlap, d, t] : pairs) {
    if (match[d] != -1 || taken[t]) continue;
    match[d] = t;
    taken[t] = true;
  }
  return match;
}

scoring::QualityItems TrueQuality(const scoring::Repetition& detected,
                                  const TruthRepetition& truth,
                                  const scoring::ScoringConfig& config) {
  const scoring::QualityItems& seen = detected.quality;
  scoring::QualityInputs in;
  if (seen.pelvis) {
    in.peak_pelvic_drop_deg =
        truth.peak_pelvic_drop_deg.value_or(detected.peak_pelvic_drop_deg);
  }
  if (seen.trunk) {
    in.peak_trunk_lean_deg = truth.peak_trunk_lean_deg
                                 ? truth.peak_trunk_lean_deg
                                 : detected.peak_trunk_lean_deg;
  }
  if (seen.knee) {
    in.knee_valgus_deg = truth.knee_valgus_deg ? truth.knee_valgus_deg
                                               : detected.knee_valgus_deg;
  }
  if (seen.stance) {
    in.cop_ml_range_mm = truth.cop_ml_range_mm ? truth.cop_ml_range_mm
                                               : detected.cop_ml_range_mm;
    in.free_foot_load_fraction = detected.free_foot_load_fraction;
  }
  if (seen.arm_strategy) {
    in.arms_used = truth.arms_used.value_or(*seen.arm_strategy > 0);
  }
  scoring::QualityItems items = scoring::ScoreQuality(in, config);
  // An item assessed from an input the scorer did not expose (e.g. a stance
  // item from a signal without a metric field) keeps the detected points.
  if (seen.stance && !in.cop_ml_range_mm && !in.free_foot_load_fraction) {
    items.stance = seen.stance;
  }
  if (seen.trunk && !in.peak_trunk_lean_deg) items.trunk = seen.trunk;
  if (seen.knee && !in.knee_valgus_deg) items.knee = seen.knee;
  items.total = 0;
  for (const auto& item : {items.arm_strategy, items.trunk, items.pelvis,
                           items.knee, items.stance}) {
    items.total += item.value_or(0);
  }
  items.category = scoring::CategoryOfTotal(items.total);
  return items;
}

void ErrorStats::Add(double error) {
  ++count_;
  sum_ += error;
  sum_squares_ += error * error;
}

void ErrorStats::Merge(const ErrorStats& other) {
  count_ += other.count_;
  sum_ += other.sum_;
  sum_squares_ += other.sum_squares_;
}

std::optional<double> ErrorStats::rmse() const {
  if (count_ == 0) return std::nullopt;
  return std::sqrt(sum_squares_ / count_);
}

std::optional<double> ErrorStats::bias() const {
  if (count_ == 0) return std::nullopt;
  return sum_ / count_;
}

int RecordingResult::reps_matched() const {
  return static_cast<int>(
      std::count_if(match.begin(), match.end(), [](int t) { return t >= 0; }));
}

RecordingResult EvaluateRecording(std::string name, const Recording& recording,
                                  const scoring::ScoringConfig& config) {
  RecordingResult r;
  r.name = std::move(name);
  r.detected = scoring::ScoreRecording(recording, config);
  r.truth = recording.truth;
  r.has_truth = !recording.truth.empty();
  if (!r.has_truth) return r;
  r.match = MatchRepetitions(r.detected, r.truth);
  for (size_t d = 0; d < r.detected.size(); ++d) {
    if (r.match[d] < 0) continue;
    const scoring::Repetition& found = r.detected[d];
    const TruthRepetition& truth = r.truth[r.match[d]];
    for (Metric m : kAllMetrics) {
      MetricStats& stats = r.metrics[static_cast<int>(m)];
      const auto detected_value = DetectedValue(found, m);
      const auto true_value = TrueValue(truth, m);
      if (detected_value && true_value) {
        stats.errors.Add(*detected_value - *true_value);
      } else {
        ++stats.not_assessed;
      }
    }
    ++r.category_compared;
    if (TrueQuality(found, truth, config).category == found.quality.category) {
      ++r.category_agreed;
    }
    if (found.quality.arm_strategy && truth.arms_used) {
      ++r.arm_strategy_compared;
      if ((*found.quality.arm_strategy > 0) == *truth.arms_used) {
        ++r.arm_strategy_agreed;
      }
    }
  }
  return r;
}

RecordingResult FailedRecording(std::string name, std::string error) {
  RecordingResult r;
  r.name = std::move(name);
  r.error = std::move(error);
  return r;
}

std::optional<double> Summary::rep_count_exact_fraction() const {
  if (recordings == 0) return std::nullopt;
  return static_cast<double>(recordings_count_exact) / recordings;
}

std::optional<double> Summary::category_agreement() const {
  if (category_compared == 0) return std::nullopt;
  return static_cast<double>(category_agreed) / category_compared;
}

std::optional<double> Summary::arm_strategy_agreement() const {
  if (arm_strategy_compared == 0) return std::nullopt;
  return static_cast<double>(arm_strategy_agreed) / arm_strategy_compared;
}

Summary Summarize(absl::Span<const RecordingResult> results) {
  Summary s;
  for (const RecordingResult& r : results) {
    if (!r.error.empty()) {
      ++s.recordings_failed;
      continue;
    }
    if (!r.has_truth) {
      ++s.recordings_without_truth;
      continue;
    }
    ++s.recordings;
    if (r.count_exact()) ++s.recordings_count_exact;
    s.reps_true += static_cast<int>(r.truth.size());
    s.reps_found += static_cast<int>(r.detected.size());
    s.reps_matched += r.reps_matched();
    for (int m = 0; m < kMetricCount; ++m) {
      s.metrics[m].errors.Merge(r.metrics[m].errors);
      s.metrics[m].not_assessed += r.metrics[m].not_assessed;
    }
    s.category_compared += r.category_compared;
    s.category_agreed += r.category_agreed;
    s.arm_strategy_compared += r.arm_strategy_compared;
    s.arm_strategy_agreed += r.arm_strategy_agreed;
  }
  return s;
}

std::vector<BoundCheck> CheckBounds(const Summary& summary,
                                    const Bounds& bounds) {
  std::vector<BoundCheck> checks;
  // `value` must not exceed `limit` (or, with at_least, fall below it).
  auto add = [&](std::string what, std::optional<double> value, double limit,
                 bool at_least, const char* unit, bool percent) {
    BoundCheck c;
    c.what = std::move(what);
    c.limit = percent ? absl::StrFormat("%s %.1f %%",
                                        at_least ? ">=" : "<=", 100 * limit)
                      : absl::StrFormat("%s %.2f %s",
                                        at_least ? ">=" : "<=", limit, unit);
    c.value = value;
    c.fraction = percent;
    if (!value) {
      c.outcome = BoundOutcome::kNoData;
    } else {
      const bool met = at_least ? *value >= limit : *value <= limit;
      c.outcome = met ? BoundOutcome::kMet : BoundOutcome::kMissed;
    }
    checks.push_back(std::move(c));
  };
  const ErrorStats& drop = summary.of(Metric::kPelvicDrop).errors;
  add("pelvic drop RMSE", drop.rmse(), bounds.pelvic_drop_rmse_deg, false,
      "deg", false);
  std::optional<double> abs_bias;
  if (drop.bias()) abs_bias = std::abs(*drop.bias());
  add("pelvic drop |bias|", abs_bias, bounds.pelvic_drop_abs_bias_deg, false,
      "deg", false);
  add("trunk lean RMSE", summary.of(Metric::kTrunkLean).errors.rmse(),
      bounds.trunk_lean_rmse_deg, false, "deg", false);
  add("knee valgus RMSE", summary.of(Metric::kKneeValgus).errors.rmse(),
      bounds.knee_valgus_rmse_deg, false, "deg", false);
  add("rep count exact", summary.rep_count_exact_fraction(),
      bounds.rep_count_exact_min, true, "", true);
  add("category agreement", summary.category_agreement(),
      bounds.category_agreement_min, true, "", true);
  add("arm strategy agreement", summary.arm_strategy_agreement(),
      bounds.arm_strategy_agreement_min, true, "", true);
  return checks;
}

bool AnyBoundMissed(absl::Span<const BoundCheck> checks) {
  return std::any_of(checks.begin(), checks.end(), [](const BoundCheck& c) {
    return c.outcome == BoundOutcome::kMissed;
  });
}

std::string FormatReport(absl::Span<const RecordingResult> results,
                         const Summary& summary,
                         absl::Span<const BoundCheck> checks) {
  std::string out;
  // Counts first, the (long, parameter-laden) folder name last: the columns
  // stay aligned whatever the names.
  absl::StrAppendFormat(&out, "%5s %5s %7s %10s  %s\n", "true", "found",
                        "matched", "drop RMSE", "recording");
  for (const RecordingResult& r : results) {
    if (!r.error.empty()) {
      absl::StrAppendFormat(&out, "%5s %5s %7s %10s  %s  UNREADABLE: %s\n", "-",
                            "-", "-", "-", r.name, r.error);
    } else if (!r.has_truth) {
      absl::StrAppendFormat(&out,
                            "%5s %5d %7s %10s  %s  no truth.csv: scored only\n",
                            "-", r.detected.size(), "-", "-", r.name);
    } else {
      const auto drop_rmse =
          r.metrics[static_cast<int>(Metric::kPelvicDrop)].errors.rmse();
      absl::StrAppendFormat(&out, "%5d %5d %7d %10s  %s%s\n", r.truth.size(),
                            r.detected.size(), r.reps_matched(),
                            WithUnit(drop_rmse, false, "deg"), r.name,
                            r.count_exact() ? "" : "  REP COUNT DIFFERS");
    }
  }
  absl::StrAppendFormat(
      &out,
      "\n%d recording(s) compared with truth, %d scored without truth, %d "
      "unreadable\nrepetitions: %d true, %d found, %d matched\n\n",
      summary.recordings, summary.recordings_without_truth,
      summary.recordings_failed, summary.reps_true, summary.reps_found,
      summary.reps_matched);
  absl::StrAppendFormat(&out, "%-14s %6s %10s %10s %14s\n", "metric", "n",
                        "RMSE", "bias", "not assessed");
  for (Metric m : kAllMetrics) {
    const MetricStats& stats = summary.of(m);
    absl::StrAppendFormat(
        &out, "%-14s %6d %10s %10s %14d\n", MetricName(m), stats.errors.count(),
        WithUnit(stats.errors.rmse(), false, MetricUnit(m)),
        WithUnit(stats.errors.bias(), true, MetricUnit(m)), stats.not_assessed);
  }
  absl::StrAppendFormat(
      &out, "%-14s %s\n%-14s %s (%d of %d matched reps)\n", "rep count",
      summary.rep_count_exact_fraction()
          ? absl::StrFormat("exact in %.1f %% of recordings",
                            100 * *summary.rep_count_exact_fraction())
          : std::string("-"),
      "category",
      summary.category_agreement()
          ? absl::StrFormat("agrees in %.1f %%",
                            100 * *summary.category_agreement())
          : std::string("-"),
      summary.category_agreed, summary.category_compared);
  absl::StrAppendFormat(
      &out,
      "%-14s %s (%d of %d matched reps with a wrist IMU and arm truth)\n\n",
      "arm strategy",
      summary.arm_strategy_agreement()
          ? absl::StrFormat("agrees in %.1f %%",
                            100 * *summary.arm_strategy_agreement())
          : std::string("-"),
      summary.arm_strategy_agreed, summary.arm_strategy_compared);
  for (const BoundCheck& c : checks) {
    std::string value = "-";
    if (c.value) {
      value = c.fraction ? absl::StrFormat("%.1f %%", 100 * *c.value)
                         : absl::StrFormat("%.3f", *c.value);
    }
    const char* outcome = c.outcome == BoundOutcome::kMet ? "ok"
                          : c.outcome == BoundOutcome::kMissed
                              ? "MISSED"
                              : "not checked: no data";
    absl::StrAppendFormat(&out, "bound %-22s %-12s %10s  %s\n", c.what, c.limit,
                          value, outcome);
  }
  return out;
}

std::string FormatSummaryJson(const Summary& summary) {
  // Ordered: the keys come out in the documented order.
  nlohmann::ordered_json j;
  j["recordings"] = summary.recordings;
  j["reps_true"] = summary.reps_true;
  j["reps_found"] = summary.reps_found;
  j["rep_count_exact_fraction"] =
      JsonOrNull(summary.rep_count_exact_fraction());
  j["pelvic_drop_rmse_deg"] =
      JsonOrNull(summary.of(Metric::kPelvicDrop).errors.rmse());
  j["pelvic_drop_bias_deg"] =
      JsonOrNull(summary.of(Metric::kPelvicDrop).errors.bias());
  j["trunk_lean_rmse_deg"] =
      JsonOrNull(summary.of(Metric::kTrunkLean).errors.rmse());
  j["knee_flexion_rmse_deg"] =
      JsonOrNull(summary.of(Metric::kKneeFlexion).errors.rmse());
  j["knee_valgus_rmse_deg"] =
      JsonOrNull(summary.of(Metric::kKneeValgus).errors.rmse());
  j["category_agreement"] = JsonOrNull(summary.category_agreement());
  // Added with the wrist IMU; null without one (and arm truth).
  j["arm_elevation_rmse_deg"] =
      JsonOrNull(summary.of(Metric::kArmElevation).errors.rmse());
  j["arm_strategy_compared"] = summary.arm_strategy_compared;
  j["arm_strategy_agreement"] = JsonOrNull(summary.arm_strategy_agreement());
  return j.dump() + "\n";
}

std::string FormatRepsCsv(absl::Span<const RecordingResult> results) {
  std::string out =
      "recording,rep,start_us,end_us,peak_pelvic_drop_deg,peak_trunk_lean_deg,"
      "knee_flexion_deg,knee_valgus_deg,cop_ml_range_mm,quality_total,"
      "category,clean\n";
  for (const RecordingResult& r : results) {
    for (const scoring::Repetition& rep : r.detected) {
      absl::StrAppend(&out, r.name, ",", rep.number, ",", rep.start_us, ",",
                      rep.end_us, ",", Csv(MetricOf(rep, Metric::kPelvicDrop)),
                      ",", Csv(rep.peak_trunk_lean_deg), ",",
                      Csv(rep.knee_flexion_deg), ",", Csv(rep.knee_valgus_deg),
                      ",", Csv(rep.cop_ml_range_mm), ",", rep.quality.total,
                      ",", scoring::QualityCategoryName(rep.quality.category),
                      ",",
                      // As the hub stores it: clean means no pelvic
                      // compensation; empty where the pelvis was not seen.
                      rep.verdict == scoring::Verdict::kNotAssessed ? ""
                      : rep.verdict == scoring::Verdict::kClean     ? "1"
                                                                    : "0",
                      "\n");
    }
  }
  return out;
}

}  // namespace stephub::validate
