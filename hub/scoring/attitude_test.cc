// Tests of the complementary filter on exact synthetic IMU data.
#include "hub/scoring/attitude.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <iostream>

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

// Quick step-downs as the sacrum makes them: the pelvis tilts 9 deg forward
// while its sensor sits back 15 cm and sinks 5 cm, in 0.6 s down, 0.1 s at
// the bottom, 0.5 s up and 0.4 s standing (raised-cosine phases, as the
// simulator's). Exact readings: the gyroscope the tilt rate, the
// accelerometer gravity plus that acceleration.
struct QuickRepetitions {
  static constexpr double kLowerS = 0.6, kHoldS = 0.1, kRiseS = 0.5,
                          kPauseS = 0.4;
  static constexpr double kRepS = kLowerS + kHoldS + kRiseS + kPauseS;
  static constexpr double kTiltRad = 9 * kPi / 180;
  double sit_back_m = 0.15;
  double sink_m = 0.05;

  // Depth 0-1 and its first two derivatives at t into a repetition.
  static std::array<double, 3> Depth(double t) {
    t = std::fmod(t, kRepS);
    auto phase = [](double u, double s, double sign) {
      const double w = kPi / s;
      return std::array<double, 3>{(1 - sign * std::cos(w * u)) / 2,
                                   sign * w * std::sin(w * u) / 2,
                                   sign * w * w * std::cos(w * u) / 2};
    };
    if (t < kLowerS) return phase(t, kLowerS, 1);
    if (t < kLowerS + kHoldS) return {1, 0, 0};
    if (t < kLowerS + kHoldS + kRiseS) {
      return phase(t - kLowerS - kHoldS, kRiseS, -1);
    }
    return {0, 0, 0};
  }
  Quaternion Truth(double t) const {
    return FromRotationVector({kTiltRad * Depth(t)[0], 0, 0});
  }
  Vec3 Gyro(double t) const { return {kTiltRad * Depth(t)[1], 0, 0}; }
  Vec3 Accel(double t) const {
    const double a = Depth(t)[2];  // backward and downward
    return Rotate(Conjugate(Truth(t)),
                  Vec3{0, -sit_back_m * a, kG - sink_m * a});
  }
  static bool Standing(double t) {
    return std::fmod(t, kRepS) > kRepS - kPauseS / 2;
  }
};

TEST(StillCorrected, IgnoresTheAccelerationOfQuickRepetitions) {
  using Q = QuickRepetitions;
  const Q q;
  AttitudeState plain;
  StillCorrectedAttitude still;
  double plain_standing_deg = 0, still_standing_deg = 0, still_deg = 0;
  for (int i = 1; i <= static_cast<int>(8 * Q::kRepS / kDt); ++i) {
    const double t = i * kDt;
    plain = UpdateAttitude(plain, q.Gyro(t), q.Accel(t), kDt, kG);
    still = UpdateStillCorrected(still, q.Gyro(t), q.Accel(t), kDt, kG);
    const double error =
        TiltErrorDeg(still.attitude.sensor_to_world, q.Truth(t));
    still_deg = std::max(still_deg, error);
    if (Q::Standing(t)) {
      plain_standing_deg = std::max(
          plain_standing_deg, TiltErrorDeg(plain.sensor_to_world, q.Truth(t)));
      still_standing_deg = std::max(still_standing_deg, error);
    }
  }
  std::cout << "standing between reps: tilt error " << plain_standing_deg
            << " deg gated on |a|, " << still_standing_deg
            << " deg corrected only while still (" << still_deg
            << " deg at most)\n";
  // The error the segmentation of sacral tilt tripped on ...
  EXPECT_GT(plain_standing_deg, 1.5);
  // ... is gone.
  EXPECT_LT(still_deg, 0.05);
}

TEST(StillCorrected, TakesTheTiltFromTheAccelerometerOnlyWhenStill) {
  const Quaternion truth = FromRotationVector({DegToRad(10), 0, 0});
  StillCorrectedAttitude state;
  // Turning: the gyroscope alone.
  const Vec3 turning{0.2, 0, 0};
  state = UpdateStillCorrected(state, turning, GravityReading(truth), kDt, kG);
  EXPECT_NEAR(AngleBetweenDeg(state.attitude.sensor_to_world, Quaternion{}),
              RadToDeg(0.5 * 0.2 * kDt), 1e-9);
  EXPECT_EQ(state.still_s, 0);
  state = {};
  // Still but not yet for long: still the gyroscope alone.
  for (int i = 0; i < 19; ++i) {
    state = UpdateStillCorrected(state, {}, GravityReading(truth), kDt, kG);
  }
  EXPECT_LT(AngleBetweenDeg(state.attitude.sensor_to_world, Quaternion{}),
            1e-12);
  // Then it corrects, and within 10 s settles on the measured tilt.
  for (int i = 0; i < 2000; ++i) {
    state = UpdateStillCorrected(state, {}, GravityReading(truth), kDt, kG);
  }
  EXPECT_LT(TiltErrorDeg(state.attitude.sensor_to_world, truth), 0.05);
}

// As a repetition sets off, the pelvis accelerates before it turns. Here
// the hips only sit back, which changes |a| by 2 % at most: the
// accelerometer still is not taken, and the tilt is the gyroscope's alone.
TEST(StillCorrected, TakesNothingFromTheAccelerometerAsARepetitionSetsOff) {
  const QuickRepetitions q{.sink_m = 0};
  StillCorrectedAttitude still;
  AttitudeState gyro_only;
  const FilterGains none = {.kp_radps = 0, .ki_radps2 = 0};
  // Standing (the last 0.4 s of a rep), then the first 0.3 s of lowering.
  const double start_s = QuickRepetitions::kRepS - QuickRepetitions::kPauseS;
  for (int i = 1; i <= 140; ++i) {
    const double t = start_s + i * kDt;
    still = UpdateStillCorrected(still, q.Gyro(t), q.Accel(t), kDt, kG);
    if (t > QuickRepetitions::kRepS) {
      gyro_only =
          UpdateAttitude(gyro_only, q.Gyro(t), q.Accel(t), kDt, kG, none);
    } else {
      gyro_only = still.attitude;
    }
  }
  EXPECT_LT(AngleBetweenDeg(still.attitude.sensor_to_world,
                            gyro_only.sensor_to_world),
            1e-9);
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
