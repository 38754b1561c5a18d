// Scoring configuration as text; see scoring_config.h.
#include "hub/scoring/scoring_config.h"

#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace stephub::scoring {
namespace {

// Every setting, once: parsing, the label and the ranges come from here.
struct Setting {
  const char* name;
  double ScoringConfig::*number = nullptr;
  bool ScoringConfig::*flag = nullptr;
  double min = 0;
  double max = std::numeric_limits<double>::infinity();
};

const std::vector<Setting>& Settings() {
  static const auto* settings = new std::vector<Setting>{
      {"pelvic_compensation_threshold_deg",
       &ScoringConfig::pelvic_compensation_threshold_deg, nullptr, 0.5, 45},
      {"trunk_lean_threshold_deg", &ScoringConfig::trunk_lean_threshold_deg,
       nullptr, 0.5, 45},
      {"assess_knee_valgus_uncalibrated", nullptr,
       &ScoringConfig::assess_knee_valgus_uncalibrated},
      {"standing_leg_inclination_deg",
       &ScoringConfig::standing_leg_inclination_deg, nullptr, 0, 20},
      {"knee_valgus_one_point_deg", &ScoringConfig::knee_valgus_one_point_deg,
       nullptr, 0.5, 45},
      {"knee_valgus_two_points_deg", &ScoringConfig::knee_valgus_two_points_deg,
       nullptr, 0.5, 60},
      {"free_foot_load_threshold", &ScoringConfig::free_foot_load_threshold,
       nullptr, 0.01, 0.9},
      {"cop_ml_range_threshold_mm", &ScoringConfig::cop_ml_range_threshold_mm,
       nullptr, 1, 500},
      {"arm_elevation_threshold_deg",
       &ScoringConfig::arm_elevation_threshold_deg, nullptr, 1, 90},
      {"standing_knee_flexion_deg", &ScoringConfig::standing_knee_flexion_deg,
       nullptr, 0, 30},
      {"accel_full_scale_mps2", &ScoringConfig::accel_full_scale_mps2, nullptr,
       10, 2000},
      {"gyro_full_scale_radps", &ScoringConfig::gyro_full_scale_radps, nullptr,
       1, 200},
  };
  return *settings;
}

}  // namespace

absl::StatusOr<ScoringConfig> ParseScoringOverrides(const std::string& text) {
  ScoringConfig config;
  for (absl::string_view item :
       absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    const std::vector<absl::string_view> kv = absl::StrSplit(item, '=');
    if (kv.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("scoring setting \"", item, "\" is not name=value"));
    }
    const absl::string_view name = absl::StripAsciiWhitespace(kv[0]);
    const absl::string_view value = absl::StripAsciiWhitespace(kv[1]);
    const Setting* setting = nullptr;
    for (const Setting& s : Settings()) {
      if (name == s.name) setting = &s;
    }
    if (setting == nullptr) {
      std::vector<std::string> names;
      for (const Setting& s : Settings()) names.push_back(s.name);
      return absl::InvalidArgumentError(
          absl::StrCat("unknown scoring setting \"", name,
                       "\"; known: ", absl::StrJoin(names, ", ")));
    }
    if (setting->flag != nullptr) {
      bool on = false;
      if (!absl::SimpleAtob(value, &on)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "scoring setting ", name, ": \"", value, "\" is not true/false"));
      }
      config.*setting->flag = on;
      continue;
    }
    double number = 0;
    if (!absl::SimpleAtod(value, &number) || !std::isfinite(number)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "scoring setting ", name, ": \"", value, "\" is not a number"));
    }
    if (number < setting->min || number > setting->max) {
      return absl::InvalidArgumentError(
          absl::StrCat("scoring setting ", name, " = ", number, " is outside [",
                       setting->min, ", ", setting->max, "]"));
    }
    config.*setting->number = number;
  }
  if (config.knee_valgus_two_points_deg < config.knee_valgus_one_point_deg) {
    return absl::InvalidArgumentError(
        "scoring settings: knee_valgus_two_points_deg must not be below "
        "knee_valgus_one_point_deg");
  }
  return config;
}

std::string ScoringOverrides(const ScoringConfig& config) {
  const ScoringConfig defaults;
  std::vector<std::string> parts;
  for (const Setting& s : Settings()) {
    if (s.flag != nullptr) {
      if (config.*s.flag != defaults.*s.flag) {
        parts.push_back(
            absl::StrCat(s.name, "=", config.*s.flag ? "true" : "false"));
      }
    } else if (config.*s.number != defaults.*s.number) {
      parts.push_back(absl::StrCat(s.name, "=", config.*s.number));
    }
  }
  return absl::StrJoin(parts, ",");
}

std::string ScoringVersionOf(const ScoringConfig& config) {
  const std::string overrides = ScoringOverrides(config);
  if (overrides.empty()) return kScoringVersion;
  return absl::StrCat(kScoringVersion, "+", overrides);
}

}  // namespace stephub::scoring
