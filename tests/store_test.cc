// The SQLite clinic record: migrations, refusal of newer databases,
// idempotent batches, group commit and set/repetition round trips.
#include "hub/store/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
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

}  // namespace
}  // namespace stephub::store
