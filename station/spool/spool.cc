// Spool: segment files of checksummed records (log_writer.h), a BOOT file
// with the boot id, and drops.log with the refused-batch counts.
#include "station/spool/spool.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "station/spool/coding.h"
#include "station/spool/log_format.h"
#include "station/spool/log_reader.h"
#include "station/spool/log_writer.h"

namespace stephub::station {
namespace {

constexpr char kBootFile[] = "BOOT";
constexpr char kBootTemp[] = "BOOT.tmp";
constexpr char kLockFile[] = "LOCK";
constexpr char kDropsFile[] = "drops.log";
constexpr char kDropsTemp[] = "drops.tmp";
constexpr absl::string_view kSegmentPrefix = "seg-";
constexpr absl::string_view kSegmentSuffix = ".log";

constexpr uint64_t kMinSegmentBytes = 4096;
// drops.log is appended to on every refusal and rewritten whole (one
// record) once it grows past this.
constexpr uint64_t kDropsLogLimit = 64 * 1024;

constexpr size_t kBootIdSize = 16;

// The first byte of every logical record.
enum RecordKind : char {
  kHeaderKind = 1,  // version, boot id, first seq: opens every segment
  kBatchKind = 2,   // seq, payload
  kDropsKind = 3,   // boot id, dropped batches, dropped samples
};
constexpr char kFormatVersion = 1;
constexpr size_t kHeaderRecordSize = 1 + 1 + kBootIdSize + 8;
constexpr size_t kBatchPrefixSize = 1 + 8;
constexpr size_t kDropsRecordSize = 1 + kBootIdSize + 8 + 8;

bool IsBootId(absl::string_view s) {
  return s.size() == kBootIdSize && std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f');
         });
}

std::string NewBootId() {
  // random_device reads the kernel's entropy pool on Linux, so boot ids
  // differ across power cycles even without a real-time clock.
  std::random_device random;
  const uint64_t value = (uint64_t{random()} << 32) ^ uint64_t { random() };
  return absl::StrFormat("%016x", value);
}

std::string SegmentName(uint64_t number) {
  return absl::StrFormat("%s%020d%s", kSegmentPrefix, number, kSegmentSuffix);
}

bool ParseSegmentName(absl::string_view name, uint64_t* number) {
  if (!absl::ConsumePrefix(&name, kSegmentPrefix) ||
      !absl::ConsumeSuffix(&name, kSegmentSuffix) || name.empty() ||
      !std::all_of(name.begin(), name.end(), absl::ascii_isdigit)) {
    return false;
  }
  return absl::SimpleAtoi(name, number);
}

std::string ParentDir(absl::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(),
                      absl::StrCat(context, ": ", status.message()));
}

struct Damage {
  uint64_t offset;
  uint64_t bytes;
  std::string reason;
};

class DamageList : public log::LogReader::Reporter {
 public:
  void Dropped(uint64_t offset, uint64_t bytes,
               absl::string_view reason) override {
    damage.push_back({offset, bytes, std::string(reason)});
  }
  std::vector<Damage> damage;
};

// What one pass over a segment found.
struct SegmentScan {
  uint64_t number = 0;
  uint64_t size = 0;
  bool has_header = false;
  std::string header_boot_id;
  uint64_t header_first_seq = 0;
  uint64_t records = 0;  // intact batches
  uint64_t first_record_seq = 0;
  uint64_t last_record_seq = 0;
  uint64_t record_end = 0;  // end of the last intact record of any kind
  std::vector<Damage> damage;
};

absl::StatusOr<SegmentScan> ScanSegment(Env* env, const std::string& path,
                                        uint64_t number) {
  SegmentScan scan;
  scan.number = number;
  absl::StatusOr<uint64_t> size = env->GetFileSize(path);
  if (!size.ok()) return size.status();
  scan.size = *size;
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  DamageList damage;
  log::LogReader reader(file->get(), &damage, 0);
  std::string record;
  uint64_t previous_seq = 0;
  while (reader.ReadRecord(&record)) {
    scan.record_end = reader.record_end();
    const uint64_t offset = reader.record_offset();
    const uint64_t extent = reader.record_end() - offset;
    const char kind = record.empty() ? 0 : record[0];
    if (kind == kHeaderKind && record.size() == kHeaderRecordSize &&
        record[1] == kFormatVersion) {
      const uint64_t first_seq = coding::GetFixed64(record.substr(18));
      if (offset != 0 || first_seq == 0) {
        damage.Dropped(offset, extent, "misplaced segment header");
        continue;
      }
      scan.has_header = true;
      scan.header_boot_id = record.substr(2, kBootIdSize);
      scan.header_first_seq = first_seq;
      previous_seq = first_seq - 1;
    } else if (kind == kBatchKind && record.size() >= kBatchPrefixSize) {
      const uint64_t seq = coding::GetFixed64(record.substr(1));
      if (seq <= previous_seq) {
        damage.Dropped(offset, extent,
                       absl::StrFormat("batch seq %d out of order after %d",
                                       seq, previous_seq));
        continue;
      }
      if (scan.records == 0) scan.first_record_seq = seq;
      scan.last_record_seq = seq;
      previous_seq = seq;
      ++scan.records;
    } else {
      damage.Dropped(offset, extent, "unrecognised record");
    }
  }
  // A read error is not damage: truncating or skipping on it could destroy
  // batches that a retry would read, so Open fails instead.
  if (!reader.status().ok()) return reader.status();
  scan.damage = std::move(damage.damage);
  return scan;
}

}  // namespace

void Spool::DamageCounter::Dropped(uint64_t, uint64_t bytes,
                                   absl::string_view) {
  *bytes_ += bytes;
}

Spool::Spool(Env* env, SpoolOptions options)
    : env_(env), options_(std::move(options)) {}

Spool::~Spool() = default;

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(Env* env,
                                                   SpoolOptions options) {
  if (options.dir.empty()) {
    return absl::InvalidArgumentError("spool: no directory given");
  }
  if (options.segment_bytes < kMinSegmentBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("spool: segment_bytes %d is below the minimum %d",
                        options.segment_bytes, kMinSegmentBytes));
  }
  if (options.max_bytes / 2 < options.segment_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "spool: max_bytes %d must be at least twice segment_bytes %d",
        options.max_bytes, options.segment_bytes));
  }
  if (options.sync_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("spool: negative sync_interval");
  }
  auto spool = absl::WrapUnique(new Spool(env, std::move(options)));
  if (absl::Status s = spool->Init(); !s.ok()) return s;
  return spool;
}

std::string Spool::PathOf(absl::string_view name) const {
  return absl::StrCat(options_.dir, "/", name);
}

std::string Spool::SegmentPath(uint64_t number) const {
  return PathOf(SegmentName(number));
}

std::string Spool::HeaderRecord(uint64_t first_seq) const {
  std::string record;
  record.push_back(kHeaderKind);
  record.push_back(kFormatVersion);
  record.append(boot_id_);
  coding::PutFixed64(&record, first_seq);
  return record;
}

std::string Spool::DropsRecord() const {
  std::string record;
  record.push_back(kDropsKind);
  record.append(boot_id_);
  coding::PutFixed64(&record, dropped_batches_);
  coding::PutFixed64(&record, dropped_samples_);
  return record;
}

uint64_t Spool::FreshSegmentBytes(size_t record_size) const {
  const uint64_t header = log::LogWriter::PhysicalSize(0, kHeaderRecordSize);
  return header + log::LogWriter::PhysicalSize(header, record_size);
}

absl::Status Spool::Init() {
  const std::string& dir = options_.dir;
  if (!env_->FileExists(dir)) {
    if (absl::Status s = env_->CreateDir(dir); !s.ok()) return s;
    if (absl::Status s = env_->SyncDir(ParentDir(dir)); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<FileLock>> lock =
      env_->LockFile(PathOf(kLockFile));
  if (!lock.ok()) return lock.status();
  lock_ = std::move(*lock);

  absl::StatusOr<std::vector<std::string>> children = env_->GetChildren(dir);
  if (!children.ok()) return children.status();
  std::vector<uint64_t> numbers;
  for (const std::string& name : *children) {
    uint64_t number = 0;
    if (name == kBootTemp || name == kDropsTemp) {
      // Left by a crash before the rename; the old file is still valid.
      if (absl::Status s = env_->RemoveFile(PathOf(name)); !s.ok()) return s;
    } else if (ParseSegmentName(name, &number)) {
      numbers.push_back(number);
    }
  }
  std::sort(numbers.begin(), numbers.end());
  if (!numbers.empty()) next_number_ = numbers.back() + 1;

  if (absl::Status s = LoadBootId(numbers); !s.ok()) return s;
  if (absl::Status s = LoadSegments(numbers); !s.ok()) return s;
  return LoadDrops();
}

absl::Status Spool::LoadBootId(const std::vector<uint64_t>& segment_numbers) {
  const std::string path = PathOf(kBootFile);
  if (!env_->FileExists(path)) {
    if (!segment_numbers.empty()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "spool directory %s holds segment files but no %s file, so their "
          "batches cannot be attributed to a boot; move the directory aside "
          "to start a new spool",
          options_.dir, kBootFile));
    }
    recovery_.created = true;
    boot_id_ = NewBootId();
    return WriteBootId(boot_id_);
  }
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env_->NewSequentialFile(path);
  if (!file.ok()) return Annotate(file.status(), "reading the spool's boot id");
  char scratch[64];
  absl::string_view content;
  if (absl::Status s = (*file)->Read(sizeof(scratch), &content, scratch);
      !s.ok()) {
    return Annotate(s, "reading the spool's boot id");
  }
  absl::string_view id = content;
  if (!absl::ConsumeSuffix(&id, "\n") || !IsBootId(id)) {
    return absl::DataLossError(absl::StrFormat(
        "spool boot id file %s is damaged (expected 16 lowercase hex digits "
        "and a newline, found %d%s bytes); its batches cannot be attributed "
        "to a boot: move the spool directory aside to start a new spool",
        path, content.size(), content.size() == sizeof(scratch) ? "+" : ""));
  }
  boot_id_ = std::string(id);
  return absl::OkStatus();
}

absl::Status Spool::WriteBootId(const std::string& boot_id) {
  // Temp file, fsync, rename, fsync of the directory: after a crash BOOT
  // holds either the old id or the new one, never a mix or nothing.
  const std::string temp = PathOf(kBootTemp);
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env_->NewWritableFile(temp);
  if (!file.ok()) return file.status();
  absl::Status s = (*file)->Append(boot_id + "\n");
  if (s.ok()) s = (*file)->Sync();
  if (s.ok()) s = (*file)->Close();
  if (s.ok()) s = env_->RenameFile(temp, PathOf(kBootFile));
  if (s.ok()) s = env_->SyncDir(options_.dir);
  return s;
}

absl::Status Spool::LoadSegments(const std::vector<uint64_t>& numbers) {
  std::vector<SegmentScan> scans;
  for (uint64_t number : numbers) {
    absl::StatusOr<SegmentScan> scan =
        ScanSegment(env_, SegmentPath(number), number);
    if (!scan.ok()) return scan.status();
    scans.push_back(std::move(*scan));
  }

  bool dir_changed = false;
  // Segments of another boot were left by a Reset() interrupted after it
  // had written the new BOOT.
  for (auto it = scans.begin(); it != scans.end();) {
    if (!it->has_header || it->header_boot_id == boot_id_) {
      ++it;
      continue;
    }
    const std::string name = SegmentName(it->number);
    if (absl::Status s = env_->RemoveFile(PathOf(name)); !s.ok()) return s;
    recovery_.problems.push_back(absl::StrFormat(
        "%s: deleted, left from boot %s by an interrupted reset", name,
        it->header_boot_id));
    dir_changed = true;
    it = scans.erase(it);
  }
  // A last segment with nothing intact was torn while being created.
  while (!scans.empty() && !scans.back().has_header &&
         scans.back().record_end == 0) {
    const std::string name = SegmentName(scans.back().number);
    if (absl::Status s = env_->RemoveFile(PathOf(name)); !s.ok()) return s;
    recovery_.torn_tail_bytes += scans.back().size;
    recovery_.problems.push_back(absl::StrFormat(
        "%s: deleted, %d bytes without an intact record (torn while being "
        "created)",
        name, scans.back().size));
    dir_changed = true;
    scans.pop_back();
  }

  bool truncated = false;
  uint64_t previous_last_seq = 0;
  for (size_t i = 0; i < scans.size(); ++i) {
    const SegmentScan& scan = scans[i];
    const std::string name = SegmentName(scan.number);
    const bool last = i + 1 == scans.size();
    std::string tail_reason;
    for (const Damage& d : scan.damage) {
      if (last && d.offset >= scan.record_end) {
        if (tail_reason.empty()) tail_reason = d.reason;
        continue;
      }
      recovery_.corrupt_bytes += d.bytes;
      recovery_.problems.push_back(
          absl::StrFormat("%s: skipped %d damaged bytes at offset %d: %s", name,
                          d.bytes, d.offset, d.reason));
    }
    uint64_t size = scan.size;
    if (last && size > scan.record_end) {
      // Cut physically, so that new records do not sit behind garbage and
      // the next reopen does not report it again.
      if (absl::Status s = env_->TruncateFile(PathOf(name), scan.record_end);
          !s.ok()) {
        return s;
      }
      recovery_.torn_tail_bytes += size - scan.record_end;
      recovery_.problems.push_back(absl::StrFormat(
          "%s: cut %d torn bytes at offset %d (%s)", name,
          size - scan.record_end, scan.record_end,
          tail_reason.empty() ? "incomplete block padding" : tail_reason));
      size = scan.record_end;
      truncated = true;
    }
    Segment segment;
    segment.number = scan.number;
    segment.first_seq = scan.has_header    ? scan.header_first_seq
                        : scan.records > 0 ? scan.first_record_seq
                                           : previous_last_seq + 1;
    segment.last_seq =
        scan.records > 0 ? scan.last_record_seq : segment.first_seq - 1;
    segment.size = size;
    if (!scan.has_header) {
      recovery_.problems.push_back(absl::StrFormat(
          "%s: header lost; first seq taken as %d", name, segment.first_seq));
    }
    segments_.push_back(segment);
    bytes_ += size;
    recovery_.records += scan.records;
    last_seq_ = std::max(last_seq_, segment.last_seq);
    previous_last_seq = segment.last_seq;
  }
  if (dir_changed) {
    if (absl::Status s = env_->SyncDir(options_.dir); !s.ok()) return s;
  }

  if (segments_.empty()) return CreateSegment(last_seq_ + 1);
  return OpenActive(truncated);
}

absl::Status Spool::OpenActive(bool sync_needed) {
  const Segment& segment = segments_.back();
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env_->NewAppendableFile(SegmentPath(segment.number));
  if (!file.ok()) return file.status();
  if (sync_needed) {
    // Make the cut durable before anything is appended behind it.
    if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
  }
  active_file_ = std::move(*file);
  writer_ = std::make_unique<log::LogWriter>(active_file_.get(), segment.size);
  return absl::OkStatus();
}

absl::Status Spool::CreateSegment(uint64_t first_seq) {
  const uint64_t number = next_number_++;
  const std::string path = SegmentPath(number);
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env_->NewWritableFile(path);
  if (!file.ok()) return file.status();
  auto writer = std::make_unique<log::LogWriter>(file->get(), 0);
  // The header is synced, and the new name with it, before any batch goes
  // in: last_seq() can then always be recovered from it.
  absl::Status s = writer->AddRecord(HeaderRecord(first_seq));
  if (s.ok()) s = (*file)->Sync();
  if (s.ok()) s = env_->SyncDir(options_.dir);
  if (!s.ok()) {
    writer.reset();
    file->reset();
    env_->RemoveFile(path).IgnoreError();
    return s;
  }
  segments_.push_back({number, first_seq, first_seq - 1, writer->length()});
  bytes_ += writer->length();
  active_file_ = std::move(*file);
  writer_ = std::move(writer);
  return absl::OkStatus();
}

absl::Status Spool::Rotate(uint64_t first_seq) {
  if (active_file_ != nullptr) {
    // The old segment must be durable before a later one exists: a power
    // cut may then take only a suffix of the spool, never a hole in it.
    if (absl::Status s = active_file_->Sync(); !s.ok()) return s;
    segment_unsynced_ = false;
    writer_.reset();
    absl::Status s = active_file_->Close();
    active_file_.reset();
    if (!s.ok()) return s;
  }
  return CreateSegment(first_seq);
}

void Spool::RepairFailedAppend(uint64_t good_length) {
  Segment& segment = segments_.back();
  const std::string path = SegmentPath(segment.number);
  // A kept reader may have buffered what is about to be cut.
  cursor_.reader.reset();
  cursor_.file.reset();
  writer_.reset();
  // Keep what was appended before the failure as durable as it can be.
  if (segment_unsynced_) active_file_->Sync().IgnoreError();
  active_file_->Close().IgnoreError();
  active_file_.reset();
  if (env_->TruncateFile(path, good_length).ok()) {
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        env_->NewAppendableFile(path);
    if (file.ok()) {
      active_file_ = std::move(*file);
      writer_ =
          std::make_unique<log::LogWriter>(active_file_.get(), good_length);
      return;
    }
  }
  // The segment may end in a partial record; leave it (readers skip it as
  // damage) and let the next Append start a new segment.
  if (absl::StatusOr<uint64_t> size = env_->GetFileSize(path); size.ok()) {
    bytes_ = bytes_ - segment.size + *size;
    segment.size = *size;
  }
}

absl::StatusOr<uint64_t> Spool::Append(absl::string_view payload,
                                       uint64_t sample_count) {
  const uint64_t seq = last_seq_ + 1;
  std::string record;
  record.reserve(kBatchPrefixSize + payload.size());
  record.push_back(kBatchKind);
  coding::PutFixed64(&record, seq);
  record.append(payload.data(), payload.size());

  const uint64_t fresh = FreshSegmentBytes(record.size());
  if (fresh > options_.segment_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "spool: a batch of %d bytes does not fit in a segment of %d bytes",
        payload.size(), options_.segment_bytes));
  }
  // Without a writer (a failed write or rotation) a new segment is due.
  bool rotate = writer_ == nullptr;
  uint64_t needed = fresh;
  if (!rotate) {
    const Segment& active = segments_.back();
    needed = log::LogWriter::PhysicalSize(writer_->length(), record.size());
    const bool has_batches = active.last_seq >= active.first_seq;
    if (has_batches && writer_->length() + needed > options_.segment_bytes) {
      rotate = true;
      needed = fresh;
    }
  }
  if (bytes_ + needed > options_.max_bytes) {
    // The policy: refuse new batches, keep what is spooled (see SPOOL.md).
    ++dropped_batches_;
    dropped_samples_ += sample_count;
    const absl::Status persisted = PersistDrops();
    return absl::ResourceExhaustedError(absl::StrFormat(
        "spool full (%d of %d bytes): batch of %d samples refused; %d "
        "batches (%d samples) refused since boot %s%s",
        bytes_, options_.max_bytes, sample_count, dropped_batches_,
        dropped_samples_, boot_id_,
        persisted.ok() ? ""
                       : absl::StrCat("; saving the count failed: ",
                                      persisted.message())));
  }
  if (rotate) {
    if (absl::Status s = Rotate(seq); !s.ok()) return s;
  }
  const uint64_t before = writer_->length();
  if (absl::Status s = writer_->AddRecord(record); !s.ok()) {
    RepairFailedAppend(before);
    return s;
  }
  Segment& segment = segments_.back();
  bytes_ += writer_->length() - before;
  segment.size = writer_->length();
  segment.last_seq = seq;
  last_seq_ = seq;
  segment_unsynced_ = true;
  return seq;
}

absl::Status Spool::MaybeSync(absl::Time now) {
  if (!segment_unsynced_ && !drops_unsynced_) return absl::OkStatus();
  if (now - last_sync_ < options_.sync_interval) return absl::OkStatus();
  // Even after a failure: a failing card is not hammered on every call.
  last_sync_ = now;
  return Sync();
}

absl::Status Spool::Sync() {
  if (segment_unsynced_ && active_file_ != nullptr) {
    if (absl::Status s = active_file_->Sync(); !s.ok()) return s;
    segment_unsynced_ = false;
  }
  if (drops_unsynced_ && drops_file_ != nullptr) {
    if (absl::Status s = drops_file_->Sync(); !s.ok()) return s;
    drops_unsynced_ = false;
  }
  return absl::OkStatus();
}

absl::Status Spool::Release(uint64_t acked_seq) {
  size_t releasable = 0;
  while (releasable + 1 < segments_.size()) {
    const Segment& segment = segments_[releasable];
    const Segment& next = segments_[releasable + 1];
    if (std::max(segment.last_seq, next.first_seq - 1) > acked_seq) break;
    ++releasable;
  }
  if (releasable == 0) return absl::OkStatus();
  absl::Status status;
  size_t removed = 0;
  for (; removed < releasable; ++removed) {
    const Segment& segment = segments_[removed];
    status = env_->RemoveFile(SegmentPath(segment.number));
    if (!status.ok()) break;
    bytes_ -= segment.size;
    if (cursor_.segment_number == segment.number) cursor_ = Cursor();
  }
  segments_.erase(segments_.begin(), segments_.begin() + removed);
  if (removed > 0) {
    // Unsynced, a deletion may be undone by a power cut; the hub then
    // drops the resent duplicates, so this is for tidiness, not safety.
    absl::Status s = env_->SyncDir(options_.dir);
    if (status.ok()) status = s;
  }
  return status;
}

absl::Status Spool::ReadAfter(uint64_t after_seq, size_t max_records,
                              std::vector<SpoolRecord>* out) {
  out->clear();
  if (max_records == 0 || after_seq >= last_seq_) return absl::OkStatus();
  // The last segment whose first seq is <= after_seq + 1 holds it (or, if
  // released, the first one holds the next record still kept).
  auto it = std::upper_bound(
      segments_.begin(), segments_.end(), after_seq + 1,
      [](uint64_t seq, const Segment& s) { return seq < s.first_seq; });
  if (it != segments_.begin()) --it;
  size_t index = static_cast<size_t>(it - segments_.begin());
  uint64_t offset = 0;
  bool resume = false;
  if (cursor_.valid && cursor_.seq == after_seq) {
    for (size_t i = 0; i < segments_.size(); ++i) {
      if (segments_[i].number == cursor_.segment_number) {
        index = i;
        offset = cursor_.offset;
        resume = true;
        break;
      }
    }
  }
  if (!resume) cursor_ = Cursor();
  // From here a kept reader belongs to segments_[index] at offset.

  std::string record;
  for (; index < segments_.size(); ++index, offset = 0) {
    const Segment& segment = segments_[index];
    if (segment.last_seq <= after_seq) continue;
    const bool cached = cursor_.reader != nullptr &&
                        cursor_.segment_number == segment.number &&
                        cursor_.offset == offset;
    if (!cached) {
      cursor_.reader.reset();
      absl::StatusOr<std::unique_ptr<SequentialFile>> file =
          env_->NewSequentialFile(SegmentPath(segment.number));
      if (!file.ok()) return file.status();
      cursor_.file = std::move(*file);
      cursor_.reader = std::make_unique<log::LogReader>(cursor_.file.get(),
                                                        &read_damage_, offset);
    }
    bool fresh = !cached;
    while (out->size() < max_records) {
      if (!cursor_.reader->ReadRecord(&record)) {
        if (!cursor_.reader->status().ok()) {
          const absl::Status s = cursor_.reader->status();
          cursor_ = Cursor();
          return s;
        }
        if (fresh) break;  // the end of this segment
        // A kept reader stops at the end the file had when it last read a
        // block; the active segment may have grown since.
        absl::StatusOr<std::unique_ptr<SequentialFile>> file =
            env_->NewSequentialFile(SegmentPath(segment.number));
        if (!file.ok()) return file.status();
        const uint64_t from = cursor_.reader->record_end();
        cursor_.reader.reset();
        cursor_.file = std::move(*file);
        cursor_.reader = std::make_unique<log::LogReader>(cursor_.file.get(),
                                                          &read_damage_, from);
        fresh = true;
        continue;
      }
      if (record.size() < kBatchPrefixSize || record[0] != kBatchKind) {
        continue;
      }
      const uint64_t seq =
          coding::GetFixed64(absl::string_view(record).substr(1));
      if (seq <= after_seq) continue;
      out->push_back({seq, record.substr(kBatchPrefixSize)});
      after_seq = seq;
      cursor_.valid = true;
      cursor_.segment_number = segment.number;
      cursor_.seq = seq;
      cursor_.offset = cursor_.reader->record_end();
    }
    if (out->size() >= max_records) return absl::OkStatus();
    cursor_.reader.reset();
    cursor_.file.reset();
  }
  return absl::OkStatus();
}

absl::Status Spool::LoadDrops() {
  const std::string path = PathOf(kDropsFile);
  if (!env_->FileExists(path)) return absl::OkStatus();
  absl::StatusOr<uint64_t> size = env_->GetFileSize(path);
  if (!size.ok()) return size.status();
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env_->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  DamageList damage;
  log::LogReader reader(file->get(), &damage, 0);
  std::string record;
  bool found = false;
  bool foreign = false;
  while (reader.ReadRecord(&record)) {
    if (record.size() != kDropsRecordSize || record[0] != kDropsKind) {
      damage.Dropped(reader.record_offset(),
                     reader.record_end() - reader.record_offset(),
                     "unrecognised record");
      continue;
    }
    if (absl::string_view(record).substr(1, kBootIdSize) != boot_id_) {
      foreign = true;  // from before an interrupted Reset()
      continue;
    }
    // Counts only grow: the last intact record is the latest.
    found = true;
    const absl::string_view counts =
        absl::string_view(record).substr(1 + kBootIdSize);
    dropped_batches_ = coding::GetFixed64(counts);
    dropped_samples_ = coding::GetFixed64(counts.substr(8));
  }
  if (!reader.status().ok()) return reader.status();
  uint64_t damaged = 0;
  for (const Damage& d : damage.damage) damaged += d.bytes;
  if (damaged > 0) {
    recovery_.problems.push_back(absl::StrFormat(
        "%s: skipped %d damaged bytes; dropped counts are from its last "
        "intact record (%d batches, %d samples)",
        kDropsFile, damaged, dropped_batches_, dropped_samples_));
  }
  if (found && damaged == 0 && !foreign && reader.record_end() == *size &&
      *size < kDropsLogLimit) {
    absl::StatusOr<std::unique_ptr<WritableFile>> appendable =
        env_->NewAppendableFile(path);
    if (!appendable.ok()) return appendable.status();
    drops_file_ = std::move(*appendable);
    drops_writer_ = std::make_unique<log::LogWriter>(drops_file_.get(), *size);
    return absl::OkStatus();
  }
  if (found) return RewriteDrops();
  // Nothing of this boot: the counts start at zero, and the file is made
  // again on the first refusal.
  if (absl::Status s = env_->RemoveFile(path); !s.ok()) return s;
  return env_->SyncDir(options_.dir);
}

absl::Status Spool::RewriteDrops() {
  // A fresh file with one record replaces the old one atomically; this
  // also bounds its size.
  drops_writer_.reset();
  drops_file_.reset();
  const std::string temp = PathOf(kDropsTemp);
  const std::string path = PathOf(kDropsFile);
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env_->NewWritableFile(temp);
  if (!file.ok()) return file.status();
  log::LogWriter writer(file->get(), 0);
  absl::Status s = writer.AddRecord(DropsRecord());
  if (s.ok()) s = (*file)->Sync();
  if (s.ok()) s = (*file)->Close();
  if (s.ok()) s = env_->RenameFile(temp, path);
  if (s.ok()) s = env_->SyncDir(options_.dir);
  if (!s.ok()) return s;
  absl::StatusOr<std::unique_ptr<WritableFile>> appendable =
      env_->NewAppendableFile(path);
  if (!appendable.ok()) return appendable.status();
  drops_file_ = std::move(*appendable);
  drops_writer_ =
      std::make_unique<log::LogWriter>(drops_file_.get(), writer.length());
  drops_unsynced_ = false;
  return absl::OkStatus();
}

absl::Status Spool::PersistDrops() {
  if (drops_writer_ == nullptr || drops_writer_->length() >= kDropsLogLimit) {
    return RewriteDrops();
  }
  // write(2) only: survives a killed process; synced with the segments.
  if (absl::Status s = drops_writer_->AddRecord(DropsRecord()); !s.ok()) {
    // The file may end in a partial record: the next refusal rewrites it.
    drops_writer_.reset();
    drops_file_.reset();
    return s;
  }
  drops_unsynced_ = true;
  return absl::OkStatus();
}

absl::Status Spool::Reset() {
  std::string boot_id = NewBootId();
  while (boot_id == boot_id_) boot_id = NewBootId();
  // The new BOOT goes first: from then on the old segments are recognised
  // by their header as another boot's and deleted even if this is cut
  // short. Deleting them first instead would let a crash restart seq at 1
  // under the old boot id, and the hub would drop those batches as
  // duplicates.
  if (absl::Status s = WriteBootId(boot_id); !s.ok()) return s;
  boot_id_ = std::move(boot_id);

  writer_.reset();
  active_file_.reset();
  drops_writer_.reset();
  drops_file_.reset();
  absl::Status status;
  for (const Segment& segment : segments_) {
    absl::Status s = env_->RemoveFile(SegmentPath(segment.number));
    if (status.ok()) status = s;  // a leftover is deleted by the next Open
  }
  if (env_->FileExists(PathOf(kDropsFile))) {
    absl::Status s = env_->RemoveFile(PathOf(kDropsFile));
    if (status.ok()) status = s;
  }
  if (absl::Status s = env_->SyncDir(options_.dir); status.ok()) status = s;

  segments_.clear();
  bytes_ = 0;
  last_seq_ = 0;
  dropped_batches_ = 0;
  dropped_samples_ = 0;
  segment_unsynced_ = false;
  drops_unsynced_ = false;
  cursor_ = Cursor();
  absl::Status created = CreateSegment(1);
  return status.ok() ? created : status;
}

}  // namespace stephub::station
