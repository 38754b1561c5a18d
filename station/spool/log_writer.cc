// LogWriter: splits records into fragments that never cross a block.
#include "station/spool/log_writer.h"

#include <algorithm>
#include <string>

#include "station/spool/coding.h"
#include "station/spool/crc32c.h"
#include "station/spool/log_format.h"

namespace stephub::station::log {
namespace {

// Frames a record of `size` bytes as it would be written at file offset
// `length`; appends the bytes to *out unless out is null (data may then be
// null too). Returns their number. Sizing and writing share this one loop
// so that the size cap can never disagree with what is written.
uint64_t Frame(uint64_t length, const char* data, size_t size,
               std::string* out) {
  uint64_t written = 0;
  size_t block_offset = length % kBlockSize;
  bool first = true;
  do {
    const size_t leftover = kBlockSize - block_offset;
    if (leftover < kHeaderSize) {
      // Zero the block's tail; the reader skips it.
      if (out != nullptr) out->append(leftover, '\0');
      written += leftover;
      block_offset = 0;
    }
    const size_t available = kBlockSize - block_offset - kHeaderSize;
    const size_t fragment = std::min(size, available);
    const bool last = fragment == size;
    const FragmentType type = first && last ? kFull
                              : first       ? kFirst
                              : last        ? kLast
                                            : kMiddle;
    if (out != nullptr) {
      const absl::string_view payload(data, fragment);
      coding::PutFixed32(
          out, crc32c::Mask(crc32c::Value(static_cast<char>(type), payload)));
      coding::PutFixed(out, fragment, 2);
      out->push_back(static_cast<char>(type));
      out->append(payload.data(), payload.size());
    }
    written += kHeaderSize + fragment;
    block_offset += kHeaderSize + fragment;
    if (data != nullptr) data += fragment;
    size -= fragment;
    first = false;
  } while (size > 0);
  return written;
}

}  // namespace

LogWriter::LogWriter(WritableFile* dest, uint64_t dest_length)
    : dest_(dest), length_(dest_length) {}

uint64_t LogWriter::PhysicalSize(uint64_t length, size_t record_size) {
  return Frame(length, nullptr, record_size, nullptr);
}

absl::Status LogWriter::AddRecord(absl::string_view record) {
  std::string framed;
  framed.reserve(PhysicalSize(length_, record.size()));
  const uint64_t size = Frame(length_, record.data(), record.size(), &framed);
  if (absl::Status s = dest_->Append(framed); !s.ok()) return s;
  if (absl::Status s = dest_->Flush(); !s.ok()) return s;
  length_ += size;
  return absl::OkStatus();
}

}  // namespace stephub::station::log
