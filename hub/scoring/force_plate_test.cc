// Tests of the force plate's centre-of-mass tracking and the free foot's
// load sharing, on exact synthetic forces.
#include "hub/scoring/force_plate.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace stephub::scoring {
namespace {

constexpr double kGravity = 9.81;
constexpr double kWeightN = 700;
constexpr double kPi = 3.14159265358979323846;

// 1 kHz readings of `force(t_s)` over [0, seconds].
template <typename F>
std::vector<PlateForce> Readings(double seconds, F force) {
  std::vector<PlateForce> out;
  for (int64_t t = 0; t <= static_cast<int64_t>(seconds * 1e6); t += 1000) {
    out.push_back({t, force(t * 1e-6)});
  }
  return out;
}

// A foot's load: `load_n` on between on_s and off_s, 50 ms ramps.
double FootLoad(double t, double on_s, double off_s, double load_n) {
  const double ramp = 0.05;
  const double up = std::clamp((t - on_s) / ramp, 0.0, 1.0);
  const double down = std::clamp((off_s - t) / ramp, 0.0, 1.0);
  return load_n * std::min(up, down);
}

TEST(BodyForceAcross, AddsBackAConstantLoadOnASteadyBody) {
  // From where the fall starts to where the force is back (as the tracker
  // passes them).
  const auto plate =
      Readings(0.4, [](double t) { return 760 - FootLoad(t, 0, 0.4, 70); });
  const std::vector<double> body = BodyForceAcross(plate, kWeightN);
  ASSERT_EQ(body.size(), plate.size());
  for (double f : body) EXPECT_NEAR(f, 760, 1e-9);
}

TEST(BodyForceAcross, FollowsTheBodysForceUnderTheLoad) {
  // The body's force steps down (a hold at the bottom) and back up while the
  // foot is down; the load, read from the landing and the lift, stays put.
  auto body_n = [](double t) { return t > 0.15 && t < 0.3 ? 700.0 : 760.0; };
  const auto plate = Readings(
      0.45, [&](double t) { return body_n(t) - FootLoad(t, 0, 0.45, 70); });
  const std::vector<double> body = BodyForceAcross(plate, kWeightN);
  for (size_t i = 0; i < plate.size(); ++i) {
    EXPECT_NEAR(body[i], body_n(plate[i].t_us * 1e-6), 1e-9) << i;
  }
}

TEST(BodyForceAcross, InterpolatesALoadThatChanges) {
  // 70 N at the landing, 50 N at the lift, linearly in between.
  const auto plate = Readings(0.5, [](double t) {
    const double load = 70 - 20 * (t - 0.05) / 0.4;
    return 760 - load * std::min({t / 0.05, 1.0, (0.5 - t) / 0.05});
  });
  const std::vector<double> body = BodyForceAcross(plate, kWeightN);
  for (size_t i = 0; i < plate.size(); ++i) EXPECT_NEAR(body[i], 760, 1e-6);
}

TEST(IsFreeFootLoad, ByDepthOfTheFallOrWhereTheBodyIs) {
  const BodyMotion standing;
  const BodyMotion deep_and_still{-0.10, 0};
  const BodyMotion deep_and_rising{-0.06, 0.15};
  const BodyMotion deep_and_lowering{-0.10, -0.08};
  // A quarter of body weight is no body accelerating, anywhere.
  EXPECT_TRUE(IsFreeFootLoad(0.3, standing));
  // Lowering from standing, slowing a rise: the body's own motion.
  EXPECT_FALSE(IsFreeFootLoad(0.05, standing));
  EXPECT_FALSE(IsFreeFootLoad(0.10, deep_and_rising));
  // At the bottom, the body brakes or holds: a fall there is the foot.
  EXPECT_TRUE(IsFreeFootLoad(0.05, deep_and_still));
  EXPECT_TRUE(IsFreeFootLoad(0.05, deep_and_lowering));
  // Balance corrections move the force by 1-2% at most.
  EXPECT_FALSE(IsFreeFootLoad(0.005, deep_and_still));
}

// A step-down of the centre of mass: minimum-jerk lowering by depth_m over
// lower_s, a hold, the same rise over rise_s (smooth accelerations, as a
// body makes them); the body's vertical force over time.
struct StepDown {
  double start_s = 1, lower_s = 1.2, hold_s = 0.3, rise_s = 1.2;
  double depth_m = 0.12;
  static double MinimumJerkAccel(double s, double seconds) {
    return (60 * s - 180 * s * s + 120 * s * s * s) / (seconds * seconds);
  }
  double AccelAt(double t) const {
    t -= start_s;
    if (t < 0) return 0;
    if (t < lower_s) return -depth_m * MinimumJerkAccel(t / lower_s, lower_s);
    t -= lower_s + hold_s;
    if (t < 0) return 0;
    if (t < rise_s) return depth_m * MinimumJerkAccel(t / rise_s, rise_s);
    return 0;
  }
  double ForceAt(double t) const {
    return kWeightN * (1 + AccelAt(t) / kGravity);
  }
  double bottom_s() const { return start_s + lower_s + 0.5 * hold_s; }
  double end_s() const { return start_s + lower_s + hold_s + rise_s; }
};

// Runs the tracker over `force` at 1 kHz for `seconds`; the deepest
// excursion and the excursion at the end.
template <typename F>
std::pair<double, double> Track(F force, double seconds,
                                std::vector<LoadSharing>* sharings = nullptr) {
  ComDepthTracker com(kWeightN, 0);
  double deepest = 0, last = 0;
  for (int64_t t = 1000; t <= static_cast<int64_t>(seconds * 1e6); t += 1000) {
    last = com.Add(t, force(t * 1e-6), /*standing=*/false);
    deepest = std::max(deepest, last);
    if (sharings && com.ended_sharing())
      sharings->push_back(*com.ended_sharing());
  }
  return {deepest, last};
}

TEST(ComDepthTracker, FollowsAStepDown) {
  // The zero-velocity update holds the speed at zero until the force leaves
  // body weight by 0.05 m/s^2 (over 50 ms): a few millimetres of the start
  // of the lowering are missed.
  const StepDown rep;
  const auto [deepest, last] =
      Track([&](double t) { return rep.ForceAt(t); }, rep.end_s() + 1);
  EXPECT_NEAR(deepest, 120, 4);
  EXPECT_NEAR(last, 0, 1);
}

TEST(ComDepthTracker, HoldsThroughATouchDownAtTheBottom) {
  // The foot lands as the lowering ends and lifts as the rise begins: the
  // body's own force changes across the interval (braking, hold, push), and
  // the bridge counts some of that as load. It errs on the safe side: the
  // excursion comes back up early (above standing here, as nothing bleeds
  // it off), never sinks.
  for (double share : {0.05, 0.1, 0.3}) {
    const StepDown rep;
    const double on = rep.bottom_s() - 0.2;
    std::vector<LoadSharing> sharings;
    const auto [deepest, last] = Track(
        [&](double t) {
          return rep.ForceAt(t) - FootLoad(t, on, on + 0.4, share * kWeightN);
        },
        rep.end_s() + 1, &sharings);
    EXPECT_NEAR(deepest, 120, 4) << share;
    EXPECT_LT(last, 5) << share;
    ASSERT_EQ(sharings.size(), 1u) << share;
    EXPECT_NEAR(sharings[0].start_us * 1e-6, on, 0.02) << share;
    EXPECT_GE(sharings[0].end_us * 1e-6, on + 0.4) << share;
    EXPECT_LE(sharings[0].end_us * 1e-6, on + 0.4 + 0.15) << share;
  }
}

TEST(ComDepthTracker, QuickRepsDeceleratingHardAreNoTouchDown) {
  // A fast rise slows at 14% of g near its top: the body, not a foot.
  StepDown rep;
  rep.lower_s = 0.6;
  rep.rise_s = 0.5;
  rep.hold_s = 0.1;
  rep.depth_m = 0.06;
  std::vector<LoadSharing> sharings;
  const auto [deepest, last] = Track([&](double t) { return rep.ForceAt(t); },
                                     rep.end_s() + 1, &sharings);
  EXPECT_TRUE(sharings.empty());
  EXPECT_NEAR(deepest, 60, 3);
  EXPECT_NEAR(last, 0, 1);
}

TEST(ComDepthTracker, StandingOnBothFeetIsOneLongLoadSharing) {
  // The calibration movement: the free foot takes half the weight for 4 s
  // while both knees bend; the plate cannot follow the body then.
  std::vector<LoadSharing> sharings;
  const auto [deepest, last] = Track(
      [](double t) { return kWeightN - FootLoad(t, 1, 5, 0.5 * kWeightN); }, 7,
      &sharings);
  ASSERT_EQ(sharings.size(), 1u);
  EXPECT_NEAR(sharings[0].start_us * 1e-6, 1, 0.02);
  EXPECT_NEAR(sharings[0].end_us * 1e-6, 5, 0.05);
  EXPECT_NEAR(sharings[0].least_force_n, 0.5 * kWeightN, 1);
  EXPECT_LT(deepest, 2);
  EXPECT_NEAR(last, 0, 1);
}

}  // namespace
}  // namespace stephub::scoring
