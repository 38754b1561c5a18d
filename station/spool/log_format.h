// The physical format of a spool segment file, shared by LogWriter and
// LogReader (the design of LevelDB's write-ahead log).
//
// A file is a sequence of 32 KiB blocks. Each logical record is written as
// one or more fragments, none crossing a block boundary:
//   masked CRC-32C (4 bytes, little endian) of type byte + payload
//   payload length (2 bytes, little endian)
//   type (1 byte): kFull, or kFirst, kMiddle..., kLast for a split record
//   payload
// A block tail too short for a fragment header (< 7 bytes) is zero-filled
// and skipped. Because fragments never cross blocks, a reader that meets a
// damaged fragment can drop the rest of that block and resynchronise at the
// next block boundary.
#ifndef STEPHUB_STATION_SPOOL_LOG_FORMAT_H_
#define STEPHUB_STATION_SPOOL_LOG_FORMAT_H_

#include <cstddef>

namespace stephub::station::log {

enum FragmentType : unsigned char {
  // 0 is deliberately unused: a zero-filled region (which a file system may
  // show after a power cut) then never parses as a fragment.
  kFull = 1,
  kFirst = 2,
  kMiddle = 3,
  kLast = 4,
};
constexpr unsigned char kMaxFragmentType = kLast;

constexpr size_t kBlockSize = 32768;
constexpr size_t kHeaderSize = 4 + 2 + 1;

}  // namespace stephub::station::log

#endif  // STEPHUB_STATION_SPOOL_LOG_FORMAT_H_
