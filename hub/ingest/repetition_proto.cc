#include "hub/ingest/repetition_proto.h"

#include <optional>

namespace stephub::ingest {
namespace {

v1::QualityCategory ToProto(scoring::QualityCategory category) {
  switch (category) {
    case scoring::QualityCategory::kGood:
      return v1::QUALITY_CATEGORY_GOOD;
    case scoring::QualityCategory::kModerate:
      return v1::QUALITY_CATEGORY_MODERATE;
    case scoring::QualityCategory::kPoor:
      return v1::QUALITY_CATEGORY_POOR;
  }
  return v1::QUALITY_CATEGORY_UNSPECIFIED;
}

v1::Verdict ToProto(scoring::Verdict verdict) {
  switch (verdict) {
    case scoring::Verdict::kClean:
      return v1::VERDICT_CLEAN;
    case scoring::Verdict::kPelvicDrop:
      return v1::VERDICT_PELVIC_DROP;
    case scoring::Verdict::kPelvicHike:
      return v1::VERDICT_PELVIC_HIKE;
    case scoring::Verdict::kNotAssessed:
      return v1::VERDICT_NOT_ASSESSED;
  }
  return v1::VERDICT_UNSPECIFIED;
}

// The scorer's metrics, quality items and problems onto the wire message;
// what was not assessed stays absent.
void SetDetails(const scoring::Repetition& r, v1::Repetition* rep) {
  v1::RepetitionMetrics* m = rep->mutable_metrics();
  m->set_max_pelvic_drop_deg(r.max_pelvic_drop_deg);
  m->set_max_pelvic_hike_deg(r.max_pelvic_hike_deg);
  auto set = [](const std::optional<double>& v, auto setter) {
    if (v) setter(*v);
  };
  set(r.peak_trunk_lean_deg, [m](double v) { m->set_peak_trunk_lean_deg(v); });
  set(r.knee_flexion_deg, [m](double v) { m->set_knee_flexion_deg(v); });
  set(r.knee_valgus_deg, [m](double v) { m->set_knee_valgus_deg(v); });
  set(r.cop_ml_range_mm, [m](double v) { m->set_cop_ml_range_mm(v); });
  set(r.cop_ml_mean_speed_mm_s,
      [m](double v) { m->set_cop_ml_mean_speed_mm_s(v); });
  set(r.free_foot_load_fraction,
      [m](double v) { m->set_free_foot_load_fraction(v); });
  set(r.lowering_s, [m](double v) { m->set_lowering_s(v); });
  set(r.rising_s, [m](double v) { m->set_rising_s(v); });
  v1::QualityScale* q = rep->mutable_quality();
  auto item = [](const std::optional<int>& v, auto setter) {
    if (v) setter(static_cast<uint32_t>(*v));
  };
  item(r.quality.arm_strategy, [q](uint32_t v) { q->set_arm_strategy(v); });
  item(r.quality.trunk, [q](uint32_t v) { q->set_trunk(v); });
  item(r.quality.pelvis, [q](uint32_t v) { q->set_pelvis(v); });
  item(r.quality.knee, [q](uint32_t v) { q->set_knee(v); });
  item(r.quality.stance, [q](uint32_t v) { q->set_stance(v); });
  q->set_total(static_cast<uint32_t>(r.quality.total));
  q->set_category(ToProto(r.quality.category));
  for (const auto& problem : r.problems) rep->add_problems(problem);
  rep->set_segmented_by(r.segmented_by);
}

}  // namespace

v1::Repetition RepetitionToProto(const scoring::Repetition& r) {
  v1::Repetition rep;
  rep.set_number(static_cast<uint32_t>(r.number));
  rep.set_start_us(r.start_us);
  rep.set_deepest_us(r.deepest_us);
  rep.set_end_us(r.end_us);
  rep.set_peak_pelvic_drop_deg(r.peak_pelvic_drop_deg);
  rep.set_verdict(ToProto(r.verdict));
  rep.set_clean(r.verdict == scoring::Verdict::kClean);
  SetDetails(r, &rep);
  return rep;
}

}  // namespace stephub::ingest
