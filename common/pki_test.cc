// The clinic PKI: what each certificate says when read back, who signed it,
// its lifetime, and refusals of bad names.
#include "common/pki.h"

#include <sys/stat.h>

#include <filesystem>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stephub::pki {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 9, 0, 0),
                                        absl::UTCTimeZone());

const KeyAndCert& Ca() {
  static const KeyAndCert* ca =
      new KeyAndCert(*MakeCa("Physio Nord", CaValidity(kNow)));
  return *ca;
}

TEST(PkiTest, CaIsSelfSignedForTenYears) {
  auto info = ParseCert(Ca().cert_pem);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->is_ca);
  EXPECT_EQ(info->common_name, "Physio Nord StepHub CA");
  EXPECT_EQ(info->issuer_common_name, info->common_name);
  EXPECT_EQ(info->not_before, kNow - absl::Hours(1));
  EXPECT_EQ(info->not_after, kNow + absl::Hours(24 * 3653));
  EXPECT_TRUE(VerifyCert(Ca().cert_pem, Ca().cert_pem, kNow).ok());
  EXPECT_TRUE(CheckKeyMatches(Ca().key_pem, Ca().cert_pem).ok());
  EXPECT_FALSE(StationIdOf(*info).has_value());
}

TEST(PkiTest, HubCertificateNamesItsAddresses) {
  auto hub = MakeHubCert(Ca(), {"hub.clinic.lan", "127.0.0.1", "::1"},
                         HubValidity(kNow));
  ASSERT_TRUE(hub.ok()) << hub.status();
  auto info = ParseCert(hub->cert_pem);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->is_ca);
  EXPECT_EQ(info->common_name, "hub.clinic.lan");
  EXPECT_EQ(info->issuer_common_name, "Physio Nord StepHub CA");
  EXPECT_THAT(info->dns_names, ElementsAre("hub.clinic.lan"));
  EXPECT_THAT(info->ip_addresses, ElementsAre("127.0.0.1", "::1"));
  EXPECT_EQ(info->not_after - info->not_before,
            absl::Hours(24 * 731) + absl::Hours(1));
  EXPECT_TRUE(VerifyCert(hub->cert_pem, Ca().cert_pem, kNow).ok());
  EXPECT_TRUE(CheckKeyMatches(hub->key_pem, hub->cert_pem).ok());
  EXPECT_FALSE(CheckKeyMatches(Ca().key_pem, hub->cert_pem).ok());
}

TEST(PkiTest, StationCertificateCarriesItsId) {
  auto bay = MakeStationCert(Ca(), "bay-1", StationValidity(kNow));
  ASSERT_TRUE(bay.ok()) << bay.status();
  auto info = ParseCert(bay->cert_pem);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->common_name, "bay-1");
  EXPECT_THAT(info->uris, ElementsAre("stephub:station:bay-1"));
  EXPECT_EQ(StationIdOf(*info), "bay-1");
  EXPECT_EQ(info->not_before, kNow);
  EXPECT_EQ(info->serial_hex.size(), 32u);
  EXPECT_EQ(info->sha256_hex.size(), 64u);
  // Two certificates for one station are told apart.
  auto again = ParseCert(
      MakeStationCert(Ca(), "bay-1", StationValidity(kNow))->cert_pem);
  EXPECT_NE(again->serial_hex, info->serial_hex);
  EXPECT_NE(again->sha256_hex, info->sha256_hex);
}

TEST(PkiTest, VerificationRefusesForeignExpiredAndEarly) {
  auto foreign_ca = MakeCa("Elsewhere", CaValidity(kNow));
  ASSERT_TRUE(foreign_ca.ok());
  auto foreign = MakeStationCert(*foreign_ca, "bay-1", StationValidity(kNow));
  ASSERT_TRUE(foreign.ok());
  EXPECT_THAT(VerifyCert(foreign->cert_pem, Ca().cert_pem, kNow).message(),
              HasSubstr("unable to get local issuer"));

  auto expired = MakeStationCert(
      Ca(), "bay-1", {kNow - absl::Hours(48), kNow - absl::Hours(24)});
  ASSERT_TRUE(expired.ok());
  EXPECT_THAT(VerifyCert(expired->cert_pem, Ca().cert_pem, kNow).message(),
              HasSubstr("expired"));

  auto early = MakeStationCert(Ca(), "bay-1",
                               {kNow + absl::Hours(1), kNow + absl::Hours(2)});
  ASSERT_TRUE(early.ok());
  EXPECT_THAT(VerifyCert(early->cert_pem, Ca().cert_pem, kNow).message(),
              HasSubstr("not yet valid"));
}

TEST(PkiTest, BadNamesAndInputsAreRefused) {
  EXPECT_EQ(
      MakeStationCert(Ca(), "Bay 1", StationValidity(kNow)).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeStationCert(Ca(), "", StationValidity(kNow)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeHubCert(Ca(), {"hub,evil"}, HubValidity(kNow)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeHubCert(Ca(), {}, HubValidity(kNow)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeCa("", CaValidity(kNow)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeStationCert(Ca(), "bay-1", {kNow, kNow}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCert("not a certificate").status().code(),
            absl::StatusCode::kInvalidArgument);
  // A CA whose key is not its certificate's cannot sign.
  KeyAndCert mixed{MakeCa("Other", CaValidity(kNow))->key_pem, Ca().cert_pem};
  EXPECT_THAT(
      MakeStationCert(mixed, "bay-1", StationValidity(kNow)).status().message(),
      HasSubstr("does not belong"));
}

TEST(PkiTest, KeysAreWrittenForTheOwnerOnlyAndNeverReplacedSilently) {
  const std::string dir = ::testing::TempDir() + "/pki_test_write";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/bay-1.key";
  ASSERT_TRUE(WriteFile(path, "secret", 0600, false).ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(WriteFile(path, "other", 0600, false).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(*ReadFile(path), "secret");
  ASSERT_TRUE(WriteFile(path, "other", 0600, true).ok());
  EXPECT_EQ(*ReadFile(path), "other");
  EXPECT_EQ(ReadFile(dir + "/missing").status().code(),
            absl::StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stephub::pki
