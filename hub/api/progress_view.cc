// Stored sets through hub/progress onto the wire; see progress_view.h.
#include "hub/api/progress_view.h"

#include <google/protobuf/util/time_util.h>

#include <vector>

#include "absl/time/civil_time.h"
#include "hub/progress/progress.h"

namespace stephub::api {
namespace {

using google::protobuf::util::TimeUtil;

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

progress::QualityCategory CategoryOf(v1::QualityCategory c) {
  switch (c) {
    case v1::QUALITY_CATEGORY_GOOD:
      return progress::QualityCategory::kGood;
    case v1::QUALITY_CATEGORY_MODERATE:
      return progress::QualityCategory::kModerate;
    case v1::QUALITY_CATEGORY_POOR:
      return progress::QualityCategory::kPoor;
    default:
      return progress::QualityCategory::kNotAssessed;
  }
}

v1::Adherence ToProto(progress::Adherence a) {
  switch (a) {
    case progress::Adherence::kBelowTarget:
      return v1::ADHERENCE_BELOW_TARGET;
    case progress::Adherence::kOnTarget:
      return v1::ADHERENCE_ON_TARGET;
    case progress::Adherence::kAboveTarget:
      return v1::ADHERENCE_ABOVE_TARGET;
    case progress::Adherence::kInProgress:
      return v1::ADHERENCE_IN_PROGRESS;
  }
  return v1::ADHERENCE_UNSPECIFIED;
}

void SetTrend(const progress::Trend& t, v1::Trend* out) {
  out->set_weeks(static_cast<uint32_t>(t.weeks));
  if (t.slope_per_week) out->set_slope_per_week(*t.slope_per_week);
  if (t.slope_stderr) out->set_slope_stderr(*t.slope_stderr);
}

}  // namespace

progress::RepetitionOutcome OutcomeOf(const v1::Repetition& rep) {
  return {rep.peak_pelvic_drop_deg(), rep.clean(),
          CategoryOf(rep.quality().category()),
          rep.verdict() != v1::VERDICT_NOT_ASSESSED};
}

absl::StatusOr<v1::PatientProgress> PatientProgressOf(store::ClinicStore& store,
                                                      int64_t patient_id,
                                                      absl::Time as_of,
                                                      absl::TimeZone zone) {
  auto patient = store.GetPatient(patient_id);
  if (!patient.ok()) return patient.status();
  auto sets = store.SetsOfPatient(patient_id);
  if (!sets.ok()) return sets.status();
  std::vector<SetResults> results;
  for (const v1::ExerciseSet& set : *sets) {
    auto reps = store.RepetitionsOfSet(set.set_id());
    if (!reps.ok()) return reps.status();
    results.push_back({set, std::move(*reps)});
  }
  return ProgressOf(*patient, results, as_of, zone);
}

v1::PatientProgress ProgressOf(const v1::Patient& patient,
                               const std::vector<SetResults>& sets,
                               absl::Time as_of, absl::TimeZone zone) {
  v1::PatientProgress out;
  *out.mutable_patient() = patient;
  out.set_time_zone(zone.name());
  *out.mutable_as_of() = ToProto(as_of);
  std::vector<progress::SetRecord> records;
  for (const auto& [set, reps] : sets) {
    progress::SetRecord record;
    record.set_id = set.set_id();
    record.side = set.stance_side() == v1::STANCE_SIDE_RIGHT
                      ? StanceSide::kRight
                      : StanceSide::kLeft;
    record.started_at = FromProto(set.started_at());
    if (set.has_ended_at()) record.ended_at = FromProto(set.ended_at());
    record.exercise = set.exercise();
    record.load = set.load();
    record.level = static_cast<int>(set.level());
    v1::SetSummary* summary = out.add_sets();
    *summary->mutable_set() = set;
    for (const v1::Repetition& rep : reps) {
      record.repetitions.push_back(OutcomeOf(rep));
      *summary->add_repetition_list() = rep;
    }
    const progress::SetSummary s = progress::SummariseSet(record.repetitions);
    summary->set_repetitions(s.repetitions);
    summary->set_clean_repetitions(s.clean_repetitions);
    summary->set_clean_percent(s.clean_percent);
    summary->set_mean_pelvic_drop_deg(s.mean_pelvic_drop_deg);
    summary->set_worst_pelvic_drop_deg(s.worst_pelvic_drop_deg);
    summary->set_good(s.good);
    summary->set_moderate(s.moderate);
    summary->set_poor(s.poor);
    summary->set_not_assessed(s.not_assessed);
    records.push_back(std::move(record));
  }

  const progress::PatientProgress p =
      progress::ComputeProgress(records, as_of, zone);
  for (const progress::Session& session : p.sessions) {
    v1::SessionSummary* s = out.add_sessions();
    s->set_day(absl::FormatCivilTime(session.day));
    *s->mutable_started_at() = ToProto(session.started_at);
    *s->mutable_ended_at() = ToProto(session.ended_at);
    for (int64_t id : session.set_ids) s->add_set_ids(id);
    for (const std::string& load : session.loads) s->add_loads(load);
    for (int level : session.levels) {
      s->add_levels(static_cast<uint32_t>(level));
    }
    if (session.since_previous) {
      *s->mutable_since_previous() = TimeUtil::MicrosecondsToDuration(
          absl::ToInt64Microseconds(*session.since_previous));
    }
    s->set_too_soon(session.too_soon);
  }
  for (const progress::Week& week : p.weeks) {
    v1::WeekSummary* w = out.add_weeks();
    w->set_index(static_cast<uint32_t>(week.index));
    w->set_monday(absl::FormatCivilTime(week.monday));
    w->set_sessions(static_cast<uint32_t>(week.sessions));
    w->set_sessions_too_soon(static_cast<uint32_t>(week.sessions_too_soon));
    w->set_adherence(ToProto(week.adherence));
  }
  out.set_weeks_since_start(static_cast<uint32_t>(p.weeks_since_start));
  out.set_horizon(p.horizon);
  for (const progress::SideProgress& side : p.sides) {
    v1::SideProgress* s = out.add_sides();
    s->set_side(side.side == StanceSide::kRight ? v1::STANCE_SIDE_RIGHT
                                                : v1::STANCE_SIDE_LEFT);
    for (const progress::WeeklyPoint& point : side.weekly) {
      v1::WeeklyPoint* w = s->add_weekly();
      w->set_week_index(static_cast<uint32_t>(point.week_index));
      w->set_repetitions(point.repetitions);
      w->set_mean_pelvic_drop_deg(point.mean_pelvic_drop_deg);
      w->set_clean_percent(point.clean_percent);
    }
    SetTrend(side.pelvic_drop_trend, s->mutable_pelvic_drop_trend());
    SetTrend(side.clean_trend, s->mutable_clean_trend());
    v1::Readiness* r = s->mutable_readiness();
    r->set_ready(side.readiness.ready);
    r->set_reason(side.readiness.reason);
    r->set_latest_set_id(side.readiness.latest_set_id);
    r->set_current_load(side.readiness.current_load);
    r->set_current_level(static_cast<uint32_t>(side.readiness.current_level));
    r->set_next_step(side.readiness.next_step);
  }
  if (p.asymmetry) {
    v1::Asymmetry* a = out.mutable_asymmetry();
    a->set_left_mean_pelvic_drop_deg(p.asymmetry->left_mean_pelvic_drop_deg);
    a->set_right_mean_pelvic_drop_deg(p.asymmetry->right_mean_pelvic_drop_deg);
    a->set_left_clean_percent(p.asymmetry->left_clean_percent);
    a->set_right_clean_percent(p.asymmetry->right_clean_percent);
    a->set_left_repetitions(p.asymmetry->left_repetitions);
    a->set_right_repetitions(p.asymmetry->right_repetitions);
    a->set_pelvic_drop_difference_deg(p.asymmetry->pelvic_drop_difference_deg);
  }
  return out;
}

}  // namespace stephub::api
