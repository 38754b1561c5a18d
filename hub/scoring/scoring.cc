// SetScorer: calibration, attitude, pelvic angles and segmentation wired
// together sample by sample; ScoreRecording replays a recording through it.
#include "hub/scoring/scoring.h"

#include <algorithm>

#include "common/geometry.h"
#include "hub/scoring/attitude.h"
#include "hub/scoring/calibration.h"
#include "hub/scoring/segmentation.h"

namespace stephub::scoring {
namespace {

Vec3 Accel(const ImuSample& s) { return {s.ax_mps2, s.ay_mps2, s.az_mps2}; }
Vec3 Gyro(const ImuSample& s) { return {s.gx_radps, s.gy_radps, s.gz_radps}; }

// The pelvis's right side rising is a drop when the free leg is the left.
double PelvicDropDeg(double obliquity_deg, StanceSide stance_side) {
  return stance_side == StanceSide::kRight ? obliquity_deg : -obliquity_deg;
}

}  // namespace

Verdict ClassifyPelvicDrop(double peak_pelvic_drop_deg,
                           const ScoringConfig& config) {
  if (peak_pelvic_drop_deg > config.pelvic_compensation_threshold_deg) {
    return Verdict::kPelvicDrop;
  }
  if (peak_pelvic_drop_deg < -config.pelvic_compensation_threshold_deg) {
    return Verdict::kPelvicHike;
  }
  return Verdict::kClean;
}

QualityCategory CategoryOfTotal(int total) {
  if (total <= 1) return QualityCategory::kGood;
  if (total <= 3) return QualityCategory::kModerate;
  return QualityCategory::kPoor;
}

const char* QualityCategoryName(QualityCategory category) {
  switch (category) {
    case QualityCategory::kGood:
      return "good";
    case QualityCategory::kModerate:
      return "moderate";
    case QualityCategory::kPoor:
      return "poor";
  }
  return "good";
}

QualityItems ScoreQuality(const QualityInputs& in, const ScoringConfig& c) {
  QualityItems q;
  if (in.arms_used) q.arm_strategy = *in.arms_used ? 1 : 0;
  if (in.peak_trunk_lean_deg) {
    q.trunk = std::abs(*in.peak_trunk_lean_deg) > c.trunk_lean_threshold_deg;
  }
  if (in.peak_pelvic_drop_deg) {
    q.pelvis = std::abs(*in.peak_pelvic_drop_deg) >
               c.pelvic_compensation_threshold_deg;
  }
  if (in.knee_valgus_deg) {
    q.knee = *in.knee_valgus_deg > c.knee_valgus_two_points_deg  ? 2
             : *in.knee_valgus_deg > c.knee_valgus_one_point_deg ? 1
                                                                 : 0;
  }
  if (in.free_foot_load_fraction || in.cop_ml_range_mm) {
    const bool touched =
        in.free_foot_load_fraction &&
        *in.free_foot_load_fraction > c.free_foot_load_threshold;
    const bool wavered =
        in.cop_ml_range_mm && *in.cop_ml_range_mm > c.cop_ml_range_threshold_mm;
    q.stance = touched || wavered;
  }
  for (const auto& item :
       {q.arm_strategy, q.trunk, q.pelvis, q.knee, q.stance}) {
    q.total += item.value_or(0);
  }
  q.category = CategoryOfTotal(q.total);
  return q;
}

// A longer silence than this between two samples is a gap, not jitter.
constexpr double kMaxGapS = 0.1;
// Forward tilt below which the patient counts as standing again after a gap.
constexpr double kStandingTiltDeg = 1.5;

struct SetScorer::State {
  State(StanceSide side, ScoringConfig c) : stance_side(side), config(c) {}

  void Calibrate(const StillWindow& window, const ImuSample& last);
  std::optional<Repetition> Score(const ImuSample& sample);
  Repetition ToRepetition(const RepSpan& span, int number) const;

  const StanceSide stance_side;
  const ScoringConfig config;
  StillnessDetector stillness;
  std::optional<StandingPosture> standing;
  AttitudeState attitude;
  int64_t last_t_us = 0;
  RepSegmenter segmenter;
  int counted = 0;
  std::optional<double> current_drop_deg;
  bool finished = false;
  // After a gap: repetitions are not segmented until the patient stands
  // again, so that the rest of an interrupted repetition is not counted.
  bool waiting_to_stand = false;
};

void SetScorer::State::Calibrate(const StillWindow& window,
                                 const ImuSample& last) {
  standing = StandingPostureFrom(window);
  attitude = {standing->sensor_to_world, standing->gyro_bias_radps, Gyro(last)};
  last_t_us = last.t_us;
  current_drop_deg = 0;
}

std::optional<Repetition> SetScorer::State::Score(const ImuSample& sample) {
  // Out-of-order or repeated samples carry no new information.
  if (sample.t_us <= last_t_us) return std::nullopt;
  const double dt_s = (sample.t_us - last_t_us) * 1e-6;
  if (dt_s > kMaxGapS) {
    // Samples are missing (the station restarted, its sensor stalled): the
    // repetition in progress cannot be measured whole, so it is dropped.
    attitude = ReseedTilt(attitude, Gyro(sample), Accel(sample));
    segmenter.Reset();
    waiting_to_stand = true;
  } else {
    attitude = UpdateAttitude(attitude, Gyro(sample), Accel(sample), dt_s,
                              standing->gravity_mps2);
  }
  last_t_us = sample.t_us;
  const PelvisAngles angles =
      PelvisAnglesOf(attitude.sensor_to_world, *standing);
  current_drop_deg = PelvicDropDeg(angles.obliquity_deg, stance_side);
  if (waiting_to_stand) {
    if (angles.forward_tilt_deg > kStandingTiltDeg) return std::nullopt;
    waiting_to_stand = false;
  }
  const auto span =
      segmenter.Add(sample.t_us, angles.forward_tilt_deg, *current_drop_deg);
  if (!span) return std::nullopt;
  return ToRepetition(*span, ++counted);
}

Repetition SetScorer::State::ToRepetition(const RepSpan& span,
                                          int number) const {
  Repetition r;
  r.number = number;
  r.start_us = span.start_us;
  r.deepest_us = span.deepest_us;
  r.end_us = span.end_us;
  r.peak_pelvic_drop_deg = span.PeakDropDeg();
  r.verdict = ClassifyPelvicDrop(r.peak_pelvic_drop_deg, config);
  r.partial = number == 0;
  return r;
}

SetScorer::SetScorer(StanceSide stance_side, ScoringConfig config)
    : state_(std::make_unique<State>(stance_side, config)) {}

SetScorer::~SetScorer() = default;

std::vector<Repetition> SetScorer::AddSacrumSamples(
    absl::Span<const ImuSample> samples) {
  State& s = *state_;
  std::vector<Repetition> done;
  if (s.finished) return done;
  for (const ImuSample& sample : samples) {
    if (!s.standing) {
      if (auto window = s.stillness.Add(sample)) s.Calibrate(*window, sample);
      continue;
    }
    if (auto rep = s.Score(sample)) done.push_back(*rep);
  }
  return done;
}

std::optional<Repetition> SetScorer::Finish() {
  State& s = *state_;
  if (s.finished) return std::nullopt;
  s.finished = true;
  const auto span = s.segmenter.InProgress();
  if (!span) return std::nullopt;
  return s.ToRepetition(*span, 0);
}

bool SetScorer::calibrated() const { return state_->standing.has_value(); }

int SetScorer::repetitions_counted() const { return state_->counted; }

std::optional<double> SetScorer::current_pelvic_drop_deg() const {
  return state_->current_drop_deg;
}

std::vector<Repetition> ScoreRecording(const Recording& recording,
                                       const ScoringConfig& config) {
  std::vector<Repetition> reps;
  const auto it = recording.imu.find(Placement::kSacrum);
  if (it == recording.imu.end()) return reps;
  SetScorer scorer(recording.meta.stance_side, config);
  // Small chunks, as a station's batches would arrive, so that the offline
  // path exercises exactly the online one.
  constexpr size_t kChunk = 10;
  const absl::Span<const ImuSample> samples(it->second);
  for (size_t i = 0; i < samples.size(); i += kChunk) {
    for (Repetition& r : scorer.AddSacrumSamples(samples.subspan(i, kChunk))) {
      reps.push_back(r);
    }
  }
  // A repetition cut off by the end of the recording is not counted.
  scorer.Finish();
  return reps;
}

}  // namespace stephub::scoring
