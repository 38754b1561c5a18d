// Names of the shared enums as they appear in files and on the wire.
#include "common/samples.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace stephub {

absl::string_view StanceSideName(StanceSide side) {
  switch (side) {
    case StanceSide::kLeft:
      return "left";
    case StanceSide::kRight:
      return "right";
  }
  return "unknown";
}

absl::StatusOr<StanceSide> ParseStanceSide(absl::string_view name) {
  for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
    if (name == StanceSideName(side)) return side;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("stance side must be 'left' or 'right', not '", name, "'"));
}

absl::string_view PlacementName(Placement placement) {
  switch (placement) {
    case Placement::kSacrum:
      return "sacrum";
    case Placement::kSternum:
      return "sternum";
    case Placement::kThigh:
      return "thigh";
    case Placement::kShank:
      return "shank";
    case Placement::kWrist:
      return "wrist";
  }
  return "unknown";
}

absl::StatusOr<Placement> ParsePlacement(absl::string_view name) {
  for (Placement p :
       {Placement::kSacrum, Placement::kSternum, Placement::kThigh,
        Placement::kShank, Placement::kWrist}) {
    if (name == PlacementName(p)) return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown IMU placement '", name,
                   "' (sacrum, sternum, thigh, shank or wrist)"));
}

}  // namespace stephub
