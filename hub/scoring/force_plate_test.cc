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
double LinearRampLoad(double t, double on_s, double off_s, double load_n) {
  const double ramp = 0.05;
  const double up = std::clamp((t - on_s) / ramp, 0.0, 1.0);
  const double down = std::clamp((off_s - t) / ramp, 0.0, 1.0);
  return load_n * std::min(up, down);
}

// A foot's load with raised-cosine ramps of ramp_s centred on on_s and
// off_s, as the simulator's.
double SmoothFootLoad(double t, double on_s, double off_s, double load_n,
                      double ramp_s = 0.05) {
  const auto step = [&](double x) {
    x = std::clamp(x / ramp_s + 0.5, 0.0, 1.0);
    return 0.5 * (1 - std::cos(kPi * x));
  };
  return load_n * std::min(step(t - on_s), step(off_s - t));
}

// The foot's load as FootLoadIn reads it from 1 kHz readings of
// `body(t) - load(t)` over [0, seconds], looking near on_s and off_s.
template <typename Body, typename Load>
FootLoad LoadFrom(double seconds, double on_s, double off_s, Body body,
                  Load load) {
  const auto plate =
      Readings(seconds, [&](double t) { return body(t) - load(t); });
  const int64_t on_us = static_cast<int64_t>(on_s * 1e6);
  const int64_t off_us = static_cast<int64_t>(off_s * 1e6);
  return FootLoadIn(plate,
                    SteepestChange(plate, on_us - 30'000, on_us + 30'000,
                                   /*falling=*/true),
                    SteepestChange(plate, off_us - 30'000, off_us + 30'000,
                                   /*falling=*/false));
}

TEST(SteepestChange, FindsTheMiddleOfARamp) {
  const auto plate = Readings(
      1, [](double t) { return 760 - SmoothFootLoad(t, 0.3, 0.7, 70); });
  EXPECT_NEAR(SteepestChange(plate, 0, 500'000, true), 300'000, 2'000);
  EXPECT_NEAR(SteepestChange(plate, 500'000, 1'000'000, false), 700'000, 2'000);
}

TEST(FootLoadIn, ReadsAConstantLoadOnASteadyBody) {
  const FootLoad load = LoadFrom(
      0.8, 0.2, 0.6, [](double) { return 760.0; },
      [](double t) { return SmoothFootLoad(t, 0.2, 0.6, 70); });
  EXPECT_NEAR(load.on_n, 70, 1);
  EXPECT_NEAR(load.off_n, 70, 1);
  EXPECT_NEAR(load.on_us, 200'000, 5'000);
  EXPECT_NEAR(load.off_us, 600'000, 5'000);
  EXPECT_NEAR(load.At(400'000), 70, 1);
  EXPECT_NEAR(load.At(100'000), 0, 1e-9);
  EXPECT_NEAR(load.At(700'000), 0, 1e-9);
}

TEST(FootLoadIn, TellsTheLoadFromTheBodysForceChangingAsFast) {
  // The foot lands while the body stops braking (its force falls by 10% of
  // body weight over 0.2 s, 2.5% per 50 ms: as steep, at its steepest, as a
  // foot's 50 ms ramp of a tenth of body weight) and lifts as the push up
  // starts; a step of the force's level cannot tell the two apart.
  const auto body = [](double t) {
    const double braking = 0.1 * kWeightN * 0.5 *
                           (1 + std::cos(kPi * std::clamp(t / 0.4, 0.0, 1.0)));
    const double push =
        0.08 * kWeightN * 0.5 *
        (1 - std::cos(kPi * std::clamp((t - 0.5) / 0.4, 0.0, 1.0)));
    return kWeightN + braking + push;
  };
  for (double share : {0.05, 0.1, 0.3}) {
    const FootLoad load = LoadFrom(1.0, 0.2, 0.6, body, [&](double t) {
      return SmoothFootLoad(t, 0.2, 0.6, share * kWeightN);
    });
    EXPECT_NEAR(load.on_n, share * kWeightN, 0.01 * kWeightN) << share;
    EXPECT_NEAR(load.off_n, share * kWeightN, 0.01 * kWeightN) << share;
  }
}

TEST(FootLoad, ChangesLinearlyBetweenLandingAndLift) {
  const FootLoad load{.on_us = 100'000,
                      .on_ramp_us = 40'000,
                      .on_n = 70,
                      .off_us = 500'000,
                      .off_ramp_us = 40'000,
                      .off_n = 50};
  EXPECT_NEAR(load.At(100'000), 35, 1e-9);
  EXPECT_NEAR(load.At(120'000), 70, 1e-9);
  EXPECT_NEAR(load.At(300'000), 60, 1e-9);
  EXPECT_NEAR(load.At(480'000), 50, 1e-9);
  EXPECT_NEAR(load.At(500'000), 25, 1e-9);
  const auto plate = Readings(
      0.6, [&](double t) { return 760 - load.At(std::llround(t * 1e6)); });
  for (double f : BodyForceAcross(plate, load)) EXPECT_NEAR(f, 760, 1e-9);
}

TEST(IsFreeFootLoad, ByWhereTheBodyIs) {
  const BodyMotion standing;
  const BodyMotion deep_and_still{-0.10, 0};
  const BodyMotion deep_and_rising{-0.06, 0.15};
  const BodyMotion deep_and_lowering{-0.10, -0.08};
  // Lowering from standing, even at half of g (quick reps), slowing a rise:
  // the body's own motion.
  EXPECT_FALSE(IsFreeFootLoad(0.05, standing));
  EXPECT_FALSE(IsFreeFootLoad(0.5, standing));
  EXPECT_FALSE(IsFreeFootLoad(0.10, deep_and_rising));
  // At the bottom, the body brakes or holds: a fall there is the foot.
  EXPECT_TRUE(IsFreeFootLoad(0.05, deep_and_still));
  EXPECT_TRUE(IsFreeFootLoad(0.05, deep_and_lowering));
  // Balance corrections move the force by 1-2% at most.
  EXPECT_FALSE(IsFreeFootLoad(0.005, deep_and_still));
}

TEST(IsBodySpeed, AQuickRepIsAFootsLoadIntegratedIsNot) {
  EXPECT_TRUE(IsBodySpeed(-0.45));
  EXPECT_TRUE(IsBodySpeed(0.45));
  // Half the weight on the floor, taken for the body, for 0.2 s.
  EXPECT_FALSE(IsBodySpeed(-0.5 * kGravity * 0.2));
}

TEST(HeightAtRest, TakesOffTheErrorSinceItCameIn) {
  // 0.1 m/s too fast down since 0.5 s before the rest: 5 cm too deep.
  EXPECT_NEAR(HeightAtRest(-0.15, -0.1, 1'000'000, 1'500'000), -0.10, 1e-12);
  EXPECT_NEAR(HeightAtRest(-0.15, 0.0, 1'000'000, 1'500'000), -0.15, 1e-12);
  // An error cannot come in after the rest.
  EXPECT_NEAR(HeightAtRest(-0.15, -0.1, 2'000'000, 1'500'000), -0.15, 1e-12);
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
  // body's own force changes across the interval (braking, hold, push), as
  // fast as the foot's load at times, and the load is read off the foot's
  // steps on top of it. What is left of the error goes at the next rest.
  for (double share : {0.05, 0.1, 0.3}) {
    const StepDown rep;
    const double on = rep.bottom_s() - 0.2;
    std::vector<LoadSharing> sharings;
    const auto [deepest, last] = Track(
        [&](double t) {
          return rep.ForceAt(t) -
                 LinearRampLoad(t, on, on + 0.4, share * kWeightN);
        },
        rep.end_s() + 1, &sharings);
    EXPECT_NEAR(deepest, 120, 4) << share;
    EXPECT_NEAR(last, 0, 1) << share;
    ASSERT_EQ(sharings.size(), 1u) << share;
    EXPECT_NEAR(sharings[0].start_us * 1e-6, on, 0.02) << share;
    EXPECT_GE(sharings[0].end_us * 1e-6, on + 0.4) << share;
    EXPECT_LE(sharings[0].end_us * 1e-6, on + 0.4 + 0.2) << share;
  }
}

TEST(ComDepthTracker, TheRiseAfterATouchDownIsNoSecondOne) {
  // The foot leans on the floor harder in the middle of the touch-down than
  // at its landing and lift, which the bridge cannot see: the estimate
  // leaves the interval some 0.35 m/s too slow and still sinks as the body
  // rises. The force's dip as the rise slows is still no second touch-down
  // (the body has pushed up since the foot lifted), and once the body is at
  // rest it stands at standing height.
  const StepDown rep;
  const double on = rep.bottom_s() - 0.2;
  const auto load = [&](double t) {
    const double s = std::clamp((t - on - 0.1) / 0.2, 0.0, 1.0);
    return LinearRampLoad(t, on, on + 0.4, 0.2 * kWeightN) +
           0.35 * kWeightN * std::pow(std::sin(kPi * s), 2);
  };
  std::vector<LoadSharing> sharings;
  const auto [deepest, last] =
      Track([&](double t) { return rep.ForceAt(t) - load(t); }, rep.end_s() + 1,
            &sharings);
  EXPECT_EQ(sharings.size(), 1u);
  EXPECT_NEAR(last, 0, 1);
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

TEST(ComDepthTracker, QuickLoweringAtHalfOfGIsNoTouchDown) {
  // A quick rep's lowering from standing takes the force down to half of
  // body weight (quick reps in the simulator reach 0.51): the body.
  StepDown rep;
  rep.lower_s = 0.35;
  rep.rise_s = 0.5;
  rep.hold_s = 0.1;
  rep.depth_m = 0.1;
  ASSERT_LT(rep.ForceAt(rep.start_s + 0.074), 0.55 * kWeightN);
  std::vector<LoadSharing> sharings;
  const auto [deepest, last] = Track([&](double t) { return rep.ForceAt(t); },
                                     rep.end_s() + 1, &sharings);
  EXPECT_TRUE(sharings.empty());
  EXPECT_NEAR(deepest, 100, 4);
  EXPECT_NEAR(last, 0, 1);
}

TEST(ComDepthTracker, StandingOnBothFeetIsOneLongLoadSharing) {
  // The calibration movement: the free foot takes half the weight for 4 s
  // while both knees bend; the plate cannot follow the body then. From
  // standing the fall is first taken for a lowering, until the body would
  // move faster than one does (here 0.2 s later, some 7 cm down); then the
  // estimate goes back to standing. Such a blip is shorter than any
  // repetition the segmenter counts.
  std::vector<LoadSharing> sharings;
  const auto [deepest, last] = Track(
      [](double t) {
        return kWeightN - LinearRampLoad(t, 1, 5, 0.5 * kWeightN);
      },
      7, &sharings);
  ASSERT_EQ(sharings.size(), 1u);
  EXPECT_NEAR(sharings[0].start_us * 1e-6, 1, 0.02);
  EXPECT_GE(sharings[0].end_us * 1e-6, 5);
  EXPECT_LE(sharings[0].end_us * 1e-6, 5.2);
  EXPECT_NEAR(sharings[0].least_force_n, 0.5 * kWeightN, 1);
  EXPECT_LT(deepest, 80);
  EXPECT_NEAR(last, 0, 1);
}

}  // namespace
}  // namespace stephub::scoring
