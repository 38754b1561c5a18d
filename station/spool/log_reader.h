// Reads the records of a log file written by LogWriter, verifying every
// fragment's checksum. Damage is reported with its file offset and skipped:
// the caller tells a torn tail (nothing intact after it) from corruption in
// the middle (intact records follow) by comparing offsets with record_end().
#ifndef STEPHUB_STATION_SPOOL_LOG_READER_H_
#define STEPHUB_STATION_SPOOL_LOG_READER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "station/spool/env.h"

namespace stephub::station::log {

class LogReader {
 public:
  class Reporter {
   public:
    virtual ~Reporter() = default;
    // `bytes` bytes starting at file offset `offset` were skipped.
    virtual void Dropped(uint64_t offset, uint64_t bytes,
                         absl::string_view reason) = 0;
  };

  // file and reporter are not owned; reporter may be null. Reading starts
  // at start_offset, which must be 0 or the record_end() of a record read
  // before (any record boundary); file must be positioned at its start.
  LogReader(SequentialFile* file, Reporter* reporter, uint64_t start_offset);

  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  // The next intact record, or false at the end of the file or on an I/O
  // error (see status()).
  bool ReadRecord(std::string* record);

  // File offsets of the first byte of the last record returned and of the
  // byte after it; both start_offset before any record.
  uint64_t record_offset() const { return record_offset_; }
  uint64_t record_end() const { return record_end_; }

  // The first read error, if any; damage is not an error.
  const absl::Status& status() const { return status_; }

 private:
  // ReadPhysical's results besides a fragment type.
  static constexpr int kEof = 256;
  static constexpr int kBad = 257;

  int ReadPhysical(absl::string_view* fragment, uint64_t* offset);
  void Report(uint64_t offset, uint64_t bytes, absl::string_view reason);
  void Consume(size_t n);

  SequentialFile* const file_;
  Reporter* const reporter_;
  const std::unique_ptr<char[]> block_;
  absl::string_view buffer_;    // unread part of the current block
  uint64_t buffer_offset_ = 0;  // file offset of buffer_.data()
  uint64_t next_block_ = 0;     // file offset of the next block to read
  uint64_t skip_in_block_ = 0;  // start_offset's position in its block
  bool started_ = false;
  bool eof_ = false;
  uint64_t record_offset_;
  uint64_t record_end_;
  absl::Status status_;
};

}  // namespace stephub::station::log

#endif  // STEPHUB_STATION_SPOOL_LOG_READER_H_
