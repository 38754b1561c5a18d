// Progress views from scored sets; see progress.h.
#include "hub/progress/progress.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace stephub::progress {
namespace {

absl::CivilDay MondayOf(absl::CivilDay day) {
  // absl::Weekday counts from Monday = 0.
  return day - static_cast<int>(absl::GetWeekday(day));
}

absl::CivilDay DayOf(absl::Time t, absl::TimeZone zone) {
  return absl::ToCivilDay(t, zone);
}

int WeekIndex(absl::CivilDay first_monday, absl::CivilDay day) {
  return static_cast<int>((MondayOf(day) - first_monday) / 7);
}

absl::Time EndOf(const SetRecord& set) {
  return set.ended_at.value_or(set.started_at);
}

std::string Degrees(double deg) { return absl::StrFormat("%g°", deg); }

// The clinic's words for the rung after `step` on a level-2 step-down.
std::string NextRung(LoadStep step) {
  switch (step) {
    case LoadStep::kBodyweight:
      return "add a resistance band";
    case LoadStep::kBand:
      return "add weight (a weighted vest or dumbbell)";
    case LoadStep::kWeight:
      return "use a higher step";
    case LoadStep::kHigherStep:
      return "stand on an unstable surface (foam pad)";
    case LoadStep::kUnstableSurface:
      return "move to level 3: single-leg squat to 60-80° knee flexion, hip "
             "abduction machine, hip thrust, Bulgarian split squat";
    case LoadStep::kUnknown:
      break;
  }
  return "progress the load along the programme: band, then added weight, a "
         "higher step, an unstable surface";
}

Readiness ReadinessOf(const SetRecord& set, const SetSummary& summary,
                      const ProgressConfig& config) {
  Readiness r;
  r.latest_set_id = set.set_id;
  r.current_load = set.load;
  r.current_level = set.level;
  const LoadStep step = ClassifyLoad(set.load);
  if (set.level <= 1) {
    const auto needed =
        static_cast<uint32_t>(config.level1_clean_repetitions_for_band);
    r.ready = summary.clean_repetitions >= needed;
    r.reason = absl::StrCat(summary.clean_repetitions, " clean repetitions of ",
                            needed, " needed in the latest set");
    if (!r.ready) {
      r.next_step = absl::StrCat("stay at ", set.load, " until ", needed,
                                 " clean repetitions are done");
    } else if (step == LoadStep::kBodyweight) {
      r.next_step = "add a resistance band";
    } else {
      r.next_step = "move to level 2: lateral band walk and lateral step-down";
    }
    return r;
  }
  // Levels 2 and 3: only when every repetition is free of compensation.
  int dropped = 0, hiked = 0, unseen = 0;
  for (const RepetitionOutcome& rep : set.repetitions) {
    if (rep.clean) continue;
    if (!rep.pelvis_assessed) {
      ++unseen;
      continue;
    }
    if (rep.peak_pelvic_drop_deg > config.compensation_threshold_deg) {
      ++dropped;
    } else if (rep.peak_pelvic_drop_deg < -config.compensation_threshold_deg) {
      ++hiked;
    }
  }
  const uint32_t n = summary.repetitions;
  r.ready = summary.clean_repetitions == n;
  if (r.ready) {
    r.reason =
        absl::StrCat("all ", n, " repetitions at ", set.load, " were clean");
    r.next_step = set.level >= 3 ? "increase the level-3 load" : NextRung(step);
    return r;
  }
  std::vector<std::string> faults;
  const std::string threshold = Degrees(config.compensation_threshold_deg);
  if (dropped > 0) {
    faults.push_back(
        absl::StrCat(dropped, " of ", n, " repetitions dropped > ", threshold));
  }
  if (hiked > 0) {
    faults.push_back(
        absl::StrCat(hiked, " of ", n, " repetitions hiked > ", threshold));
  }
  if (unseen > 0) {
    faults.push_back(absl::StrCat(
        unseen, " of ", n,
        " repetitions had no pelvic drop measured (no usable sacral IMU)"));
  }
  const int other = static_cast<int>(n - summary.clean_repetitions) - dropped -
                    hiked - unseen;
  if (other > 0) {
    faults.push_back(
        absl::StrCat(other, " of ", n, " repetitions were not clean"));
  }
  r.reason = absl::StrJoin(faults, "; ");
  r.next_step =
      absl::StrCat("stay at ", set.load, " until every repetition is clean");
  return r;
}

// Repetitions pooled over several sets.
struct Pool {
  void Add(const SetRecord& set) {
    for (const RepetitionOutcome& rep : set.repetitions) {
      ++n;
      clean += rep.clean;
      if (!rep.pelvis_assessed) continue;
      ++measured;
      drop_sum += rep.peak_pelvic_drop_deg;
    }
  }
  double MeanDrop() const { return measured == 0 ? 0 : drop_sum / measured; }
  double CleanPercent() const { return n == 0 ? 0 : 100.0 * clean / n; }
  uint32_t n = 0, clean = 0, measured = 0;
  double drop_sum = 0;
};

}  // namespace

SetSummary SummariseSet(absl::Span<const RepetitionOutcome> repetitions) {
  SetSummary summary;
  if (repetitions.empty()) return summary;
  double sum = 0;
  int measured = 0;
  for (const RepetitionOutcome& rep : repetitions) {
    ++summary.repetitions;
    if (rep.clean) ++summary.clean_repetitions;
    if (rep.pelvis_assessed) {
      sum += rep.peak_pelvic_drop_deg;
      ++measured;
    }
    if (std::abs(rep.peak_pelvic_drop_deg) >
        std::abs(summary.worst_pelvic_drop_deg)) {
      summary.worst_pelvic_drop_deg = rep.peak_pelvic_drop_deg;
    }
    switch (rep.category) {
      case QualityCategory::kGood:
        ++summary.good;
        break;
      case QualityCategory::kModerate:
        ++summary.moderate;
        break;
      case QualityCategory::kPoor:
        ++summary.poor;
        break;
      case QualityCategory::kNotAssessed:
        ++summary.not_assessed;
        break;
    }
  }
  summary.mean_pelvic_drop_deg = measured == 0 ? 0 : sum / measured;
  summary.clean_percent =
      100.0 * summary.clean_repetitions / summary.repetitions;
  return summary;
}

LoadStep ClassifyLoad(const std::string& load) {
  std::string text = absl::AsciiStrToLower(load);
  // "bodyweight" names no added weight.
  const int bodyweight =
      absl::StrReplaceAll({{"bodyweight", " "}, {"body weight", " "}}, &text);
  auto any = [&text](std::initializer_list<const char*> words) {
    return std::any_of(words.begin(), words.end(), [&](const char* w) {
      return absl::StrContains(text, w);
    });
  };
  if (any({"unstable", "foam", "wobble", "bosu", "balance pad", "cushion"})) {
    return LoadStep::kUnstableSurface;
  }
  if (any({"step", "box"})) return LoadStep::kHigherStep;
  if (any({"kg", "lb", "vest", "weight", "dumbbell", "kettlebell"})) {
    return LoadStep::kWeight;
  }
  if (any({"band"})) return LoadStep::kBand;
  if (bodyweight > 0 || absl::StripAsciiWhitespace(text).empty() ||
      any({"none"})) {
    return LoadStep::kBodyweight;
  }
  return LoadStep::kUnknown;
}

std::string LoadStepName(LoadStep step) {
  switch (step) {
    case LoadStep::kBodyweight:
      return "bodyweight";
    case LoadStep::kBand:
      return "band";
    case LoadStep::kWeight:
      return "added weight";
    case LoadStep::kHigherStep:
      return "higher step";
    case LoadStep::kUnstableSurface:
      return "unstable surface";
    case LoadStep::kUnknown:
      break;
  }
  return "unrecognised load";
}

Trend FitTrend(absl::Span<const double> x, absl::Span<const double> y) {
  Trend t;
  const size_t n = std::min(x.size(), y.size());
  t.weeks = static_cast<int>(n);
  if (n < 2) return t;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  double sxx = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    sxy += (x[i] - mx) * (y[i] - my);
  }
  if (sxx == 0) return t;
  const double slope = sxy / sxx;
  t.slope_per_week = slope;
  if (n < 3) return t;
  double ssr = 0;
  for (size_t i = 0; i < n; ++i) {
    const double residual = y[i] - (my + slope * (x[i] - mx));
    ssr += residual * residual;
  }
  t.slope_stderr = std::sqrt(ssr / static_cast<double>(n - 2) / sxx);
  return t;
}

PatientProgress ComputeProgress(absl::Span<const SetRecord> unordered,
                                absl::Time as_of, absl::TimeZone zone,
                                const ProgressConfig& config) {
  PatientProgress out;
  std::vector<const SetRecord*> sets;
  for (const SetRecord& s : unordered) {
    if (s.started_at <= as_of) sets.push_back(&s);
  }
  std::stable_sort(sets.begin(), sets.end(), [](auto* a, auto* b) {
    return a->started_at < b->started_at;
  });
  if (sets.empty()) return out;

  // Sessions: the sets of one clinic day.
  for (const SetRecord* set : sets) {
    const absl::CivilDay day = DayOf(set->started_at, zone);
    if (out.sessions.empty() || out.sessions.back().day != day) {
      Session session;
      session.day = day;
      session.started_at = set->started_at;
      session.ended_at = EndOf(*set);
      if (!out.sessions.empty()) {
        session.since_previous = set->started_at - out.sessions.back().ended_at;
        session.too_soon =
            *session.since_previous < config.min_between_sessions;
      }
      out.sessions.push_back(std::move(session));
    }
    Session& session = out.sessions.back();
    session.set_ids.push_back(set->set_id);
    session.ended_at = std::max(session.ended_at, EndOf(*set));
    if (std::find(session.loads.begin(), session.loads.end(), set->load) ==
        session.loads.end()) {
      session.loads.push_back(set->load);
    }
    if (std::find(session.levels.begin(), session.levels.end(), set->level) ==
        session.levels.end()) {
      session.levels.push_back(set->level);
    }
  }

  // Weeks, from the first session's to the one holding as_of.
  const absl::CivilDay first_monday = MondayOf(out.sessions.front().day);
  const absl::CivilDay today = DayOf(as_of, zone);
  const int current_week = WeekIndex(first_monday, today);
  for (int i = 0; i <= current_week; ++i) {
    Week week;
    week.index = i;
    week.monday = first_monday + 7 * static_cast<absl::civil_diff_t>(i);
    out.weeks.push_back(week);
  }
  for (const Session& session : out.sessions) {
    Week& week = out.weeks[WeekIndex(first_monday, session.day)];
    ++week.sessions;
    week.sessions_too_soon += session.too_soon;
  }
  for (Week& week : out.weeks) {
    if (week.sessions > config.sessions_per_week_max) {
      week.adherence = Adherence::kAboveTarget;
    } else if (week.sessions >= config.sessions_per_week_min) {
      week.adherence = Adherence::kOnTarget;
    } else {
      week.adherence = week.index == current_week ? Adherence::kInProgress
                                                  : Adherence::kBelowTarget;
    }
  }
  out.weeks_since_start =
      static_cast<int>((today - out.sessions.front().day) / 7);
  const int week_number = out.weeks_since_start + 1;
  if (week_number > config.horizon_weeks_max) {
    out.horizon =
        absl::StrFormat("week %d: past the %d-%d week programme", week_number,
                        config.horizon_weeks_min, config.horizon_weeks_max);
  } else {
    out.horizon =
        absl::StrFormat("week %d of the %d-%d week programme", week_number,
                        config.horizon_weeks_min, config.horizon_weeks_max);
  }

  // Each side trained.
  std::map<StanceSide, Pool> recent, all_time;
  for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
    SideProgress p;
    p.side = side;
    std::map<int, Pool> by_week;
    // The latest set with repetitions decides readiness.
    const SetRecord* latest = nullptr;
    for (const SetRecord* set : sets) {
      if (set->side != side) continue;
      p.set_ids.push_back(set->set_id);
      p.sets.push_back(SummariseSet(set->repetitions));
      if (!set->repetitions.empty()) latest = set;
      by_week[WeekIndex(first_monday, DayOf(set->started_at, zone))].Add(*set);
      all_time[side].Add(*set);
      if (set->started_at >= as_of - config.asymmetry_window) {
        recent[side].Add(*set);
      }
    }
    if (p.set_ids.empty()) continue;
    if (latest != nullptr) {
      p.readiness =
          ReadinessOf(*latest, SummariseSet(latest->repetitions), config);
    } else {
      p.readiness.reason = "no repetitions recorded yet on this side";
    }
    std::vector<double> x, drop, clean;
    for (const auto& [index, pool] : by_week) {
      if (pool.n == 0) continue;
      p.weekly.push_back({index, pool.n, pool.MeanDrop(), pool.CleanPercent()});
      x.push_back(index);
      drop.push_back(pool.MeanDrop());
      clean.push_back(pool.CleanPercent());
    }
    p.pelvic_drop_trend = FitTrend(x, drop);
    p.clean_trend = FitTrend(x, clean);
    out.sides.push_back(std::move(p));
  }

  // Asymmetry over the recent window; all time if a side has none there.
  const StanceSide l = StanceSide::kLeft, r = StanceSide::kRight;
  if (all_time[l].n > 0 && all_time[r].n > 0) {
    const bool recent_both = recent[l].n > 0 && recent[r].n > 0;
    const Pool& left = recent_both ? recent[l] : all_time[l];
    const Pool& right = recent_both ? recent[r] : all_time[r];
    Asymmetry a;
    a.left_mean_pelvic_drop_deg = left.MeanDrop();
    a.right_mean_pelvic_drop_deg = right.MeanDrop();
    a.left_clean_percent = left.CleanPercent();
    a.right_clean_percent = right.CleanPercent();
    a.left_repetitions = left.n;
    a.right_repetitions = right.n;
    a.pelvic_drop_difference_deg = left.MeanDrop() - right.MeanDrop();
    out.asymmetry = a;
  }
  return out;
}

}  // namespace stephub::progress
