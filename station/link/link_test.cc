// Tests of the link's pure parts: reconnect backoff and the clock-offset
// estimate, on exact numbers.
#include <gtest/gtest.h>

#include "station/link/backoff.h"
#include "station/link/clock_offset.h"

namespace stephub::station {
namespace {

TEST(Backoff, DoublesWithJitterUpToTheCapAndResets) {
  Backoff backoff(absl::Milliseconds(100), absl::Seconds(5), /*seed=*/42);
  absl::Duration base = absl::Milliseconds(100);
  for (int i = 0; i < 12; ++i) {
    const absl::Duration d = backoff.Next();
    EXPECT_GE(d, base / 2) << "attempt " << i;
    EXPECT_LE(d, base) << "attempt " << i;
    base = std::min(base * 2, absl::Seconds(5));
  }
  // Long outages stay at the cap: seconds, not gRPC's two minutes.
  for (int i = 0; i < 100; ++i) EXPECT_LE(backoff.Next(), absl::Seconds(5));
  EXPECT_EQ(backoff.failures(), 112);
  backoff.Reset();
  EXPECT_LE(backoff.Next(), absl::Milliseconds(100));
}

TEST(Backoff, JitterSpreadsStationsApart) {
  Backoff a(absl::Milliseconds(100), absl::Seconds(5), 1);
  Backoff b(absl::Milliseconds(100), absl::Seconds(5), 2);
  int differ = 0;
  for (int i = 0; i < 10; ++i) differ += a.Next() != b.Next();
  EXPECT_GE(differ, 9);
}

TEST(ClockOffset, SymmetricExchangeGivesTheExactOffset) {
  // Station clock 1000 s behind the hub; 4 ms each way; hub holds 1 ms.
  const int64_t offset = 1'000'000'000;
  ClockExchange x{10'000, 10'000 + 4'000 + offset, 10'000 + 5'000 + offset,
                  10'000 + 9'000};
  auto e = EstimateFromExchange(x);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->offset_us, offset);
  EXPECT_EQ(e->round_trip_us, 8'000);
  EXPECT_EQ(e->uncertainty_us, 4'000);
}

TEST(ClockOffset, LopsidedDelayErrsByLessThanTheUncertainty) {
  const int64_t offset = -250'000;
  // 1 ms out, 9 ms back.
  ClockExchange x{0, 1'000 + offset, 1'000 + offset, 10'000};
  auto e = EstimateFromExchange(x);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->offset_us, offset - 4'000);
  EXPECT_LE(std::abs(e->offset_us - offset), e->uncertainty_us);
}

TEST(ClockOffset, NegativeRoundTripIsRejected) {
  EXPECT_FALSE(EstimateFromExchange({0, 100, 50, 10}).has_value());
  EXPECT_FALSE(EstimateFromExchange({100, 0, 0, 50}).has_value());
}

TEST(ClockOffset, BestIsTheShortestRoundTripOfTheWindow) {
  ClockOffsetEstimator estimator(/*window=*/3);
  const int64_t offset = 5'000;
  // Round trips 20 ms, 2 ms (lopsided by 1 ms), 30 ms.
  ASSERT_TRUE(estimator.Add({0, 10'000 + offset, 10'000 + offset, 20'000}));
  ASSERT_TRUE(
      estimator.Add({100'000, 100'500 + offset, 100'500 + offset, 102'000}));
  ASSERT_TRUE(
      estimator.Add({200'000, 215'000 + offset, 215'000 + offset, 230'000}));
  auto best = estimator.Best();
  ASSERT_TRUE(best.has_value());
  EXPECT_EQ(best->round_trip_us, 2'000);
  EXPECT_EQ(best->offset_us, offset - 500);
  // The good exchange leaves the window after three more.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        estimator.Add({300'000 + i * 100'000, 305'000 + i * 100'000 + offset,
                       305'000 + i * 100'000 + offset, 310'000 + i * 100'000}));
  }
  EXPECT_EQ(estimator.Best()->round_trip_us, 10'000);
  EXPECT_EQ(estimator.Best()->offset_us, offset);
}

}  // namespace
}  // namespace stephub::station
