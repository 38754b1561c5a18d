// The scoring settings as text: parsing, errors, and the version label.
#include "hub/scoring/scoring_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stephub::scoring {
namespace {

using ::testing::HasSubstr;

TEST(ScoringConfigText, DefaultsHaveThePlainVersion) {
  EXPECT_EQ(ScoringOverrides(ScoringConfig{}), "");
  EXPECT_EQ(ScoringVersionOf(ScoringConfig{}), kScoringVersion);
  auto parsed = ParseScoringOverrides("");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(ScoringVersionOf(*parsed), kScoringVersion);
}

TEST(ScoringConfigText, OverridesRoundTripIntoTheLabel) {
  auto config = ParseScoringOverrides(
      " trunk_lean_threshold_deg = 12 , pelvic_compensation_threshold_deg=4,"
      "assess_knee_valgus_uncalibrated=true");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->pelvic_compensation_threshold_deg, 4);
  EXPECT_EQ(config->trunk_lean_threshold_deg, 12);
  EXPECT_TRUE(config->assess_knee_valgus_uncalibrated);
  // In the table's order, whatever order they were given in.
  const std::string overrides =
      "pelvic_compensation_threshold_deg=4,trunk_lean_threshold_deg=12,"
      "assess_knee_valgus_uncalibrated=true";
  EXPECT_EQ(ScoringOverrides(*config), overrides);
  EXPECT_EQ(ScoringVersionOf(*config),
            std::string(kScoringVersion) + "+" + overrides);
  auto again = ParseScoringOverrides(overrides);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ScoringVersionOf(*again), ScoringVersionOf(*config));
}

TEST(ScoringConfigText, BadSettingsNameWhatIsWrong) {
  EXPECT_THAT(ParseScoringOverrides("pelvic_threshold=4").status().message(),
              HasSubstr("unknown scoring setting \"pelvic_threshold\""));
  EXPECT_THAT(ParseScoringOverrides("pelvic_compensation_threshold_deg=four")
                  .status()
                  .message(),
              HasSubstr("\"four\" is not a number"));
  EXPECT_THAT(ParseScoringOverrides("pelvic_compensation_threshold_deg=90")
                  .status()
                  .message(),
              HasSubstr("outside [0.5, 45]"));
  EXPECT_THAT(ParseScoringOverrides("pelvic_compensation_threshold_deg")
                  .status()
                  .message(),
              HasSubstr("is not name=value"));
  EXPECT_THAT(ParseScoringOverrides("assess_knee_valgus_uncalibrated=maybe")
                  .status()
                  .message(),
              HasSubstr("is not true/false"));
  EXPECT_THAT(
      ParseScoringOverrides("knee_valgus_one_point_deg=20").status().message(),
      HasSubstr("must not be below"));
}

}  // namespace
}  // namespace stephub::scoring
