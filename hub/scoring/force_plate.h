// The force plate under the stance foot: standing body weight, the centre
// of mass's vertical excursion (for segmenting repetitions when no IMU can),
// and per-repetition centre-of-pressure and free-foot measures.
#ifndef STEPHUB_HUB_SCORING_FORCE_PLATE_H_
#define STEPHUB_HUB_SCORING_FORCE_PLATE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

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

// The centre of mass's vertical motion relative to standing.
struct BodyMotion {
  double height_m = 0;   // + = above standing
  double speed_mps = 0;  // + = up
};

// One (smoothed) reading of the plate's force.
struct PlateForce {
  int64_t t_us = 0;
  double fz_n = 0;
};

// The body's own vertical force over a load-sharing interval, one value per
// reading of `plate`, which runs from where the plate's force began to fall
// to where, back up, it levelled off. The free foot's load is what the force
// lost in its fall at the start and regained in its rise at the end
// (followed while steeper than a body's own force changes, see
// ComDepthTracker), changing linearly in between; the body's force is the
// plate's plus that load, and during the fall and the rise themselves (a
// foot loads and unloads in tens of milliseconds) it is the force just
// before and just after them.
std::vector<double> BodyForceAcross(absl::Span<const PlateForce> plate,
                                    double weight_n);

// Whether the plate's force, just fallen to dip_share of body weight below
// it, is the free foot taking load on the floor rather than the body
// accelerating down, given where the body was (`body`) before the fall. Two
// things give the foot away. A fall deeper than a controlled step-down can
// accelerate (well under a quarter of g; quick reps reach about 16%). And
// timing: the body accelerates down only when it starts lowering (from
// standing) and when it slows its rise (moving up fast); the free foot
// reaches the floor at the bottom, where the body is deep and not rising.
bool IsFreeFootLoad(double dip_share, const BodyMotion& body);

// An interval in which the free foot took load on the floor.
struct LoadSharing {
  int64_t start_us = 0;
  int64_t end_us = 0;
  double least_force_n = 0;  // the plate's least (smoothed) force in it
};

// How far the centre of mass has sunk below standing, from the plate alone.
//
// Method: Newton's second law on the vertical, Fz - W = m a with m = W / g,
// integrated twice (a step-down moves the centre of mass 5-15 cm, at 0.3-1.5
// m/s^2, far above the load cells' noise). Integration drift is held back by
// zero-velocity updates: once the force has been within 0.05 m/s^2 of body
// weight for 0.3 s and the speed estimate is already slow, the body is at
// rest (standing between reps or holding at the bottom) and the speed is set
// to zero; while the patient is known to stand between reps, speed and
// excursion bleed back to zero with a 1 s time constant. (The body weight
// from 1 s of standing is off by up to ~0.03% through sway, which alone
// integrates to ~1-2 cm over a repetition.)
//
// When the free foot takes load on the floor the plate's force falls by that
// load, which the plate cannot tell from the body accelerating down: even a
// tenth of body weight for 0.3 s would integrate to 0.3 m/s and ruin the
// excursion. Such a fall (see IsFreeFootLoad) starts a load-sharing interval:
// the estimate goes back to where the fall began (the last 0.3 s are kept
// for that) and holds there. When the force is back and has levelled off,
// the motion across the interval is integrated from the body's own force as
// BodyForceAcross reconstructs it. Over a longer interval (> 1 s: the
// patient stood on both feet, as in the calibration movement, and the body's
// force cannot be told from the load's) the body ends it at rest at standing
// height. Where the bridge is wrong it errs upward (see kRegainShare in
// force_plate.cc), and once the body is at rest after a rise it is taken to
// stand again at standing height.
class ComDepthTracker {
 public:
  ComDepthTracker(double weight_n, int64_t t_us);
  // The lowering in mm (+ = below standing) after this sample. `standing`:
  // the caller knows the patient is between repetitions.
  double Add(int64_t t_us, double fz_n, bool standing);
  // Whether the free foot is taking load, as of the last sample.
  bool sharing_load() const { return sharing_.has_value(); }
  // The load-sharing interval that ended with the last sample, if any.
  const std::optional<LoadSharing>& ended_sharing() const {
    return ended_sharing_;
  }

 private:
  // The integrator's state after one sample.
  struct Snapshot {
    int64_t t_us = 0;
    BodyMotion body;
    double smoothed_accel_mps2 = 0;
    int64_t quiet_since_us = 0;
    double smoothed_force_n = 0;
  };
  struct Sharing {
    Snapshot before;    // where the fall began
    double high_n = 0;  // the force before the fall (see kRegainShare)
    double least_force_n = 0;
    // The force since `before`, while the interval is short enough to be
    // bridged.
    std::vector<PlateForce> readings;
    // When the force had regained most of the load (the foot's unloading
    // then ends once it stops rising).
    std::optional<int64_t> back_since_us;
  };

  void Integrate(int64_t t_us, double fz_n, double dt_s);
  // The force fell fast (see kFastFallUs) into the last sample.
  bool FellFast() const;
  void BeginSharing();
  void EndSharing(int64_t t_us);

  double weight_n_;
  int64_t last_t_us_;
  BodyMotion body_;
  double smoothed_accel_mps2_ = 0;
  int64_t quiet_since_us_;
  // The mean force over the last 10 ms, for telling the free foot's load
  // from the body's own force.
  std::deque<PlateForce> recent_;
  double recent_sum_n_ = 0;
  double smoothed_force_n_;
  // The force has been near body weight since the last load sharing (a new
  // fall can start one).
  bool armed_ = true;
  // The body last moved up (a rise, not yet come to rest).
  bool rising_ = false;
  std::deque<Snapshot> history_;  // the last kLookbackUs, while not sharing
  std::optional<Sharing> sharing_;
  std::optional<LoadSharing> ended_sharing_;
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
