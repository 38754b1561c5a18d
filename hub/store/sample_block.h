// Packs a run of one station's sample batches into one compressed block for
// keeping, and unpacks it byte for byte. Pure functions: no I/O.
//
// Raw protobuf batches hardly compress (zlib saves 7 % on one batch): the
// floats' low bytes are noise and each batch is too short for a dictionary.
// A block therefore regroups a minute of batches by sensor and channel:
// timestamps as differences of differences (constant rates cost nothing),
// each channel's floats XORed with the previous value and split into byte
// planes (sign, exponent and high mantissa bytes repeat), then zlib; the
// planes that are sensor noise (entropy near 8 bits a byte) skip zlib, which
// cannot shrink them, and carry a CRC-32 of their own.
// A batch that would not come back byte for byte from its fields (unknown
// fields from a newer station, unusual encoding) is kept verbatim instead.
#ifndef STEPHUB_HUB_STORE_SAMPLE_BLOCK_H_
#define STEPHUB_HUB_STORE_SAMPLE_BLOCK_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "hub/store/store.h"

namespace stephub::store {

// `batches` all come from one station (their station_id is not stored).
absl::StatusOr<std::string> EncodeSampleBlock(
    absl::Span<const BatchRecord> batches);

// The batches exactly as given to EncodeSampleBlock, with `station_id`.
// A damaged block is a DataLossError, never a crash.
absl::StatusOr<std::vector<BatchRecord>> DecodeSampleBlock(
    absl::string_view station_id, absl::string_view block);

}  // namespace stephub::store

#endif  // STEPHUB_HUB_STORE_SAMPLE_BLOCK_H_
