// Env::Default(): plain POSIX calls (open/write/fdatasync/rename/flock),
// every descriptor O_CLOEXEC, EINTR retried, short writes continued.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "station/spool/env.h"

namespace stephub::station {
namespace {

// ENOSPC/EDQUOT would map to kResourceExhausted, which Spool::Append
// reserves for its own size cap (a refused, counted batch); a full file
// system is a failure instead.
absl::Status PosixError(absl::string_view op, const std::string& path,
                        int error_number) {
  absl::StatusCode code = absl::ErrnoToStatusCode(error_number);
  if (code == absl::StatusCode::kResourceExhausted) {
    code = absl::StatusCode::kUnavailable;
  }
  return absl::Status(
      code, absl::StrCat(op, " ", path, ": ", std::strerror(error_number)));
}

int CloseNoEintr(int fd) {
  // On Linux the descriptor is released even when close reports EINTR, so
  // retrying could close somebody else's descriptor.
  const int r = ::close(fd);
  return (r < 0 && errno == EINTR) ? 0 : r;
}

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { CloseNoEintr(fd_); }

  absl::Status Read(size_t n, absl::string_view* result,
                    char* scratch) override {
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::read(fd_, scratch + got, n - got);
      if (r < 0) {
        if (errno == EINTR) continue;
        *result = absl::string_view();
        return PosixError("read", path_, errno);
      }
      if (r == 0) break;  // end of file
      got += static_cast<size_t>(r);
    }
    *result = absl::string_view(scratch, got);
    return absl::OkStatus();
  }

  absl::Status Skip(uint64_t n) override {
    if (::lseek(fd_, static_cast<off_t>(n), SEEK_CUR) < 0) {
      return PosixError("lseek", path_, errno);
    }
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) Close().IgnoreError();
  }

  absl::Status Append(absl::string_view data) override {
    if (fd_ < 0) return absl::FailedPreconditionError("append to closed file");
    if (buffer_.size() + data.size() <= kBufferSize) {
      buffer_.append(data.data(), data.size());
      return absl::OkStatus();
    }
    if (absl::Status s = Flush(); !s.ok()) return s;
    if (data.size() <= kBufferSize) {
      buffer_.assign(data.data(), data.size());
      return absl::OkStatus();
    }
    return WriteAll(data);
  }

  absl::Status Flush() override {
    if (buffer_.empty()) return absl::OkStatus();
    absl::Status s = WriteAll(buffer_);
    // On failure an unknown prefix reached the file; keeping the buffer
    // would write it twice, so the caller has to repair the file.
    buffer_.clear();
    return s;
  }

  absl::Status Sync() override {
    if (fd_ < 0) return absl::FailedPreconditionError("sync of closed file");
    if (absl::Status s = Flush(); !s.ok()) return s;
#ifdef __linux__
    // Enough for appended data: fdatasync also writes the new file size,
    // and skips the mtime update that would cost an SD card another write.
    const int r = ::fdatasync(fd_);
#else
    const int r = ::fsync(fd_);
#endif
    if (r < 0) return PosixError("fsync", path_, errno);
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (fd_ < 0) return absl::OkStatus();
    absl::Status s = Flush();
    if (CloseNoEintr(fd_) < 0 && s.ok()) s = PosixError("close", path_, errno);
    fd_ = -1;
    return s;
  }

 private:
  static constexpr size_t kBufferSize = 64 * 1024;

  absl::Status WriteAll(absl::string_view data) {
    while (!data.empty()) {
      const ssize_t r = ::write(fd_, data.data(), data.size());
      if (r < 0) {
        if (errno == EINTR) continue;
        return PosixError("write", path_, errno);
      }
      data.remove_prefix(static_cast<size_t>(r));
    }
    return absl::OkStatus();
  }

  const std::string path_;
  int fd_;
  std::string buffer_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { CloseNoEintr(fd_); }  // releases the flock

 private:
  const int fd_;
};

int OpenNoEintr(const std::string& path, int flags, mode_t mode = 0644) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

class PosixEnv final : public Env {
 public:
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    const int fd = OpenNoEintr(path, O_RDONLY);
    if (fd < 0) return PosixError("open", path, errno);
    return std::make_unique<PosixSequentialFile>(path, fd);
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    const int fd = OpenNoEintr(path, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0) return PosixError("create", path, errno);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override {
    const int fd = OpenNoEintr(path, O_WRONLY | O_CREAT | O_APPEND);
    if (fd < 0) return PosixError("open for append", path, errno);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return PosixError("opendir", dir, errno);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      const absl::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int error_number = errno;
    ::closedir(d);
    if (error_number != 0) return PosixError("readdir", dir, error_number);
    return names;
  }

  bool FileExists(const std::string& path) override {
    return ::access(path.c_str(), F_OK) == 0;
  }

  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) return PosixError("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) < 0) return PosixError("unlink", path, errno);
    return absl::OkStatus();
  }

  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) < 0) {
      return PosixError("rename to " + to, from, errno);
    }
    return absl::OkStatus();
  }

  absl::Status CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) {
      return PosixError("mkdir", path, errno);
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    const int fd = OpenNoEintr(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return PosixError("open directory", dir, errno);
    absl::Status s;
    if (::fsync(fd) < 0) s = PosixError("fsync directory", dir, errno);
    CloseNoEintr(fd);
    return s;
  }

  absl::Status TruncateFile(const std::string& path, uint64_t size) override {
    int r;
    do {
      r = ::truncate(path.c_str(), static_cast<off_t>(size));
    } while (r < 0 && errno == EINTR);
    if (r < 0) return PosixError("truncate", path, errno);
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) override {
    const int fd = OpenNoEintr(path, O_RDWR | O_CREAT);
    if (fd < 0) return PosixError("open lock file", path, errno);
    int r;
    do {
      r = ::flock(fd, LOCK_EX | LOCK_NB);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      const int error_number = errno;
      CloseNoEintr(fd);
      if (error_number == EWOULDBLOCK) {
        return absl::FailedPreconditionError(
            absl::StrCat("lock ", path,
                         ": held by another process (is another station "
                         "daemon using this spool?)"));
      }
      return PosixError("lock", path, error_number);
    }
    return std::make_unique<PosixFileLock>(fd);
  }
};

}  // namespace

Env* Env::Default() {
  static Env* const env = new PosixEnv();
  return env;
}

}  // namespace stephub::station
