// Tests of the complementary filter on exact synthetic IMU data.
#include "hub/scoring/attitude.h"

#include <algorithm>
#include <cmath>

#include "gtest/gtest.h"

namespace stephub::scoring {
namespace {

constexpr double kG = 9.81;
constexpr double kDt = 0.005;  // 200 Hz

// A noise-free accelerometer at rest (or turning about its own centre).
Vec3 GravityReading(const Quaternion& sensor_to_world) {
  return UpInSensorFrame(sensor_to_world) * kG;
}

double AngleBetweenDeg(const Quaternion& a, const Quaternion& b) {
  return RadToDeg(Norm(ToRotationVector(Conjugate(a) * b)));
}

double TiltErrorDeg(const Quaternion& estimate, const Quaternion& truth) {
  const double c = Dot(UpInSensorFrame(estimate), UpInSensorFrame(truth));
  return RadToDeg(std::acos(std::min(1.0, c)));
}

TEST(Attitude, ConstantRateIsIntegratedExactly) {
  const Vec3 rate{0.3, -0.2, 0.5};
  Quaternion truth;
  AttitudeState state{truth, {}, rate};
  for (int i = 0; i < 4000; ++i) {  // 20 s, several full turns
    truth = truth * FromRotationVector(rate * kDt);
    state = UpdateAttitude(state, rate, GravityReading(truth), kDt, kG);
  }
  EXPECT_LT(AngleBetweenDeg(state.sensor_to_world, truth), 1e-8);
  EXPECT_LT(Norm(state.gyro_bias_radps), 1e-10);
}

TEST(Attitude, RecoversAStaticTiltFromTheAccelerometer) {
  const Quaternion truth =
      FromRotationVector({DegToRad(10), DegToRad(-6), DegToRad(40)});
  AttitudeState state;  // starts level
  const double initial = TiltErrorDeg(state.sensor_to_world, truth);
  for (int i = 0; i < 400; ++i) {  // 2 s
    state = UpdateAttitude(state, {}, GravityReading(truth), kDt, kG);
  }
  EXPECT_LT(TiltErrorDeg(state.sensor_to_world, truth), initial / 2);
  for (int i = 0; i < 3600; ++i) {  // 20 s in all
    state = UpdateAttitude(state, {}, GravityReading(truth), kDt, kG);
  }
  EXPECT_LT(TiltErrorDeg(state.sensor_to_world, truth), 0.01);
}

TEST(Attitude, EstimatesTheGyroscopeBias) {
  // Level and still; the bias about the vertical is unobservable from
  // gravity, so the test uses horizontal components.
  const Vec3 bias{0.02, -0.01, 0};
  const Quaternion truth;
  AttitudeState state{truth, {}, bias};
  for (int i = 0; i < 12000; ++i) {  // 60 s
    state = UpdateAttitude(state, bias, GravityReading(truth), kDt, kG);
  }
  EXPECT_NEAR(state.gyro_bias_radps.x, bias.x, 1e-5);
  EXPECT_NEAR(state.gyro_bias_radps.y, bias.y, 1e-5);
  EXPECT_LT(TiltErrorDeg(state.sensor_to_world, truth), 0.01);
}

TEST(Attitude, TracksATiltingMotionWithACalibratedBias) {
  const Vec3 bias{0.01, 0.005, -0.008};
  const double amplitude = DegToRad(15);
  AttitudeState state{Quaternion{}, bias, Vec3{amplitude * kPi, 0, 0} + bias};
  for (int i = 1; i <= 2000; ++i) {  // 10 s of +-15 deg pitching at 0.5 Hz
    const double t = i * kDt;
    const Quaternion truth =
        FromRotationVector({amplitude * std::sin(kPi * t), 0, 0});
    const Vec3 rate{amplitude * kPi * std::cos(kPi * t), 0, 0};
    state = UpdateAttitude(state, rate + bias, GravityReading(truth), kDt, kG);
    ASSERT_LT(TiltErrorDeg(state.sensor_to_world, truth), 0.01);
  }
}

TEST(Attitude, IgnoresTheAccelerometerWhenFarFromGravity) {
  const Quaternion truth = FromRotationVector({DegToRad(10), 0, 0});
  AttitudeState state;
  for (int i = 0; i < 200; ++i) {
    state = UpdateAttitude(state, {}, GravityReading(truth) * 1.3, kDt, kG);
  }
  EXPECT_LT(AngleBetweenDeg(state.sensor_to_world, Quaternion{}), 1e-12);
  // Just inside the gate it corrects.
  state = UpdateAttitude(state, {}, GravityReading(truth) * 1.09, kDt, kG);
  EXPECT_GT(AngleBetweenDeg(state.sensor_to_world, Quaternion{}), 1e-3);
}

TEST(Attitude, UpInSensorFrame) {
  const Vec3 up = UpInSensorFrame(FromRotationVector({0, DegToRad(90), 0}));
  // Ry(90 deg) turns the sensor's -x axis to world up.
  EXPECT_NEAR(up.x, -1, 1e-12);
  EXPECT_NEAR(up.z, 0, 1e-12);
}

}  // namespace
TEST(ResetHeading, TurnsBackAboutTheVerticalOnly) {
  AttitudeState state;
  // Tilted 5 deg forward, then drifted 3 deg in heading.
  state.sensor_to_world = FromRotationVector(Vec3{0, 0, DegToRad(3)}) *
                          FromRotationVector(Vec3{DegToRad(5), 0, 0});
  const Vec3 up_before = UpInSensorFrame(state.sensor_to_world);
  const AttitudeState reset = ResetHeading(state, Vec3{0, 1, 0});
  const Vec3 f = Rotate(reset.sensor_to_world, Vec3{0, 1, 0});
  EXPECT_NEAR(f.x, 0, 1e-12);
  EXPECT_GT(f.y, 0.99);
  const Vec3 up_after = UpInSensorFrame(reset.sensor_to_world);
  EXPECT_NEAR(Norm(up_after - up_before), 0, 1e-12);
}

}  // namespace stephub::scoring
