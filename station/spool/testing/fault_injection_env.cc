// FaultInjectionEnv: remembers per file how much was synced, and replays a
// power cut on demand.
#include "station/spool/testing/fault_injection_env.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "station/spool/log_reader.h"

namespace stephub::station::testing {
namespace {

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

// Forwards to the base file and keeps the file's FileState current.
class FaultInjectionEnv::File final : public WritableFile {
 public:
  File(FaultInjectionEnv* env, std::string path,
       std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}

  absl::Status Append(absl::string_view data) override {
    if (env_->writes_fail_) return env_->Failure(path_);
    absl::Status s = base_->Append(data);
    if (s.ok()) env_->files_[path_].size += data.size();
    return s;
  }
  absl::Status Flush() override {
    if (env_->writes_fail_) return env_->Failure(path_);
    return base_->Flush();
  }
  absl::Status Sync() override {
    if (env_->writes_fail_) return env_->Failure(path_);
    absl::Status s = base_->Sync();
    if (s.ok()) {
      FileState& state = env_->files_[path_];
      state.synced = state.size;
    }
    return s;
  }
  absl::Status Close() override { return base_->Close(); }

 private:
  FaultInjectionEnv* const env_;
  const std::string path_;
  const std::unique_ptr<WritableFile> base_;
};

absl::Status FaultInjectionEnv::Failure(const std::string& path) const {
  return absl::UnavailableError(absl::StrCat("simulated write error: ", path));
}

absl::Status FaultInjectionEnv::DropUnsyncedData() {
  for (auto& [path, state] : files_) {
    if (state.synced < state.size) {
      if (absl::Status s = base_->TruncateFile(path, state.synced); !s.ok()) {
        return s;
      }
      state.size = state.synced;
    }
  }
  for (auto& [dir, names] : unsynced_entries_) {
    for (const std::string& path : names) {
      if (absl::Status s = base_->RemoveFile(path); !s.ok()) return s;
      files_.erase(path);
    }
  }
  unsynced_entries_.clear();
  return absl::OkStatus();
}

absl::StatusOr<FaultInjectionEnv::Extent> FaultInjectionEnv::LastRecord(
    const std::string& path) {
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      base_->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  log::LogReader reader(file->get(), nullptr, 0);
  std::string record;
  bool any = false;
  while (reader.ReadRecord(&record)) any = true;
  if (!reader.status().ok()) return reader.status();
  if (!any) return absl::NotFoundError(absl::StrCat("no record in ", path));
  return Extent{reader.record_offset(), reader.record_end()};
}

absl::Status FaultInjectionEnv::TearLastRecord(const std::string& path,
                                               uint64_t keep) {
  absl::StatusOr<Extent> last = LastRecord(path);
  if (!last.ok()) return last.status();
  if (keep >= last->end - last->offset) {
    return absl::InvalidArgumentError("tear would keep the whole record");
  }
  return TruncateFile(path, last->offset + keep);
}

absl::Status FaultInjectionEnv::FlipByte(const std::string& path,
                                         uint64_t offset) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path));
  unsigned char byte = 0;
  absl::Status s;
  if (::pread(fd, &byte, 1, static_cast<off_t>(offset)) != 1) {
    s = absl::OutOfRangeError(absl::StrCat("no byte ", offset, " in ", path));
  } else {
    byte = static_cast<unsigned char>(~byte);
    if (::pwrite(fd, &byte, 1, static_cast<off_t>(offset)) != 1) {
      s = absl::InternalError(absl::StrCat("pwrite ", path));
    }
  }
  ::close(fd);
  return s;
}

absl::StatusOr<std::unique_ptr<SequentialFile>>
FaultInjectionEnv::NewSequentialFile(const std::string& path) {
  return base_->NewSequentialFile(path);
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectionEnv::NewWritableFile(const std::string& path) {
  const bool existed = base_->FileExists(path);
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      base_->NewWritableFile(path);
  if (!file.ok()) return file.status();
  files_[path] = FileState();
  if (!existed) unsynced_entries_[DirOf(path)].insert(path);
  return std::unique_ptr<WritableFile>(
      std::make_unique<File>(this, path, std::move(*file)));
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectionEnv::NewAppendableFile(const std::string& path) {
  const bool existed = base_->FileExists(path);
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      base_->NewAppendableFile(path);
  if (!file.ok()) return file.status();
  if (!existed) {
    files_[path] = FileState();
    unsynced_entries_[DirOf(path)].insert(path);
  } else if (files_.find(path) == files_.end()) {
    // Written before this Env saw it: taken as durable.
    absl::StatusOr<uint64_t> size = base_->GetFileSize(path);
    if (!size.ok()) return size.status();
    files_[path] = FileState{*size, *size};
  }
  return std::unique_ptr<WritableFile>(
      std::make_unique<File>(this, path, std::move(*file)));
}

absl::StatusOr<std::vector<std::string>> FaultInjectionEnv::GetChildren(
    const std::string& dir) {
  return base_->GetChildren(dir);
}

bool FaultInjectionEnv::FileExists(const std::string& path) {
  return base_->FileExists(path);
}

absl::StatusOr<uint64_t> FaultInjectionEnv::GetFileSize(
    const std::string& path) {
  return base_->GetFileSize(path);
}

absl::Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  absl::Status s = base_->RemoveFile(path);
  if (s.ok()) {
    files_.erase(path);
    unsynced_entries_[DirOf(path)].erase(path);
  }
  return s;
}

absl::Status FaultInjectionEnv::RenameFile(const std::string& from,
                                           const std::string& to) {
  absl::Status s = base_->RenameFile(from, to);
  if (!s.ok()) return s;
  files_.erase(to);
  if (auto it = files_.find(from); it != files_.end()) {
    files_[to] = it->second;
    files_.erase(it);
  }
  // The renamed entry is as (un)synced as the one it came from.
  std::set<std::string>& from_dir = unsynced_entries_[DirOf(from)];
  std::set<std::string>& to_dir = unsynced_entries_[DirOf(to)];
  to_dir.erase(to);
  if (from_dir.erase(from) > 0) to_dir.insert(to);
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::CreateDir(const std::string& path) {
  return base_->CreateDir(path);
}

absl::Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  absl::Status s = base_->SyncDir(dir);
  if (s.ok()) unsynced_entries_.erase(dir);
  return s;
}

absl::Status FaultInjectionEnv::TruncateFile(const std::string& path,
                                             uint64_t size) {
  absl::Status s = base_->TruncateFile(path, size);
  if (s.ok()) {
    auto it = files_.find(path);
    if (it != files_.end()) {
      it->second.size = std::min(it->second.size, size);
      it->second.synced = std::min(it->second.synced, size);
    }
  }
  return s;
}

absl::StatusOr<std::unique_ptr<FileLock>> FaultInjectionEnv::LockFile(
    const std::string& path) {
  return base_->LockFile(path);
}

}  // namespace stephub::station::testing
