// Staff passwords: kept only as a salted scrypt hash (memory-hard, so that
// a stolen database or backup is slow to attack with GPUs), in one string
// that names its parameters so that they can be raised later.
#ifndef STEPHUB_HUB_AUTH_PASSWORD_H_
#define STEPHUB_HUB_AUTH_PASSWORD_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stephub::auth {

struct ScryptCost {
  uint64_t n = uint64_t{1} << 15;  // 32 MiB with r = 8: ~0.1 s per guess
  uint64_t r = 8;
  uint64_t p = 1;
};

// INVALID_ARGUMENT when the password is too short or too long.
absl::Status CheckPasswordRules(absl::string_view password);

// "scrypt$N$r$p$<salt base64>$<hash base64>" with a fresh random salt.
absl::StatusOr<std::string> HashPassword(absl::string_view password,
                                         const ScryptCost& cost = {});

// False for a wrong password and for a hash it cannot read. Compares in
// constant time.
bool VerifyPassword(absl::string_view password, absl::string_view encoded);

}  // namespace stephub::auth

#endif  // STEPHUB_HUB_AUTH_PASSWORD_H_
