// Little-endian fixed-width integers for the spool's on-disk formats,
// independent of the host's byte order.
#ifndef STEPHUB_STATION_SPOOL_CODING_H_
#define STEPHUB_STATION_SPOOL_CODING_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace stephub::station::coding {

inline void PutFixed(std::string* out, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) {
    out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

inline void PutFixed32(std::string* out, uint32_t value) {
  PutFixed(out, value, 4);
}
inline void PutFixed64(std::string* out, uint64_t value) {
  PutFixed(out, value, 8);
}

// data must hold at least `bytes` bytes.
inline uint64_t GetFixed(absl::string_view data, size_t bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; ++i) {
    value |= uint64_t{static_cast<unsigned char>(data[i])} << (8 * i);
  }
  return value;
}

inline uint32_t GetFixed32(absl::string_view data) {
  return static_cast<uint32_t>(GetFixed(data, 4));
}
inline uint64_t GetFixed64(absl::string_view data) { return GetFixed(data, 8); }

}  // namespace stephub::station::coding

#endif  // STEPHUB_STATION_SPOOL_CODING_H_
