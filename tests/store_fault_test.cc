// Crash test of the store alone: a child process appends a station's
// batches (arriving on a fast simulated clock, so that minutes pass in
// milliseconds) and folds them into sample blocks as the hub does, and is
// killed with SIGKILL at random moments, five times. After each kill the
// database passes the integrity check and holds every batch the child saw
// acknowledged, each exactly once, in order, whether raw or folded.
// STEPHUB_FAULT_SEED replays one run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <random>

#include "absl/time/clock.h"
#include "hub/store/store.h"
#include "tests/testing.h"

namespace stephub::store {
namespace {

const absl::Time kMinute0 = absl::FromUnixSeconds(1'795'000'020);
constexpr absl::Duration kEvery = absl::Milliseconds(250);
constexpr uint64_t kFoldEvery = 240;  // a simulated minute
// Appended but not yet acknowledged, at most (the hub allows a station 256).
constexpr int kMaxInFlight = 256;

absl::Time ArrivalOf(uint64_t seq) {
  return kMinute0 + static_cast<int64_t>(seq - 1) * kEvery;
}

// The child: appends from where the database stands until it is killed,
// writing each acknowledged seq to `acks`.
[[noreturn]] void AppendAndFoldUntilKilled(const std::string& path, int acks) {
  auto store = OpenSqliteStore(path);
  if (!store.ok()) _exit(3);
  auto durable = (*store)->DurableSeq("bay-1", "boot");
  if (!durable.ok()) _exit(3);
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  for (uint64_t seq = *durable + 1;; ++seq) {
    BatchRecord b;
    b.station_id = "bay-1";
    b.boot_id = "boot";
    b.seq = seq;
    b.first_t_us = static_cast<int64_t>(seq) * 25'000;
    b.last_t_us = b.first_t_us + 20'000;
    b.sample_count = 5;
    b.payload =
        testing::StandingBatch(seq, b.first_t_us, 5).SerializeAsString();
    b.received_at = ArrivalOf(seq);
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < kMaxInFlight; });
      ++in_flight;
    }
    (*store)->AppendBatch(std::move(b), [&, seq, acks](absl::Status s) {
      if (s.ok() && write(acks, &seq, sizeof seq) != sizeof seq) _exit(5);
      std::lock_guard<std::mutex> lock(mu);
      --in_flight;
      cv.notify_all();
    });
    // Only what is surely committed is folded, as by the hub's folder,
    // five minutes behind (a minute with batches still queued would be
    // folded in two blocks; before schema 16 it was refused, ABORTED).
    if (seq % kFoldEvery == 0 && seq > kMaxInFlight) {
      auto folded =
          (*store)->CompactSamples(ArrivalOf(seq - kMaxInFlight), 100);
      if (!folded.ok()) {
        std::cerr << "child: folding failed: " << folded.status() << "\n";
        _exit(4);
      }
    }
  }
}

TEST(StoreFault, KilledWhileAppendingAndFoldingLosesNoAcknowledgedBatch) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/stephub.db";
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("STEPHUB_FAULT_SEED")) {
    seed = std::strtoull(s, nullptr, 10);
  }
  std::cout << "STEPHUB_FAULT_SEED=" << seed << "\n";
  std::mt19937_64 random(seed);
  uint64_t acknowledged = 0;
  for (int round = 1; round <= 5; ++round) {
    SCOPED_TRACE(absl::StrCat("kill ", round, ", seed ", seed));
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    // No store is open here: the child starts from a process with one
    // thread.
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(pipe_fds[0]);
      AppendAndFoldUntilKilled(path, pipe_fds[1]);
    }
    close(pipe_fds[1]);
    // Read the acknowledgements while the child runs: a full pipe would
    // stall its writer thread.
    ASSERT_EQ(fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK), 0);
    auto drain = [&] {
      uint64_t seq = 0;
      while (read(pipe_fds[0], &seq, sizeof seq) == sizeof seq) {
        acknowledged = std::max(acknowledged, seq);
      }
    };
    const absl::Time kill_at =
        absl::Now() + absl::Milliseconds(
                          std::uniform_int_distribution<int>(150, 900)(random));
    while (absl::Now() < kill_at) {
      drain();
      absl::SleepFor(absl::Milliseconds(2));
    }
    kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status))
        << "the child stopped by itself with " << WEXITSTATUS(status);
    drain();
    close(pipe_fds[0]);

    auto info = VerifyClinicDatabase(path);
    ASSERT_TRUE(info.ok()) << info.status();
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status();
    uint64_t expected = 1;
    bool in_order = true;
    ASSERT_TRUE((*store)
                    ->VisitBatches("bay-1", absl::UnixEpoch(),
                                   [&](const BatchRecord& b) {
                                     in_order =
                                         b.seq == expected &&
                                         b.received_at == ArrivalOf(b.seq);
                                     ++expected;
                                     return in_order;
                                   })
                    .ok());
    ASSERT_TRUE(in_order) << "batch " << expected - 1
                          << " missing, twice or out of place";
    const uint64_t stored = expected - 1;
    EXPECT_GE(stored, acknowledged);
    EXPECT_EQ(*(*store)->CountBatches("bay-1"), static_cast<int64_t>(stored));
    EXPECT_EQ(*(*store)->DurableSeq("bay-1", "boot"), stored);
    std::cout << "kill " << round << ": " << stored << " batches stored ("
              << acknowledged << " acknowledged), " << info->sample_blocks
              << " blocks\n";
  }
  // The kills came while folding was going on, not before it began.
  auto info = VerifyClinicDatabase(path);
  ASSERT_TRUE(info.ok());
  EXPECT_GT(info->sample_blocks, 0);
}

}  // namespace
}  // namespace stephub::store
