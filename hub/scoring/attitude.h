// Attitude of one IMU from its gyroscope and accelerometer: a nonlinear
// complementary filter on SO(3) with gyroscope-bias estimation.
#ifndef STEPHUB_HUB_SCORING_ATTITUDE_H_
#define STEPHUB_HUB_SCORING_ATTITUDE_H_

#include "common/geometry.h"

namespace stephub::scoring {

struct FilterGains {
  double kp_radps = 1.0;    // proportional gain on the tilt error
  double ki_radps2 = 0.25;  // integral gain (gyroscope bias)
  // The accelerometer corrects only while | |a| - g | <= accel_gate * g.
  double accel_gate = 0.1;
};

struct AttitudeState {
  Quaternion sensor_to_world;  // world z up
  Vec3 gyro_bias_radps;        // estimated, sensor frame
  Vec3 previous_gyro_radps;    // raw reading of the previous sample
};

// Advances the estimate over dt_s to a sample with these raw readings.
// gravity_mps2 is the accelerometer's |a| at rest (measured at calibration).
AttitudeState UpdateAttitude(const AttitudeState& state, const Vec3& gyro_radps,
                             const Vec3& accel_mps2, double dt_s,
                             double gravity_mps2,
                             const FilterGains& gains = {});

// A sensor whose mounting point accelerates back and forth with every
// repetition (the sacrum sitting back and sinking in a quick step-down:
// 1-4 m/s^2 at 0.7 s a phase) reads that acceleration as tilt, and the
// magnitude gate of UpdateAttitude lets one phase's share through and not
// the other's, so the errors do not cancel. While the segment is still, the
// accelerometer reads gravity alone: this estimate takes the accelerometer
// only then, and follows the gyroscope in between.
struct StillGates {
  // Still: turning slower than this (bias removed; standing sway is some
  // 0.01 rad/s, a step-down's tilt 0.2-0.5 rad/s) ...
  double max_rate_radps = 0.1;
  // ... with |a| within accel_gate of g ...
  double accel_gate = 0.03;
  // ... and the accelerometer reading what it read while still (its
  // average over about min_still_s) to within this: acceleration comes
  // before speed, so as a repetition sets off the reading jumps (the hips
  // sitting back, 1-2 m/s^2) while the rate is still small; sideways that
  // hardly changes |a|. White noise is 0.03-0.1 m/s^2 per axis.
  double max_accel_change_mps2 = 0.5;
  // ... for this long: the turnaround at the bottom of a rep is slow for an
  // instant only, and there the pelvis accelerates most.
  double min_still_s = 0.1;
  // Gains while still. The gyroscope carries the tilt through a repetition
  // to within a few tenths of a degree; what is left to correct is the
  // drift of its bias. Nothing but gravity is let through, so the crossover
  // may sit higher than UpdateAttitude's (kp = 2 rad/s); ki = kp^2/4 keeps
  // the error dynamics critically damped, and the bias follows its drift
  // from one rest to the next.
  FilterGains gains = {.kp_radps = 2.0, .ki_radps2 = 1.0, .accel_gate = 0.03};
};

struct StillCorrectedAttitude {
  AttitudeState attitude;
  double still_s = 0;     // how long the sensor has been still
  Vec3 still_accel_mps2;  // the accelerometer's recent average while still
};

// Advances the estimate like UpdateAttitude, but with the accelerometer only
// once the sensor has been still for gates.min_still_s.
StillCorrectedAttitude UpdateStillCorrected(const StillCorrectedAttitude& state,
                                            const Vec3& gyro_radps,
                                            const Vec3& accel_mps2, double dt_s,
                                            double gravity_mps2,
                                            const StillGates& gates = {});

// World up (+z) expressed in the sensor frame.
Vec3 UpInSensorFrame(const Quaternion& sensor_to_world);

// After a gap in the data the gyroscope cannot carry the orientation across;
// takes the tilt from the accelerometer instead (the smallest rotation that
// aligns the estimate's "up" with the measured one, so heading is kept) and
// keeps the estimated gyroscope bias.
AttitudeState ReseedTilt(const AttitudeState& state, const Vec3& gyro_radps,
                         const Vec3& accel_mps2);

// Turns the estimate about world vertical so that the sensor-frame vector
// `forward` (horizontal world +y at the standing baseline) points that way
// again: the gyroscope's bias about the vertical is not observable from
// gravity, and the heading it lets drift is reset where the segment is
// known to face as it did (see SetScorer's standing rests).
AttitudeState ResetHeading(const AttitudeState& state, const Vec3& forward);

}  // namespace stephub::scoring

#endif  // STEPHUB_HUB_SCORING_ATTITUDE_H_
