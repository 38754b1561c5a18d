// The station's on-disk store-and-forward spool: every batch is appended
// (checksummed, numbered) before it is sent, and kept until the hub
// acknowledges it as durably stored. See docs/SPOOL.md for the layout, the
// recovery rules and the policy when the spool is full.
#ifndef STEPHUB_STATION_SPOOL_SPOOL_H_
#define STEPHUB_STATION_SPOOL_SPOOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "station/spool/env.h"
#include "station/spool/log_reader.h"
#include "station/spool/log_writer.h"

namespace stephub::station {

struct SpoolOptions {
  std::string dir;  // created if missing (its parent must exist)
  // Cap on the segment files together (BOOT, LOCK and drops.log add at most
  // 64 KiB more). At least 2 * segment_bytes, so that releasing every
  // acknowledged segment always makes room for the next batch.
  uint64_t max_bytes = uint64_t{1} << 30;
  // A segment is closed once the next batch would take it past this; at
  // least 4 KiB. Each batch must fit in one segment.
  uint64_t segment_bytes = uint64_t{8} << 20;
  absl::Duration sync_interval = absl::Milliseconds(200);
};

struct SpoolRecord {
  uint64_t seq;
  std::string payload;
};

// What Open found on disk; the station logs it.
struct SpoolRecovery {
  bool created = false;               // no spool existed: a fresh boot id
  uint64_t records = 0;               // intact batch records found
  uint64_t torn_tail_bytes = 0;       // cut from the end of the last segment
  uint64_t corrupt_bytes = 0;         // skipped elsewhere (checksum mismatch)
  std::vector<std::string> problems;  // one line each, for the log
};

// Single-threaded: used from the station's one io_context thread.
class Spool {
 public:
  // Opens (or creates) the spool in options.dir, verifying every segment,
  // cutting a torn tail from the last one, and locking the directory
  // against a second process. Fails with a message naming the file when
  // the boot id file is unreadable or damaged (see docs/SPOOL.md).
  static absl::StatusOr<std::unique_ptr<Spool>> Open(Env* env,
                                                     SpoolOptions options);

  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  // Closes the files without syncing: call Sync() first for a clean stop.
  ~Spool();

  // 16 lowercase hex digits, random, persisted; changes only when the spool
  // is created afresh or Reset().
  const std::string& boot_id() const { return boot_id_; }
  const SpoolRecovery& recovery() const { return recovery_; }

  // Highest seq appended in this boot; 0 if none. Survives releases and
  // restarts (each segment starts with a header holding its first seq).
  uint64_t last_seq() const { return last_seq_; }

  // Appends payload as seq last_seq()+1 and hands it to the OS (write(2))
  // before returning: a killed process loses nothing; a power cut loses at
  // most what was not yet synced. When the cap would be exceeded, returns
  // ResourceExhausted, writes no batch, assigns no seq, and adds
  // (1, sample_count) to the persisted dropped counts (the caller logs it).
  // InvalidArgument if the payload cannot fit in one segment.
  absl::StatusOr<uint64_t> Append(absl::string_view payload,
                                  uint64_t sample_count);

  // Syncs if there is unsynced data and sync_interval has passed since the
  // last sync made here (the first one right away).
  absl::Status MaybeSync(absl::Time now);
  // Makes every appended batch and the dropped counts durable.
  absl::Status Sync();

  // Deletes the segments whose batches all have seq <= acked_seq, never the
  // last (active) one.
  absl::Status Release(uint64_t acked_seq);

  // Replaces *out with up to max_records records with seq > after_seq, in
  // order, read from disk. Records already released are skipped, so the
  // first seq may be above after_seq + 1. The segment is found through an
  // in-memory index, and a call continuing where the previous one stopped
  // resumes at the remembered file offset.
  absl::Status ReadAfter(uint64_t after_seq, size_t max_records,
                         std::vector<SpoolRecord>* out);

  // Starts a new boot: new boot id, every segment deleted, seq restarts at
  // 1, dropped counts reset. For when the hub holds more of this boot than
  // the spool (a power cut took the unsynced tail).
  absl::Status Reset();

  uint64_t bytes() const { return bytes_; }  // segment files on disk
  uint64_t dropped_batches() const { return dropped_batches_; }
  uint64_t dropped_samples() const { return dropped_samples_; }
  size_t segment_count() const { return segments_.size(); }
  // Bytes ReadAfter skipped as damaged (again, if Open reported them). A
  // count growing beyond recovery().corrupt_bytes means the medium decays.
  uint64_t read_damaged_bytes() const { return read_damaged_bytes_; }

 private:
  struct Segment {
    uint64_t number;     // in the file name; grows, never reused
    uint64_t first_seq;  // from the header (seq of its first batch)
    uint64_t last_seq;   // highest batch seq in it; first_seq - 1 if none
    uint64_t size;
  };
  class DamageCounter : public log::LogReader::Reporter {
   public:
    explicit DamageCounter(uint64_t* bytes) : bytes_(bytes) {}
    void Dropped(uint64_t offset, uint64_t bytes,
                 absl::string_view reason) override;

   private:
    uint64_t* const bytes_;
  };
  // Where the last ReadAfter stopped, with its reader kept open: the
  // station reads one record per call while catching up, and reopening the
  // file and rereading its block every time would cost 32 KiB per record.
  struct Cursor {
    bool valid = false;
    uint64_t segment_number = 0;
    uint64_t seq = 0;                        // the last record returned
    uint64_t offset = 0;                     // the file offset just after it
    std::unique_ptr<SequentialFile> file;    // may be null
    std::unique_ptr<log::LogReader> reader;  // reading file after offset
  };

  Spool(Env* env, SpoolOptions options);

  absl::Status Init();
  absl::Status LoadBootId(const std::vector<uint64_t>& segment_numbers);
  absl::Status WriteBootId(const std::string& boot_id);
  absl::Status LoadSegments(const std::vector<uint64_t>& numbers);
  absl::Status OpenActive(bool synced_needed);
  absl::Status CreateSegment(uint64_t first_seq);
  absl::Status Rotate(uint64_t first_seq);
  void RepairFailedAppend(uint64_t good_length);
  absl::Status LoadDrops();
  absl::Status RewriteDrops();
  absl::Status PersistDrops();

  std::string PathOf(absl::string_view name) const;
  std::string SegmentPath(uint64_t number) const;
  std::string HeaderRecord(uint64_t first_seq) const;
  std::string DropsRecord() const;
  uint64_t FreshSegmentBytes(size_t record_size) const;

  Env* const env_;
  const SpoolOptions options_;
  std::unique_ptr<FileLock> lock_;
  std::string boot_id_;
  SpoolRecovery recovery_;

  std::vector<Segment> segments_;  // by number; the last one is active
  uint64_t next_number_ = 1;
  // Null after a failed rotation or write: the next Append starts a new
  // segment.
  std::unique_ptr<WritableFile> active_file_;
  std::unique_ptr<log::LogWriter> writer_;
  uint64_t last_seq_ = 0;
  uint64_t bytes_ = 0;

  uint64_t dropped_batches_ = 0;
  uint64_t dropped_samples_ = 0;
  std::unique_ptr<WritableFile> drops_file_;
  std::unique_ptr<log::LogWriter> drops_writer_;

  bool segment_unsynced_ = false;
  bool drops_unsynced_ = false;
  absl::Time last_sync_ = absl::InfinitePast();

  uint64_t read_damaged_bytes_ = 0;
  DamageCounter read_damage_{&read_damaged_bytes_};
  Cursor cursor_;  // after read_damage_, which its reader reports to
};

}  // namespace stephub::station

#endif  // STEPHUB_STATION_SPOOL_SPOOL_H_
