// The SQLite clinic record: migrations, refusal of newer databases,
// idempotent batches, group commit and set/repetition round trips.
#include "hub/store/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>

#include "tests/testing.h"

namespace stephub::store {
namespace {

using ::testing::HasSubstr;

std::string DbPath(const testing::TempDir& dir) {
  return dir.path() + "/stephub.db";
}

BatchRecord Batch(const std::string& station, uint64_t seq) {
  BatchRecord b;
  b.station_id = station;
  b.boot_id = "boot";
  b.seq = seq;
  b.first_t_us = static_cast<int64_t>(seq) * 25000;
  b.last_t_us = b.first_t_us + 20000;
  b.sample_count = 5;
  b.payload = "payload";
  b.received_at = absl::Now();
  return b;
}

absl::Status AppendAndWait(ClinicStore& store, BatchRecord b) {
  std::promise<absl::Status> done;
  store.AppendBatch(std::move(b), [&](absl::Status s) { done.set_value(s); });
  return done.get_future().get();
}

TEST(SqliteStore, CreatesSchemaAndReopens) {
  testing::TempDir dir;
  {
    auto store = OpenSqliteStore(DbPath(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    auto p = (*store)->CreatePatient("Anna K.", "MRN-1");
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->display_name(), "Anna K.");
    EXPECT_GT(p->patient_id(), 0);
  }
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  auto patients = (*store)->ListPatients();
  ASSERT_TRUE(patients.ok());
  ASSERT_EQ(patients->size(), 1u);
  EXPECT_EQ((*patients)[0].external_ref(), "MRN-1");
  EXPECT_EQ((*store)->GetPatient(999).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(SqliteStore, RefusesDatabaseFromNewerVersion) {
  testing::TempDir dir;
  { ASSERT_TRUE(OpenSqliteStore(DbPath(dir)).ok()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath(dir).c_str(), &db), SQLITE_OK);
  const std::string bump =
      "PRAGMA user_version=" + std::to_string(SqliteSchemaVersion() + 1);
  ASSERT_EQ(sqlite3_exec(db, bump.c_str(), nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("newer"));
}

TEST(SqliteStore, ResentBatchIsStoredOnce) {
  testing::TempDir dir;
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(AppendAndWait(**store, Batch("bay-1", 1)).ok());
  ASSERT_TRUE(AppendAndWait(**store, Batch("bay-1", 2)).ok());
  ASSERT_TRUE(AppendAndWait(**store, Batch("bay-1", 2)).ok());
  EXPECT_EQ(*(*store)->CountBatches("bay-1"), 2);
  EXPECT_EQ(*(*store)->DurableSeq("bay-1", "boot"), 2u);
  EXPECT_EQ(*(*store)->DurableSeq("bay-1", "other-boot"), 0u);
}

TEST(SqliteStore, ManyQueuedWritesAllCommitInOrder) {
  testing::TempDir dir;
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  constexpr int kBatches = 2000;
  std::atomic<int> ok{0};
  std::atomic<uint64_t> last{0};
  std::atomic<bool> in_order{true};
  std::promise<void> all;
  for (int i = 1; i <= kBatches; ++i) {
    (*store)->AppendBatch(Batch("bay-1", i), [&, i](absl::Status s) {
      if (s.ok()) ++ok;
      if (last.exchange(i) != static_cast<uint64_t>(i - 1)) in_order = false;
      if (i == kBatches) all.set_value();
    });
  }
  all.get_future().wait();
  EXPECT_EQ(ok.load(), kBatches);
  EXPECT_TRUE(in_order.load());
  EXPECT_EQ(*(*store)->CountBatches("bay-1"), kBatches);
}

// Streamed batches wait for company until the delay after the last commit
// has passed; the wait is a lower bound, so the check cannot flake.
TEST(SqliteStore, BatchesWaitForTheStreamCommitDelay) {
  testing::TempDir dir;
  constexpr auto kDelay = std::chrono::milliseconds(300);
  auto store = OpenSqliteStore(
      DbPath(dir), {.stream_commit_delay = absl::FromChrono(kDelay)});
  ASSERT_TRUE(store.ok());
  const auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE((*store)->CreatePatient("Anna K.", "").ok());
  const uint64_t commits = (*store)->write_stats().commits;
  ASSERT_TRUE(AppendAndWait(**store, Batch("bay-1", 1)).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - before, kDelay);
  EXPECT_EQ((*store)->write_stats().commits, commits + 1);
}

// Anything but streamed data is committed at once, and the batches waiting
// go with it: a therapist's call is never held up by the delay.
TEST(SqliteStore, AWriteSomeoneWaitsForTakesTheWaitingBatchesAlong) {
  testing::TempDir dir;
  auto store =
      OpenSqliteStore(DbPath(dir), {.stream_commit_delay = absl::Seconds(1)});
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->CreatePatient("Anna K.", "").ok());
  std::atomic<int> committed{0};
  for (int i = 1; i <= 50; ++i) {
    (*store)->AppendBatch(Batch("bay-1", i), [&](absl::Status s) {
      if (s.ok()) ++committed;
    });
  }
  ASSERT_TRUE((*store)->CreatePatient("Ben L.", "").ok());
  EXPECT_EQ(committed.load(), 50);
  EXPECT_EQ(*(*store)->CountBatches("bay-1"), 50);
}

// Closing the store does not wait out the delay, nor drop what waits.
TEST(SqliteStore, ClosingCommitsTheWaitingBatches) {
  testing::TempDir dir;
  std::atomic<int> committed{0};
  {
    auto store =
        OpenSqliteStore(DbPath(dir), {.stream_commit_delay = absl::Seconds(1)});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->CreatePatient("Anna K.", "").ok());
    for (int i = 1; i <= 10; ++i) {
      (*store)->AppendBatch(Batch("bay-1", i), [&](absl::Status s) {
        if (s.ok()) ++committed;
      });
    }
  }
  EXPECT_EQ(committed.load(), 10);
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(*(*store)->CountBatches("bay-1"), 10);
}

// The writer copies the log into the database between commits once it
// holds checkpoint_frames pages, so the log is reused from its start: it
// stays near that size however much is written.
TEST(SqliteStore, TheLogIsCheckpointedBetweenCommits) {
  testing::TempDir dir;
  auto store = OpenSqliteStore(DbPath(dir), {.checkpoint_frames = 64});
  ASSERT_TRUE(store.ok());
  uint64_t seq = 0;
  auto kilobyte_batch = [&] {
    BatchRecord b = Batch("bay-1", ++seq);
    b.payload.assign(1024, 'x');
    return b;
  };
  for (int wave = 0; wave < 40; ++wave) {
    // 50 batches a commit: some 15 pages each.
    for (int i = 0; i < 49; ++i) (*store)->AppendBatch(kilobyte_batch(), {});
    ASSERT_TRUE(AppendAndWait(**store, kilobyte_batch()).ok());
  }
  EXPECT_EQ(*(*store)->CountBatches("bay-1"), 2000);
  // 2,000 batches are over 2 MB; without checkpoints the log holds them all.
  const auto log_bytes = std::filesystem::file_size(DbPath(dir) + "-wal");
  EXPECT_LT(log_bytes, 1u << 20) << log_bytes;
}

// A backup taken while batches keep committing is a whole, consistent
// database: it passes the integrity check, opens as a clinic store, and
// holds every batch committed before it began and none half-written.
TEST(SqliteStore, BackupWhileWritesGoOnIsConsistent) {
  testing::TempDir dir;
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  constexpr int kBefore = 300, kDuring = 3000;
  // Writes commit in order: once the last is acknowledged, all are.
  for (int i = 1; i < kBefore; ++i) {
    (*store)->AppendBatch(Batch("bay-1", i), nullptr);
  }
  ASSERT_TRUE(AppendAndWait(**store, Batch("bay-1", kBefore)).ok());
  std::promise<void> all;
  for (int i = kBefore + 1; i <= kBefore + kDuring; ++i) {
    (*store)->AppendBatch(Batch("bay-1", i), [&, i](absl::Status) {
      if (i == kBefore + kDuring) all.set_value();
    });
  }
  const std::string backup = dir.path() + "/backup.db";
  ASSERT_TRUE((*store)->BackupTo(backup).ok());
  all.get_future().wait();

  auto info = VerifyClinicDatabase(backup);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->schema_version, SqliteSchemaVersion());
  EXPECT_GE(info->sample_batches, kBefore);
  EXPECT_LE(info->sample_batches, kBefore + kDuring);
  // No -wal beside it: the file alone is the backup.
  EXPECT_FALSE(std::filesystem::exists(backup + "-wal"));
  auto copy = OpenSqliteStore(backup);
  ASSERT_TRUE(copy.ok()) << copy.status();
  const int64_t n = *(*copy)->CountBatches("bay-1");
  EXPECT_EQ(n, info->sample_batches);
  // Batches commit in order: the copy holds 1..n, a prefix.
  EXPECT_EQ(*(*copy)->DurableSeq("bay-1", "boot"), static_cast<uint64_t>(n));

  // What is not a backup is refused with a reason.
  {
    std::ofstream junk(dir.path() + "/junk.db");
    junk << "not a database at all, just text that is long enough";
  }
  EXPECT_FALSE(VerifyClinicDatabase(dir.path() + "/junk.db").ok());
}

// Batches of one station arriving every `every` from `start`, with real
// samples (the columns of a sample block) in all but every 50th, which is
// opaque (kept verbatim).
std::vector<BatchRecord> ArrivingBatches(const std::string& station,
                                         const std::string& boot,
                                         uint64_t first_seq, absl::Time start,
                                         int count, absl::Duration every) {
  std::vector<BatchRecord> out;
  for (int i = 0; i < count; ++i) {
    BatchRecord b = Batch(station, first_seq + i);
    b.boot_id = boot;
    b.received_at = start + i * every;
    if (i % 50 != 0) {
      b.payload =
          testing::StandingBatch(b.seq, b.first_t_us, 5).SerializeAsString();
    }
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<BatchRecord> Visited(ClinicStore& store, const std::string& station,
                                 absl::Time since = absl::UnixEpoch()) {
  std::vector<BatchRecord> out;
  EXPECT_TRUE(store
                  .VisitBatches(station, since,
                                [&](const BatchRecord& b) {
                                  out.push_back(b);
                                  return true;
                                })
                  .ok());
  return out;
}

void ExpectSameBatches(const std::vector<BatchRecord>& got,
                       const std::vector<BatchRecord>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(got[i] == want[i])
        << "batch " << i << " (seq " << want[i].seq << ") comes back changed";
  }
}

// A whole minute, so that blocks start on the first batch.
const absl::Time kMinute0 = absl::FromUnixSeconds(1'795'000'020);

TEST(SqliteStore, FoldedMinutesReadBackAsTheBatchesTheyHeld) {
  testing::TempDir dir;
  std::vector<BatchRecord> before;
  {
    auto store = OpenSqliteStore(DbPath(dir));
    ASSERT_TRUE(store.ok());
    for (const std::string station : {"bay-1", "bay-2"}) {
      for (BatchRecord& b : ArrivingBatches(station, "boot", 1, kMinute0, 1200,
                                            absl::Milliseconds(250))) {
        (*store)->AppendBatch(std::move(b), nullptr);
      }
    }
    ASSERT_TRUE(AppendAndWait(**store, Batch("bay-3", 1)).ok());
    before = Visited(**store, "bay-1");
    ASSERT_EQ(before.size(), 1200u);

    // Minutes 0-2 have ended by 3.5 min; minute 3 has not.
    auto folded = (*store)->CompactSamples(kMinute0 + absl::Seconds(210), 100);
    ASSERT_TRUE(folded.ok()) << folded.status();
    EXPECT_EQ(folded->blocks, 6);
    EXPECT_EQ(folded->batches, 2 * 720);
    EXPECT_LT(folded->block_bytes, folded->batch_bytes);
    auto again = (*store)->CompactSamples(kMinute0 + absl::Seconds(210), 100);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->blocks, 0);

    ExpectSameBatches(Visited(**store, "bay-1"), before);
    EXPECT_EQ(*(*store)->CountBatches("bay-1"), 1200);
    EXPECT_EQ(*(*store)->DurableSeq("bay-1", "boot"), 1200u);
    // From the middle of a folded minute: the batches since then.
    const absl::Time since =
        kMinute0 + absl::Seconds(90) + absl::Milliseconds(1);
    ExpectSameBatches(
        Visited(**store, "bay-1", since),
        std::vector<BatchRecord>(before.begin() + 361, before.end()));
    // Stopping early stops.
    int seen = 0;
    ASSERT_TRUE(
        (*store)
            ->VisitBatches("bay-1", absl::UnixEpoch(),
                           [&](const BatchRecord&) { return ++seen < 10; })
            .ok());
    EXPECT_EQ(seen, 10);
    // A batch resent after its minute was folded is stored once.
    ASSERT_TRUE(AppendAndWait(**store, before[5]).ok());
    EXPECT_EQ(*(*store)->CountBatches("bay-1"), 1200);
  }
  auto info = VerifyClinicDatabase(DbPath(dir));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->sample_batches, 2401);
  EXPECT_EQ(info->sample_blocks, 6);
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  ExpectSameBatches(Visited(**store, "bay-1"), before);
}

TEST(SqliteStore, ABootFoldedWholeStillGivesTheStationItsResumePoint) {
  testing::TempDir dir;
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  for (BatchRecord& b : ArrivingBatches("bay-1", "old-boot", 1, kMinute0, 40,
                                        absl::Milliseconds(500))) {
    (*store)->AppendBatch(std::move(b), nullptr);
  }
  ASSERT_TRUE(AppendAndWait(**store, Batch("bay-1", 1)).ok());
  auto folded = (*store)->CompactSamples(kMinute0 + absl::Minutes(1), 100);
  ASSERT_TRUE(folded.ok());
  EXPECT_EQ(folded->blocks, 1);
  EXPECT_EQ(*(*store)->DurableSeq("bay-1", "old-boot"), 40u);
  EXPECT_EQ(*(*store)->DurableSeq("bay-1", "boot"), 1u);
}

// Two boots of a station can number a batch alike and have it arrive in
// the same microsecond: both are read back from the block.
TEST(SqliteStore, FoldedBatchesAlikeButForTheBootAreBothReadBack) {
  testing::TempDir dir;
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  for (const char* boot : {"boot-a", "boot-b"}) {
    ASSERT_TRUE(
        AppendAndWait(**store, ArrivingBatches("bay-1", boot, 5, kMinute0, 1,
                                               absl::ZeroDuration())[0])
            .ok());
  }
  ASSERT_EQ(Visited(**store, "bay-1").size(), 2u);
  ASSERT_EQ((*store)->CompactSamples(kMinute0 + absl::Minutes(2), 10)->blocks,
            1);
  const std::vector<BatchRecord> back = Visited(**store, "bay-1");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_NE(back[0].boot_id, back[1].boot_id);
}

TEST(SqliteStore, ABatchArrivingLateForAFoldedMinuteKeepsItsPlace) {
  testing::TempDir dir;
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  for (BatchRecord& b :
       ArrivingBatches("bay-1", "boot", 1, kMinute0, 120, absl::Seconds(1))) {
    (*store)->AppendBatch(std::move(b), nullptr);
  }
  ASSERT_TRUE(AppendAndWait(**store, Batch("bay-9", 1)).ok());
  ASSERT_EQ((*store)->CompactSamples(kMinute0 + absl::Minutes(2), 10)->blocks,
            2);
  // The hub's clock stepped back: received in a minute already folded.
  BatchRecord late = ArrivingBatches("bay-1", "boot", 121,
                                     kMinute0 + absl::Milliseconds(30'500), 1,
                                     absl::ZeroDuration())[0];
  ASSERT_TRUE(AppendAndWait(**store, late).ok());
  auto order = [](const std::vector<BatchRecord>& batches) {
    std::vector<uint64_t> seqs;
    for (const BatchRecord& b : batches) seqs.push_back(b.seq);
    return seqs;
  };
  std::vector<uint64_t> want;
  for (uint64_t seq = 1; seq <= 31; ++seq) want.push_back(seq);
  want.push_back(121);
  for (uint64_t seq = 32; seq <= 120; ++seq) want.push_back(seq);
  EXPECT_EQ(order(Visited(**store, "bay-1")), want);
  // Folded again, into a block overlapping the first: the same order.
  ASSERT_EQ((*store)->CompactSamples(kMinute0 + absl::Minutes(2), 10)->blocks,
            1);
  EXPECT_EQ(order(Visited(**store, "bay-1")), want);
  EXPECT_EQ(*(*store)->CountBatches("bay-1"), 121);
}

// Rows stored in one order with arrival times in another (the clock stepped
// back between two batches): the block takes every row stored up to the
// minute's last one, and nothing is lost or seen twice.
TEST(SqliteStore, FoldingFollowsStoringOrderWhenArrivalTimesStepBack) {
  testing::TempDir dir;
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  const absl::Duration received[] = {absl::Seconds(10), absl::Seconds(70),
                                     absl::Seconds(20), absl::Seconds(80)};
  uint64_t seq = 0;
  for (absl::Duration at : received) {
    ++seq;
    ASSERT_TRUE(AppendAndWait(**store, ArrivingBatches("bay-1", "boot", seq,
                                                       kMinute0 + at, 1,
                                                       absl::ZeroDuration())[0])
                    .ok());
  }
  auto seqs = [&] {
    std::vector<uint64_t> out;
    for (const BatchRecord& b : Visited(**store, "bay-1")) out.push_back(b.seq);
    return out;
  };
  const std::vector<uint64_t> want = {1, 3, 2, 4};
  ASSERT_EQ(seqs(), want);
  // Minute 0 has ended, minute 1 has not: its first batch, stored before
  // one of minute 0's, goes into the block too; its second stays raw.
  auto folded = (*store)->CompactSamples(kMinute0 + absl::Seconds(90), 10);
  ASSERT_TRUE(folded.ok()) << folded.status();
  EXPECT_EQ(folded->blocks, 1);
  EXPECT_EQ(folded->batches, 3);
  EXPECT_EQ(seqs(), want);
  EXPECT_EQ(*(*store)->CountBatches("bay-1"), 4);
  folded = (*store)->CompactSamples(kMinute0 + absl::Minutes(3), 10);
  ASSERT_TRUE(folded.ok()) << folded.status();
  EXPECT_EQ(folded->batches, 1);
  EXPECT_EQ(seqs(), want);
  EXPECT_EQ(*(*store)->CountBatches("bay-1"), 4);
}

// Rows of folded batches are deleted once no unfolded row is stored before
// them; until then they are out of sight. The newest row stays (ids must
// never repeat one a fold mark covers). VACUUM, which an IT person may
// run, leaves every batch where it was.
TEST(SqliteStore, FoldedRowsAreDeletedBehindTheOldestUnfoldedOne) {
  testing::TempDir dir;
  std::vector<BatchRecord> before_1, before_2;
  {
    auto store = OpenSqliteStore(DbPath(dir));
    ASSERT_TRUE(store.ok());
    // Interleaved as live stations arrive; bay-2 starts a minute later.
    const std::vector<BatchRecord> bay_1 = ArrivingBatches(
        "bay-1", "boot", 1, kMinute0, 240, absl::Milliseconds(500));
    const std::vector<BatchRecord> bay_2 =
        ArrivingBatches("bay-2", "boot", 1, kMinute0 + absl::Minutes(1), 120,
                        absl::Milliseconds(500));
    for (size_t i = 0; i < bay_1.size(); ++i) {
      (*store)->AppendBatch(bay_1[i], nullptr);
      if (i >= 120) (*store)->AppendBatch(bay_2[i - 120], nullptr);
    }
    ASSERT_TRUE(
        AppendAndWait(**store, ArrivingBatches("bay-3", "boot", 1,
                                               kMinute0 + absl::Minutes(3), 1,
                                               absl::ZeroDuration())[0])
            .ok());
    before_1 = Visited(**store, "bay-1");
    before_2 = Visited(**store, "bay-2");
    // bay-1's minute 0 is alone in its ids: deleted at once.
    auto folded = (*store)->CompactSamples(kMinute0 + absl::Minutes(1), 10);
    ASSERT_TRUE(folded.ok()) << folded.status();
    EXPECT_EQ(folded->blocks, 1);
    EXPECT_EQ(folded->rows_deleted, 120);
    // Then every minute that has ended; bay-3's row, the newest, stays.
    folded = (*store)->CompactSamples(kMinute0 + absl::Minutes(5), 10);
    ASSERT_TRUE(folded.ok()) << folded.status();
    EXPECT_EQ(folded->blocks, 3);
    EXPECT_EQ(folded->rows_deleted, 240);
    ExpectSameBatches(Visited(**store, "bay-1"), before_1);
    ExpectSameBatches(Visited(**store, "bay-2"), before_2);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath(dir).c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "VACUUM", nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_stmt* rows = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sample_batches", -1,
                               &rows, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(rows), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(rows, 0), 1);
  sqlite3_finalize(rows);
  sqlite3_close(db);
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  ExpectSameBatches(Visited(**store, "bay-1"), before_1);
  ExpectSameBatches(Visited(**store, "bay-2"), before_2);
  EXPECT_EQ(*(*store)->CountBatches("bay-3"), 1);
  EXPECT_EQ(*(*store)->CountBatches("bay-1"), 240);
}

// A clinic database as StepHub's first schema wrote it (version 1), with
// one of everything: it opens, upgrades to the current schema, and keeps
// what it held. The SQL is that release's, copied here as a fixture: the
// store's own migrations must not be what the test reads.
TEST(SqliteStore, ADatabaseFromTheFirstSchemaUpgradesAndKeepsItsRecords) {
  testing::TempDir dir;
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(DbPath(dir).c_str(), &db), SQLITE_OK);
    const char* kSchema1 = R"sql(
CREATE TABLE patients(patient_id INTEGER PRIMARY KEY, display_name TEXT NOT
  NULL, external_ref TEXT NOT NULL DEFAULT '', created_us INTEGER NOT NULL);
CREATE TABLE stations(station_id TEXT PRIMARY KEY, hello BLOB NOT NULL,
  last_seen_us INTEGER NOT NULL);
CREATE TABLE sample_batches(station_id TEXT NOT NULL, boot_id TEXT NOT NULL,
  seq INTEGER NOT NULL, first_t_us INTEGER NOT NULL, last_t_us INTEGER NOT
  NULL, sample_count INTEGER NOT NULL, payload BLOB NOT NULL, received_us
  INTEGER NOT NULL, PRIMARY KEY(station_id, boot_id, seq)) WITHOUT ROWID;
CREATE TABLE sets(set_id INTEGER PRIMARY KEY, station_id TEXT NOT NULL,
  patient_id INTEGER NOT NULL REFERENCES patients(patient_id), stance_side
  INTEGER NOT NULL, exercise TEXT NOT NULL, load TEXT NOT NULL, level INTEGER
  NOT NULL, started_us INTEGER NOT NULL, ended_us INTEGER);
CREATE INDEX sets_by_patient ON sets(patient_id, started_us);
CREATE TABLE repetitions(set_id INTEGER NOT NULL REFERENCES sets(set_id),
  number INTEGER NOT NULL, scoring_version TEXT NOT NULL, station_id TEXT NOT
  NULL, patient_id INTEGER NOT NULL, start_us INTEGER NOT NULL, deepest_us
  INTEGER NOT NULL, end_us INTEGER NOT NULL, peak_pelvic_drop_deg REAL NOT
  NULL, verdict INTEGER NOT NULL, clean INTEGER NOT NULL, scored_us INTEGER
  NOT NULL, PRIMARY KEY(set_id, scoring_version, number));
CREATE TABLE events(event_id INTEGER PRIMARY KEY, time_us INTEGER NOT NULL,
  kind TEXT NOT NULL, station_id TEXT NOT NULL, detail TEXT NOT NULL);
INSERT INTO patients VALUES(1, 'Anna K.', 'MRN-1', 1795000000000000);
INSERT INTO sample_batches VALUES('bay-1', 'boot', 1, 25000, 45000, 5,
  X'0801', 1795000001000000);
INSERT INTO sample_batches VALUES('bay-1', 'boot', 2, 50000, 70000, 5,
  X'0802', 1795000001025000);
INSERT INTO sets VALUES(1, 'bay-1', 1, 1, 'lateral step-down', 'bodyweight',
  2, 1795000001000000, 1795000061000000);
INSERT INTO repetitions VALUES(1, 1, 'stephub-scoring/0.1', 'bay-1', 1,
  100000, 900000, 1800000, 6.5, 2, 0, 1795000002000000);
PRAGMA user_version=1;
)sql";
    ASSERT_EQ(sqlite3_exec(db, kSchema1, nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  {
    auto store = OpenSqliteStore(DbPath(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    auto patient = (*store)->GetPatient(1);
    ASSERT_TRUE(patient.ok()) << patient.status();
    EXPECT_EQ(patient->display_name(), "Anna K.");
    EXPECT_EQ(*(*store)->CountBatches("bay-1"), 2);
    EXPECT_EQ(*(*store)->DurableSeq("bay-1", "boot"), 2u);
    const std::vector<BatchRecord> batches = Visited(**store, "bay-1");
    ASSERT_EQ(batches.size(), 2u);
    EXPECT_EQ(batches[1].payload, "\x08\x02");
    auto set = (*store)->GetSet(1);
    ASSERT_TRUE(set.ok()) << set.status();
    EXPECT_EQ(set->patient_id(), 1);
    auto reps = (*store)->RepetitionsOfSet(1);
    ASSERT_TRUE(reps.ok()) << reps.status();
    ASSERT_EQ(reps->size(), 1u);
    EXPECT_DOUBLE_EQ((*reps)[0].peak_pelvic_drop_deg(), 6.5);
    // The scoring version of old results is an entity of its own now.
    auto versions = (*store)->ListScoringVersions();
    ASSERT_TRUE(versions.ok()) << versions.status();
    ASSERT_EQ(versions->size(), 1u);
    EXPECT_EQ((*versions)[0].version(), "stephub-scoring/0.1");
    EXPECT_EQ((*versions)[0].repetitions(), 1u);
    EXPECT_EQ((*versions)[0].current_sets(), 1u);
    EXPECT_EQ((*versions)[0].first_used().seconds(), 1795000002);
    // And it takes new records in the new schema.
    ASSERT_TRUE(AppendAndWait(**store, Batch("bay-1", 3)).ok());
    auto folded = (*store)->CompactSamples(absl::Now() + absl::Minutes(2), 10);
    ASSERT_TRUE(folded.ok()) << folded.status();
    EXPECT_EQ(folded->batches, 3);
    EXPECT_EQ(Visited(**store, "bay-1").size(), 3u);
  }
  auto info = VerifyClinicDatabase(DbPath(dir));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->schema_version, SqliteSchemaVersion());
  EXPECT_EQ(info->sample_batches, 3);
}

TEST(SqliteStore, SetsAndRepetitionsRoundTrip) {
  testing::TempDir dir;
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  auto patient = (*store)->CreatePatient("Carl M.", "");
  ASSERT_TRUE(patient.ok());
  v1::ExerciseSet set;
  set.set_station_id("bay-3");
  set.set_patient_id(patient->patient_id());
  set.set_stance_side(v1::STANCE_SIDE_RIGHT);
  set.set_exercise("lateral_step_down");
  set.set_load("band");
  set.set_level(2);
  v1::StationHello hello;
  hello.set_station_id("bay-3");
  hello.add_sensors()->set_sensor_id(10);
  auto created = (*store)->CreateSet(set, "2026-11-23", hello);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->state(), v1::SET_STATE_ACTIVE);
  auto kept = (*store)->StationOfSet(created->set_id());
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_EQ((*kept)->sensors_size(), 1);
  EXPECT_EQ(created->patient_display_name(), "Carl M.");
  EXPECT_EQ((*store)->ActiveSets()->size(), 1u);

  v1::Repetition rep;
  rep.set_set_id(created->set_id());
  rep.set_number(1);
  rep.set_station_id("bay-3");
  rep.set_patient_id(patient->patient_id());
  rep.set_peak_pelvic_drop_deg(8.25);
  rep.set_verdict(v1::VERDICT_PELVIC_DROP);
  rep.set_scoring_version("test/1");
  rep.mutable_metrics()->set_knee_flexion_deg(61.5);
  rep.mutable_quality()->set_pelvis(1);
  rep.mutable_quality()->set_total(1);
  rep.mutable_quality()->set_category(v1::QUALITY_CATEGORY_GOOD);
  rep.add_problems("sternal IMU: no standing baseline");
  rep.set_segmented_by("knee flexion");
  std::promise<absl::Status> done;
  (*store)->AddRepetition(rep, [&](absl::Status s) { done.set_value(s); });
  ASSERT_TRUE(done.get_future().get().ok());

  auto ended =
      (*store)->EndSet(created->set_id(), absl::Now(), std::nullopt, false);
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->state(), v1::SET_STATE_ENDED);
  EXPECT_TRUE((*store)->ActiveSets()->empty());
  auto reps = (*store)->RepetitionsOfSet(created->set_id());
  ASSERT_TRUE(reps.ok());
  ASSERT_EQ(reps->size(), 1u);
  EXPECT_DOUBLE_EQ((*reps)[0].peak_pelvic_drop_deg(), 8.25);
  EXPECT_EQ((*reps)[0].verdict(), v1::VERDICT_PELVIC_DROP);
  // Metrics, quality items and problems come back; what was not assessed
  // stays absent.
  EXPECT_DOUBLE_EQ((*reps)[0].metrics().knee_flexion_deg(), 61.5);
  EXPECT_FALSE((*reps)[0].metrics().has_knee_valgus_deg());
  EXPECT_TRUE((*reps)[0].quality().has_pelvis());
  EXPECT_FALSE((*reps)[0].quality().has_knee());
  EXPECT_EQ((*reps)[0].quality().category(), v1::QUALITY_CATEGORY_GOOD);
  ASSERT_EQ((*reps)[0].problems_size(), 1);
  EXPECT_EQ((*reps)[0].segmented_by(), "knee flexion");
  EXPECT_EQ((*store)->SetsOfPatient(patient->patient_id())->size(), 1u);
}

TEST(SqliteStore, SetForUnknownPatientFailsAlone) {
  testing::TempDir dir;
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  v1::ExerciseSet set;
  set.set_station_id("bay-1");
  set.set_patient_id(424242);
  EXPECT_FALSE((*store)->CreateSet(set, "2026-11-23", {}).ok());
  // The writer carries on after a failed write.
  EXPECT_TRUE(AppendAndWait(**store, Batch("bay-1", 1)).ok());
}

TEST(SqliteStore, EventsComeBackByTimeAPageAtATime) {
  testing::TempDir dir;
  auto store = OpenSqliteStore(DbPath(dir));
  ASSERT_TRUE(store.ok());
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  // Written out of time order, three of them at one instant.
  (*store)->AddEventAt(t0 + absl::Seconds(9), "station_connected", "bay-1", "e",
                       nullptr);
  for (const char* detail : {"b", "c", "d"}) {
    (*store)->AddEventAt(t0 + absl::Seconds(5), "station_connected", "bay-1",
                         detail, nullptr);
  }
  (*store)->AddEventAt(t0 + absl::Seconds(6), "sensor_state", "bay-1", "x",
                       nullptr);
  (*store)->AddEventAt(t0, "station_disconnected", "bay-2", "a", nullptr);
  std::promise<absl::Status> done;
  (*store)->AddEventAt(t0 + absl::Seconds(10), "station_connected", "bay-1",
                       "outside", [&](absl::Status s) { done.set_value(s); });
  ASSERT_TRUE(done.get_future().get().ok());

  // Pages of two over [t0, t0 + 10 s), connects and disconnects only.
  std::string seen;
  ClinicStore::EventCursor after;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = (*store)->EventsPage(
        t0, t0 + absl::Seconds(10),
        {"station_connected", "station_disconnected"}, after, 2);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const EventRecord& e : *page) seen += e.detail;
    if (page->size() < 2) break;
    after = {page->back().time, page->back().event_id};
  }
  EXPECT_EQ(seen, "abcde");
  auto before =
      (*store)->EventsPage(absl::InfinitePast(), t0 + absl::Seconds(1),
                           {"station_disconnected"}, {}, 10);
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->size(), 1u);
  EXPECT_EQ((*before)[0].station_id, "bay-2");
  EXPECT_EQ((*before)[0].time, t0);
}

}  // namespace
}  // namespace stephub::store
