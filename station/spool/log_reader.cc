// LogReader: reassembles fragments and resynchronises at block boundaries
// after damage.
#include "station/spool/log_reader.h"

#include <algorithm>

#include "station/spool/coding.h"
#include "station/spool/crc32c.h"
#include "station/spool/log_format.h"

namespace stephub::station::log {

LogReader::LogReader(SequentialFile* file, Reporter* reporter,
                     uint64_t start_offset)
    : file_(file),
      reporter_(reporter),
      block_(new char[kBlockSize]),
      next_block_(start_offset - start_offset % kBlockSize),
      skip_in_block_(start_offset % kBlockSize),
      record_offset_(start_offset),
      record_end_(start_offset) {}

void LogReader::Report(uint64_t offset, uint64_t bytes,
                       absl::string_view reason) {
  if (reporter_ != nullptr && bytes > 0) {
    reporter_->Dropped(offset, bytes, reason);
  }
}

void LogReader::Consume(size_t n) {
  buffer_.remove_prefix(n);
  buffer_offset_ += n;
}

int LogReader::ReadPhysical(absl::string_view* fragment, uint64_t* offset) {
  for (;;) {
    if (buffer_.size() < kHeaderSize) {
      if (eof_) {
        // A partial last block cannot end in padding (the writer pads only
        // in front of the next fragment), so this is a torn header.
        Report(buffer_offset_, buffer_.size(),
               "fragment header cut short at end of file");
        Consume(buffer_.size());
        return kEof;
      }
      // Skip the previous block's zero padding and read the next block.
      if (!started_) {
        started_ = true;
        if (next_block_ > 0) {
          if (absl::Status s = file_->Skip(next_block_); !s.ok()) {
            status_ = s;
            eof_ = true;
            return kEof;
          }
        }
      }
      Consume(buffer_.size());
      absl::string_view got;
      const absl::Status s = file_->Read(kBlockSize, &got, block_.get());
      buffer_offset_ = next_block_;
      if (!s.ok()) {
        status_ = s;
        eof_ = true;
        buffer_ = absl::string_view();
        return kEof;
      }
      buffer_ = got;
      next_block_ += got.size();
      if (got.size() < kBlockSize) eof_ = true;
      if (skip_in_block_ > 0) {
        Consume(std::min<uint64_t>(skip_in_block_, buffer_.size()));
        skip_in_block_ = 0;
      }
      continue;
    }

    const uint64_t start = buffer_offset_;
    const uint32_t masked_crc = coding::GetFixed32(buffer_);
    const size_t length = coding::GetFixed(buffer_.substr(4), 2);
    const unsigned char type = static_cast<unsigned char>(buffer_[6]);
    if (kHeaderSize + length > buffer_.size()) {
      // Fragments never cross blocks, so the length is damaged, or (in the
      // last block) the write was torn. The block offers no safe place to
      // resume, so its rest is dropped.
      const size_t dropped = buffer_.size();
      Consume(dropped);
      if (eof_) {
        Report(start, dropped, "fragment cut short at end of file");
        return kEof;
      }
      Report(start, dropped, "fragment length beyond its block");
      return kBad;
    }
    const absl::string_view payload = buffer_.substr(kHeaderSize, length);
    if (crc32c::Unmask(masked_crc) !=
        crc32c::Value(static_cast<char>(type), payload)) {
      // The length field itself may be wrong: drop the block's rest.
      const size_t dropped = buffer_.size();
      Consume(dropped);
      Report(start, dropped, "checksum mismatch");
      return kBad;
    }
    Consume(kHeaderSize + length);
    if (type == 0 || type > kMaxFragmentType) {
      Report(start, kHeaderSize + length, "unknown fragment type");
      return kBad;
    }
    *fragment = payload;
    *offset = start;
    return type;
  }
}

bool LogReader::ReadRecord(std::string* record) {
  record->clear();
  bool in_record = false;
  uint64_t start = 0;  // of the record being reassembled
  uint64_t end = 0;    // of its last fragment so far
  for (;;) {
    absl::string_view fragment;
    uint64_t offset = 0;
    const int type = ReadPhysical(&fragment, &offset);
    const uint64_t fragment_end = offset + kHeaderSize + fragment.size();
    switch (type) {
      case kFull:
        if (in_record) {
          Report(start, end - start, "split record without its last fragment");
        }
        record->assign(fragment.data(), fragment.size());
        record_offset_ = offset;
        record_end_ = fragment_end;
        return true;
      case kFirst:
        if (in_record) {
          Report(start, end - start, "split record without its last fragment");
        }
        record->assign(fragment.data(), fragment.size());
        in_record = true;
        start = offset;
        end = fragment_end;
        break;
      case kMiddle:
      case kLast:
        if (!in_record) {
          Report(offset, fragment_end - offset,
                 "fragment of a split record whose start was lost");
          break;
        }
        record->append(fragment.data(), fragment.size());
        end = fragment_end;
        if (type == kLast) {
          record_offset_ = start;
          record_end_ = end;
          return true;
        }
        break;
      case kBad:
        if (in_record) {
          Report(start, end - start, "split record whose rest was lost");
          in_record = false;
          record->clear();
        }
        break;
      case kEof:
      default:
        if (in_record) {
          Report(start, end - start, "split record cut short at end of file");
        }
        record->clear();
        return false;
    }
  }
}

}  // namespace stephub::station::log
