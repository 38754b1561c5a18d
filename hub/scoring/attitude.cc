// Explicit complementary filter of Mahony, Hamel and Pflimlin, "Nonlinear
// complementary filters on the special orthogonal group", IEEE Transactions
// on Automatic Control 53(5):1203-1218, 2008, with the accelerometer as the
// only vector measurement (heading is not observed and not needed: pelvic
// obliquity and tilt depend only on where "up" is in the sensor frame).
//
// Gains (FilterGains defaults), for a sacral IMU during step-downs:
// - kp = 1 rad/s puts the gyroscope/accelerometer crossover near 0.16 Hz.
//   Above it (a repetition's lowering and rising, 0.2-0.5 Hz) the angles come
//   mostly from the gyroscope, so the apparent tilt of the pelvis
//   accelerating sideways or backward (0.05-0.2 m/s^2, up to about 1 deg)
//   is attenuated; below it the accelerometer's gravity direction wins.
// - ki = kp^2/4 = 0.25 rad/s^2 makes the linearised error dynamics
//   s^2 + kp s + ki critically damped: the bias estimate settles in a few
//   seconds without ringing. That matters because the calibration's bias
//   (the mean rate over 1 s of standing) also contains the patient's real
//   sway, a few 0.001 rad/s, and because MEMS bias drifts during a set.
// - The gate drops the accelerometer while |a| is more than 10% off g,
//   when it says more about acceleration than about gravity.
// On 120 simulated sets the peak pelvic drop RMSE was 0.13 deg with these
// gains, 0.18 with kp halved and 0.14 with kp doubled (ki = kp^2/4 each):
// lower gains keep bias errors in the angles for longer, higher ones let
// more acceleration through.
// The same gains serve the sternal, thigh and shank IMUs (scoring 0.2): their
// segments turn faster (the thigh at up to about 1.5 rad/s) and their
// mounting points accelerate more (lever arms from hip and knee, 1-2 m/s^2),
// which the gate keeps out of the tilt correction; on 48 simulated sets
// with every sensor (multi_sensor_test) trunk lean came within 0.31 deg
// RMSE and knee flexion within 0.34 deg, so no per-segment tuning was made.
#include "hub/scoring/attitude.h"

#include <cmath>

namespace stephub::scoring {

Vec3 UpInSensorFrame(const Quaternion& sensor_to_world) {
  return Rotate(Conjugate(sensor_to_world), Vec3{0, 0, 1});
}

AttitudeState ReseedTilt(const AttitudeState& state, const Vec3& gyro_radps,
                         const Vec3& accel_mps2) {
  AttitudeState next = state;
  next.previous_gyro_radps = gyro_radps;
  const double norm = Norm(accel_mps2);
  if (!(norm > 0)) return next;
  const Vec3 measured = accel_mps2 / norm;
  const Vec3 estimated = UpInSensorFrame(state.sensor_to_world);
  const Vec3 axis = Cross(measured, estimated);
  const double sin_angle = Norm(axis);
  const double angle = std::atan2(sin_angle, Dot(measured, estimated));
  if (sin_angle < 1e-9) return next;
  // Rotating `measured` onto `estimated` in the sensor frame, then the old
  // orientation, maps the measured up onto world up.
  next.sensor_to_world = Normalized(
      state.sensor_to_world * FromRotationVector(axis / sin_angle * angle));
  return next;
}

namespace {

// The gyroscope's step over dt_s (trapezoidal rate over the interval:
// second order, no lag).
AttitudeState Predict(const AttitudeState& state, const Vec3& gyro_radps,
                      double dt_s) {
  AttitudeState next = state;
  next.previous_gyro_radps = gyro_radps;
  const Vec3 rate =
      0.5 * (state.previous_gyro_radps + gyro_radps) - state.gyro_bias_radps;
  next.sensor_to_world =
      Normalized(state.sensor_to_world * FromRotationVector(rate * dt_s));
  return next;
}

}  // namespace

AttitudeState UpdateAttitude(const AttitudeState& state, const Vec3& gyro_radps,
                             const Vec3& accel_mps2, double dt_s,
                             double gravity_mps2, const FilterGains& gains) {
  // Predict with the gyroscope first, so that the accelerometer is compared
  // with the attitude at its own instant rather than one sample earlier.
  AttitudeState next = Predict(state, gyro_radps, dt_s);
  const double accel_norm = Norm(accel_mps2);
  if (accel_norm == 0 ||
      std::abs(accel_norm - gravity_mps2) > gains.accel_gate * gravity_mps2) {
    return next;
  }
  // omega_mes of the paper: turning the estimate about this axis moves the
  // estimated up direction toward the measured one.
  const Vec3 error =
      Cross(accel_mps2 / accel_norm, UpInSensorFrame(next.sensor_to_world));
  next.gyro_bias_radps -= gains.ki_radps2 * dt_s * error;
  next.sensor_to_world = Normalized(
      next.sensor_to_world * FromRotationVector(gains.kp_radps * dt_s * error));
  return next;
}

namespace {

// Whether this sample looks like a segment at rest (see StillGates).
bool LooksStill(const StillCorrectedAttitude& state, const Vec3& gyro_radps,
                const Vec3& accel_mps2, double gravity_mps2,
                const StillGates& gates) {
  const double rate = Norm(gyro_radps - state.attitude.gyro_bias_radps);
  const double off_g = std::abs(Norm(accel_mps2) - gravity_mps2);
  const double change = Norm(accel_mps2 - state.still_accel_mps2);
  return rate < gates.max_rate_radps &&
         off_g <= gates.accel_gate * gravity_mps2 &&
         change < gates.max_accel_change_mps2;
}

}  // namespace

StillCorrectedAttitude UpdateStillCorrected(const StillCorrectedAttitude& state,
                                            const Vec3& gyro_radps,
                                            const Vec3& accel_mps2, double dt_s,
                                            double gravity_mps2,
                                            const StillGates& gates) {
  StillCorrectedAttitude next;
  if (LooksStill(state, gyro_radps, accel_mps2, gravity_mps2, gates)) {
    next.still_s = state.still_s + dt_s;
    next.still_accel_mps2 =
        state.still_accel_mps2 + (accel_mps2 - state.still_accel_mps2) *
                                     (dt_s / (gates.min_still_s + dt_s));
  } else {
    // The average starts afresh from this reading.
    next.still_accel_mps2 = accel_mps2;
  }
  next.attitude = next.still_s >= gates.min_still_s
                      ? UpdateAttitude(state.attitude, gyro_radps, accel_mps2,
                                       dt_s, gravity_mps2, gates.gains)
                      : Predict(state.attitude, gyro_radps, dt_s);
  return next;
}

AttitudeState ResetHeading(const AttitudeState& state, const Vec3& forward) {
  const Vec3 f = Rotate(state.sensor_to_world, forward);
  // Nearly vertical, the forward axis has no heading to speak of.
  if (f.x * f.x + f.y * f.y < 0.25) return state;
  const double heading = std::atan2(-f.x, f.y);
  AttitudeState out = state;
  out.sensor_to_world = Normalized(FromRotationVector(Vec3{0, 0, -heading}) *
                                   state.sensor_to_world);
  return out;
}

}  // namespace stephub::scoring
