// Tests of repetition segmentation on synthetic depth and drop signals.
#include "hub/scoring/segmentation.h"

#include <cmath>
#include <functional>
#include <vector>

#include "common/geometry.h"
#include "gtest/gtest.h"

namespace stephub::scoring {
namespace {

constexpr int64_t kStepUs = 5'000;

// One lowering-hold-rising of the depth signal (raised-cosine ramps).
struct Dip {
  double start_s = 0;
  double lower_s = 1.2;
  double hold_s = 0.2;
  double rise_s = 1.2;
  double depth_deg = 12;
  double end_s() const { return start_s + lower_s + hold_s + rise_s; }
};

double Ramp(double s) { return 0.5 * (1 - std::cos(kPi * s)); }

// 0..1 over the dip.
double Depth(const Dip& d, double t) {
  if (t <= d.start_s || t >= d.end_s()) return 0;
  if (t < d.start_s + d.lower_s) return Ramp((t - d.start_s) / d.lower_s);
  const double rise_from = d.start_s + d.lower_s + d.hold_s;
  if (t <= rise_from) return 1;
  return 1 - Ramp((t - rise_from) / d.rise_s);
}

using Signal = std::function<double(double t)>;

struct Segmented {
  std::vector<RepSpan> reps;
  std::optional<RepSpan> in_progress;
};

Segmented Segment(const Signal& depth_deg, const Signal& drop_deg,
                  double until_s) {
  RepSegmenter segmenter;
  Segmented run;
  for (int64_t t = 0; t * 1e-6 <= until_s; t += kStepUs) {
    const double s = t * 1e-6;
    if (auto rep = segmenter.Add(t, depth_deg(s), drop_deg(s))) {
      run.reps.push_back(*rep);
    }
  }
  run.in_progress = segmenter.InProgress();
  return run;
}

Signal DepthOf(const std::vector<Dip>& dips) {
  return [dips](double t) {
    double sum = 0;
    for (const Dip& d : dips) sum += d.depth_deg * Depth(d, t);
    return sum;
  };
}

Signal Zero() {
  return [](double) { return 0.0; };
}

TEST(Segmentation, CountsEachRepOnceAndBackdatesItsStart) {
  const std::vector<Dip> dips = {
      {.start_s = 1}, {.start_s = 4.5}, {.start_s = 8}};
  const Segmented run = Segment(DepthOf(dips), Zero(), 12);
  ASSERT_EQ(run.reps.size(), 3u);
  for (size_t i = 0; i < dips.size(); ++i) {
    const RepSpan& r = run.reps[i];
    const int64_t start = std::llround(dips[i].start_s * 1e6);
    // Back to where the signal left its baseline (0.5 deg: 0.16 s in).
    EXPECT_GE(r.start_us, start);
    EXPECT_LE(r.start_us, start + 200'000);
    EXPECT_NEAR(r.peak_depth_deg, 12, 1e-9);
    EXPECT_GE(r.deepest_us, start + 1'200'000);
    EXPECT_LE(r.deepest_us, start + 1'400'000);
    EXPECT_LT(r.end_us, std::llround(dips[i].end_s() * 1e6));
  }
  EXPECT_FALSE(run.in_progress);
}

TEST(Segmentation, PauseAtTheBottomCountsOnce) {
  const Dip dip{.start_s = 1, .hold_s = 6};
  // Wobbling +-2 deg while holding at the bottom.
  const Signal depth = [dip](double t) {
    return dip.depth_deg * Depth(dip, t) +
           (Depth(dip, t) == 1 ? 2 * std::sin(2 * kPi * t) : 0);
  };
  EXPECT_EQ(Segment(depth, Zero(), 12).reps.size(), 1u);
}

TEST(Segmentation, ShallowOrBriefDipsDoNotCount) {
  // Peak 4.5 deg: past the entry threshold, not deep enough.
  EXPECT_TRUE(Segment(DepthOf({{.start_s = 1, .depth_deg = 4.5}}), Zero(), 5)
                  .reps.empty());
  // Deep but over in 0.4 s: a stumble, not a step-down.
  EXPECT_TRUE(
      Segment(
          DepthOf({{.start_s = 1, .lower_s = 0.2, .hold_s = 0, .rise_s = 0.2}}),
          Zero(), 5)
          .reps.empty());
}

TEST(Segmentation, PeakDropIsTheExtremeOfLargerMagnitude) {
  const std::vector<Dip> dips = {{.start_s = 1}, {.start_s = 5}};
  // First rep: +2 on the way down, -4 at the bottom (a hike). Second: +3
  // on the way down, -1 at the bottom.
  const Signal drop = [](double t) {
    const auto during = [t](double from, double to) {
      return t >= from && t <= to;
    };
    if (during(1.6, 1.9)) return 2.0;
    if (during(2.2, 2.4)) return -4.0;
    if (during(5.6, 5.9)) return 3.0;
    if (during(6.2, 6.4)) return -1.0;
    return 0.0;
  };
  const Segmented run = Segment(DepthOf(dips), drop, 9);
  ASSERT_EQ(run.reps.size(), 2u);
  EXPECT_EQ(run.reps[0].PeakDropDeg(), -4);
  EXPECT_EQ(run.reps[0].max_drop_deg, 2);
  EXPECT_EQ(run.reps[1].PeakDropDeg(), 3);
}

TEST(Segmentation, BackdatedStartIsCovered) {
  const Dip dip{.start_s = 1};
  // A 6 deg drop, only while the depth is between 1 and 2 deg, i.e. before
  // the signal crossed the 3 deg entry threshold.
  const Signal depth = DepthOf({dip});
  const Signal drop = [depth](double t) {
    const double d = depth(t);
    return (d > 1 && d < 2 && t < 2) ? 6.0 : 0.0;
  };
  const Segmented run = Segment(depth, drop, 5);
  ASSERT_EQ(run.reps.size(), 1u);
  EXPECT_EQ(run.reps[0].PeakDropDeg(), 6);
}

TEST(Segmentation, ReportsTheRepInProgress) {
  const Dip dip{.start_s = 1};
  const Segmented run = Segment(DepthOf({dip}), Zero(), 2.0);
  EXPECT_TRUE(run.reps.empty());
  ASSERT_TRUE(run.in_progress);
  EXPECT_LE(run.in_progress->start_us, 1'200'000);
  EXPECT_EQ(run.in_progress->end_us, 2'000'000);
}

TEST(Segmentation, BaselineFollowsAShiftedStandingPosture) {
  // The patient now stands 1 deg more tilted; reps still start where the
  // signal leaves that posture.
  const Dip dip{.start_s = 6};
  const Signal depth = [dip](double t) { return 1 + 12 * Depth(dip, t); };
  const Segmented run = Segment(depth, Zero(), 10);
  ASSERT_EQ(run.reps.size(), 1u);
  EXPECT_GE(run.reps[0].start_us, 6'000'000);
  EXPECT_LE(run.reps[0].start_us, 6'200'000);
}

}  // namespace
}  // namespace stephub::scoring
