// Reader and writer for the StepHub recording format
// (shared/RECORDING_FORMAT.md).
#ifndef STEPHUB_COMMON_RECORDING_H_
#define STEPHUB_COMMON_RECORDING_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/samples.h"

namespace stephub {

inline constexpr char kRecordingFormat[] = "stephub-recording/1";

struct RecordingMeta {
  StanceSide stance_side = StanceSide::kLeft;
  std::string exercise = "lateral_step_down";
  std::optional<double> body_mass_kg;
  std::optional<double> step_height_cm;
  std::string load;
  std::string source;
  // Our extension (meta.json key "calibration_movement", absent = false):
  // the set begins with the prompted heading-calibration movement (after the
  // standing baseline, one slow two-leg knee bend with the free foot down).
  bool calibration_movement = false;
};

// One line of truth.csv; a column the source did not measure is nullopt.
struct TruthRepetition {
  int rep = 0;
  int64_t start_us = 0;
  int64_t end_us = 0;
  std::optional<double> peak_pelvic_drop_deg;
  std::optional<double> peak_trunk_lean_deg;
  std::optional<double> knee_flexion_deg;
  std::optional<double> knee_valgus_deg;
  std::optional<double> cop_ml_range_mm;
  // Our extension, from truth_arms.csv (`rep,arms_used,
  // peak_arm_elevation_deg`, one line per rep of truth.csv; absent = not
  // known): whether the patient used the arms for balance (0/1), and the
  // largest angle of the wrist IMU's forearm from where it hung at
  // standing, deg. truth.csv's columns are fixed by the format.
  std::optional<bool> arms_used;
  std::optional<double> peak_arm_elevation_deg;
};

struct Recording {
  RecordingMeta meta;
  std::vector<ForceSample> force;                   // empty: no force.csv
  std::map<Placement, std::vector<ImuSample>> imu;  // one entry per imu_*.csv
  std::vector<TruthRepetition> truth;               // empty: no truth.csv
};

// The recording as a station with only these sensors would have made it:
// the IMUs at `imus`, and the force plate if `force_plate`.
Recording WithOnlySensors(Recording recording,
                          const std::vector<Placement>& imus, bool force_plate);

// Reads a recording folder. Errors name the file, and for CSV content the
// line and column, e.g. "imu_sacrum.csv:17:3: 'ay_mps2' is not a number".
absl::StatusOr<Recording> ReadRecording(const std::string& dir);

// The same from the folder's files already read, by file name ("meta.json",
// "imu_sacrum.csv", ...); `dir` only names them in errors. ReadRecording
// reads through it; so does the recording fuzz target, without a disk.
absl::StatusOr<Recording> ParseRecording(
    const std::map<std::string, std::string>& files, const std::string& dir);

// Writes a recording folder (created if missing), in the documented format.
absl::Status WriteRecording(const std::string& dir, const Recording& recording);

}  // namespace stephub

#endif  // STEPHUB_COMMON_RECORDING_H_
