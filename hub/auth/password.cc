// scrypt password hashes on OpenSSL's libcrypto; see password.h.
#include "hub/auth/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace stephub::auth {
namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
constexpr size_t kMinPasswordChars = 10;
constexpr size_t kMaxPasswordBytes = 256;
// Bounds on what a stored hash may ask for, so that a corrupt or hostile
// row cannot make a sign-in allocate gigabytes.
constexpr uint64_t kMaxScryptMemoryBytes = uint64_t{256} << 20;

bool Scrypt(absl::string_view password, const std::string& salt,
            const ScryptCost& cost, unsigned char* out, size_t out_len) {
  return EVP_PBE_scrypt(password.data(), password.size(),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        salt.size(), cost.n, cost.r, cost.p,
                        kMaxScryptMemoryBytes, out, out_len) == 1;
}

// Characters, not bytes, for the minimum: "ÄÖÜ" is three. (Protobuf has
// already refused strings that are not UTF-8.)
size_t Utf8Chars(absl::string_view s) {
  size_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
  return chars;
}

}  // namespace

absl::Status CheckPasswordRules(absl::string_view password) {
  if (password.size() > kMaxPasswordBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a password may be at most ", kMaxPasswordBytes, " bytes long"));
  }
  if (Utf8Chars(password) < kMinPasswordChars) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a password must have at least ", kMinPasswordChars, " characters"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> HashPassword(absl::string_view password,
                                         const ScryptCost& cost) {
  std::string salt(kSaltBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()),
                 static_cast<int>(salt.size())) != 1) {
    return absl::InternalError("no random bytes for a password salt");
  }
  unsigned char hash[kHashBytes];
  if (!Scrypt(password, salt, cost, hash, sizeof hash)) {
    return absl::InternalError("scrypt failed (cost too high?)");
  }
  return absl::StrCat("scrypt$", cost.n, "$", cost.r, "$", cost.p, "$",
                      absl::Base64Escape(salt), "$",
                      absl::Base64Escape(absl::string_view(
                          reinterpret_cast<const char*>(hash), sizeof hash)));
}

bool VerifyPassword(absl::string_view password, absl::string_view encoded) {
  if (password.size() > kMaxPasswordBytes) return false;
  const std::vector<absl::string_view> parts = absl::StrSplit(encoded, '$');
  ScryptCost cost;
  std::string salt, expected;
  if (parts.size() != 6 || parts[0] != "scrypt" ||
      !absl::SimpleAtoi(parts[1], &cost.n) ||
      !absl::SimpleAtoi(parts[2], &cost.r) ||
      !absl::SimpleAtoi(parts[3], &cost.p) ||
      !absl::Base64Unescape(parts[4], &salt) ||
      !absl::Base64Unescape(parts[5], &expected) || expected.empty() ||
      expected.size() > 64) {
    return false;
  }
  unsigned char actual[64];
  if (!Scrypt(password, salt, cost, actual, expected.size())) return false;
  return CRYPTO_memcmp(actual, expected.data(), expected.size()) == 0;
}

}  // namespace stephub::auth
