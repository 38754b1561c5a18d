// Tests of stillness detection and the standing frame.
#include "hub/scoring/calibration.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <optional>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "hub/scoring/force_plate.h"

namespace stephub::scoring {
namespace {

constexpr double kG = 9.81;
constexpr int64_t kStepUs = 5'000;

ImuSample Reading(int64_t t_us, const Vec3& accel, const Vec3& gyro = {}) {
  return {t_us, accel.x, accel.y, accel.z, gyro.x, gyro.y, gyro.z};
}

TEST(Stillness, NeedsOneSecondWithoutMovement) {
  StillnessDetector detector;
  const Vec3 accel{0.3, -0.2, 9.8};
  const Vec3 bias{0.01, -0.02, 0.005};
  int64_t t = 0;
  for (; t < 500'000; t += kStepUs) {
    ASSERT_FALSE(detector.Add(Reading(t, accel, bias)));
  }
  ASSERT_FALSE(detector.Add(Reading(t, accel, {1.0, 0, 0})));  // a movement
  const int64_t still_from = t += kStepUs;
  std::optional<StillWindow> window;
  for (; !window; t += kStepUs) window = detector.Add(Reading(t, accel, bias));
  EXPECT_EQ(window->start_us, still_from);
  EXPECT_EQ(window->end_us, still_from + 1'000'000);
  EXPECT_NEAR(window->mean_accel_mps2.x, accel.x, 1e-12);
  EXPECT_NEAR(window->mean_gyro_radps.y, bias.y, 1e-12);
}

TEST(Stillness, SlowDriftIsNotStillness) {
  StillnessDetector detector;
  // Tilting steadily at 5 deg/s: slow enough per sample, not steady.
  for (int64_t t = 0; t < 3'000'000; t += kStepUs) {
    const double a = DegToRad(5) * t * 1e-6;
    ASSERT_FALSE(detector.Add(Reading(
        t, {kG * std::sin(a), 0, kG * std::cos(a)}, {0, DegToRad(5), 0})))
        << t;
  }
}

// A patient standing for ten minutes before the first repetition: the
// first window is found as before, every later sample reports the latest
// still stretch, and the detector holds no more than 1.5 s of samples.
TEST(Stillness, LongStandingKeepsTheWindowBounded) {
  StillnessDetector detector;
  const Vec3 accel{0.3, -0.2, 9.8};
  std::optional<StillWindow> first;
  int reported = 0;
  size_t most = 0;
  for (int64_t t = 0; t <= 600'000'000; t += kStepUs) {
    // A little noise, so that the window is steady but not constant.
    const double wobble = 0.01 * ((t / kStepUs) % 7 - 3);
    const auto window =
        detector.Add(Reading(t, accel + Vec3{wobble, 0, 0}, {0, wobble, 0}));
    if (window && !first) first = window;
    reported += window.has_value();
    most = std::max(most, detector.buffered_samples());
  }
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->start_us, 0);
  EXPECT_EQ(first->end_us, 1'000'000);
  EXPECT_EQ(reported, 600'000'000 / kStepUs + 1 - 200);
  EXPECT_LE(most, 1'500'000 / kStepUs + 1);
}

TEST(PlateStillness, LongStandingKeepsTheWindowBounded) {
  PlateStillnessDetector detector;
  std::optional<PlateStillWindow> first;
  size_t most = 0;
  for (int64_t t = 0; t <= 60'000'000; t += 1'000) {
    const double fz = 700 + ((t / 1'000) % 5 - 2);
    const auto window = detector.Add({t, fz, 0, 0});
    if (window && !first) first = window;
    most = std::max(most, detector.buffered_samples());
  }
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->start_us, 0);
  EXPECT_EQ(first->end_us, 1'000'000);
  EXPECT_NEAR(first->weight_n, 700, 0.01);
  EXPECT_LE(most, 1'500u + 1);
}

// The detectors skip their pass over the window when running sums show it
// far from steady. On data that wanders in and out of the limits they must
// find exactly the windows that judging every window in full finds: this
// is that judge, on the latest 1-1.5 s (the detectors' rule, repeated on
// purpose), counting both answers.
template <typename Sample, typename Judge>
class JudgedInFull {
 public:
  explicit JudgedInFull(Judge judge) : judge_(judge) {}
  auto Add(const Sample& sample) {
    window_.push_back(sample);
    while (window_.back().t_us - window_.front().t_us > 1'500'000) {
      window_.pop_front();
    }
    decltype(judge_(std::vector<Sample>())) result;
    if (window_.back().t_us - window_.front().t_us < 1'000'000) return result;
    result = judge_(std::vector<Sample>(window_.begin(), window_.end()));
    if (!result) window_.pop_front();
    ++(result ? found : refused);
    return result;
  }
  void Clear() { window_.clear(); }
  int found = 0, refused = 0;

 private:
  Judge judge_;
  std::deque<Sample> window_;
};

TEST(Stillness, SkippingClearlyUnsteadyWindowsFindsTheSameWindows) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> uniform(0, 1);
  std::normal_distribution<double> normal(0, 1);
  StillnessDetector detector;
  JudgedInFull<ImuSample, decltype(&SteadyWindowOf)> reference(&SteadyWindowOf);
  int64_t t = 0;
  for (int segment = 0; segment < 40; ++segment) {
    // Around the limits: scatter 0.4 m/s^2 and 0.05 rad/s, drift 0.1 m/s^2
    // and 0.04 rad/s between halves of a window.
    const double accel_noise = 0.05 + 0.4 * uniform(rng);
    const double gyro_noise = 0.005 + 0.06 * uniform(rng);
    const double accel_slope = 0.3 * (uniform(rng) - 0.5);  // per second
    const double gyro_slope = 0.1 * (uniform(rng) - 0.5);
    const int64_t end = t + static_cast<int64_t>(2e6 * uniform(rng)) + 200'000;
    for (const int64_t start = t; t < end; t += kStepUs) {
      const double s = (t - start) * 1e-6;
      auto noisy = [&](double sd, double limit) {
        return std::clamp(sd * normal(rng), -limit, limit);
      };
      const ImuSample sample = Reading(
          t,
          {0.3 + accel_slope * s + noisy(accel_noise, 0.5),
           -0.2 + noisy(accel_noise, 0.5), 9.8 + noisy(accel_noise, 0.5)},
          {0.01 + gyro_slope * s + noisy(gyro_noise, 0.2),
           noisy(gyro_noise, 0.2), noisy(gyro_noise, 0.2)});
      const auto window = detector.Add(sample);
      const auto expected = reference.Add(sample);
      ASSERT_EQ(window.has_value(), expected.has_value()) << "t_us " << t;
      if (!window) continue;
      EXPECT_EQ(window->start_us, expected->start_us);
      EXPECT_EQ(window->end_us, expected->end_us);
      EXPECT_DOUBLE_EQ(window->mean_accel_mps2.x, expected->mean_accel_mps2.x);
      EXPECT_DOUBLE_EQ(window->mean_gyro_radps.z, expected->mean_gyro_radps.z);
    }
  }
  // Both answers came up often, so the limits were crossed both ways.
  EXPECT_GT(reference.found, 100);
  EXPECT_GT(reference.refused, 100);
}

TEST(PlateStillness, SkippingClearlyUnsteadyWindowsFindsTheSameWindows) {
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<double> uniform(0, 1);
  std::normal_distribution<double> normal(0, 1);
  PlateStillnessDetector detector;
  JudgedInFull<ForceSample, decltype(&SteadyPlateWindowOf)> reference(
      &SteadyPlateWindowOf);
  int64_t t = 0;
  for (int segment = 0; segment < 20; ++segment) {
    // Around the limits at 700 N: scatter 10.5 N, drift 7 N between halves;
    // now and then a step off the plate (below 200 N) starts afresh.
    const double noise = 3 + 10 * uniform(rng);
    const double slope = 24 * (uniform(rng) - 0.5);  // N per second
    const bool step_off = uniform(rng) < 0.1;
    const int64_t end = t + static_cast<int64_t>(2e6 * uniform(rng)) + 100'000;
    for (const int64_t start = t; t < end; t += 1'000) {
      const double fz =
          step_off && t - start < 20'000
              ? 50.0
              : 700 + slope * (t - start) * 1e-6 + noise * normal(rng);
      const ForceSample sample{t, fz, 0, 0};
      const auto window = detector.Add(sample);
      std::optional<PlateStillWindow> expected;
      if (fz < 200) {
        reference.Clear();
      } else {
        expected = reference.Add(sample);
      }
      ASSERT_EQ(window.has_value(), expected.has_value()) << "t_us " << t;
      if (!window) continue;
      EXPECT_EQ(window->start_us, expected->start_us);
      EXPECT_EQ(window->end_us, expected->end_us);
      EXPECT_DOUBLE_EQ(window->weight_n, expected->weight_n);
    }
  }
  EXPECT_GT(reference.found, 100);
  EXPECT_GT(reference.refused, 100);
}

// A sensor strapped square to the pelvis: tilted about its own x and y
// axes, its x-axis still in the pelvis's frontal plane.
Mat3 SquareMount() { return RotY(DegToRad(8)) * RotX(DegToRad(-11)); }

StandingPosture Standing(const Mat3& mount) {
  const Vec3 accel = Transpose(mount) * Vec3{0, 0, kG};
  return StandingPostureFrom(StillWindow{0, 1'000'000, accel, {0.01, 0, 0}});
}

TEST(StandingPosture, RecoversTheMount) {
  const Mat3 mount = SquareMount();
  const StandingPosture p = Standing(mount);
  EXPECT_NEAR(p.gravity_mps2, kG, 1e-12);
  EXPECT_NEAR(p.gyro_bias_radps.x, 0.01, 1e-15);
  const Vec3 right = Transpose(mount) * Vec3{1, 0, 0};
  const Vec3 forward = Transpose(mount) * Vec3{0, 1, 0};
  EXPECT_NEAR(Dot(p.pelvis_right, right), 1, 1e-12);
  EXPECT_NEAR(Dot(p.pelvis_forward, forward), 1, 1e-12);
  const PelvisAngles standing = PelvisAnglesOf(p.sensor_to_world, p);
  EXPECT_NEAR(standing.obliquity_deg, 0, 1e-12);
  EXPECT_NEAR(standing.forward_tilt_deg, 0, 1e-12);
}

TEST(StandingPosture, AnglesIgnoreHeadingAndSeparateTiltFromObliquity) {
  const Mat3 mount = SquareMount();
  const StandingPosture p = Standing(mount);
  for (double heading : {0.0, 35.0, -120.0}) {
    // Right side 7 deg up, 12 deg anterior tilt, in the simulator's order.
    const Mat3 pelvis =
        RotZ(DegToRad(heading)) * RotY(DegToRad(-7)) * RotX(DegToRad(-12));
    const PelvisAngles a = PelvisAnglesOf(FromMatrix(pelvis * mount), p);
    EXPECT_NEAR(a.obliquity_deg, 7, 1e-9);
    // Tilt is the forward axis's dip: asin(sin 12 cos 7).
    EXPECT_NEAR(
        a.forward_tilt_deg,
        RadToDeg(std::asin(std::sin(DegToRad(12)) * std::cos(DegToRad(7)))),
        1e-9);
  }
}

}  // namespace
// Rates of a segment turning about an axis `heading_deg` off the sensor's
// x, down and back up, with a little rate about another axis.
std::vector<RateSample> HingeRates(double heading_deg, double off_axis_share,
                                   double peak_radps) {
  const double a = DegToRad(heading_deg);
  const Vec3 axis{std::cos(a), std::sin(a), 0};
  const Vec3 other{-std::sin(a), std::cos(a), 0};
  std::vector<RateSample> rates;
  for (int i = 0; i <= 600; ++i) {  // 3 s at 200 Hz
    const double phase = std::sin(2 * kPi * i / 600.0);
    rates.push_back({i * 5000, axis * (peak_radps * phase) +
                                   other * (off_axis_share * peak_radps *
                                            std::cos(2 * kPi * i / 300.0))});
  }
  return rates;
}

StandingPosture Upright() {
  return StandingPostureFrom({0, 1'000'000, {0, 0, 9.81}, {0, 0, 0}});
}

TEST(HeadingFromHingeMovement, FindsTheAxisTurnedAbout) {
  for (double heading : {-12.0, -5.0, 0.0, 3.0, 15.0}) {
    auto fit =
        HeadingFromHingeMovement(HingeRates(heading, 0.05, 0.5), Upright());
    ASSERT_TRUE(fit.ok()) << fit.status();
    EXPECT_NEAR(fit->heading_deg, heading, 1e-6);
    EXPECT_NEAR(fit->off_axis_share, 0.05, 0.005);
  }
}

TEST(HeadingFromHingeMovement, RefusesWhatIsNotOneClearHinge) {
  auto small = HeadingFromHingeMovement(HingeRates(2, 0, 0.02), Upright());
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().message().find("turned only"), std::string::npos);
  auto wobbly = HeadingFromHingeMovement(HingeRates(2, 0.6, 0.5), Upright());
  ASSERT_FALSE(wobbly.ok());
  EXPECT_NE(wobbly.status().message().find("one axis"), std::string::npos);
  auto crooked = HeadingFromHingeMovement(HingeRates(35, 0, 0.5), Upright());
  ASSERT_FALSE(crooked.ok());
  EXPECT_NE(crooked.status().message().find("crooked"), std::string::npos);
  EXPECT_FALSE(HeadingFromHingeMovement({}, Upright()).ok());
}

TEST(WithHeading, TurnsTheMediolateralAxisAndTheWorldWithIt) {
  const StandingPosture turned = WithHeading(Upright(), 10);
  EXPECT_NEAR(turned.pelvis_right.x, std::cos(DegToRad(10)), 1e-12);
  EXPECT_NEAR(turned.pelvis_right.y, std::sin(DegToRad(10)), 1e-12);
  // The turned right axis is the new world's x.
  const Vec3 x = Rotate(turned.sensor_to_world, turned.pelvis_right);
  EXPECT_NEAR(x.x, 1, 1e-12);
  EXPECT_NEAR(x.y, 0, 1e-12);
  EXPECT_NEAR(x.z, 0, 1e-12);
}

}  // namespace stephub::scoring
