// Tests of the spool on the real file system, through FaultInjectionEnv for
// power cuts, torn writes, bit rot and write errors.
#include "station/spool/spool.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "station/spool/env.h"
#include "station/spool/log_format.h"
#include "station/spool/testing/fault_injection_env.h"

namespace stephub::station {
namespace {

namespace fs = std::filesystem;

// A payload that names its seq, padded to size.
std::string Payload(uint64_t seq, size_t size = 300) {
  std::string s = absl::StrCat("batch ", seq, " ");
  s.resize(std::max(size, s.size()), static_cast<char>('a' + seq % 26));
  return s;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

bool IsLowerHex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = ::testing::TempDir();
    while (!base.empty() && base.back() == '/') base.pop_back();
    std::string templ = base + "/station_spool_test.XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    base_ = templ;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(base_, ignored);
  }

  SpoolOptions Options(const std::string& name = "spool") const {
    SpoolOptions options;
    options.dir = base_ + "/" + name;
    options.segment_bytes = 4096;
    options.max_bytes = 1 << 20;
    return options;
  }

  std::unique_ptr<Spool> Open(const SpoolOptions& options) {
    absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(&env_, options);
    EXPECT_TRUE(spool.ok()) << spool.status();
    return spool.ok() ? std::move(*spool) : nullptr;
  }

  // Appends batches last_seq()+1 .. up_to, each of 7 samples.
  static void AppendUpTo(Spool* spool, uint64_t up_to, size_t size = 300) {
    while (spool->last_seq() < up_to) {
      const uint64_t seq = spool->last_seq() + 1;
      absl::StatusOr<uint64_t> appended = spool->Append(Payload(seq, size), 7);
      ASSERT_TRUE(appended.ok()) << appended.status();
      ASSERT_EQ(*appended, seq);
    }
  }

  static std::vector<SpoolRecord> ReadAll(Spool* spool, uint64_t after = 0) {
    std::vector<SpoolRecord> records;
    EXPECT_TRUE(spool->ReadAfter(after, 1 << 20, &records).ok());
    return records;
  }

  // Every record is intact and they are after+1, after+2, ... last_seq.
  static void ExpectContiguous(Spool* spool, uint64_t after, size_t size) {
    const std::vector<SpoolRecord> records = ReadAll(spool, after);
    ASSERT_EQ(records.size(), spool->last_seq() - after);
    for (size_t i = 0; i < records.size(); ++i) {
      ASSERT_EQ(records[i].seq, after + 1 + i);
      ASSERT_EQ(records[i].payload, Payload(records[i].seq, size));
    }
  }

  std::vector<std::string> Segments(const SpoolOptions& options) const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(options.dir)) {
      const std::string name = entry.path().filename().string();
      if (absl::StartsWith(name, "seg-")) names.push_back(entry.path());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  uint64_t SegmentBytesOnDisk(const SpoolOptions& options) const {
    uint64_t total = 0;
    for (const std::string& path : Segments(options)) {
      total += fs::file_size(path);
    }
    return total;
  }

  testing::FaultInjectionEnv env_{Env::Default()};
  std::string base_;
};

TEST_F(SpoolTest, FreshSpoolNumbersFromOne) {
  const SpoolOptions options = Options();
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_TRUE(spool->recovery().created);
  EXPECT_EQ(spool->boot_id().size(), 16u);
  EXPECT_TRUE(IsLowerHex(spool->boot_id())) << spool->boot_id();
  EXPECT_EQ(spool->last_seq(), 0u);
  EXPECT_TRUE(ReadAll(spool.get()).empty());
  AppendUpTo(spool.get(), 3);
  ExpectContiguous(spool.get(), 0, 300);
  EXPECT_EQ(spool->bytes(), SegmentBytesOnDisk(options));
  EXPECT_EQ(ReadFile(options.dir + "/BOOT"), spool->boot_id() + "\n");
}

TEST_F(SpoolTest, BootIdAndRecordsPersistAcrossReopen) {
  const SpoolOptions options = Options();
  std::string boot_id;
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    boot_id = spool->boot_id();
    AppendUpTo(spool.get(), 5);
    ASSERT_TRUE(spool->Sync().ok());
  }
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_FALSE(spool->recovery().created);
  EXPECT_EQ(spool->boot_id(), boot_id);
  EXPECT_EQ(spool->last_seq(), 5u);
  EXPECT_EQ(spool->recovery().records, 5u);
  EXPECT_TRUE(spool->recovery().problems.empty())
      << absl::StrJoin(spool->recovery().problems, "\n");
  AppendUpTo(spool.get(), 6);
  ExpectContiguous(spool.get(), 0, 300);
}

TEST_F(SpoolTest, KilledProcessLosesNothingWrittenWithoutSync) {
  const SpoolOptions options = Options();
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    AppendUpTo(spool.get(), 30);  // rotates, never synced explicitly
  }  // the process dies: the OS keeps what write(2) was given
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->last_seq(), 30u);
  EXPECT_EQ(spool->recovery().torn_tail_bytes, 0u);
  ExpectContiguous(spool.get(), 0, 300);
}

TEST_F(SpoolTest, PowerCutAfterSyncKeepsEverythingSynced) {
  SpoolOptions options = Options();
  options.segment_bytes = 1 << 20;  // one segment: only Sync() syncs
  options.max_bytes = 2 << 20;
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    AppendUpTo(spool.get(), 20);
    ASSERT_TRUE(spool->Sync().ok());
    AppendUpTo(spool.get(), 30);
  }
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->last_seq(), 20u);
  EXPECT_EQ(spool->recovery().records, 20u);
  EXPECT_EQ(spool->recovery().corrupt_bytes, 0u);
  ExpectContiguous(spool.get(), 0, 300);
  AppendUpTo(spool.get(), 21);
  ExpectContiguous(spool.get(), 0, 300);
}

TEST_F(SpoolTest, PowerCutAcrossRotationsLeavesAContiguousPrefix) {
  const SpoolOptions options = Options();  // 4 KiB segments
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    AppendUpTo(spool.get(), 20);
    ASSERT_TRUE(spool->Sync().ok());
    AppendUpTo(spool.get(), 60);  // rotations sync what they close
  }
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_GE(spool->last_seq(), 20u);
  EXPECT_LE(spool->last_seq(), 60u);
  EXPECT_EQ(spool->recovery().corrupt_bytes, 0u);
  ExpectContiguous(spool.get(), 0, 300);
}

TEST_F(SpoolTest, MaybeSyncWaitsForTheInterval) {
  const SpoolOptions options = Options();  // 200 ms
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    AppendUpTo(spool.get(), 1);
    ASSERT_TRUE(spool->MaybeSync(t0).ok());  // first: at once
    AppendUpTo(spool.get(), 2);
    ASSERT_TRUE(spool->MaybeSync(t0 + absl::Milliseconds(199)).ok());
  }
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    EXPECT_EQ(spool->last_seq(), 1u);
    AppendUpTo(spool.get(), 2);
    ASSERT_TRUE(spool->MaybeSync(t0).ok());
    AppendUpTo(spool.get(), 3);
    ASSERT_TRUE(spool->MaybeSync(t0 + absl::Milliseconds(200)).ok());
  }
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->last_seq(), 3u);
}

TEST_F(SpoolTest, TornTailAtEveryOffsetIsCutAndAppendingContinues) {
  // Small records; then records whose last one spans a 32 KiB block
  // boundary (it is split into two fragments).
  struct Case {
    size_t size;
    uint64_t count;
  };
  for (const Case& c : {Case{50, 5}, Case{1000, 33}}) {
    SpoolOptions probe = Options(absl::StrCat("probe-", c.size));
    probe.segment_bytes = 64 * 1024;
    uint64_t record_bytes = 0;
    {
      auto spool = Open(probe);
      ASSERT_NE(spool, nullptr);
      AppendUpTo(spool.get(), c.count, c.size);
      ASSERT_EQ(Segments(probe).size(), 1u);
      auto last = env_.LastRecord(Segments(probe)[0]);
      ASSERT_TRUE(last.ok());
      record_bytes = last->end - last->offset;
      if (c.size == 1000) {
        ASSERT_LT(last->offset, log::kBlockSize);
        ASSERT_GT(last->end, log::kBlockSize);
      }
    }
    for (uint64_t keep = 0; keep < record_bytes; ++keep) {
      SpoolOptions options = Options(absl::StrCat("torn-", c.size));
      options.segment_bytes = 64 * 1024;
      std::string boot_id;
      {
        auto spool = Open(options);
        ASSERT_NE(spool, nullptr);
        boot_id = spool->boot_id();
        AppendUpTo(spool.get(), c.count, c.size);
      }
      const std::string segment = Segments(options)[0];
      ASSERT_TRUE(env_.TearLastRecord(segment, keep).ok());
      {
        auto spool = Open(options);
        ASSERT_NE(spool, nullptr);
        EXPECT_EQ(spool->boot_id(), boot_id);
        ASSERT_EQ(spool->last_seq(), c.count - 1) << "keep " << keep;
        EXPECT_EQ(spool->recovery().records, c.count - 1);
        EXPECT_EQ(spool->recovery().torn_tail_bytes, keep);
        EXPECT_EQ(spool->recovery().corrupt_bytes, 0u);
        EXPECT_EQ(spool->recovery().problems.size(), keep > 0 ? 1u : 0u);
        EXPECT_EQ(spool->bytes(), SegmentBytesOnDisk(options));
        AppendUpTo(spool.get(), c.count + 1, c.size);
        ExpectContiguous(spool.get(), 0, c.size);
      }
      auto spool = Open(options);
      ASSERT_NE(spool, nullptr);
      EXPECT_TRUE(spool->recovery().problems.empty());
      EXPECT_EQ(spool->last_seq(), c.count + 1);
      spool.reset();
      fs::remove_all(options.dir);
    }
  }
}

TEST_F(SpoolTest, FlippedByteIsReportedAndLaterRecordsSurvive) {
  SpoolOptions options = Options();
  options.segment_bytes = 256 * 1024;
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    AppendUpTo(spool.get(), 40, 3000);  // about 4 blocks
  }
  const std::string segment = Segments(options)[0];
  const std::string contents = ReadFile(segment);
  const size_t at = contents.find(Payload(13, 3000).substr(0, 100));
  ASSERT_NE(at, std::string::npos);
  ASSERT_TRUE(env_.FlipByte(segment, at + 500).ok());

  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  const SpoolRecovery& recovery = spool->recovery();
  EXPECT_GT(recovery.corrupt_bytes, 0u);
  EXPECT_EQ(recovery.torn_tail_bytes, 0u);
  ASSERT_FALSE(recovery.problems.empty());
  EXPECT_TRUE(absl::StrContains(recovery.problems[0], "checksum mismatch"))
      << recovery.problems[0];
  EXPECT_TRUE(absl::StrContains(recovery.problems[0], "seg-"));
  EXPECT_EQ(spool->last_seq(), 40u);

  const std::vector<SpoolRecord> records = ReadAll(spool.get());
  std::vector<uint64_t> seqs;
  for (const SpoolRecord& r : records) {
    EXPECT_EQ(r.payload, Payload(r.seq, 3000));
    seqs.push_back(r.seq);
  }
  EXPECT_EQ(recovery.records, seqs.size());
  ASSERT_GE(seqs.size(), 12u);
  for (uint64_t seq = 1; seq <= 12; ++seq) EXPECT_EQ(seqs[seq - 1], seq);
  EXPECT_EQ(std::count(seqs.begin(), seqs.end(), 13), 0);
  EXPECT_EQ(seqs.back(), 40u);
  EXPECT_GT(spool->read_damaged_bytes(), 0u);
  AppendUpTo(spool.get(), 41, 3000);
  EXPECT_EQ(ReadAll(spool.get(), 40).size(), 1u);
}

TEST_F(SpoolTest, SegmentsRotateAtSegmentBytes) {
  const SpoolOptions options = Options();
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  AppendUpTo(spool.get(), 100);
  const std::vector<std::string> segments = Segments(options);
  EXPECT_GE(segments.size(), 8u);
  EXPECT_EQ(spool->segment_count(), segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    const uint64_t size = fs::file_size(segments[i]);
    EXPECT_LE(size, options.segment_bytes) << segments[i];
    // Closed ones are full: the next 316-byte record did not fit.
    if (i + 1 < segments.size()) {
      EXPECT_GT(size + 316, options.segment_bytes) << segments[i];
    }
  }
  EXPECT_EQ(spool->bytes(), SegmentBytesOnDisk(options));
  spool.reset();
  spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->bytes(), SegmentBytesOnDisk(options));
  EXPECT_EQ(spool->segment_count(), segments.size());
  ExpectContiguous(spool.get(), 0, 300);
}

TEST_F(SpoolTest, ReleaseDeletesOnlyWhollyAcknowledgedSegments) {
  const SpoolOptions options = Options();
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  std::vector<uint64_t> firsts = {1};  // first seq of each segment
  AppendUpTo(spool.get(), 1);
  while (spool->last_seq() < 60) {
    const size_t before = spool->segment_count();
    AppendUpTo(spool.get(), spool->last_seq() + 1);
    if (spool->segment_count() > before) firsts.push_back(spool->last_seq());
  }
  ASSERT_GE(firsts.size(), 4u);
  const size_t count = spool->segment_count();

  ASSERT_TRUE(spool->Release(0).ok());
  EXPECT_EQ(spool->segment_count(), count);
  ASSERT_TRUE(spool->Release(firsts[1] - 2).ok());  // segment 0 minus one
  EXPECT_EQ(spool->segment_count(), count);
  ASSERT_TRUE(spool->Release(firsts[2] - 2).ok());  // 0 whole, 1 not
  EXPECT_EQ(spool->segment_count(), count - 1);
  EXPECT_EQ(ReadAll(spool.get()).front().seq, firsts[1]);
  ExpectContiguous(spool.get(), firsts[1] - 1, 300);
  ASSERT_TRUE(spool->Release(firsts[2] - 1).ok());  // 1 whole
  EXPECT_EQ(spool->segment_count(), count - 2);
  EXPECT_EQ(ReadAll(spool.get()).front().seq, firsts[2]);
  EXPECT_EQ(Segments(options).size(), count - 2);
  EXPECT_EQ(spool->bytes(), SegmentBytesOnDisk(options));

  // Everything acknowledged: the active segment stays.
  ASSERT_TRUE(spool->Release(spool->last_seq()).ok());
  EXPECT_EQ(spool->segment_count(), 1u);
  EXPECT_EQ(ReadAll(spool.get()).front().seq, firsts.back());
  EXPECT_EQ(spool->bytes(), SegmentBytesOnDisk(options));
}

TEST_F(SpoolTest, ReopenKeepsLastSeqAfterOlderSegmentsWereReleased) {
  const SpoolOptions options = Options();
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    AppendUpTo(spool.get(), 50);
    ASSERT_TRUE(spool->Release(50).ok());
    ASSERT_EQ(spool->segment_count(), 1u);
  }
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->last_seq(), 50u);
  AppendUpTo(spool.get(), 51);
  EXPECT_EQ(ReadAll(spool.get()).back().seq, 51u);
}

TEST_F(SpoolTest, PowerCutAfterReleaseKeepsLastSeqFromTheSegmentHeader) {
  const SpoolOptions options = Options();
  uint64_t first = 0;
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    AppendUpTo(spool.get(), 20);
    // Append until a new segment is started; its batch is not synced.
    const size_t count = spool->segment_count();
    while (spool->segment_count() == count) {
      AppendUpTo(spool.get(), spool->last_seq() + 1);
    }
    first = spool->last_seq();
    ASSERT_TRUE(spool->Release(first).ok());  // the hub stored it all
    ASSERT_EQ(spool->segment_count(), 1u);
  }
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  // Only the header survived: last_seq comes from it, and is below the
  // hub's, which tells the station to Reset().
  EXPECT_EQ(spool->recovery().records, 0u);
  EXPECT_EQ(spool->last_seq(), first - 1);
  AppendUpTo(spool.get(), first);
}

TEST_F(SpoolTest, ReadAfterFromTheMiddle) {
  const SpoolOptions options = Options();
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  AppendUpTo(spool.get(), 100);
  std::vector<SpoolRecord> records;
  ASSERT_TRUE(spool->ReadAfter(37, 10, &records).ok());
  ASSERT_EQ(records.size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(records[i].seq, 38 + i);
    EXPECT_EQ(records[i].payload, Payload(38 + i));
  }
  ASSERT_TRUE(spool->ReadAfter(47, 5, &records).ok());  // continues
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records.front().seq, 48u);
  ASSERT_TRUE(spool->ReadAfter(10, 3, &records).ok());  // jumps back
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records.front().seq, 11u);
  ASSERT_TRUE(spool->ReadAfter(95, 100, &records).ok());
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records.back().seq, 100u);
  ASSERT_TRUE(spool->ReadAfter(100, 10, &records).ok());
  EXPECT_TRUE(records.empty());
  ASSERT_TRUE(spool->ReadAfter(0, 0, &records).ok());
  EXPECT_TRUE(records.empty());
  // One at a time, as the station catches up.
  for (uint64_t after = 0; after < 100; ++after) {
    ASSERT_TRUE(spool->ReadAfter(after, 1, &records).ok());
    ASSERT_EQ(records.size(), 1u);
    ASSERT_EQ(records[0].seq, after + 1);
    ASSERT_EQ(records[0].payload, Payload(after + 1));
  }
}

TEST_F(SpoolTest, ReadAfterKeepsUpWithAppends) {
  const SpoolOptions options = Options();
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  std::vector<SpoolRecord> records;
  for (uint64_t seq = 1; seq <= 120; ++seq) {  // across rotations
    AppendUpTo(spool.get(), seq);
    ASSERT_TRUE(spool->ReadAfter(seq - 1, 1, &records).ok());
    ASSERT_EQ(records.size(), 1u) << seq;
    ASSERT_EQ(records[0].seq, seq);
    ASSERT_EQ(records[0].payload, Payload(seq));
    if (seq % 25 == 0) {
      ASSERT_TRUE(spool->Release(seq - 10).ok());
    }
  }
}

TEST_F(SpoolTest, FullSpoolRefusesNewBatchesAndCountsThem) {
  SpoolOptions options = Options();
  options.max_bytes = 2 * options.segment_bytes;
  std::string boot_id;
  uint64_t kept = 0;
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    boot_id = spool->boot_id();
    absl::StatusOr<uint64_t> appended;
    do {
      appended = spool->Append(Payload(spool->last_seq() + 1), 7);
    } while (appended.ok());
    EXPECT_EQ(appended.status().code(), absl::StatusCode::kResourceExhausted)
        << appended.status();
    EXPECT_TRUE(absl::StrContains(appended.status().message(), "spool full"));
    kept = spool->last_seq();
    EXPECT_GT(kept, 10u);
    EXPECT_EQ(spool->dropped_batches(), 1u);
    EXPECT_EQ(spool->dropped_samples(), 7u);
    EXPECT_FALSE(spool->Append(Payload(kept + 1), 5).ok());
    EXPECT_EQ(spool->last_seq(), kept);  // no seq given to refused batches
    EXPECT_EQ(spool->dropped_batches(), 2u);
    EXPECT_EQ(spool->dropped_samples(), 12u);
    EXPECT_LE(spool->bytes(), options.max_bytes);
    EXPECT_EQ(spool->bytes(), SegmentBytesOnDisk(options));
    ASSERT_TRUE(spool->Sync().ok());
    EXPECT_FALSE(spool->Append(Payload(kept + 1), 1).ok());
  }  // killed: the third refusal was written, not synced
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    EXPECT_EQ(spool->dropped_batches(), 3u);
    EXPECT_EQ(spool->dropped_samples(), 13u);
    EXPECT_EQ(spool->last_seq(), kept);
    ExpectContiguous(spool.get(), 0, 300);  // what was spooled is kept
  }
  ASSERT_TRUE(env_.DropUnsyncedData().ok());  // and a power cut on top
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->boot_id(), boot_id);
  EXPECT_EQ(spool->dropped_batches(), 2u);
  EXPECT_EQ(spool->dropped_samples(), 12u);
  EXPECT_EQ(spool->last_seq(), kept);

  // Acknowledgement makes room; numbering continues without a gap.
  ASSERT_TRUE(spool->Release(kept).ok());
  absl::StatusOr<uint64_t> appended = spool->Append(Payload(kept + 1), 7);
  ASSERT_TRUE(appended.ok()) << appended.status();
  EXPECT_EQ(*appended, kept + 1);
  EXPECT_EQ(spool->dropped_batches(), 2u);

  // Many refusals: drops.log stays small.
  AppendUpTo(spool.get(), spool->last_seq() + 10);
  ASSERT_TRUE(spool->Release(kept + 5).ok());
  while (spool->Append(Payload(spool->last_seq() + 1), 1).ok()) {
  }
  for (int i = 0; i < 5000; ++i) {
    ASSERT_FALSE(spool->Append(Payload(spool->last_seq() + 1), 1).ok());
  }
  EXPECT_EQ(spool->dropped_batches(), 5003u);
  EXPECT_LE(fs::file_size(options.dir + "/drops.log"), 64u * 1024 + 64);
  spool.reset();
  spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->dropped_batches(), 5003u);
  EXPECT_TRUE(spool->recovery().problems.empty());
}

TEST_F(SpoolTest, ResetStartsANewBootAtSeqOne) {
  SpoolOptions options = Options();
  options.max_bytes = 2 * options.segment_bytes;
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  const std::string old_boot = spool->boot_id();
  while (spool->Append(Payload(spool->last_seq() + 1), 3).ok()) {
  }
  ASSERT_EQ(spool->dropped_batches(), 1u);

  ASSERT_TRUE(spool->Reset().ok());
  EXPECT_NE(spool->boot_id(), old_boot);
  EXPECT_TRUE(IsLowerHex(spool->boot_id()));
  EXPECT_EQ(spool->last_seq(), 0u);
  EXPECT_EQ(spool->dropped_batches(), 0u);
  EXPECT_EQ(spool->dropped_samples(), 0u);
  EXPECT_EQ(spool->segment_count(), 1u);
  EXPECT_EQ(Segments(options).size(), 1u);
  EXPECT_FALSE(fs::exists(options.dir + "/drops.log"));
  EXPECT_TRUE(ReadAll(spool.get()).empty());
  AppendUpTo(spool.get(), 3);
  ExpectContiguous(spool.get(), 0, 300);
  const std::string new_boot = spool->boot_id();

  spool.reset();
  spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->boot_id(), new_boot);
  EXPECT_EQ(spool->last_seq(), 3u);
  EXPECT_EQ(spool->dropped_batches(), 0u);
  EXPECT_TRUE(spool->recovery().problems.empty());
}

TEST_F(SpoolTest, InterruptedResetDeletesTheOldBootsSegments) {
  const SpoolOptions options = Options();
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    AppendUpTo(spool.get(), 30);
  }
  // As if Reset() had written the new BOOT and then died.
  WriteFile(options.dir + "/BOOT", "0123456789abcdef\n");
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->boot_id(), "0123456789abcdef");
  EXPECT_EQ(spool->last_seq(), 0u);
  EXPECT_EQ(spool->recovery().records, 0u);
  ASSERT_FALSE(spool->recovery().problems.empty());
  EXPECT_TRUE(
      absl::StrContains(spool->recovery().problems[0], "interrupted reset"));
  EXPECT_EQ(Segments(options).size(), 1u);
  AppendUpTo(spool.get(), 1);
  ExpectContiguous(spool.get(), 0, 300);
}

TEST_F(SpoolTest, DamagedBootFileIsAClearError) {
  const SpoolOptions options = Options();
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    AppendUpTo(spool.get(), 2);
  }
  const std::string boot = options.dir + "/BOOT";
  for (const std::string& garbage :
       {std::string("not a boot id\n"), std::string(),
        std::string("0123456789ABCDEF\n"), std::string(100, 'a')}) {
    WriteFile(boot, garbage);
    absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(&env_, options);
    ASSERT_FALSE(spool.ok());
    EXPECT_EQ(spool.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_TRUE(absl::StrContains(spool.status().message(), boot))
        << spool.status();
  }
  fs::remove(boot);
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(&env_, options);
  ASSERT_FALSE(spool.ok());
  EXPECT_EQ(spool.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(spool.status().message(), options.dir));
}

TEST_F(SpoolTest, TornNewSegmentIsDeleted) {
  const SpoolOptions options = Options();
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    AppendUpTo(spool.get(), 5);
  }
  // A crash while the next segment was being created.
  WriteFile(options.dir + "/seg-00000000000000000099.log", "xyz");
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->last_seq(), 5u);
  EXPECT_EQ(spool->recovery().torn_tail_bytes, 3u);
  EXPECT_EQ(Segments(options).size(), 1u);
  AppendUpTo(spool.get(), 6);
  ExpectContiguous(spool.get(), 0, 300);
}

TEST_F(SpoolTest, WriteErrorsLeaveTheSpoolConsistent) {
  const SpoolOptions options = Options();
  {
    auto spool = Open(options);
    ASSERT_NE(spool, nullptr);
    AppendUpTo(spool.get(), 3);
    env_.SetWritesFail(true);
    absl::StatusOr<uint64_t> appended = spool->Append(Payload(4), 7);
    EXPECT_EQ(appended.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(spool->last_seq(), 3u);
    EXPECT_EQ(spool->dropped_batches(), 0u);
    env_.SetWritesFail(false);
    AppendUpTo(spool.get(), 40);
    ExpectContiguous(spool.get(), 0, 300);
  }
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->last_seq(), 40u);
  EXPECT_TRUE(spool->recovery().problems.empty())
      << absl::StrJoin(spool->recovery().problems, "\n");
}

TEST_F(SpoolTest, SecondOpenOfTheSameDirectoryFails) {
  const SpoolOptions options = Options();
  auto spool = Open(options);
  ASSERT_NE(spool, nullptr);
  absl::StatusOr<std::unique_ptr<Spool>> second = Spool::Open(&env_, options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(second.status().message(), "LOCK"));
}

TEST_F(SpoolTest, RejectsBadOptionsAndOversizeBatches) {
  SpoolOptions options = Options();
  options.segment_bytes = 100;
  EXPECT_EQ(Spool::Open(&env_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = Options();
  options.max_bytes = options.segment_bytes;
  EXPECT_EQ(Spool::Open(&env_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = Options();
  options.dir.clear();
  EXPECT_EQ(Spool::Open(&env_, options).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto spool = Open(Options());
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->Append(std::string(5000, 'x'), 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spool->dropped_batches(), 0u);
  EXPECT_EQ(spool->last_seq(), 0u);
}

TEST_F(SpoolTest, PosixEnvErrorsNameThePathAndTheCause) {
  Env* env = Env::Default();
  const std::string missing = base_ + "/no/such/file";
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env->NewSequentialFile(missing);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(file.status().message(), missing));
  EXPECT_TRUE(absl::StrContains(file.status().message(), "No such file"))
      << file.status();
  EXPECT_FALSE(env->CreateDir(missing).ok());
  EXPECT_FALSE(env->SyncDir(missing).ok());
  EXPECT_TRUE(absl::StrContains(env->RemoveFile(missing).message(), missing));
}

TEST_F(SpoolTest, FaultInjectionEnvForgetsUnsyncedFilesAndData) {
  const std::string dir = base_ + "/fault";
  ASSERT_TRUE(env_.CreateDir(dir).ok());
  ASSERT_TRUE(env_.SyncDir(base_).ok());
  {
    auto a = env_.NewWritableFile(dir + "/a");
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE((*a)->Append("synced").ok());
    ASSERT_TRUE((*a)->Sync().ok());
    ASSERT_TRUE(env_.SyncDir(dir).ok());
    ASSERT_TRUE((*a)->Append(" and not").ok());
    auto b = env_.NewWritableFile(dir + "/b");  // entry never synced
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE((*b)->Append("b").ok());
    ASSERT_TRUE((*b)->Sync().ok());
  }
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(ReadFile(dir + "/a"), "synced");
  EXPECT_FALSE(env_.FileExists(dir + "/b"));
}

}  // namespace
}  // namespace stephub::station
