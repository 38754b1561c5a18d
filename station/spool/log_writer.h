// Appends checksummed records to a log file in the format of log_format.h.
#ifndef STEPHUB_STATION_SPOOL_LOG_WRITER_H_
#define STEPHUB_STATION_SPOOL_LOG_WRITER_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "station/spool/env.h"

namespace stephub::station::log {

class LogWriter {
 public:
  // dest is not owned; dest_length is its current length, so that an
  // existing log can be continued (its last block is then filled up).
  LogWriter(WritableFile* dest, uint64_t dest_length);

  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Frames the record and hands it to the OS in one write(2) (Append, then
  // Flush), so that a killed process leaves either the whole record or a
  // torn tail that the reader recognises. On error the file's length is
  // unknown and this writer must not be used again.
  absl::Status AddRecord(absl::string_view record);

  // The file's length after the records written so far.
  uint64_t length() const { return length_; }

  // How many bytes AddRecord of a record_size-byte record adds to a file
  // that is `length` bytes long (headers and block padding included).
  static uint64_t PhysicalSize(uint64_t length, size_t record_size);

 private:
  WritableFile* const dest_;
  uint64_t length_;
};

}  // namespace stephub::station::log

#endif  // STEPHUB_STATION_SPOOL_LOG_WRITER_H_
