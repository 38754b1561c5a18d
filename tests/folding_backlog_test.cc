// FoldingBacklog on exact times: when the sample folder is reported behind
// and caught up again.
#include "hub/api/folding_backlog.h"

#include <gtest/gtest.h>

namespace stephub::api {
namespace {

using Change = FoldingBacklog::Change;

const absl::Time kStart = absl::FromUnixSeconds(1'795'000'000);

TEST(FoldingBacklog, AFolderThatRunsOutOfDueMinutesIsNeverBehind) {
  FoldingBacklog backlog(kStart, absl::Minutes(5));
  for (int i = 1; i <= 60; ++i) {
    // A pass at its limit, then one with nothing more due, every 30 s for
    // half an hour.
    const absl::Time pass = kStart + i * absl::Seconds(30);
    EXPECT_EQ(backlog.PassDone(pass - absl::Seconds(2), true), Change::kNone);
    EXPECT_EQ(backlog.PassDone(pass, false), Change::kNone);
  }
  EXPECT_EQ(backlog.BehindFor(kStart + absl::Minutes(30)),
            absl::ZeroDuration());
}

TEST(FoldingBacklog, BehindIsSaidOnceAfterTheToleratedTimeAndThenCaughtUp) {
  FoldingBacklog backlog(kStart, absl::Minutes(5));
  EXPECT_EQ(backlog.PassDone(kStart + absl::Minutes(1), false), Change::kNone);
  // From minute 1 on every pass stops at its limit with minutes still due.
  EXPECT_EQ(backlog.PassDone(kStart + absl::Minutes(3), true), Change::kNone);
  EXPECT_EQ(backlog.PassDone(kStart + absl::Minutes(6), true), Change::kNone)
      << "exactly the tolerated five minutes is not yet behind";
  EXPECT_EQ(
      backlog.PassDone(kStart + absl::Minutes(6) + absl::Seconds(1), true),
      Change::kFellBehind);
  EXPECT_EQ(backlog.BehindFor(kStart + absl::Minutes(7)), absl::Minutes(6));
  EXPECT_EQ(backlog.PassDone(kStart + absl::Minutes(9), true), Change::kNone)
      << "said once, not at every pass";
  EXPECT_EQ(backlog.PassDone(kStart + absl::Minutes(12), false),
            Change::kCaughtUp);
  EXPECT_EQ(backlog.PassDone(kStart + absl::Minutes(13), false), Change::kNone);
  // Behind again later is said again, counted from the last catch-up.
  EXPECT_EQ(backlog.PassDone(kStart + absl::Minutes(17), true), Change::kNone);
  EXPECT_EQ(backlog.PassDone(kStart + absl::Minutes(19), true),
            Change::kFellBehind);
}

TEST(FoldingBacklog, AHubStartedOnAnOldBacklogCountsFromItsStart) {
  // Minutes left unfolded while the hub was stopped are due at once; the
  // folder is behind only if it has not worked through them in time.
  FoldingBacklog backlog(kStart, absl::Minutes(5));
  EXPECT_EQ(backlog.PassDone(kStart + absl::Minutes(4), true), Change::kNone);
  EXPECT_EQ(
      backlog.PassDone(kStart + absl::Minutes(5) + absl::Seconds(30), true),
      Change::kFellBehind);
}

TEST(FoldingBacklog, TimeHeldUpByAFailedPassIsNotCalledBehind) {
  FoldingBacklog backlog(kStart, absl::Minutes(5));
  EXPECT_EQ(backlog.PassDone(kStart + absl::Minutes(4), true), Change::kNone);
  // Folding fails for ten minutes (reported as sample_folding_failed).
  backlog.PassFailed(kStart + absl::Minutes(14));
  EXPECT_EQ(backlog.PassDone(kStart + absl::Minutes(15), true), Change::kNone);
  EXPECT_EQ(backlog.BehindFor(kStart + absl::Minutes(15)), absl::Minutes(1));
  EXPECT_EQ(backlog.PassDone(kStart + absl::Minutes(20), true),
            Change::kFellBehind);
}

}  // namespace
}  // namespace stephub::api
