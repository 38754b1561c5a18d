// Plain sensor-sample types shared by station and hub (no protobuf, no I/O).
#ifndef STEPHUB_COMMON_SAMPLES_H_
#define STEPHUB_COMMON_SAMPLES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stephub {

// The leg on the step. The free leg (and the side a Trendelenburg pelvis
// drops toward) is the other one.
enum class StanceSide { kLeft, kRight };

// Where an IMU is strapped (see RECORDING_FORMAT.md for the mounting frame).
enum class Placement { kSacrum, kSternum, kThigh, kShank, kWrist };

absl::string_view StanceSideName(StanceSide side);  // "left" / "right"
// The free leg's side along the world x axis (+x = the patient's right):
// +1 when standing on the left leg, -1 on the right.
inline double FreeSideX(StanceSide side) {
  return side == StanceSide::kLeft ? 1.0 : -1.0;
}
absl::StatusOr<StanceSide> ParseStanceSide(absl::string_view name);
absl::string_view PlacementName(Placement placement);  // "sacrum", ...
absl::StatusOr<Placement> ParsePlacement(absl::string_view name);

// Timestamps are integer microseconds on one clock per recording or station,
// as in the recording format; high-rate sample arrays keep them as int64
// rather than absl::Time so that they pack and compare cheaply.
struct ImuSample {
  int64_t t_us = 0;
  double ax_mps2 = 0, ay_mps2 = 0, az_mps2 = 0;  // specific force, sensor frame
  double gx_radps = 0, gy_radps = 0,
         gz_radps = 0;  // angular rate, sensor frame
};

struct ForceSample {
  int64_t t_us = 0;
  double fz_n = 0;
  // Centre of pressure; meaningless (NaN) when fz_n < 20 N.
  double cop_x_mm = 0;  // mediolateral, positive toward the patient's right
  double cop_y_mm = 0;  // anteroposterior, positive forward
};

}  // namespace stephub

#endif  // STEPHUB_COMMON_SAMPLES_H_
