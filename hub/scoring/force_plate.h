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
#include "hub/scoring/window_sums.h"

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
  void PopFront();

  std::deque<ForceSample> window_;
  WindowSums<2> sums_;  // fz, fz^2 of window_
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

// The free foot's load on the floor over a load-sharing interval: it lands,
// ramping up to on_n over on_ramp_us centred on on_us, and lifts, ramping
// down from off_n over off_ramp_us centred on off_us; in between it changes
// linearly (the plate cannot tell a load shifting slowly from the body's
// own force changing).
struct FootLoad {
  int64_t on_us = 0;
  int64_t on_ramp_us = 0;
  double on_n = 0;
  int64_t off_us = 0;
  int64_t off_ramp_us = 0;
  double off_n = 0;

  double At(int64_t t_us) const;
};

// Where the plate's force, over readings in [from_us, to_us], changes
// fastest over 20 ms: down (`falling`) or up; the middle of that change.
int64_t SteepestChange(absl::Span<const PlateForce> plate, int64_t from_us,
                       int64_t to_us, bool falling);

// The free foot's load read off the plate's force, which must run from at
// least 0.1 s before the landing to 0.1 s after the lift. A foot loads and
// unloads within tens of milliseconds, on top of a body force that changes
// smoothly over tenths of a second (braking, holding, pushing up: a body's
// force has a bounded jerk): each of the landing and the lift is fitted,
// over 0.3 s around it, as a cubic in time (the body) plus a raised-cosine
// step of 20-100 ms (the foot) found within 40 ms of landing_near_us and
// lift_near_us (see SteepestChange); the step's height is the load.
FootLoad FootLoadIn(absl::Span<const PlateForce> plate, int64_t landing_near_us,
                    int64_t lift_near_us);

// The body's own vertical force at each reading of `plate`: the plate's plus
// the foot's load.
std::vector<double> BodyForceAcross(absl::Span<const PlateForce> plate,
                                    const FootLoad& load);

// Whether the plate's force, just fallen to dip_share of body weight below
// it, is the free foot taking load on the floor rather than the body
// accelerating down, given where the body was (`body`) before the fall.
// Timing gives the foot away: the body accelerates down only when it starts
// lowering (from standing) and when it slows its rise (moving up fast); the
// free foot reaches the floor at the bottom, where the body is deep and not
// rising. How deep the force falls does not: quick reps start their
// lowering at up to half of g, as deep as a foot taking half the weight.
// (A foot taken for the body shows itself soon after, see
// IsBodySpeed.)
bool IsFreeFootLoad(double dip_share, const BodyMotion& body);

// Whether a centre of mass could move this fast vertically in a controlled
// step-down: quick, shallow reps reach 0.3-0.5 m/s, a foot's load
// integrated as the body's falls past 1 m/s within a few tenths of a second.
bool IsBodySpeed(double speed_mps);

// The height at a zero-velocity update, corrected for the speed the
// integration got wrong since the last one: `speed_mps` is that error (the
// body is at rest). The error came in where the force is least known: over
// the free foot's load sharing (whose load is read at its landing and lift
// only), so it grew there and held since, `error_from_us` being the
// sharing's middle; without a load sharing, evenly since the last update
// (the body weight's error), `error_from_us` being the middle of that
// span.
double HeightAtRest(double height_m, double speed_mps, int64_t error_from_us,
                    int64_t t_us);

// An interval in which the free foot took load on the floor.
struct LoadSharing {
  int64_t start_us = 0;
  int64_t end_us = 0;
  double least_force_n = 0;  // the plate's least (smoothed) force in it
};

// How far the centre of mass has sunk below standing, from the plate alone.
//
// Method: Newton's second law on the vertical, Fz - W = m a with m = W / g,
// integrated twice (a step-down moves the centre of mass 5-15 cm, at 0.3-5
// m/s^2, far above the load cells' noise). Integration drift is held back by
// zero-velocity updates: once the force has been within 0.05 m/s^2 of body
// weight for 0.3 s, the body is at rest (standing between reps or holding
// at the bottom) and the speed is set to zero. The speed it had is the
// integration's error, and the height is corrected for it too (see
// HeightAtRest). Outside a load sharing the speed estimate must also be slow
// for an update (a slow lowering passes through zero acceleration at its
// middle); after one, it is not trusted for that. While the patient is known
// to stand between reps, speed and excursion bleed back to zero with a 1 s
// time constant. (The body weight from 1 s of standing is off by up to
// ~0.03% through sway, which alone integrates to ~1-2 cm over a repetition.)
//
// When the free foot takes load on the floor the plate's force falls by that
// load, which the plate cannot tell from the body accelerating down by
// itself: even a tenth of body weight for 0.3 s would integrate to 0.3 m/s
// and ruin the excursion. Such a fall (see IsFreeFootLoad) starts a
// load-sharing interval: the estimate goes back to where the fall began (the
// last 0.3 s are kept for that) and holds there. When the force is back and
// has levelled off, the motion across the interval is integrated from the
// body's own force as BodyForceAcross reconstructs it; what that gets wrong
// the next zero-velocity update puts right. A fall taken for the body that
// then moves it faster than a body moves (see IsBodySpeed) was load after
// all: the estimate goes back to where the force last was at body weight
// (the last second is kept for that) and a load sharing starts there. Over a
// longer interval (> 1 s: the patient stood on both feet, as in the
// calibration movement, and the body's force cannot be told from the
// load's) the body ends it at rest at standing height. Once the body is at
// rest after a rise it is taken to stand again at standing height. After a
// touch-down, where the bridge may have left the estimate off, the rise is
// read from the force itself: it pushes above body weight, then slows below
// it; such a fall is the rise slowing, not a second touch-down, and the
// rest after it is standing.
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
    // When the fall was judged to be the foot's load.
    int64_t judged_us = 0;
    // The force since kFitContextUs before `before`, while the interval is
    // short enough to be bridged.
    std::vector<PlateForce> readings;
    // When the force had regained most of the load (the interval then ends
    // once the body's force after the lift has been seen long enough to
    // read the lift off it).
    std::optional<int64_t> back_since_us;
  };

  void Integrate(int64_t t_us, double fz_n, double dt_s);
  // The zero-velocity update, when the body has been at rest long enough.
  void UpdateAtRest(int64_t t_us);
  // The force fell fast (see kFastFallUs) into the last sample.
  bool FellFast() const;
  // While sharing: the force rose as fast into the last sample.
  bool RoseFast() const;
  // Starts a load sharing at history_[start] (the fall's start).
  void BeginSharing(size_t start);
  // The fall's start for a load sharing judged now: where the force,
  // followed back in time, stops rising faster than the body's own force
  // can.
  size_t FallStart() const;
  // The load a fall taken for the body was: back to where the force was
  // last at body weight.
  size_t LastAtBodyWeight() const;
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
  // Since the last rest or load sharing, the force rose above body weight
  // (the body pushed up), and then fell below it (the rise slowed).
  bool pushed_up_ = false;
  bool slowed_rise_ = false;
  // The last zero-velocity update, and the middle of the latest load
  // sharing since (see HeightAtRest).
  int64_t rested_us_;
  std::optional<int64_t> shared_since_rest_us_;
  std::deque<Snapshot> history_;  // the last kHistoryUs, while not sharing
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
