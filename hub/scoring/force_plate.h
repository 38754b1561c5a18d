// The force plate under the stance foot: standing body weight, the centre
// of mass's vertical excursion (for segmenting repetitions when no IMU can),
// and per-repetition centre-of-pressure and free-foot measures.
#ifndef STEPHUB_HUB_SCORING_FORCE_PLATE_H_
#define STEPHUB_HUB_SCORING_FORCE_PLATE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "absl/types/span.h"
#include "common/samples.h"

namespace stephub::scoring {

// Body weight as the plate reads it over a still stretch of standing.
struct PlateStillWindow {
  int64_t start_us = 0;
  int64_t end_us = 0;
  double weight_n = 0;
};

// The weight over these samples if they are >= 1 s of steady one-leg
// standing (nearly constant force well above the plate's noise), else none.
std::optional<PlateStillWindow> SteadyPlateWindowOf(
    absl::Span<const ForceSample> samples);

// Finds the first >= 1 s of steady standing on the plate, like
// StillnessDetector does for an IMU (and like it, keeps at most the latest
// 1.5 s while the patient stands on).
class PlateStillnessDetector {
 public:
  std::optional<PlateStillWindow> Add(const ForceSample& sample);
  size_t buffered_samples() const { return window_.size(); }

 private:
  std::deque<ForceSample> window_;
};

// How far the centre of mass has sunk below standing, from the plate alone.
//
// Method: Newton's second law on the vertical, Fz - W = m a with m = W / g,
// integrated twice (a step-down moves the centre of mass 5-15 cm, at 0.3-1
// m/s^2, far above the load cells' noise). Integration drift is held back by
// zero-velocity updates: once the force has been within 0.05 m/s^2 of body
// weight for 0.3 s and the speed estimate is already slow, the body is at
// rest (standing between reps or holding at the bottom) and the speed is set
// to zero; while the patient is known to stand between reps, speed and
// excursion bleed back to zero with a 1 s time constant. (The body weight
// from 1 s of standing is off by up to ~0.03% through sway, which alone
// integrates to ~1-2 cm over a repetition.) A dip of more than 12% of body
// weight is taken as the free foot touching the floor rather than the body
// accelerating down (a controlled step-down accelerates at under 10% of g), and
// is not integrated.
class ComDepthTracker {
 public:
  ComDepthTracker(double weight_n, int64_t t_us);
  // The lowering in mm (+ = below standing) after this sample. `standing`:
  // the caller knows the patient is between repetitions.
  double Add(int64_t t_us, double fz_n, bool standing);

 private:
  double weight_n_;
  int64_t last_t_us_;
  double speed_mps_ = 0;  // up
  double height_m_ = 0;   // relative to standing
  double smoothed_accel_mps2_ = 0;
  int64_t quiet_since_us_;
};

struct PlateRepMetrics {
  std::optional<double> cop_ml_range_mm;
  std::optional<double> cop_ml_mean_speed_mm_s;
  std::optional<double> free_foot_load_fraction;
};

// Measures over one repetition's force samples; NaN centres of pressure
// (force below 20 N, or a dropout) are skipped.
PlateRepMetrics PlateMetricsOf(absl::Span<const ForceSample> samples,
                               double weight_n);

}  // namespace stephub::scoring

#endif  // STEPHUB_HUB_SCORING_FORCE_PLATE_H_
