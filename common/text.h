// Checks for text that arrives from outside (a person's typing, a
// station's hello): bounded length, no control characters.
#ifndef STEPHUB_COMMON_TEXT_H_
#define STEPHUB_COMMON_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"

namespace stephub {

// INVALID_ARGUMENT naming `field` unless `value` is min_len to max_len
// bytes without control characters. UTF-8 itself is protobuf's to enforce
// on proto3 strings; control characters would garble reports, logs and
// the dashboard.
absl::Status CheckText(const std::string& value, const char* field,
                       size_t min_len, size_t max_len);

}  // namespace stephub

#endif  // STEPHUB_COMMON_TEXT_H_
