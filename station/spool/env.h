// The file-system operations the spool needs, behind an interface so that
// tests can wrap them (testing/fault_injection_env.h) and simulate a power
// cut between write(2) and fsync(2). Env::Default() is plain POSIX.
#ifndef STEPHUB_STATION_SPOOL_ENV_H_
#define STEPHUB_STATION_SPOOL_ENV_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stephub::station {

// A file read from start to end.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to n bytes into scratch and points *result at them. Returns
  // fewer than n bytes only at the end of the file (none once there).
  virtual absl::Status Read(size_t n, absl::string_view* result,
                            char* scratch) = 0;
  // Skips n bytes; skipping past the end is not an error (reads then return
  // nothing).
  virtual absl::Status Skip(uint64_t n) = 0;
};

// A file written sequentially at its end.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // May keep data in a user-space buffer until Flush, Sync or Close.
  virtual absl::Status Append(absl::string_view data) = 0;
  // Hands buffered data to the OS: it then survives the death of the process
  // (not a power cut).
  virtual absl::Status Flush() = 0;
  // Flushes and makes the data durable (fdatasync/fsync).
  virtual absl::Status Sync() = 0;
  // Flushes (without syncing) and closes; the destructor closes too.
  virtual absl::Status Close() = 0;
};

// An advisory lock held until destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class Env {
 public:
  virtual ~Env() = default;

  // The POSIX file system; never deleted.
  static Env* Default();

  virtual absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) = 0;
  // Creates the file, truncating an existing one.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  // Opens the file for appending at its end, creating it if missing.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) = 0;

  // Names (not paths) of the entries of dir, without "." and "..".
  virtual absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  virtual absl::StatusOr<uint64_t> GetFileSize(const std::string& path) = 0;
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  // Atomically replaces to if it exists.
  virtual absl::Status RenameFile(const std::string& from,
                                  const std::string& to) = 0;
  // Creates one directory level; an existing directory is not an error.
  virtual absl::Status CreateDir(const std::string& path) = 0;
  // Makes creations, renames and removals of dir's entries durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // Cuts the file to size bytes (which must not exceed its size).
  virtual absl::Status TruncateFile(const std::string& path, uint64_t size) = 0;
  // Takes an exclusive advisory lock on path (created if missing), failing
  // at once if another process, or another open of it, holds it.
  virtual absl::StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) = 0;
};

}  // namespace stephub::station

#endif  // STEPHUB_STATION_SPOOL_ENV_H_
