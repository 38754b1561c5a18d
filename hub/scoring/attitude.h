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
