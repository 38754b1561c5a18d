// The clinic record: the only interface above which nothing speaks SQL.
// A server database for multi-site clinics can implement ClinicStore later.
#ifndef STEPHUB_HUB_STORE_STORE_H_
#define STEPHUB_HUB_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "stephub/v1/clinic.pb.h"
#include "stephub/v1/common.pb.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::store {

// One sample batch as received from a station, kept raw so that any set can
// be re-scored later.
struct BatchRecord {
  std::string station_id;
  std::string boot_id;
  uint64_t seq = 0;
  int64_t first_t_us = 0;
  int64_t last_t_us = 0;
  uint32_t sample_count = 0;
  std::string payload;  // serialized stephub.v1.SampleBatch
  absl::Time received_at;

  bool operator==(const BatchRecord&) const = default;
};

// `batch` as the store keeps it: serialized, with its seq, the span of its
// samples' times (each sensor's series in time order; 0 and 0 when it has
// no samples) and how many samples it holds.
BatchRecord BatchRecordOf(const v1::SampleBatch& batch, std::string station_id,
                          std::string boot_id, absl::Time received_at);

// How the writer has been grouping writes into commits (since open).
struct WriteStats {
  uint64_t commits = 0;
  uint64_t writes = 0;  // batches, repetitions, events... each one write
};

// What one CompactSamples call did.
struct CompactionResult {
  int blocks = 0;
  int64_t batches = 0;
  int64_t batch_bytes = 0;  // their payloads
  int64_t block_bytes = 0;  // the blocks that replaced them
  // Rows of batches folded now or before, deleted now.
  int64_t rows_deleted = 0;
};

// One line of the clinic's log (ClinicStore::AddEvent).
struct EventRecord {
  int64_t event_id = 0;
  absl::Time time;
  std::string kind;  // "station_connected", "station_spool_loss", ...
  std::string station_id;
  std::string detail;
};

struct StationRecord {
  std::string station_id;
  v1::StationHello hello;  // the latest hello: sensors, software version
  absl::Time last_seen;
};

// A member of staff who signs in (hub/auth). `roles` is a bit set of
// auth::Role values; the password is kept only as its slow hash.
struct StaffUserRecord {
  std::string username;
  std::string display_name;
  uint32_t roles = 0;
  std::string password_hash;
  bool disabled = false;
  absl::Time created_at;
};

// A signed-in session, kept by the SHA-256 of its bearer token only, so
// that the database (or a backup of it) gives no one a usable token.
struct StaffTokenRecord {
  std::string token_sha256;  // hex
  std::string username;
  absl::Time issued_at;
  absl::Time expires_at;
  std::string client;  // "stephub CLI", "web"
};

// Who did what to which patient's record.
struct AuditRecord {
  int64_t audit_id = 0;
  absl::Time time;
  std::string username;
  std::string action;      // "set_started", "report_exported", ...
  int64_t patient_id = 0;  // 0: none
  std::string detail;
};

// A lost or stolen station: its certificates issued up to `revoked_at`
// are refused (hub/ingest/station_access.h).
struct StationRevocation {
  std::string station_id;
  absl::Time revoked_at;
};

// Called once the write is durably committed (or has failed). Runs on the
// store's writer thread: it must not block.
using CommitCallback = std::function<void(absl::Status)>;

class ClinicStore {
 public:
  virtual ~ClinicStore() = default;

  virtual absl::StatusOr<v1::Patient> CreatePatient(
      const std::string& display_name, const std::string& external_ref) = 0;
  virtual absl::StatusOr<std::vector<v1::Patient>> ListPatients() = 0;
  virtual absl::StatusOr<v1::Patient> GetPatient(int64_t patient_id) = 0;

  virtual absl::StatusOr<v1::Therapist> CreateTherapist(
      const std::string& display_name) = 0;
  virtual absl::StatusOr<std::vector<v1::Therapist>> ListTherapists() = 0;
  virtual absl::StatusOr<v1::Therapist> GetTherapist(int64_t therapist_id) = 0;

  virtual void SaveStation(const StationRecord& station,
                           CommitCallback done) = 0;
  virtual absl::StatusOr<std::vector<StationRecord>> ListStations() = 0;

  // Highest durably stored seq for (station, boot); 0 if none.
  // Records (or moves forward) a station's revocation; returns once
  // committed.
  virtual absl::Status RevokeStation(const std::string& station_id,
                                     absl::Time revoked_at) = 0;
  virtual absl::StatusOr<std::vector<StationRevocation>>
  StationRevocations() = 0;

  virtual absl::StatusOr<uint64_t> DurableSeq(const std::string& station_id,
                                              const std::string& boot_id) = 0;
  // Group-committed. A batch already stored is a success (idempotent).
  virtual void AppendBatch(BatchRecord batch, CommitCallback done) = 0;
  // Runs on the writer thread after each group commit's callbacks, for
  // work cheaper once per commit than once per write (the station links'
  // acknowledgements). One hook; empty clears it.
  virtual void SetAfterGroupCommit(std::function<void()> hook) = 0;
  // Batches of a station received at or after `received_since`, in the
  // order they arrived (as live scoring saw them), for re-scoring. `visit`
  // returns false to stop early.
  virtual absl::Status VisitBatches(
      const std::string& station_id, absl::Time received_since,
      const std::function<bool(const BatchRecord&)>& visit) = 0;
  virtual absl::StatusOr<int64_t> CountBatches(
      const std::string& station_id) = 0;
  // Folds the batches received before `received_before` into compressed
  // sample blocks, one per station and minute of arrival, oldest first, at
  // most `max_blocks` of them. Nothing else changes: VisitBatches,
  // CountBatches and DurableSeq read blocks and batches alike. Then deletes
  // the folded batches' rows that no unfolded one precedes. Blocks on
  // until all of it is committed.
  virtual absl::StatusOr<CompactionResult> CompactSamples(
      absl::Time received_before, int max_blocks) = 0;

  // Assigns set_id, started_at and session_id: the patient's session of
  // `clinic_day` (YYYY-MM-DD), begun by this set if it is the day's first.
  // Keeps station_start_us if set, and started_at if set (a history built
  // by hand, as report tests need; the bays never set it).
  // `station` is the station's hello as the set starts: the sensors its
  // samples come from, which re-scoring needs even if the station changes.
  virtual absl::StatusOr<v1::ExerciseSet> CreateSet(
      v1::ExerciseSet set, const std::string& clinic_day,
      const v1::StationHello& station) = 0;
  // The station's hello kept with the set; nullopt for sets from before.
  virtual absl::StatusOr<std::optional<v1::StationHello>> StationOfSet(
      int64_t set_id) = 0;
  virtual absl::StatusOr<std::vector<v1::Session>> SessionsOfPatient(
      int64_t patient_id) = 0;
  virtual absl::StatusOr<v1::Session> SetSessionNote(
      int64_t session_id, const std::string& note) = 0;
  // `awaiting_data`: the station's data has not reached the set's end yet
  // (SetsAwaitingData).
  virtual absl::StatusOr<v1::ExerciseSet> EndSet(
      int64_t set_id, absl::Time ended_at,
      std::optional<int64_t> station_end_us, bool awaiting_data) = 0;
  virtual absl::StatusOr<v1::ExerciseSet> GetSet(int64_t set_id) = 0;
  virtual absl::StatusOr<std::vector<v1::ExerciseSet>> ActiveSets() = 0;
  // Sets ended while their station's data had not reached their end: still
  // scored as it arrives (after a hub restart too), until marked done.
  // Queued behind the writes before it (the set's last repetitions).
  virtual void SetScoredToItsEnd(int64_t set_id, CommitCallback done) = 0;
  virtual absl::StatusOr<std::vector<v1::ExerciseSet>> SetsAwaitingData() = 0;
  virtual absl::StatusOr<std::vector<v1::ExerciseSet>> SetsStartedSince(
      absl::Time since) = 0;
  virtual absl::StatusOr<std::vector<v1::ExerciseSet>> SetsOfPatient(
      int64_t patient_id) = 0;

  // Group-committed, in order with the batches queued before it.
  virtual void AddRepetition(v1::Repetition repetition,
                             CommitCallback done) = 0;
  // The set's current results (ExerciseSet.scoring_version).
  virtual absl::StatusOr<std::vector<v1::Repetition>> RepetitionsOfSet(
      int64_t set_id) = 0;
  // Those of one scoring version, current or not.
  virtual absl::StatusOr<std::vector<v1::Repetition>> RepetitionsOfSetVersion(
      int64_t set_id, const std::string& scoring_version) = 0;
  // Every version the set was scored with, oldest first.
  virtual absl::StatusOr<std::vector<std::string>> ScoringVersionsOfSet(
      int64_t set_id) = 0;
  // Every scoring version with stored results, oldest first
  // (hub_scores_with_it is left false: the store does not know).
  virtual absl::StatusOr<std::vector<v1::ScoringVersion>>
  ListScoringVersions() = 0;
  // Re-scored: the set's results of `scoring_version` become `repetitions`
  // and its current ones, in one transaction; other versions are kept.
  virtual absl::Status ReplaceRepetitions(
      int64_t set_id, const std::string& scoring_version,
      const std::vector<v1::Repetition>& repetitions) = 0;

  virtual WriteStats write_stats() const = 0;

  // A consistent copy of the whole database, taken while the hub runs
  // (writers carry on meanwhile), as one self-contained file at `path`.
  virtual absl::Status BackupTo(const std::string& path) = 0;

  // Staff accounts. CreateStaffUser: ALREADY_EXISTS for a taken name.
  virtual absl::Status CreateStaffUser(const StaffUserRecord& user) = 0;
  // NOT_FOUND for an unknown name.
  virtual absl::StatusOr<StaffUserRecord> GetStaffUser(
      const std::string& username) = 0;
  virtual absl::StatusOr<std::vector<StaffUserRecord>> ListStaffUsers() = 0;
  // Replaces the account's roles, hash and disabled flag; NOT_FOUND if none.
  virtual absl::Status UpdateStaffUser(const StaffUserRecord& user) = 0;
  virtual absl::Status SaveStaffToken(const StaffTokenRecord& token) = 0;
  virtual absl::Status DeleteStaffToken(const std::string& token_sha256) = 0;
  virtual absl::Status DeleteStaffTokensOf(const std::string& username) = 0;
  // Sessions still valid at `now`; the expired ones are deleted.
  virtual absl::StatusOr<std::vector<StaffTokenRecord>> LiveStaffTokens(
      absl::Time now) = 0;
  // Committed before it returns: the action it records may then proceed.
  virtual absl::StatusOr<int64_t> AddAudit(const AuditRecord& entry) = 0;
  // Newest first, older than `before_id` (0: the newest), of one patient
  // (0: all).
  virtual absl::StatusOr<std::vector<AuditRecord>> AuditPage(int64_t patient_id,
                                                             int64_t before_id,
                                                             int limit) = 0;

  // Station connected/disconnected, set started/ended: the clinic's log,
  // stamped with the time it is called.
  void AddEvent(const std::string& kind, const std::string& station_id,
                const std::string& detail) {
    AddEventAt(absl::Now(), kind, station_id, detail, nullptr);
  }
  // The same at a given time; `done` (may be null) once committed.
  virtual void AddEventAt(absl::Time time, const std::string& kind,
                          const std::string& station_id,
                          const std::string& detail, CommitCallback done) = 0;
  // Up to `limit` events of `kinds` with from <= time < until, ordered by
  // (time, event_id), after the one `after` names (0: from the start). A
  // page at a time, so that a reader streaming a long log holds no lock
  // while it writes to a slow client.
  struct EventCursor {
    absl::Time time = absl::InfinitePast();
    int64_t event_id = 0;
  };
  virtual absl::StatusOr<std::vector<EventRecord>> EventsPage(
      absl::Time from, absl::Time until, const std::vector<std::string>& kinds,
      EventCursor after, int limit) = 0;
};

struct SqliteStoreOptions {
  // How long after the last commit began streamed data (sample batches and
  // repetitions) may wait for the next, so that one commit carries many
  // batches per station. It delays stations' acknowledgements, and reads of
  // the database trail the stream by up to this; the live events therapists
  // watch are published before their commit and do not wait. Any other
  // write is committed at once and takes the waiting ones along.
  absl::Duration stream_commit_delay = absl::ZeroDuration();
  // The write-ahead log is copied into the database once it holds this
  // many 4 KiB pages (8192: 32 MiB), after the commit that filled it has
  // been acknowledged rather than inside it.
  int checkpoint_frames = 8192;
};

// Opens (creating and migrating as needed) the SQLite database at `path`.
// A database written by a newer StepHub is refused with a clear message.
absl::StatusOr<std::unique_ptr<ClinicStore>> OpenSqliteStore(
    const std::string& path, const SqliteStoreOptions& options = {});

// The schema version this build writes.
int SqliteSchemaVersion();

// What a clinic database file holds (a backup, or the hub's own while the
// hub is stopped), once it has passed SQLite's integrity check and its
// schema is one this build can open.
struct DatabaseInfo {
  int schema_version = 0;
  int64_t patients = 0;
  int64_t sets = 0;
  int64_t repetitions = 0;
  int64_t sample_batches = 0;  // kept raw or folded into blocks
  int64_t sample_blocks = 0;
};
absl::StatusOr<DatabaseInfo> VerifyClinicDatabase(const std::string& path);

}  // namespace stephub::store

#endif  // STEPHUB_HUB_STORE_STORE_H_
