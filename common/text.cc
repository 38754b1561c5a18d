// Checks for text from outside; see text.h.
#include "common/text.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace stephub {

absl::Status CheckText(const std::string& value, const char* field,
                       size_t min_len, size_t max_len) {
  if (value.size() < min_len || value.size() > max_len) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s must be %d to %d characters (got %d)", field,
                        min_len, max_len, value.size()));
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " must not contain control characters"));
    }
  }
  return absl::OkStatus();
}

}  // namespace stephub
