// The standing posture at the start of a set: finding >= 1 s of stillness,
// and from it the gyroscope bias, the sensor's tilt on the pelvis and the
// pelvis's level standing frame.
#ifndef STEPHUB_HUB_SCORING_CALIBRATION_H_
#define STEPHUB_HUB_SCORING_CALIBRATION_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/geometry.h"
#include "common/samples.h"
#include "hub/scoring/window_sums.h"

namespace stephub::scoring {

struct StillWindow {
  int64_t start_us = 0;
  int64_t end_us = 0;
  Vec3 mean_accel_mps2;
  Vec3 mean_gyro_radps;
};

// Finds the first window of at least one second in which the sensor is
// still: every sample turning slowly with |a| close to g, and the readings
// steady over the window.
class StillnessDetector {
 public:
  // Returns the window once a sample completes it, and again after every
  // later sample while the sensor stays still: then the latest 1-1.5 s, as
  // a window that stops growing keeps each sample's cost bounded however
  // long the patient stands.
  std::optional<StillWindow> Add(const ImuSample& sample);
  // Samples held, for checks that memory stays bounded.
  size_t buffered_samples() const { return window_.size(); }

 private:
  bool Steady() const;
  StillWindow Summary() const;
  void PopFront();

  std::deque<ImuSample> window_;
  // accel (3), gyro (3), |accel|^2, |gyro|^2 of window_
  WindowSums<8> sums_;
};

// The same test over a given stretch of samples (another sensor's share of
// the window one sensor found): the window if every sample is still and the
// stretch as a whole is steady and lasts >= 1 s.
std::optional<StillWindow> SteadyWindowOf(absl::Span<const ImuSample> samples);

// The patient's standing posture as seen by the sensor.
struct StandingPosture {
  // World frame: z up, x = the pelvis's right at standing (level).
  Quaternion sensor_to_world;
  // The standing pelvis's axes in the sensor frame; this is the fixed mount.
  Vec3 pelvis_right;
  Vec3 pelvis_forward;
  Vec3 gyro_bias_radps;
  double gravity_mps2 = 9.81;  // |a| at rest, as this accelerometer reads it
  // The segment's long axis in the sensor frame: the standing vertical
  // unless the segment is known to stand inclined (see WithInclination).
  Vec3 long_axis;
};

// The pelvis is taken as level when standing, with its right pointing along
// the sensor x-axis projected on the horizontal: sensors are strapped square
// to the segment, and a standing pose cannot reveal the heading.
StandingPosture StandingPostureFrom(const StillWindow& window);

// One gyroscope reading with the estimated bias removed, sensor frame.
struct RateSample {
  int64_t t_us = 0;
  Vec3 rate_radps;
};

// What the calibration movement (a slow two-leg knee bend) tells about one
// sensor's heading on its segment.
struct HeadingFit {
  // Angle from the assumed mediolateral axis (the sensor's x projected on
  // the standing horizontal plane) to the axis the segment turned about,
  // counter-clockwise seen from above.
  double heading_deg = 0;
  double turned_deg = 0;      // total rotation about that axis, down and up
  double off_axis_share = 0;  // rms rate off that axis / rms rate on it
};

// Limits of a usable fit: enough rotation to see the axis, a single hinge
// axis, and an axis within reach of how sensors are strapped.
inline constexpr double kMinHeadingTurnDeg = 6;
inline constexpr double kMaxOffAxisShare = 0.25;
inline constexpr double kMaxHeadingFitDeg = 20;

// In a two-leg knee bend every segment turns about its own mediolateral
// axis and about nothing else (the pelvis stays level with both feet down),
// so the principal axis of the rates, projected on the standing horizontal
// plane, is that axis in the sensor frame: unlike the step-down's own
// motion, it does not depend on how far the pelvis drops. Returns an error
// saying why when the movement does not show one clear axis.
absl::StatusOr<HeadingFit> HeadingFromHingeMovement(
    absl::Span<const RateSample> rates, const StandingPosture& standing);

// The standing posture with its mediolateral axis turned by heading_deg
// about the standing vertical.
StandingPosture WithHeading(const StandingPosture& standing,
                            double heading_deg);

// The standing vertical in the sensor frame.
Vec3 StandingUp(const StandingPosture& standing);

// The posture with the segment's long axis inclined in the standing
// frontal plane by `inclination_deg`, + toward the world's +x (right).
StandingPosture WithInclination(const StandingPosture& standing,
                                double inclination_deg);

struct PelvisAngles {
  double obliquity_deg = 0;     // elevation of the pelvis's right side
  double forward_tilt_deg = 0;  // anterior tilt, relative to standing
};

PelvisAngles PelvisAnglesOf(const Quaternion& sensor_to_world,
                            const StandingPosture& standing);

}  // namespace stephub::scoring

#endif  // STEPHUB_HUB_SCORING_CALIBRATION_H_
