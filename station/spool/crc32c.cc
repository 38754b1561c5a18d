// CRC-32C through Boost.CRC's table-driven implementation (header-only).
#include "station/spool/crc32c.h"

#include <boost/crc.hpp>

namespace stephub::station::crc32c {
namespace {

// Castagnoli polynomial, reflected in and out, as in iSCSI and ext4.
using Crc32c =
    boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

}  // namespace

uint32_t Value(absl::string_view data) {
  Crc32c crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

uint32_t Value(char prefix, absl::string_view data) {
  Crc32c crc;
  crc.process_byte(static_cast<unsigned char>(prefix));
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

}  // namespace stephub::station::crc32c
