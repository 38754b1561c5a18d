// A test Env that wraps another and simulates what a power cut does to the
// files written through it (after LevelDB's fault_injection_test.cc).
//
// Simulated: data appended but not synced is lost (each file is cut back
// to its length at its last Sync); a file created since its directory's
// last SyncDir disappears; writes that fail. Not simulated: an unsynced
// removal or rename being undone (both are treated as durable at once), and
// garbage rather than a clean cut at the end of a file (use TearLastRecord
// and FlipByte for damage). Truncations are durable at once as well.
#ifndef STEPHUB_STATION_SPOOL_TESTING_FAULT_INJECTION_ENV_H_
#define STEPHUB_STATION_SPOOL_TESTING_FAULT_INJECTION_ENV_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "station/spool/env.h"

namespace stephub::station::testing {

class FaultInjectionEnv : public Env {
 public:
  // base is not owned and must be a real file system (the damage helpers
  // edit files with plain POSIX calls).
  explicit FaultInjectionEnv(Env* base) : base_(base) {}

  // A power cut. Close every file first (destroy the Spool: that is the
  // process dying), or later writes land after the cut.
  absl::Status DropUnsyncedData();

  // While set, Append, Flush and Sync of files fail with Unavailable and
  // write nothing (a failing card).
  void SetWritesFail(bool fail) { writes_fail_ = fail; }

  // File offsets of the last intact record of a log file.
  struct Extent {
    uint64_t offset;
    uint64_t end;
  };
  absl::StatusOr<Extent> LastRecord(const std::string& path);
  // Cuts path inside its last record, keeping its first `keep` bytes
  // (keep < the record's size): a torn write.
  absl::Status TearLastRecord(const std::string& path, uint64_t keep);
  // Inverts the byte at offset (bit rot).
  absl::Status FlipByte(const std::string& path, uint64_t offset);

  // Env.
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) override;
  bool FileExists(const std::string& path) override;
  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override;
  absl::Status RemoveFile(const std::string& path) override;
  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override;
  absl::Status CreateDir(const std::string& path) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::Status TruncateFile(const std::string& path, uint64_t size) override;
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) override;

 private:
  class File;
  struct FileState {
    uint64_t size = 0;    // appended through this Env
    uint64_t synced = 0;  // durable
  };

  absl::Status Failure(const std::string& path) const;

  Env* const base_;
  bool writes_fail_ = false;
  std::map<std::string, FileState> files_;
  // Per directory: entries created since its last SyncDir.
  std::map<std::string, std::set<std::string>> unsynced_entries_;
};

}  // namespace stephub::station::testing

#endif  // STEPHUB_STATION_SPOOL_TESTING_FAULT_INJECTION_ENV_H_
