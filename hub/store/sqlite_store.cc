// ClinicStore on embedded SQLite: WAL mode, versioned migrations, and one
// writer thread that commits queued writes in groups so that acknowledging
// only durable data does not cost throughput.
#include <google/protobuf/util/time_util.h>
#include <pthread.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "hub/store/sample_block.h"
#include "hub/store/store.h"

namespace stephub::store {
namespace {

constexpr int kSchemaVersion = 16;
// Writes taken into one transaction at most; bounds commit latency. At
// 512, 400 full-rate stations (16,000 batches a second) needed more
// commits than the disk's fsyncs allowed and the writer fell behind.
constexpr size_t kMaxGroup = 4096;

// Each entry brings the schema from version i to i+1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE patients(
  patient_id INTEGER PRIMARY KEY,
  display_name TEXT NOT NULL,
  external_ref TEXT NOT NULL DEFAULT '',
  created_us INTEGER NOT NULL);
CREATE TABLE stations(
  station_id TEXT PRIMARY KEY,
  hello BLOB NOT NULL,
  last_seen_us INTEGER NOT NULL);
CREATE TABLE sample_batches(
  station_id TEXT NOT NULL,
  boot_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  first_t_us INTEGER NOT NULL,
  last_t_us INTEGER NOT NULL,
  sample_count INTEGER NOT NULL,
  payload BLOB NOT NULL,
  received_us INTEGER NOT NULL,
  PRIMARY KEY(station_id, boot_id, seq)) WITHOUT ROWID;
CREATE TABLE sets(
  set_id INTEGER PRIMARY KEY,
  station_id TEXT NOT NULL,
  patient_id INTEGER NOT NULL REFERENCES patients(patient_id),
  stance_side INTEGER NOT NULL,
  exercise TEXT NOT NULL,
  load TEXT NOT NULL,
  level INTEGER NOT NULL,
  started_us INTEGER NOT NULL,
  ended_us INTEGER);
CREATE INDEX sets_by_patient ON sets(patient_id, started_us);
CREATE TABLE repetitions(
  set_id INTEGER NOT NULL REFERENCES sets(set_id),
  number INTEGER NOT NULL,
  scoring_version TEXT NOT NULL,
  station_id TEXT NOT NULL,
  patient_id INTEGER NOT NULL,
  start_us INTEGER NOT NULL,
  deepest_us INTEGER NOT NULL,
  end_us INTEGER NOT NULL,
  peak_pelvic_drop_deg REAL NOT NULL,
  verdict INTEGER NOT NULL,
  clean INTEGER NOT NULL,
  scored_us INTEGER NOT NULL,
  PRIMARY KEY(set_id, scoring_version, number));
CREATE TABLE events(
  event_id INTEGER PRIMARY KEY,
  time_us INTEGER NOT NULL,
  kind TEXT NOT NULL,
  station_id TEXT NOT NULL,
  detail TEXT NOT NULL);
)sql",
    // 2: each repetition's metrics, quality items and problems, kept as the
    // serialized protobuf fields so that new metrics need no migration.
    R"sql(
ALTER TABLE repetitions ADD COLUMN details BLOB;
)sql",
    // 3: each set's bounds on its station's clock (ExerciseSet).
    R"sql(
ALTER TABLE sets ADD COLUMN station_start_us INTEGER;
ALTER TABLE sets ADD COLUMN station_end_us INTEGER;
)sql",
    // 4: which scoring version's results are a set's current ones (NULL:
    // a set from before re-scoring existed, with results of one version).
    R"sql(
ALTER TABLE sets ADD COLUMN scoring_version TEXT;
)sql",
    // 5: sample batches in a rowid table. Rows of about 1 KiB overflowed the
    // WITHOUT ROWID b-tree's small in-page limit, so each took a page of its
    // own (4 times the payload on disk); re-scoring reads them by arrival.
    R"sql(
CREATE TABLE sample_batches_v5(
  station_id TEXT NOT NULL,
  boot_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  first_t_us INTEGER NOT NULL,
  last_t_us INTEGER NOT NULL,
  sample_count INTEGER NOT NULL,
  payload BLOB NOT NULL,
  received_us INTEGER NOT NULL,
  UNIQUE(station_id, boot_id, seq));
INSERT INTO sample_batches_v5 SELECT station_id, boot_id, seq, first_t_us,
  last_t_us, sample_count, payload, received_us FROM sample_batches
  ORDER BY received_us, seq;
DROP TABLE sample_batches;
ALTER TABLE sample_batches_v5 RENAME TO sample_batches;
CREATE INDEX sample_batches_by_arrival ON sample_batches(station_id,
  received_us);
)sql",
    // 6: therapists, and who ran each set.
    R"sql(
CREATE TABLE therapists(
  therapist_id INTEGER PRIMARY KEY,
  display_name TEXT NOT NULL,
  created_us INTEGER NOT NULL);
ALTER TABLE sets ADD COLUMN therapist_id INTEGER REFERENCES
  therapists(therapist_id);
)sql",
    // 7: sets ended before their station's data reached their end.
    R"sql(
ALTER TABLE sets ADD COLUMN awaiting_data INTEGER NOT NULL DEFAULT 0;
)sql",
    // 8: sessions, a patient's visit on one clinic day. Sets from before
    // have none (the progress view groups them by day all the same).
    R"sql(
CREATE TABLE sessions(
  session_id INTEGER PRIMARY KEY,
  patient_id INTEGER NOT NULL REFERENCES patients(patient_id),
  day TEXT NOT NULL,
  started_us INTEGER NOT NULL,
  note TEXT NOT NULL DEFAULT '',
  UNIQUE(patient_id, day));
ALTER TABLE sets ADD COLUMN session_id INTEGER REFERENCES sessions(session_id);
)sql",
    // 9: the station's hello as each set started (its sensors).
    R"sql(
ALTER TABLE sets ADD COLUMN station_hello BLOB;
)sql",
    // 10: sample blocks, a station's batches of one minute of arrival packed
    // by sample_block.h; and the highest seq of each boot folded into them,
    // which the station's resume point (DurableSeq) must still count.
    R"sql(
CREATE TABLE sample_blocks(
  block_id INTEGER PRIMARY KEY,
  station_id TEXT NOT NULL,
  first_received_us INTEGER NOT NULL,
  last_received_us INTEGER NOT NULL,
  first_t_us INTEGER NOT NULL,
  last_t_us INTEGER NOT NULL,
  batch_count INTEGER NOT NULL,
  sample_count INTEGER NOT NULL,
  batch_bytes INTEGER NOT NULL,
  block BLOB NOT NULL);
CREATE INDEX sample_blocks_by_arrival ON sample_blocks(station_id,
  last_received_us);
CREATE TABLE compacted_seqs(
  station_id TEXT NOT NULL,
  boot_id TEXT NOT NULL,
  high_seq INTEGER NOT NULL,
  PRIMARY KEY(station_id, boot_id)) WITHOUT ROWID;
)sql",
    // 11: scoring versions, each from the first time results were stored
    // with it (for older results, the first repetition scored with it).
    R"sql(
CREATE TABLE scoring_versions(
  version TEXT PRIMARY KEY,
  first_used_us INTEGER NOT NULL);
INSERT INTO scoring_versions SELECT scoring_version, MIN(scored_us)
  FROM repetitions GROUP BY scoring_version;
)sql",
    // 12: the log by time, which the clinic summary pages through for a
    // period (station uptime and gaps).
    R"sql(
CREATE INDEX events_by_time ON events(time_us, event_id);
)sql",
    // 13: revoked stations (a lost Pi): the station's certificates issued up
    // to revoked_us are refused; a new one issued later is accepted.
    R"sql(
CREATE TABLE station_revocations(
  station_id TEXT PRIMARY KEY,
  revoked_us INTEGER NOT NULL) WITHOUT ROWID;
)sql",
    // 14: staff who sign in, their sessions (by token hash) and the audit
    // log of who touched which patient's record.
    R"sql(
CREATE TABLE staff_users(
  username TEXT PRIMARY KEY,
  display_name TEXT NOT NULL,
  roles INTEGER NOT NULL,
  password_hash TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_us INTEGER NOT NULL);
CREATE TABLE staff_tokens(
  token_sha256 TEXT PRIMARY KEY,
  username TEXT NOT NULL REFERENCES staff_users(username),
  issued_us INTEGER NOT NULL,
  expires_us INTEGER NOT NULL,
  client TEXT NOT NULL);
CREATE INDEX staff_tokens_by_user ON staff_tokens(username);
CREATE TABLE audit_log(
  audit_id INTEGER PRIMARY KEY,
  time_us INTEGER NOT NULL,
  username TEXT NOT NULL,
  action TEXT NOT NULL,
  patient_id INTEGER NOT NULL,
  detail TEXT NOT NULL);
CREATE INDEX audit_by_patient ON audit_log(patient_id, audit_id);
)sql",
    // 15: the highest seq stored of each boot, raw or folded, kept by a
    // trigger in place of the batches' unique (station, boot, seq) index.
    // A station sends a boot's batches in rising seq, so the high mark alone
    // tells a resent batch; the index cost every commit a page per station
    // (its keys lead with the station), the mark a few pages in all.
    R"sql(
ALTER TABLE compacted_seqs RENAME TO stored_seqs;
INSERT INTO stored_seqs(station_id, boot_id, high_seq)
  SELECT station_id, boot_id, MAX(seq) FROM sample_batches WHERE true
  GROUP BY station_id, boot_id
  ON CONFLICT(station_id, boot_id) DO UPDATE SET
  high_seq = MAX(high_seq, excluded.high_seq);
CREATE TABLE sample_batches_v15(
  station_id TEXT NOT NULL,
  boot_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  first_t_us INTEGER NOT NULL,
  last_t_us INTEGER NOT NULL,
  sample_count INTEGER NOT NULL,
  payload BLOB NOT NULL,
  received_us INTEGER NOT NULL);
INSERT INTO sample_batches_v15 SELECT station_id, boot_id, seq, first_t_us,
  last_t_us, sample_count, payload, received_us FROM sample_batches
  ORDER BY rowid;
DROP TABLE sample_batches;
ALTER TABLE sample_batches_v15 RENAME TO sample_batches;
CREATE INDEX sample_batches_by_arrival ON sample_batches(station_id,
  received_us);
CREATE TRIGGER sample_batches_high_seq AFTER INSERT ON sample_batches BEGIN
  INSERT INTO stored_seqs(station_id, boot_id, high_seq)
    VALUES(NEW.station_id, NEW.boot_id, NEW.seq)
    ON CONFLICT(station_id, boot_id) DO UPDATE SET
    high_seq = MAX(high_seq, excluded.high_seq);
END;
)sql",
    // 16: a folded minute's batches are marked, not deleted, as its block
    // goes in: rows arrive interleaved across stations, so deleting one
    // station's minute rewrote (and rebalanced) a page per row, shared with
    // other stations' rows: 58 MB written and 86 ms of the writer per
    // station-minute at 100 stations. A station's mark is the highest
    // batch_id folded; the rows below the lowest unfolded one are deleted
    // later as one run of ids, whole pages at a time. batch_id is an
    // INTEGER PRIMARY KEY because VACUUM may renumber a plain rowid.
    R"sql(
CREATE TABLE sample_batches_v16(
  batch_id INTEGER PRIMARY KEY,
  station_id TEXT NOT NULL,
  boot_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  first_t_us INTEGER NOT NULL,
  last_t_us INTEGER NOT NULL,
  sample_count INTEGER NOT NULL,
  payload BLOB NOT NULL,
  received_us INTEGER NOT NULL);
INSERT INTO sample_batches_v16 SELECT rowid, station_id, boot_id, seq,
  first_t_us, last_t_us, sample_count, payload, received_us
  FROM sample_batches ORDER BY rowid;
DROP TABLE sample_batches;
ALTER TABLE sample_batches_v16 RENAME TO sample_batches;
CREATE INDEX sample_batches_by_arrival ON sample_batches(station_id,
  received_us);
CREATE TRIGGER sample_batches_high_seq AFTER INSERT ON sample_batches BEGIN
  INSERT INTO stored_seqs(station_id, boot_id, high_seq)
    VALUES(NEW.station_id, NEW.boot_id, NEW.seq)
    ON CONFLICT(station_id, boot_id) DO UPDATE SET
    high_seq = MAX(high_seq, excluded.high_seq);
END;
CREATE TABLE sample_fold_marks(
  station_id TEXT PRIMARY KEY,
  folded_through INTEGER NOT NULL);
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

int64_t ToUs(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromUs(int64_t us) { return absl::FromUnixMicros(us); }

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  *out = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(ToUs(t));
}

// The fields of a repetition kept in its `details` column.
std::string DetailsOf(const v1::Repetition& r) {
  v1::Repetition details;
  *details.mutable_metrics() = r.metrics();
  *details.mutable_quality() = r.quality();
  *details.mutable_problems() = r.problems();
  details.set_segmented_by(r.segmented_by());
  return details.SerializeAsString();
}

// A prepared statement that finalizes itself.
// Prepared statements of one connection, kept for its life: the writer
// runs the same few statements tens of thousands of times a second, and
// compiling one costs more than running it.
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  ~StatementCache() {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  }
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  sqlite3* db() const { return db_; }
  // Keyed by the text's address: callers pass string literals.
  int Get(const char* sql, sqlite3_stmt** stmt) {
    if (auto it = statements_.find(sql); it != statements_.end()) {
      *stmt = it->second;
      return SQLITE_OK;
    }
    const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                      stmt, nullptr);
    if (rc == SQLITE_OK) statements_.emplace(sql, *stmt);
    return rc;
  }

 private:
  sqlite3* const db_;
  std::map<const char*, sqlite3_stmt*> statements_;
};

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  // Borrowed from `cache`, and reset for its next use when done.
  Statement(StatementCache& cache, const char* sql)
      : db_(cache.db()), cached_(true) {
    rc_ = cache.Get(sql, &stmt_);
  }
  ~Statement() {
    if (!cached_) {
      sqlite3_finalize(stmt_);
    } else if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  absl::Status prepared() const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return absl::InternalError(
        absl::StrCat("sqlite prepare: ", sqlite3_errmsg(db_)));
  }
  Statement& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& Bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Statement& Bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Statement& BindBlob(int i, const std::string& v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  // Without a copy: `v` must outlive the statement's last Step.
  Statement& BindBlobInPlace(int i, const std::string& v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_STATIC);
    return *this;
  }
  Statement& BindNull(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  // NULL when absent.
  template <typename T>
  Statement& BindOrNull(int i, const std::optional<T>& v) {
    return v ? Bind(i, *v) : BindNull(i);
  }
  // Returns true while rows come; errors are kept in status().
  bool Step() {
    rc_ = sqlite3_step(stmt_);
    return rc_ == SQLITE_ROW;
  }
  absl::Status status() const {
    if (rc_ == SQLITE_OK || rc_ == SQLITE_ROW || rc_ == SQLITE_DONE) {
      return absl::OkStatus();
    }
    return absl::InternalError(absl::StrCat("sqlite: ", sqlite3_errmsg(db_)));
  }
  absl::Status Run() {
    if (auto s = prepared(); !s.ok()) return s;
    while (Step()) {
    }
    return status();
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Real(int col) const { return sqlite3_column_double(stmt_, col); }
  bool IsNull(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }
  std::string Text(int col) const {
    const auto* p = sqlite3_column_blob(stmt_, col);
    const int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), n) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  bool cached_ = false;
  int rc_;
};

absl::Status Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    absl::Status s =
        absl::InternalError(absl::StrCat("sqlite: ", err ? err : "?"));
    sqlite3_free(err);
    return s;
  }
  return absl::OkStatus();
}

// `cache_kib`: the connection's page cache (SQLite's cache_size).
absl::StatusOr<sqlite3*> OpenConnection(const std::string& path,
                                        int cache_kib = 64 * 1024) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(
        absl::StrCat("cannot open database ", path, ": ", msg));
  }
  sqlite3_busy_timeout(db, 5000);
  const std::string cache = absl::StrCat("PRAGMA cache_size=-", cache_kib);
  // WAL: readers never block the writer. synchronous=FULL: a commit is on
  // disk when it returns, which is what an acknowledgement promises.
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON", cache.c_str(),
        // A checkpoint copies the log's pages into the database; every
        // 32 MiB of log instead of 4 MiB, a busy index page is copied once
        // for many commits (store_ingest at 300 stations: 64,000 -> 82,000
        // batches a second). The log file is cut back to 64 MiB after. (The
        // store's writer checkpoints by itself, between commits.)
        "PRAGMA wal_autocheckpoint=8192",
        "PRAGMA journal_size_limit=67108864"}) {
    if (auto s = Exec(db, pragma); !s.ok()) {
      sqlite3_close(db);
      return s;
    }
  }
  return db;
}

absl::Status Migrate(sqlite3* db, const std::string& path) {
  int current = 0;
  {
    // Finalized before migrating: a statement still open on the connection
    // keeps DROP TABLE from running.
    Statement version(db, "PRAGMA user_version");
    if (auto s = version.prepared(); !s.ok()) return s;
    current = version.Step() ? static_cast<int>(version.Int(0)) : 0;
  }
  if (current > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "database %s has schema version %d, newer than this hub's %d: "
        "upgrade StepHub or restore a backup made by this version",
        path, current, kSchemaVersion));
  }
  for (; current < kSchemaVersion; ++current) {
    std::string sql =
        absl::StrCat("BEGIN;", kMigrations[current],
                     "PRAGMA user_version=", current + 1, ";COMMIT;");
    if (auto s = Exec(db, sql); !s.ok()) {
      Exec(db, "ROLLBACK").IgnoreError();
      return absl::InternalError(
          absl::StrFormat("migrating %s to schema version %d: %s", path,
                          current + 1, s.message()));
    }
  }
  return absl::OkStatus();
}

v1::Patient PatientFrom(const Statement& row) {
  v1::Patient p;
  p.set_patient_id(row.Int(0));
  p.set_display_name(row.Text(1));
  p.set_external_ref(row.Text(2));
  SetTimestamp(FromUs(row.Int(3)), p.mutable_created_at());
  return p;
}

constexpr char kSetColumns[] =
    "s.set_id, s.station_id, s.patient_id, s.stance_side, s.exercise, s.load, "
    "s.level, s.started_us, s.ended_us, p.display_name, s.station_start_us, "
    "s.station_end_us, s.scoring_version, s.therapist_id, s.session_id";

v1::ExerciseSet SetFrom(const Statement& row) {
  v1::ExerciseSet set;
  set.set_set_id(row.Int(0));
  set.set_station_id(row.Text(1));
  set.set_patient_id(row.Int(2));
  set.set_stance_side(static_cast<v1::StanceSide>(row.Int(3)));
  set.set_exercise(row.Text(4));
  set.set_load(row.Text(5));
  set.set_level(static_cast<uint32_t>(row.Int(6)));
  SetTimestamp(FromUs(row.Int(7)), set.mutable_started_at());
  if (row.IsNull(8)) {
    set.set_state(v1::SET_STATE_ACTIVE);
  } else {
    set.set_state(v1::SET_STATE_ENDED);
    SetTimestamp(FromUs(row.Int(8)), set.mutable_ended_at());
  }
  set.set_patient_display_name(row.Text(9));
  if (!row.IsNull(10)) set.set_station_start_us(row.Int(10));
  if (!row.IsNull(11)) set.set_station_end_us(row.Int(11));
  if (!row.IsNull(12)) set.set_scoring_version(row.Text(12));
  if (!row.IsNull(13)) set.set_therapist_id(row.Int(13));
  if (!row.IsNull(14)) set.set_session_id(row.Int(14));
  return set;
}

absl::Status InsertRepetition(sqlite3* db, const v1::Repetition& r) {
  Statement st(db,
               "INSERT OR REPLACE INTO repetitions(set_id, number, "
               "scoring_version, station_id, patient_id, start_us, "
               "deepest_us, end_us, peak_pelvic_drop_deg, verdict, "
               "clean, scored_us, details) "
               "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
  st.Bind(1, r.set_id())
      .Bind(2, static_cast<int64_t>(r.number()))
      .Bind(3, r.scoring_version())
      .Bind(4, r.station_id())
      .Bind(5, r.patient_id())
      .Bind(6, r.start_us())
      .Bind(7, r.deepest_us())
      .Bind(8, r.end_us())
      .Bind(9, r.peak_pelvic_drop_deg())
      .Bind(10, static_cast<int64_t>(r.verdict()))
      .Bind(11, static_cast<int64_t>(r.clean()))
      .Bind(12, google::protobuf::util::TimeUtil::TimestampToMicroseconds(
                    r.scored_at()))
      .BindBlob(13, DetailsOf(r));
  if (auto s = st.Run(); !s.ok()) return s;
  Statement version(db,
                    "INSERT OR IGNORE INTO scoring_versions(version, "
                    "first_used_us) VALUES(?,?)");
  version.Bind(1, r.scoring_version())
      .Bind(2, google::protobuf::util::TimeUtil::TimestampToMicroseconds(
                   r.scored_at()));
  return version.Run();
}

// Batches are folded into blocks by the minute of their arrival.
constexpr int64_t kBlockUs = 60'000'000;

// The columns BatchFrom reads, in its order. By the arrival index, always:
// a condition on batch_id could otherwise make SQLite walk every station's
// rows in an id range.
constexpr char kBatchColumns[] =
    "SELECT boot_id, seq, first_t_us, last_t_us, sample_count, payload, "
    "received_us FROM sample_batches INDEXED BY sample_batches_by_arrival ";

// A station's batches with batch_id at or below its mark are in blocks
// (schema 16); this is the mark, 0 if none.
constexpr char kFoldMark[] =
    "COALESCE((SELECT folded_through FROM sample_fold_marks m "
    "WHERE m.station_id = sample_batches.station_id), 0)";
// The same for the station bound to ?1, read once per statement.
constexpr char kStationFoldMark[] =
    "(SELECT COALESCE(MAX(folded_through), 0) FROM sample_fold_marks "
    "WHERE station_id = ?1)";

BatchRecord BatchFrom(const Statement& row, const std::string& station_id) {
  BatchRecord b;
  b.station_id = station_id;
  b.boot_id = row.Text(0);
  b.seq = static_cast<uint64_t>(row.Int(1));
  b.first_t_us = row.Int(2);
  b.last_t_us = row.Int(3);
  b.sample_count = static_cast<uint32_t>(row.Int(4));
  b.payload = row.Text(5);
  b.received_at = FromUs(row.Int(6));
  return b;
}

class SqliteStore final : public ClinicStore {
 public:
  SqliteStore(std::string path, sqlite3* writer, sqlite3* reader,
              sqlite3* folder, const SqliteStoreOptions& options)
      : path_(std::move(path)),
        stream_commit_delay_(absl::ToChronoNanoseconds(
            std::clamp(options.stream_commit_delay, absl::ZeroDuration(),
                       absl::Seconds(1)))),
        writer_db_(writer),
        reader_db_(reader),
        fold_db_(folder),
        writer_statements_(std::make_unique<StatementCache>(writer)),
        checkpoint_frames_(std::max(1, options.checkpoint_frames)) {
    // Replaces the writer's automatic checkpoint, which ran inside COMMIT,
    // before the commit's acknowledgements (see WriterLoop).
    sqlite3_wal_hook(writer_db_, &SqliteStore::NoteLogFrames, this);
    writer_thread_ = std::thread([this] { WriterLoop(); });
  }

  ~SqliteStore() override {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    writer_thread_.join();
    writer_statements_.reset();  // finalized before their connection closes
    sqlite3_close(fold_db_);
    sqlite3_close(reader_db_);
    sqlite3_close(writer_db_);
  }

  absl::StatusOr<v1::Patient> CreatePatient(
      const std::string& display_name,
      const std::string& external_ref) override {
    const int64_t now = ToUs(absl::Now());
    auto id = Insert(
        "INSERT INTO patients(display_name, external_ref, created_us) "
        "VALUES(?,?,?)",
        [&](Statement& st) {
          st.Bind(1, display_name).Bind(2, external_ref).Bind(3, now);
        });
    if (!id.ok()) return id.status();
    return GetPatient(*id);
  }

  absl::StatusOr<std::vector<v1::Patient>> ListPatients() override {
    std::lock_guard<std::mutex> lock(reader_mu_);
    Statement st(reader_db_,
                 "SELECT patient_id, display_name, external_ref, created_us "
                 "FROM patients ORDER BY patient_id");
    if (auto s = st.prepared(); !s.ok()) return s;
    std::vector<v1::Patient> out;
    while (st.Step()) out.push_back(PatientFrom(st));
    if (auto s = st.status(); !s.ok()) return s;
    return out;
  }

  absl::StatusOr<v1::Patient> GetPatient(int64_t patient_id) override {
    std::lock_guard<std::mutex> lock(reader_mu_);
    Statement st(reader_db_,
                 "SELECT patient_id, display_name, external_ref, created_us "
                 "FROM patients WHERE patient_id = ?");
    if (auto s = st.prepared(); !s.ok()) return s;
    st.Bind(1, patient_id);
    if (st.Step()) return PatientFrom(st);
    if (auto s = st.status(); !s.ok()) return s;
    return absl::NotFoundError(absl::StrCat("no patient ", patient_id));
  }

  absl::StatusOr<v1::Therapist> CreateTherapist(
      const std::string& display_name) override {
    const int64_t now = ToUs(absl::Now());
    auto id =
        Insert("INSERT INTO therapists(display_name, created_us) VALUES(?,?)",
               [&](Statement& st) { st.Bind(1, display_name).Bind(2, now); });
    if (!id.ok()) return id.status();
    return GetTherapist(*id);
  }

  absl::StatusOr<std::vector<v1::Therapist>> ListTherapists() override {
    return QueryTherapists("ORDER BY therapist_id", std::nullopt);
  }

  absl::StatusOr<v1::Therapist> GetTherapist(int64_t therapist_id) override {
    auto found = QueryTherapists("WHERE therapist_id = ?", therapist_id);
    if (!found.ok()) return found.status();
    if (found->empty()) {
      return absl::NotFoundError(absl::StrCat("no therapist ", therapist_id));
    }
    return found->front();
  }

  void SaveStation(const StationRecord& station, CommitCallback done) override {
    Enqueue(
        [id = station.station_id, hello = station.hello.SerializeAsString(),
         seen = ToUs(station.last_seen)](sqlite3* db) {
          Statement st(db,
                       "INSERT INTO stations(station_id, hello, last_seen_us) "
                       "VALUES(?,?,?) ON CONFLICT(station_id) DO UPDATE SET "
                       "hello=excluded.hello, "
                       "last_seen_us=excluded.last_seen_us");
          st.Bind(1, id).BindBlob(2, hello).Bind(3, seen);
          return st.Run();
        },
        std::move(done));
  }

  absl::StatusOr<std::vector<StationRecord>> ListStations() override {
    std::lock_guard<std::mutex> lock(reader_mu_);
    Statement st(reader_db_,
                 "SELECT station_id, hello, last_seen_us FROM stations "
                 "ORDER BY station_id");
    if (auto s = st.prepared(); !s.ok()) return s;
    std::vector<StationRecord> out;
    while (st.Step()) {
      StationRecord r;
      r.station_id = st.Text(0);
      r.hello.ParseFromString(st.Text(1));
      r.last_seen = FromUs(st.Int(2));
      out.push_back(std::move(r));
    }
    if (auto s = st.status(); !s.ok()) return s;
    return out;
  }

  absl::Status RevokeStation(const std::string& station_id,
                             absl::Time revoked_at) override {
    return WriteAndWait([&](sqlite3* db) {
      Statement st(db,
                   "INSERT INTO station_revocations(station_id, revoked_us) "
                   "VALUES(?,?) ON CONFLICT(station_id) DO UPDATE SET "
                   "revoked_us=excluded.revoked_us");
      st.Bind(1, station_id).Bind(2, ToUs(revoked_at));
      return st.Run();
    });
  }

  absl::StatusOr<std::vector<StationRevocation>> StationRevocations() override {
    std::lock_guard<std::mutex> lock(reader_mu_);
    Statement st(reader_db_,
                 "SELECT station_id, revoked_us FROM station_revocations "
                 "ORDER BY station_id");
    if (auto s = st.prepared(); !s.ok()) return s;
    std::vector<StationRevocation> out;
    while (st.Step()) out.push_back({st.Text(0), FromUs(st.Int(1))});
    if (auto s = st.status(); !s.ok()) return s;
    return out;
  }

  absl::StatusOr<uint64_t> DurableSeq(const std::string& station_id,
                                      const std::string& boot_id) override {
    std::lock_guard<std::mutex> lock(reader_mu_);
    Statement st(reader_db_,
                 "SELECT high_seq FROM stored_seqs "
                 "WHERE station_id = ? AND boot_id = ?");
    if (auto s = st.prepared(); !s.ok()) return s;
    st.Bind(1, station_id).Bind(2, boot_id);
    if (st.Step()) return static_cast<uint64_t>(st.Int(0));
    if (auto s = st.status(); !s.ok()) return s;
    return 0;
  }

  void AppendBatch(BatchRecord batch, CommitCallback done) override {
    Enqueue(
        [this, b = std::move(batch)](sqlite3*) {
          // A batch resent after a reconnect is stored once: a station
          // sends each boot's batches in rising seq, so one at or below
          // the boot's high mark (kept by a trigger) is stored already.
          Statement st(*writer_statements_,
                       "INSERT INTO sample_batches(station_id, "
                       "boot_id, seq, first_t_us, last_t_us, sample_count, "
                       "payload, received_us) SELECT ?1,?2,?3,?4,?5,?6,?7,?8 "
                       "WHERE NOT EXISTS (SELECT 1 FROM stored_seqs WHERE "
                       "station_id = ?1 AND boot_id = ?2 AND high_seq >= ?3)");
          st.Bind(1, b.station_id)
              .Bind(2, b.boot_id)
              .Bind(3, static_cast<int64_t>(b.seq))
              .Bind(4, b.first_t_us)
              .Bind(5, b.last_t_us)
              .Bind(6, static_cast<int64_t>(b.sample_count))
              .BindBlobInPlace(7, b.payload)
              .Bind(8, ToUs(b.received_at));
          return st.Run();
        },
        std::move(done), /*single_statement=*/true, /*may_wait=*/true);
  }

  void SetAfterGroupCommit(std::function<void()> hook) override {
    std::lock_guard<std::mutex> lock(queue_mu_);
    after_group_commit_ = std::move(hook);
  }

  absl::Status VisitBatches(
      const std::string& station_id, absl::Time received_since,
      const std::function<bool(const BatchRecord&)>& visit) override {
    std::lock_guard<std::mutex> lock(reader_mu_);
    // One snapshot of both tables: a compaction committed between two reads
    // would move batches out of sight.
    if (auto s = Exec(reader_db_, "BEGIN"); !s.ok()) return s;
    auto end =
        absl::MakeCleanup([this] { Exec(reader_db_, "COMMIT").IgnoreError(); });
    const int64_t since = ToUs(received_since);
    Statement blocks(reader_db_,
                     "SELECT block_id, first_received_us, block "
                     "FROM sample_blocks WHERE station_id = ? AND "
                     "last_received_us >= ? ORDER BY first_received_us");
    Statement rows(reader_db_,
                   absl::StrCat(kBatchColumns,
                                "WHERE station_id = ?1 AND received_us >= ?2 "
                                "AND batch_id > ",
                                kStationFoldMark, " ORDER BY received_us, seq")
                       .c_str());
    for (Statement* st : {&blocks, &rows}) {
      if (auto s = st->prepared(); !s.ok()) return s;
      st->Bind(1, station_id).Bind(2, since);
    }
    // Merged in arrival order. Blocks normally follow one another, but a
    // batch that arrived late for its minute (the hub's clock stepped back)
    // is kept raw or in a later block, so blocks are decoded into `pending`
    // as soon as they may hold the next batch.
    using Key = std::pair<int64_t, uint64_t>;  // received_us, seq
    // A multimap: two boots may number a batch alike and have it arrive in
    // the same microsecond.
    std::multimap<Key, BatchRecord> pending;
    auto key_of = [](const BatchRecord& b) {
      return Key{ToUs(b.received_at), b.seq};
    };
    bool more_blocks = blocks.Step();
    bool more_rows = rows.Step();
    BatchRecord row;
    if (more_rows) row = BatchFrom(rows, station_id);
    for (;;) {
      std::optional<Key> next;
      if (!pending.empty()) next = pending.begin()->first;
      if (more_rows && (!next || key_of(row) < *next)) next = key_of(row);
      if (more_blocks && (!next || blocks.Int(1) <= next->first)) {
        auto batches = DecodeSampleBlock(station_id, blocks.Text(2));
        if (!batches.ok()) {
          return absl::Status(
              batches.status().code(),
              absl::StrCat("station ", station_id, ", sample block ",
                           blocks.Int(0), ": ", batches.status().message()));
        }
        for (BatchRecord& b : *batches) {
          if (ToUs(b.received_at) < since) continue;
          const Key k = key_of(b);
          pending.emplace(k, std::move(b));
        }
        more_blocks = blocks.Step();
        continue;
      }
      if (!next) break;
      bool go_on;
      if (more_rows && key_of(row) == *next) {
        go_on = visit(row);
        more_rows = rows.Step();
        if (more_rows) row = BatchFrom(rows, station_id);
      } else {
        go_on = visit(pending.begin()->second);
        pending.erase(pending.begin());
      }
      if (!go_on) return absl::OkStatus();
    }
    if (auto s = blocks.status(); !s.ok()) return s;
    return rows.status();
  }

  absl::StatusOr<int64_t> CountBatches(const std::string& station_id) override {
    std::lock_guard<std::mutex> lock(reader_mu_);
    Statement st(reader_db_,
                 absl::StrCat("SELECT (SELECT COUNT(*) FROM sample_batches "
                              "WHERE station_id = ?1 AND batch_id > ",
                              kStationFoldMark,
                              ") + (SELECT COALESCE(SUM(batch_count), 0) "
                              "FROM sample_blocks WHERE station_id = ?1)")
                     .c_str());
    if (auto s = st.prepared(); !s.ok()) return s;
    st.Bind(1, station_id);
    if (st.Step()) return st.Int(0);
    return st.status();
  }

  absl::StatusOr<CompactionResult> CompactSamples(absl::Time received_before,
                                                  int max_blocks) override {
    // One compaction at a time: each reads a station's mark, then moves it.
    std::lock_guard<std::mutex> compacting(compact_mu_);
    CompactionResult result;
    const int64_t cutoff = ToUs(received_before);
    // Station by station through the arrival index: one seek each, where a
    // DISTINCT would read every row's entry.
    std::string station;
    for (bool first = true; result.blocks < max_blocks; first = false) {
      {
        Statement next(fold_db_,
                       first ? "SELECT MIN(station_id) FROM sample_batches"
                             : "SELECT MIN(station_id) FROM sample_batches "
                               "WHERE station_id > ?");
        if (auto s = next.prepared(); !s.ok()) return s;
        if (!first) next.Bind(1, station);
        if (!next.Step()) {
          if (auto s = next.status(); !s.ok()) return s;
          break;
        }
        if (next.IsNull(0)) break;
        station = next.Text(0);
      }
      while (result.blocks < max_blocks) {
        auto folded = CompactOldestMinute(station, cutoff, &result);
        if (!folded.ok()) return folded.status();
        if (!*folded) break;
      }
    }
    if (auto s = DeleteFoldedRows(&result); !s.ok()) return s;
    return result;
  }

  absl::StatusOr<v1::ExerciseSet> CreateSet(
      v1::ExerciseSet set, const std::string& clinic_day,
      const v1::StationHello& station) override {
    const int64_t now =
        set.has_started_at()
            ? google::protobuf::util::TimeUtil::TimestampToMicroseconds(
                  set.started_at())
            : ToUs(absl::Now());
    int64_t id = 0;
    auto s = WriteAndWait([&](sqlite3* db) -> absl::Status {
      // The day's first set begins the patient's session.
      Statement session(db,
                        "INSERT OR IGNORE INTO sessions(patient_id, day, "
                        "started_us) VALUES(?,?,?)");
      session.Bind(1, set.patient_id()).Bind(2, clinic_day).Bind(3, now);
      if (auto r = session.Run(); !r.ok()) return r;
      Statement find(db,
                     "SELECT session_id FROM sessions WHERE patient_id = ? "
                     "AND day = ?");
      find.Bind(1, set.patient_id()).Bind(2, clinic_day);
      if (!find.Step()) {
        return find.status().ok() ? absl::InternalError("session not found")
                                  : find.status();
      }
      const int64_t session_id = find.Int(0);
      Statement st(db,
                   "INSERT INTO sets(station_id, patient_id, stance_side, "
                   "exercise, load, level, started_us, station_start_us, "
                   "scoring_version, therapist_id, session_id, "
                   "station_hello) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
      st.Bind(1, set.station_id())
          .Bind(2, set.patient_id())
          .Bind(3, static_cast<int64_t>(set.stance_side()))
          .Bind(4, set.exercise())
          .Bind(5, set.load())
          .Bind(6, static_cast<int64_t>(set.level()))
          .Bind(7, now)
          .BindOrNull(8, set.has_station_start_us()
                             ? std::optional(set.station_start_us())
                             : std::nullopt)
          // None yet: the set's results are whatever version they carry.
          .BindOrNull(9, set.scoring_version().empty()
                             ? std::nullopt
                             : std::optional(set.scoring_version()))
          .BindOrNull(10, set.therapist_id() > 0
                              ? std::optional(set.therapist_id())
                              : std::nullopt)
          .Bind(11, session_id)
          .BindBlob(12, station.SerializeAsString());
      auto r = st.Run();
      id = sqlite3_last_insert_rowid(db);
      return r;
    });
    if (!s.ok()) return s;
    return GetSet(id);
  }

  absl::StatusOr<std::optional<v1::StationHello>> StationOfSet(
      int64_t set_id) override {
    std::lock_guard<std::mutex> lock(reader_mu_);
    Statement st(reader_db_, "SELECT station_hello FROM sets WHERE set_id = ?");
    if (auto s = st.prepared(); !s.ok()) return s;
    st.Bind(1, set_id);
    if (!st.Step()) {
      if (auto s = st.status(); !s.ok()) return s;
      return absl::NotFoundError(absl::StrCat("no set ", set_id));
    }
    if (st.IsNull(0)) return std::optional<v1::StationHello>();
    v1::StationHello hello;
    if (!hello.ParseFromString(st.Text(0))) {
      return absl::DataLossError(absl::StrCat(
          "set ", set_id, ": stored station hello does not parse"));
    }
    return std::optional<v1::StationHello>(std::move(hello));
  }

  absl::StatusOr<std::vector<v1::Session>> SessionsOfPatient(
      int64_t patient_id) override {
    return QuerySessions("WHERE patient_id = ? ORDER BY day, session_id",
                         patient_id);
  }

  absl::StatusOr<v1::Session> SetSessionNote(int64_t session_id,
                                             const std::string& note) override {
    auto s = WriteAndWait([&](sqlite3* db) {
      Statement st(db, "UPDATE sessions SET note = ? WHERE session_id = ?");
      st.Bind(1, note).Bind(2, session_id);
      return st.Run();
    });
    if (!s.ok()) return s;
    auto found = QuerySessions("WHERE session_id = ?", session_id);
    if (!found.ok()) return found.status();
    if (found->empty()) {
      return absl::NotFoundError(absl::StrCat("no session ", session_id));
    }
    return found->front();
  }

  void SetScoredToItsEnd(int64_t set_id, CommitCallback done) override {
    Enqueue(
        [set_id](sqlite3* db) {
          Statement st(db,
                       "UPDATE sets SET awaiting_data = 0 WHERE set_id = ?");
          st.Bind(1, set_id);
          return st.Run();
        },
        std::move(done));
  }

  absl::StatusOr<std::vector<v1::ExerciseSet>> SetsAwaitingData() override {
    return QuerySets(
        "WHERE s.ended_us IS NOT NULL AND s.awaiting_data = 1 ORDER BY "
        "s.set_id",
        std::nullopt);
  }

  absl::StatusOr<v1::ExerciseSet> EndSet(int64_t set_id, absl::Time ended_at,
                                         std::optional<int64_t> station_end_us,
                                         bool awaiting_data) override {
    const int64_t ended = ToUs(ended_at);
    auto s = WriteAndWait([&](sqlite3* db) {
      Statement st(db,
                   "UPDATE sets SET ended_us = ?, station_end_us = ?, "
                   "awaiting_data = ? WHERE set_id = ? AND ended_us IS NULL");
      st.Bind(1, ended)
          .BindOrNull(2, station_end_us)
          .Bind(3, static_cast<int64_t>(awaiting_data))
          .Bind(4, set_id);
      return st.Run();
    });
    if (!s.ok()) return s;
    return GetSet(set_id);
  }

  absl::StatusOr<v1::ExerciseSet> GetSet(int64_t set_id) override {
    auto sets = QuerySets("WHERE s.set_id = ?", set_id);
    if (!sets.ok()) return sets.status();
    if (sets->empty()) {
      return absl::NotFoundError(absl::StrCat("no set ", set_id));
    }
    return sets->front();
  }

  absl::StatusOr<std::vector<v1::ExerciseSet>> ActiveSets() override {
    return QuerySets("WHERE s.ended_us IS NULL ORDER BY s.set_id",
                     std::nullopt);
  }

  absl::StatusOr<std::vector<v1::ExerciseSet>> SetsStartedSince(
      absl::Time since) override {
    return QuerySets("WHERE s.started_us >= ? ORDER BY s.set_id", ToUs(since));
  }

  absl::StatusOr<std::vector<v1::ExerciseSet>> SetsOfPatient(
      int64_t patient_id) override {
    return QuerySets("WHERE s.patient_id = ? ORDER BY s.started_us, s.set_id",
                     patient_id);
  }

  void AddRepetition(v1::Repetition rep, CommitCallback done) override {
    Enqueue(
        [r = std::move(rep)](sqlite3* db) { return InsertRepetition(db, r); },
        std::move(done), /*single_statement=*/false, /*may_wait=*/true);
  }

  absl::StatusOr<std::vector<v1::Repetition>> RepetitionsOfSet(
      int64_t set_id) override {
    return QueryRepetitions(set_id, std::nullopt);
  }

  absl::StatusOr<std::vector<v1::Repetition>> RepetitionsOfSetVersion(
      int64_t set_id, const std::string& scoring_version) override {
    return QueryRepetitions(set_id, scoring_version);
  }

  absl::StatusOr<std::vector<v1::ScoringVersion>> ListScoringVersions()
      override {
    std::lock_guard<std::mutex> lock(reader_mu_);
    Statement st(
        reader_db_,
        "SELECT v.version, v.first_used_us, "
        "(SELECT COUNT(*) FROM repetitions r "
        "WHERE r.scoring_version = v.version), "
        "(SELECT COUNT(*) FROM sets s WHERE COALESCE(s.scoring_version, "
        "(SELECT r.scoring_version FROM repetitions r "
        "WHERE r.set_id = s.set_id LIMIT 1)) = v.version) "
        "FROM scoring_versions v ORDER BY v.first_used_us, v.version");
    if (auto s = st.prepared(); !s.ok()) return s;
    std::vector<v1::ScoringVersion> out;
    while (st.Step()) {
      v1::ScoringVersion& v = out.emplace_back();
      v.set_version(st.Text(0));
      SetTimestamp(FromUs(st.Int(1)), v.mutable_first_used());
      v.set_repetitions(static_cast<uint64_t>(st.Int(2)));
      v.set_current_sets(static_cast<uint32_t>(st.Int(3)));
    }
    if (auto s = st.status(); !s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::vector<std::string>> ScoringVersionsOfSet(
      int64_t set_id) override {
    std::lock_guard<std::mutex> lock(reader_mu_);
    Statement st(reader_db_,
                 "SELECT scoring_version, MIN(scored_us) AS first FROM "
                 "repetitions WHERE set_id = ? GROUP BY scoring_version "
                 "ORDER BY first, scoring_version");
    if (auto s = st.prepared(); !s.ok()) return s;
    st.Bind(1, set_id);
    std::vector<std::string> out;
    while (st.Step()) out.push_back(st.Text(0));
    if (auto s = st.status(); !s.ok()) return s;
    return out;
  }

  absl::Status ReplaceRepetitions(
      int64_t set_id, const std::string& scoring_version,
      const std::vector<v1::Repetition>& repetitions) override {
    return WriteAndWait([&](sqlite3* db) -> absl::Status {
      Statement del(db,
                    "DELETE FROM repetitions WHERE set_id = ? AND "
                    "scoring_version = ?");
      del.Bind(1, set_id).Bind(2, scoring_version);
      if (auto s = del.Run(); !s.ok()) return s;
      for (const v1::Repetition& r : repetitions) {
        if (r.set_id() != set_id || r.scoring_version() != scoring_version) {
          return absl::InvalidArgumentError(
              absl::StrCat("repetition ", r.number(), " is of set ", r.set_id(),
                           " version ", r.scoring_version(), ", not set ",
                           set_id, " version ", scoring_version));
        }
        if (auto s = InsertRepetition(db, r); !s.ok()) return s;
      }
      Statement current(db,
                        "UPDATE sets SET scoring_version = ? WHERE set_id = ?");
      current.Bind(1, scoring_version).Bind(2, set_id);
      return current.Run();
    });
  }

  WriteStats write_stats() const override {
    return {commits_.load(std::memory_order_relaxed),
            writes_.load(std::memory_order_relaxed)};
  }

  absl::Status CreateStaffUser(const StaffUserRecord& user) override {
    return WriteAndWait([&](sqlite3* db) -> absl::Status {
      Statement taken(db, "SELECT 1 FROM staff_users WHERE username = ?");
      taken.Bind(1, user.username);
      if (taken.Step()) {
        return absl::AlreadyExistsError(
            absl::StrCat("there is already a user named ", user.username));
      }
      if (auto s = taken.status(); !s.ok()) return s;
      Statement st(db,
                   "INSERT INTO staff_users(username, display_name, roles, "
                   "password_hash, disabled, created_us) VALUES(?,?,?,?,?,?)");
      st.Bind(1, user.username)
          .Bind(2, user.display_name)
          .Bind(3, static_cast<int64_t>(user.roles))
          .Bind(4, user.password_hash)
          .Bind(5, static_cast<int64_t>(user.disabled))
          .Bind(6, ToUs(user.created_at));
      return st.Run();
    });
  }

  absl::StatusOr<StaffUserRecord> GetStaffUser(
      const std::string& username) override {
    auto found = QueryStaffUsers("WHERE username = ?", username);
    if (!found.ok()) return found.status();
    if (found->empty()) {
      return absl::NotFoundError(absl::StrCat("no user named ", username));
    }
    return found->front();
  }

  absl::StatusOr<std::vector<StaffUserRecord>> ListStaffUsers() override {
    return QueryStaffUsers("ORDER BY username", std::nullopt);
  }

  absl::Status UpdateStaffUser(const StaffUserRecord& user) override {
    bool found = false;
    auto s = WriteAndWait([&](sqlite3* db) {
      Statement st(db,
                   "UPDATE staff_users SET display_name = ?, roles = ?, "
                   "password_hash = ?, disabled = ? WHERE username = ?");
      st.Bind(1, user.display_name)
          .Bind(2, static_cast<int64_t>(user.roles))
          .Bind(3, user.password_hash)
          .Bind(4, static_cast<int64_t>(user.disabled))
          .Bind(5, user.username);
      auto r = st.Run();
      found = sqlite3_changes(db) > 0;
      return r;
    });
    if (!s.ok()) return s;
    if (!found) {
      return absl::NotFoundError(absl::StrCat("no user named ", user.username));
    }
    return absl::OkStatus();
  }

  absl::Status SaveStaffToken(const StaffTokenRecord& token) override {
    return WriteAndWait([&](sqlite3* db) {
      Statement st(db,
                   "INSERT INTO staff_tokens(token_sha256, username, "
                   "issued_us, expires_us, client) VALUES(?,?,?,?,?)");
      st.Bind(1, token.token_sha256)
          .Bind(2, token.username)
          .Bind(3, ToUs(token.issued_at))
          .Bind(4, ToUs(token.expires_at))
          .Bind(5, token.client);
      return st.Run();
    });
  }

  absl::Status DeleteStaffToken(const std::string& token_sha256) override {
    return WriteAndWait([&](sqlite3* db) {
      Statement st(db, "DELETE FROM staff_tokens WHERE token_sha256 = ?");
      st.Bind(1, token_sha256);
      return st.Run();
    });
  }

  absl::Status DeleteStaffTokensOf(const std::string& username) override {
    return WriteAndWait([&](sqlite3* db) {
      Statement st(db, "DELETE FROM staff_tokens WHERE username = ?");
      st.Bind(1, username);
      return st.Run();
    });
  }

  absl::StatusOr<std::vector<StaffTokenRecord>> LiveStaffTokens(
      absl::Time now) override {
    auto pruned = WriteAndWait([&](sqlite3* db) {
      Statement st(db, "DELETE FROM staff_tokens WHERE expires_us <= ?");
      st.Bind(1, ToUs(now));
      return st.Run();
    });
    if (!pruned.ok()) return pruned;
    std::lock_guard<std::mutex> lock(reader_mu_);
    Statement st(reader_db_,
                 "SELECT token_sha256, username, issued_us, expires_us, client "
                 "FROM staff_tokens ORDER BY issued_us");
    if (auto s = st.prepared(); !s.ok()) return s;
    std::vector<StaffTokenRecord> out;
    while (st.Step()) {
      StaffTokenRecord t;
      t.token_sha256 = st.Text(0);
      t.username = st.Text(1);
      t.issued_at = FromUs(st.Int(2));
      t.expires_at = FromUs(st.Int(3));
      t.client = st.Text(4);
      out.push_back(std::move(t));
    }
    if (auto s = st.status(); !s.ok()) return s;
    return out;
  }

  absl::StatusOr<int64_t> AddAudit(const AuditRecord& entry) override {
    return Insert(
        "INSERT INTO audit_log(time_us, username, action, patient_id, detail) "
        "VALUES(?,?,?,?,?)",
        [&](Statement& st) {
          st.Bind(1, ToUs(entry.time))
              .Bind(2, entry.username)
              .Bind(3, entry.action)
              .Bind(4, entry.patient_id)
              .Bind(5, entry.detail);
        });
  }

  absl::StatusOr<std::vector<AuditRecord>> AuditPage(int64_t patient_id,
                                                     int64_t before_id,
                                                     int limit) override {
    std::lock_guard<std::mutex> lock(reader_mu_);
    Statement st(reader_db_,
                 "SELECT audit_id, time_us, username, action, patient_id, "
                 "detail FROM audit_log WHERE (?1 = 0 OR patient_id = ?1) "
                 "AND (?2 = 0 OR audit_id < ?2) ORDER BY audit_id DESC "
                 "LIMIT ?3");
    if (auto s = st.prepared(); !s.ok()) return s;
    st.Bind(1, patient_id).Bind(2, before_id).Bind(3, int64_t{limit});
    std::vector<AuditRecord> out;
    while (st.Step()) {
      AuditRecord r;
      r.audit_id = st.Int(0);
      r.time = FromUs(st.Int(1));
      r.username = st.Text(2);
      r.action = st.Text(3);
      r.patient_id = st.Int(4);
      r.detail = st.Text(5);
      out.push_back(std::move(r));
    }
    if (auto s = st.status(); !s.ok()) return s;
    return out;
  }

  absl::Status BackupTo(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    // Its own read connection: the copy is one read transaction, a
    // consistent snapshot, while the writer goes on committing (WAL).
    auto source = OpenConnection(path_);
    if (!source.ok()) return source.status();
    auto close_source = absl::MakeCleanup([&] { sqlite3_close(*source); });
    sqlite3* dest = nullptr;
    if (sqlite3_open_v2(path.c_str(), &dest,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        nullptr) != SQLITE_OK) {
      std::string msg = dest ? sqlite3_errmsg(dest) : "out of memory";
      sqlite3_close(dest);
      return absl::UnavailableError(
          absl::StrCat("cannot create backup ", path, ": ", msg));
    }
    auto close_dest = absl::MakeCleanup([&] { sqlite3_close(dest); });
    sqlite3_backup* backup = sqlite3_backup_init(dest, "main", *source, "main");
    if (backup == nullptr) {
      return absl::InternalError(
          absl::StrCat("backup to ", path, ": ", sqlite3_errmsg(dest)));
    }
    // All pages in one step: stepping in parts would start over whenever
    // the hub commits in between, which it does all the time.
    const int rc = sqlite3_backup_step(backup, -1);
    sqlite3_backup_finish(backup);
    if (rc != SQLITE_DONE) {
      return absl::InternalError(
          absl::StrCat("backup to ", path, ": ", sqlite3_errstr(rc)));
    }
    // One self-contained file (no -wal beside it), synced to disk.
    for (const char* pragma :
         {"PRAGMA journal_mode=DELETE", "PRAGMA synchronous=FULL"}) {
      if (auto s = Exec(dest, pragma); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  void AddEventAt(absl::Time time, const std::string& kind,
                  const std::string& station_id, const std::string& detail,
                  CommitCallback done) override {
    const int64_t at = ToUs(time);
    Enqueue(
        [=](sqlite3* db) {
          Statement st(db,
                       "INSERT INTO events(time_us, kind, station_id, detail) "
                       "VALUES(?,?,?,?)");
          st.Bind(1, at).Bind(2, kind).Bind(3, station_id).Bind(4, detail);
          return st.Run();
        },
        std::move(done));
  }

  absl::StatusOr<std::vector<EventRecord>> EventsPage(
      absl::Time from, absl::Time until, const std::vector<std::string>& kinds,
      EventCursor after, int limit) override {
    if (kinds.empty() || limit <= 0) return std::vector<EventRecord>();
    // Infinite bounds clamp to the whole microsecond range.
    auto us = [](absl::Time t) {
      if (t == absl::InfinitePast()) return std::numeric_limits<int64_t>::min();
      if (t == absl::InfiniteFuture()) {
        return std::numeric_limits<int64_t>::max();
      }
      return ToUs(t);
    };
    std::string placeholders;
    for (size_t i = 0; i < kinds.size(); ++i) {
      absl::StrAppend(&placeholders, i == 0 ? "?" : ",?");
    }
    const std::string sql = absl::StrCat(
        "SELECT event_id, time_us, kind, station_id, detail FROM events "
        "WHERE time_us >= ? AND time_us < ? AND (time_us > ? OR (time_us = ? "
        "AND event_id > ?)) AND kind IN (",
        placeholders, ") ORDER BY time_us, event_id LIMIT ?");
    std::lock_guard<std::mutex> lock(reader_mu_);
    Statement st(reader_db_, sql.c_str());
    if (auto s = st.prepared(); !s.ok()) return s;
    const int64_t after_us = us(after.time);
    st.Bind(1, us(from)).Bind(2, us(until)).Bind(3, after_us).Bind(4, after_us);
    st.Bind(5, after.event_id);
    int i = 6;
    for (const std::string& kind : kinds) st.Bind(i++, kind);
    st.Bind(i, static_cast<int64_t>(limit));
    std::vector<EventRecord> out;
    while (st.Step()) {
      EventRecord e;
      e.event_id = st.Int(0);
      e.time = FromUs(st.Int(1));
      e.kind = st.Text(2);
      e.station_id = st.Text(3);
      e.detail = st.Text(4);
      out.push_back(std::move(e));
    }
    if (auto s = st.status(); !s.ok()) return s;
    return out;
  }

 private:
  using WriteFn = std::function<absl::Status(sqlite3*)>;
  struct PendingWrite {
    WriteFn write;
    CommitCallback done;
    // One SQL statement: SQLite undoes a failed statement alone, so the
    // write needs no savepoint of its own (which would cost about a fifth
    // of a batch's insert).
    bool single_statement = false;
    // Streamed data (a batch, a repetition) that nobody waits on but a
    // station's acknowledgement: it may wait for company (see
    // SqliteStoreOptions::stream_commit_delay).
    bool may_wait = false;
  };

  // The set's current version's repetitions, or `version`'s.
  absl::StatusOr<std::vector<v1::Repetition>> QueryRepetitions(
      int64_t set_id, const std::optional<std::string>& version) {
    std::lock_guard<std::mutex> lock(reader_mu_);
    // A set from before re-scoring existed (NULL) has one version.
    Statement st(reader_db_,
                 version
                     ? "SELECT set_id, number, scoring_version, station_id, "
                       "patient_id, start_us, deepest_us, end_us, "
                       "peak_pelvic_drop_deg, verdict, clean, scored_us, "
                       "details FROM repetitions r WHERE set_id = ?1 AND "
                       "scoring_version = ?2 ORDER BY number"
                     : "SELECT r.set_id, number, r.scoring_version, "
                       "r.station_id, r.patient_id, start_us, deepest_us, "
                       "end_us, peak_pelvic_drop_deg, verdict, clean, "
                       "scored_us, details FROM repetitions r JOIN sets s "
                       "ON s.set_id = r.set_id WHERE r.set_id = ?1 AND "
                       "(s.scoring_version IS NULL OR s.scoring_version = "
                       "r.scoring_version) ORDER BY number, "
                       "r.scoring_version");
    if (auto s = st.prepared(); !s.ok()) return s;
    st.Bind(1, set_id);
    if (version) st.Bind(2, *version);
    std::vector<v1::Repetition> out;
    while (st.Step()) {
      v1::Repetition r;
      r.set_set_id(st.Int(0));
      r.set_number(static_cast<uint32_t>(st.Int(1)));
      r.set_scoring_version(st.Text(2));
      r.set_station_id(st.Text(3));
      r.set_patient_id(st.Int(4));
      r.set_start_us(st.Int(5));
      r.set_deepest_us(st.Int(6));
      r.set_end_us(st.Int(7));
      r.set_peak_pelvic_drop_deg(st.Real(8));
      r.set_verdict(static_cast<v1::Verdict>(st.Int(9)));
      r.set_clean(st.Int(10) != 0);
      SetTimestamp(FromUs(st.Int(11)), r.mutable_scored_at());
      // Rows from schema 1 have no details.
      if (!st.IsNull(12) && !r.MergeFromString(st.Text(12))) {
        return absl::DataLossError(absl::StrFormat(
            "repetition %d of set %d: stored details do not parse", r.number(),
            r.set_id()));
      }
      out.push_back(std::move(r));
    }
    if (auto s = st.status(); !s.ok()) return s;
    return out;
  }

  // Runs an INSERT on the writer and returns the new row's id.
  absl::StatusOr<int64_t> Insert(const char* sql,
                                 const std::function<void(Statement&)>& bind) {
    int64_t id = 0;
    auto s = WriteAndWait([&](sqlite3* db) {
      Statement st(db, sql);
      bind(st);
      auto r = st.Run();
      id = sqlite3_last_insert_rowid(db);
      return r;
    });
    if (!s.ok()) return s;
    return id;
  }

  absl::StatusOr<std::vector<StaffUserRecord>> QueryStaffUsers(
      const char* where, const std::optional<std::string>& arg) {
    std::lock_guard<std::mutex> lock(reader_mu_);
    const std::string sql = absl::StrCat(
        "SELECT username, display_name, roles, password_hash, disabled, "
        "created_us FROM staff_users ",
        where);
    Statement st(reader_db_, sql.c_str());
    if (auto s = st.prepared(); !s.ok()) return s;
    if (arg) st.Bind(1, *arg);
    std::vector<StaffUserRecord> out;
    while (st.Step()) {
      StaffUserRecord u;
      u.username = st.Text(0);
      u.display_name = st.Text(1);
      u.roles = static_cast<uint32_t>(st.Int(2));
      u.password_hash = st.Text(3);
      u.disabled = st.Int(4) != 0;
      u.created_at = FromUs(st.Int(5));
      out.push_back(std::move(u));
    }
    if (auto s = st.status(); !s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::vector<v1::Session>> QuerySessions(
      const std::string& where, int64_t arg) {
    std::vector<v1::Session> out;
    {
      std::lock_guard<std::mutex> lock(reader_mu_);
      const std::string sql = absl::StrCat(
          "SELECT session_id, patient_id, day, started_us, note FROM "
          "sessions ",
          where);
      Statement st(reader_db_, sql.c_str());
      if (auto s = st.prepared(); !s.ok()) return s;
      st.Bind(1, arg);
      while (st.Step()) {
        v1::Session session;
        session.set_session_id(st.Int(0));
        session.set_patient_id(st.Int(1));
        session.set_day(st.Text(2));
        SetTimestamp(FromUs(st.Int(3)), session.mutable_started_at());
        session.set_note(st.Text(4));
        out.push_back(std::move(session));
      }
      if (auto s = st.status(); !s.ok()) return s;
    }
    for (v1::Session& session : out) {
      std::lock_guard<std::mutex> lock(reader_mu_);
      Statement st(reader_db_,
                   "SELECT set_id FROM sets WHERE session_id = ? ORDER BY "
                   "set_id");
      st.Bind(1, session.session_id());
      while (st.Step()) session.add_set_ids(st.Int(0));
      if (auto s = st.status(); !s.ok()) return s;
    }
    return out;
  }

  absl::StatusOr<std::vector<v1::Therapist>> QueryTherapists(
      const std::string& where, std::optional<int64_t> arg) {
    std::lock_guard<std::mutex> lock(reader_mu_);
    const std::string sql = absl::StrCat(
        "SELECT therapist_id, display_name, created_us FROM therapists ",
        where);
    Statement st(reader_db_, sql.c_str());
    if (auto s = st.prepared(); !s.ok()) return s;
    if (arg) st.Bind(1, *arg);
    std::vector<v1::Therapist> out;
    while (st.Step()) {
      v1::Therapist t;
      t.set_therapist_id(st.Int(0));
      t.set_display_name(st.Text(1));
      SetTimestamp(FromUs(st.Int(2)), t.mutable_created_at());
      out.push_back(std::move(t));
    }
    if (auto s = st.status(); !s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::vector<v1::ExerciseSet>> QuerySets(
      const std::string& where, std::optional<int64_t> arg) {
    std::lock_guard<std::mutex> lock(reader_mu_);
    const std::string sql =
        absl::StrCat("SELECT ", kSetColumns,
                     " FROM sets s JOIN patients p ON p.patient_id = "
                     "s.patient_id ",
                     where);
    Statement st(reader_db_, sql.c_str());
    if (auto s = st.prepared(); !s.ok()) return s;
    if (arg) st.Bind(1, *arg);
    std::vector<v1::ExerciseSet> out;
    while (st.Step()) out.push_back(SetFrom(st));
    if (auto s = st.status(); !s.ok()) return s;
    return out;
  }

  // Folds `station`'s oldest minute of batches into one block if that
  // minute ended before `cutoff`; false when there is no such minute. The
  // block holds the station's unfolded batches up to the minute's last one
  // in order of storing (batch_id), so that the station's mark can move to
  // it: normally the minute exactly, plus any batch stored before one of the
  // minute's with a later arrival time (the hub's clock stepped back).
  absl::StatusOr<bool> CompactOldestMinute(const std::string& station,
                                           int64_t cutoff,
                                           CompactionResult* result) {
    std::vector<BatchRecord> batches;
    int64_t minute_start = 0;
    int64_t mark = 0;
    int64_t through = 0;
    {
      if (auto s = Exec(fold_db_, "BEGIN"); !s.ok()) return s;
      // A read transaction left open would pin its snapshot (and the WAL)
      // and make every later BEGIN fail: end it whatever COMMIT says.
      auto end = absl::MakeCleanup([this] {
        if (!Exec(fold_db_, "COMMIT").ok()) {
          Exec(fold_db_, "ROLLBACK").IgnoreError();
        }
      });
      Statement marked(fold_db_,
                       absl::StrCat("SELECT ", kStationFoldMark).c_str());
      if (auto s = marked.prepared(); !s.ok()) return s;
      marked.Bind(1, station);
      if (!marked.Step()) return marked.status();
      mark = marked.Int(0);
      Statement oldest(fold_db_,
                       "SELECT received_us FROM sample_batches INDEXED BY "
                       "sample_batches_by_arrival WHERE station_id = ? AND "
                       "batch_id > ? ORDER BY received_us LIMIT 1");
      if (auto s = oldest.prepared(); !s.ok()) return s;
      oldest.Bind(1, station).Bind(2, mark);
      if (!oldest.Step()) {
        if (auto s = oldest.status(); !s.ok()) return s;
        return false;
      }
      const int64_t first = oldest.Int(0);
      minute_start = first - ((first % kBlockUs) + kBlockUs) % kBlockUs;
      if (minute_start + kBlockUs > cutoff) return false;
      Statement last(fold_db_,
                     "SELECT MAX(batch_id) FROM sample_batches INDEXED BY "
                     "sample_batches_by_arrival WHERE station_id = ? AND "
                     "received_us < ? AND batch_id > ?");
      if (auto s = last.prepared(); !s.ok()) return s;
      last.Bind(1, station).Bind(2, minute_start + kBlockUs).Bind(3, mark);
      if (!last.Step()) return last.status();
      through = last.Int(0);
      Statement rows(fold_db_,
                     absl::StrCat(kBatchColumns,
                                  "WHERE station_id = ? AND received_us >= ? "
                                  "AND batch_id > ? AND batch_id <= ? "
                                  "ORDER BY received_us, seq")
                         .c_str());
      if (auto s = rows.prepared(); !s.ok()) return s;
      rows.Bind(1, station)
          .Bind(2, minute_start)
          .Bind(3, mark)
          .Bind(4, through);
      while (rows.Step()) batches.push_back(BatchFrom(rows, station));
      if (auto s = rows.status(); !s.ok()) return s;
    }
    if (batches.empty()) {
      return absl::InternalError(absl::StrCat(
          "station ", station, ": no batches to fold in the minute from ",
          absl::FormatTime(FromUs(minute_start))));
    }
    auto block = EncodeSampleBlock(batches);
    if (!block.ok()) return block.status();
    // The batches are out of sight once the block is in: read it back first.
    auto back = DecodeSampleBlock(station, *block);
    if (!back.ok() || *back != batches) {
      return absl::InternalError(absl::StrCat(
          "station ", station, ": the sample block of the minute from ",
          absl::FormatTime(FromUs(minute_start)),
          " does not read back as its batches; they stay as they are"));
    }
    int64_t first_t = batches.front().first_t_us;
    int64_t last_t = batches.front().last_t_us;
    int64_t samples = 0;
    int64_t batch_bytes = 0;
    for (const BatchRecord& b : batches) {
      first_t = std::min(first_t, b.first_t_us);
      last_t = std::max(last_t, b.last_t_us);
      samples += b.sample_count;
      batch_bytes += static_cast<int64_t>(b.payload.size());
    }
    const auto block_bytes = static_cast<int64_t>(block->size());
    auto write = [&, block = std::move(*block)](sqlite3* db) -> absl::Status {
      Statement insert(db,
                       "INSERT INTO sample_blocks(station_id, "
                       "first_received_us, last_received_us, first_t_us, "
                       "last_t_us, batch_count, sample_count, batch_bytes, "
                       "block) VALUES(?,?,?,?,?,?,?,?,?)");
      insert.Bind(1, station)
          .Bind(2, ToUs(batches.front().received_at))
          .Bind(3, ToUs(batches.back().received_at))
          .Bind(4, first_t)
          .Bind(5, last_t)
          .Bind(6, static_cast<int64_t>(batches.size()))
          .Bind(7, samples)
          .Bind(8, batch_bytes)
          .BindBlob(9, block);
      if (auto s = insert.Run(); !s.ok()) return s;
      Statement move(db,
                     "INSERT INTO sample_fold_marks(station_id, "
                     "folded_through) VALUES(?1, ?2) ON CONFLICT(station_id) "
                     "DO UPDATE SET folded_through = excluded.folded_through "
                     "WHERE folded_through = ?3");
      move.Bind(1, station).Bind(2, through).Bind(3, mark);
      if (auto s = move.Run(); !s.ok()) return s;
      if (sqlite3_changes(db) != 1) {
        return absl::AbortedError(absl::StrCat(
            "station ", station, ": its fold mark moved while the minute from ",
            absl::FormatTime(FromUs(minute_start)),
            " was being folded; it is folded next time"));
      }
      return absl::OkStatus();
    };
    if (auto s = WriteAndWait(std::move(write)); !s.ok()) return s;
    ++result->blocks;
    result->batches += static_cast<int64_t>(batches.size());
    result->batch_bytes += batch_bytes;
    result->block_bytes += block_bytes;
    return true;
  }

  // Deletes the rows of folded batches below the lowest unfolded one: a run
  // of consecutive ids, so whole pages are freed rather than rewritten. The
  // newest row stays even if folded, so that ids (max + 1) never repeat one
  // a mark already covers.
  absl::Status DeleteFoldedRows(CompactionResult* result) {
    int64_t oldest = 0;
    int64_t end = 0;
    {
      Statement range(
          fold_db_, "SELECT MIN(batch_id), MAX(batch_id) FROM sample_batches");
      if (auto s = range.prepared(); !s.ok()) return s;
      if (!range.Step()) return range.status();
      if (range.IsNull(0)) return absl::OkStatus();
      oldest = range.Int(0);
      end = range.Int(1) - 1;
      Statement unfolded(fold_db_,
                         absl::StrCat("SELECT batch_id FROM sample_batches "
                                      "WHERE batch_id > ",
                                      kFoldMark, " ORDER BY batch_id LIMIT 1")
                             .c_str());
      if (auto s = unfolded.prepared(); !s.ok()) return s;
      if (unfolded.Step()) end = std::min(end, unfolded.Int(0) - 1);
      if (auto s = unfolded.status(); !s.ok()) return s;
    }
    // In runs that keep the writer's other commits waiting briefly.
    constexpr int64_t kRowsAtOnce = 4096;
    for (int64_t from = oldest; from <= end; from += kRowsAtOnce) {
      const int64_t to = std::min(end, from + kRowsAtOnce - 1);
      int deleted = 0;
      auto s = WriteAndWait([&](sqlite3* db) -> absl::Status {
        Statement remove(db,
                         "DELETE FROM sample_batches WHERE batch_id BETWEEN "
                         "? AND ?");
        remove.Bind(1, from).Bind(2, to);
        if (auto r = remove.Run(); !r.ok()) return r;
        deleted = sqlite3_changes(db);
        return absl::OkStatus();
      });
      if (!s.ok()) return s;
      result->rows_deleted += deleted;
    }
    return absl::OkStatus();
  }

  void Enqueue(WriteFn write, CommitCallback done,
               bool single_statement = false, bool may_wait = false) {
    bool wake;
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      queue_.push_back(
          {std::move(write), std::move(done), single_statement, may_wait});
      if (!may_wait) ++urgent_;
      // Only what ends the writer's wait wakes it: thousands of batches a
      // second would otherwise each cost it a futex round trip.
      wake = queue_.size() == 1 || !may_wait || queue_.size() >= kMaxGroup;
    }
    if (wake) queue_cv_.notify_one();
  }

  absl::Status WriteAndWait(WriteFn write) {
    std::promise<absl::Status> promise;
    auto result = promise.get_future();
    Enqueue(std::move(write),
            [&promise](absl::Status s) { promise.set_value(std::move(s)); });
    return result.get();
  }

  void WriterLoop() {
    // Named so that `top -H` and perf show the one thread every commit
    // waits on.
    pthread_setname_np(pthread_self(), "stephub-store");
    for (;;) {
      std::vector<PendingWrite> group;
      std::function<void()> after;
      {
        std::unique_lock<std::mutex> lock(queue_mu_);
        queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything is written
        // Each commit writes every b-tree page it touched once more into
        // the WAL, and with hundreds of stations streaming, a commit per
        // batch or two rewrote each station's index pages for every batch
        // (about 16 KiB written per 1.2 KiB batch at 300 stations). Streamed
        // data therefore waits until stream_commit_delay after the last
        // commit began; anything else is committed at once, and takes the
        // waiting batches with it.
        const auto until = last_commit_ + stream_commit_delay_;
        queue_cv_.wait_until(lock, until, [&] {
          return stopping_ || urgent_ > 0 || queue_.size() >= kMaxGroup;
        });
        while (!queue_.empty() && group.size() < kMaxGroup) {
          if (!queue_.front().may_wait) --urgent_;
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        after = after_group_commit_;
      }
      last_commit_ = std::chrono::steady_clock::now();
      CommitGroup(group);
      if (after) after();
      // A checkpoint copies up to 32 MiB of log into the database; run
      // inside COMMIT it held back that commit's acknowledgements. Here it
      // runs once they are sent, while the next batches gather anyway.
      if (log_frames_ >= checkpoint_frames_) {
        log_frames_ = 0;
        sqlite3_wal_checkpoint_v2(writer_db_, nullptr,
                                  SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      }
    }
  }

  // One transaction for the group; each write in its own savepoint so that
  // one bad write fails alone instead of taking its neighbours with it.
  void CommitGroup(std::vector<PendingWrite>& group) {
    std::vector<absl::Status> results(group.size());
    absl::Status txn = Exec(writer_db_, "BEGIN IMMEDIATE");
    if (txn.ok()) {
      for (size_t i = 0; i < group.size(); ++i) {
        if (group[i].single_statement) {
          results[i] = group[i].write(writer_db_);
          continue;
        }
        Statement(*writer_statements_, "SAVEPOINT w").Run().IgnoreError();
        results[i] = group[i].write(writer_db_);
        if (!results[i].ok()) {
          Statement(*writer_statements_, "ROLLBACK TO w").Run().IgnoreError();
        }
        Statement(*writer_statements_, "RELEASE w").Run().IgnoreError();
      }
      txn = Exec(writer_db_, "COMMIT");
      if (!txn.ok()) Exec(writer_db_, "ROLLBACK").IgnoreError();
    }
    commits_.fetch_add(1, std::memory_order_relaxed);
    writes_.fetch_add(group.size(), std::memory_order_relaxed);
    for (size_t i = 0; i < group.size(); ++i) {
      if (!group[i].done) continue;
      group[i].done(txn.ok() ? results[i] : txn);
    }
  }

  // The writer connection's WAL hook: frames in the log after a commit.
  static int NoteLogFrames(void* store, sqlite3*, const char*, int frames) {
    static_cast<SqliteStore*>(store)->log_frames_ = frames;
    return SQLITE_OK;
  }

  const std::string path_;
  const std::chrono::steady_clock::duration stream_commit_delay_;
  sqlite3* const writer_db_;  // used only by the writer thread
  sqlite3* const reader_db_;  // under reader_mu_
  // The sample folder's own, under compact_mu_: it runs at a low priority
  // and reads a minute's rows at a time; on reader_db_, a therapist's
  // EndSet would wait for it whenever busier threads keep it off the CPU.
  sqlite3* const fold_db_;
  std::unique_ptr<StatementCache> writer_statements_;  // writer_db_'s
  const int checkpoint_frames_;
  int log_frames_ = 0;  // writer thread's
  std::mutex reader_mu_;
  std::mutex compact_mu_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<PendingWrite> queue_;
  size_t urgent_ = 0;  // queued writes that may not wait
  std::chrono::steady_clock::time_point last_commit_;  // writer thread's
  std::function<void()> after_group_commit_;
  bool stopping_ = false;
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> writes_{0};
  std::thread writer_thread_;
};

}  // namespace

int SqliteSchemaVersion() { return kSchemaVersion; }

absl::StatusOr<DatabaseInfo> VerifyClinicDatabase(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::DataLossError(absl::StrCat("cannot open ", path, ": ", msg));
  }
  auto close = absl::MakeCleanup([db] { sqlite3_close(db); });
  auto single = [&](const char* sql) -> absl::StatusOr<std::string> {
    Statement st(db, sql);
    if (auto s = st.prepared(); !s.ok()) return s;
    if (!st.Step()) {
      if (auto s = st.status(); !s.ok()) return s;
      return absl::DataLossError(absl::StrCat(sql, ": no row"));
    }
    return st.Text(0);
  };
  auto check = single("PRAGMA integrity_check");
  if (!check.ok()) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", check.status().message()));
  }
  if (*check != "ok") {
    return absl::DataLossError(
        absl::StrCat(path, " fails SQLite's integrity check: ", *check));
  }
  DatabaseInfo info;
  auto version = single("PRAGMA user_version");
  if (!version.ok()) return version.status();
  info.schema_version = std::atoi(version->c_str());
  if (info.schema_version < 1 || info.schema_version > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " has schema version ", info.schema_version,
                     "; this StepHub reads 1 to ", kSchemaVersion));
  }
  std::vector<std::pair<const char*, int64_t*>> counts = {
      {"SELECT COUNT(*) FROM patients", &info.patients},
      {"SELECT COUNT(*) FROM sets", &info.sets},
      {"SELECT COUNT(*) FROM repetitions", &info.repetitions}};
  // Since 16 a folded batch's row may linger until it is deleted.
  const std::string raw_batches =
      info.schema_version >= 16
          ? absl::StrCat(
                "SELECT COUNT(*) FROM sample_batches WHERE batch_id > ",
                kFoldMark)
          : "SELECT COUNT(*) FROM sample_batches";
  counts.push_back({raw_batches.c_str(), &info.sample_batches});
  int64_t folded_batches = 0;
  if (info.schema_version >= 10) {
    counts.push_back(
        {"SELECT COUNT(*) FROM sample_blocks", &info.sample_blocks});
    counts.push_back({"SELECT COALESCE(SUM(batch_count), 0) FROM sample_blocks",
                      &folded_batches});
  }
  for (auto [sql, count] : counts) {
    auto n = single(sql);
    if (!n.ok()) return n.status();
    *count = std::atoll(n->c_str());
  }
  info.sample_batches += folded_batches;
  return info;
}

absl::StatusOr<std::unique_ptr<ClinicStore>> OpenSqliteStore(
    const std::string& path, const SqliteStoreOptions& options) {
  auto writer = OpenConnection(path);
  if (!writer.ok()) return writer.status();
  if (auto s = Migrate(*writer, path); !s.ok()) {
    sqlite3_close(*writer);
    return s;
  }
  auto reader = OpenConnection(path);
  if (!reader.ok()) {
    sqlite3_close(*writer);
    return reader.status();
  }
  // The folder reads each row once: a small cache.
  auto folder = OpenConnection(path, /*cache_kib=*/8 * 1024);
  if (!folder.ok()) {
    sqlite3_close(*reader);
    sqlite3_close(*writer);
    return folder.status();
  }
  return std::unique_ptr<ClinicStore>(
      new SqliteStore(path, *writer, *reader, *folder, options));
}

}  // namespace stephub::store
