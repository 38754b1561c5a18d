// CRC-32C (Castagnoli) for the spool's record checksums, and the masking
// that keeps a CRC over data which itself contains CRCs strong.
#ifndef STEPHUB_STATION_SPOOL_CRC32C_H_
#define STEPHUB_STATION_SPOOL_CRC32C_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace stephub::station::crc32c {

// CRC-32C of data; Value("123456789") == 0xE3069283.
uint32_t Value(absl::string_view data);

// CRC-32C of prefix followed by data, without concatenating them.
uint32_t Value(char prefix, absl::string_view data);

// A CRC computed over bytes that include an embedded CRC is weak; storing
// the CRC rotated and offset avoids that.
inline uint32_t Mask(uint32_t crc) {
  constexpr uint32_t kMaskDelta = 0xa282ead8u;
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}

inline uint32_t Unmask(uint32_t masked) {
  constexpr uint32_t kMaskDelta = 0xa282ead8u;
  const uint32_t rotated = masked - kMaskDelta;
  return (rotated >> 17) | (rotated << 15);
}

}  // namespace stephub::station::crc32c

#endif  // STEPHUB_STATION_SPOOL_CRC32C_H_
