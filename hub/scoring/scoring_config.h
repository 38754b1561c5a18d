// The scoring configuration as text: the hub's --scoring overrides, and the
// version label stored with every result, so that results scored with other
// thresholds are kept apart and can be compared.
#ifndef STEPHUB_HUB_SCORING_SCORING_CONFIG_H_
#define STEPHUB_HUB_SCORING_SCORING_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "hub/scoring/scoring.h"

namespace stephub::scoring {

// "name=value,name=value" over the defaults, e.g.
// "pelvic_compensation_threshold_deg=4,trunk_lean_threshold_deg=12". An
// unknown name, a value that is not a number (or true/false for a switch),
// or one out of its range is an error that names it.
absl::StatusOr<ScoringConfig> ParseScoringOverrides(const std::string& text);

// What differs from the defaults, in the same form ("" if nothing).
std::string ScoringOverrides(const ScoringConfig& config);

// kScoringVersion, followed by "+" and the overrides when there are any:
// two results with the same label were computed the same way.
std::string ScoringVersionOf(const ScoringConfig& config);

}  // namespace stephub::scoring

#endif  // STEPHUB_HUB_SCORING_SCORING_CONFIG_H_
