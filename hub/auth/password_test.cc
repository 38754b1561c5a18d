// Password hashing: round trip, salts, refusal of tampered or hostile hashes.
#include "hub/auth/password.h"

#include <gtest/gtest.h>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace stephub::auth {
namespace {

// Cheap enough for tests; the hub uses the default.
constexpr ScryptCost kTestCost{uint64_t{1} << 10, 8, 1};

TEST(PasswordTest, VerifiesTheRightPasswordOnly) {
  auto hash = HashPassword("correct horse battery", kTestCost);
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_TRUE(VerifyPassword("correct horse battery", *hash));
  EXPECT_FALSE(VerifyPassword("correct horse batterz", *hash));
  EXPECT_FALSE(VerifyPassword("", *hash));
}

TEST(PasswordTest, SaltsEveryHash) {
  auto a = HashPassword("correct horse battery", kTestCost);
  auto b = HashPassword("correct horse battery", kTestCost);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(VerifyPassword("correct horse battery", *b));
}

TEST(PasswordTest, NamesItsParameters) {
  auto hash = HashPassword("correct horse battery", kTestCost);
  ASSERT_TRUE(hash.ok());
  std::vector<std::string> parts = absl::StrSplit(*hash, '$');
  ASSERT_EQ(parts.size(), 6u);
  EXPECT_EQ(parts[0], "scrypt");
  EXPECT_EQ(parts[1], "1024");
  EXPECT_EQ(parts[2], "8");
  EXPECT_EQ(parts[3], "1");
}

TEST(PasswordTest, DefaultCostIsMemoryHard) {
  const ScryptCost cost;
  // scrypt uses 128 * N * r bytes.
  EXPECT_GE(128 * cost.n * cost.r, uint64_t{32} << 20);
}

TEST(PasswordTest, RefusesTamperedAndHostileHashes) {
  auto hash = HashPassword("correct horse battery", kTestCost);
  ASSERT_TRUE(hash.ok());
  std::string flipped = *hash;
  flipped[flipped.size() - 3] = flipped[flipped.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(VerifyPassword("correct horse battery", flipped));
  EXPECT_FALSE(VerifyPassword("correct horse battery", ""));
  EXPECT_FALSE(VerifyPassword("correct horse battery", "plain text"));
  EXPECT_FALSE(VerifyPassword("x", "scrypt$1024$8$1$!!$!!"));
  // A row asking for 1 TiB of memory is refused, not attempted.
  std::vector<std::string> parts = absl::StrSplit(*hash, '$');
  parts[1] = std::to_string(uint64_t{1} << 33);
  EXPECT_FALSE(
      VerifyPassword("correct horse battery", absl::StrJoin(parts, "$")));
}

TEST(PasswordTest, Rules) {
  EXPECT_TRUE(CheckPasswordRules("0123456789").ok());
  EXPECT_EQ(CheckPasswordRules("012345678").code(),
            absl::StatusCode::kInvalidArgument);
  // Ten characters, twenty bytes.
  EXPECT_TRUE(CheckPasswordRules("ÄÖÜäöüßÉÈÊ").ok());
  EXPECT_EQ(CheckPasswordRules("ÄÖÜäöüßÉÈ").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckPasswordRules(std::string(257, 'a')).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace stephub::auth
