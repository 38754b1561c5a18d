// The simulated validation corpus: one set's simulation parameters, the
// deterministic variation over a corpus of sets, and their folder names.
// Shared by stephub-simulate and the CI accuracy test so that both generate
// exactly the same recordings.
#ifndef STEPHUB_TOOLS_VALIDATE_CORPUS_H_
#define STEPHUB_TOOLS_VALIDATE_CORPUS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/recording.h"
#include "common/samples.h"
#include "common/simulator.h"

namespace stephub::validate {

// Changes to a named profile; nullopt keeps the profile's value.
struct SimulationOverrides {
  std::optional<double> noise_scale;      // x accel and gyro white noise
  std::optional<double> gyro_bias_radps;  // initial bias (max per axis)
  std::optional<double> gyro_bias_walk_radps_per_s;  // bias drift
  std::optional<double> mount_tilt_max_deg;          // 0-15
  std::optional<double> mount_heading_max_deg;       // 0-5
  std::optional<double> tempo_scale;       // x every phase duration; > 1 slower
  std::optional<double> knee_flexion_deg;  // mean depth at the deepest point
  std::optional<int> repetitions;
  // A wrist IMU, and the share of reps in which the arms are used for
  // balance (0-1; without it the profile's own).
  std::optional<bool> wrist_imu;
  std::optional<double> arms_use_probability;
};

struct SimulationSet {
  std::string profile = "level";
  uint64_t seed = 1;
  StanceSide side = StanceSide::kLeft;
  SimulationOverrides overrides;
  int index = -1;  // position in a corpus; -1 for a single recording
};

// The named profile with the set's side and overrides applied; an unknown
// profile or an override out of range is an error naming it.
absl::StatusOr<PatientProfile> ProfileForSet(const SimulationSet& set);

// Folder name from the parameters, e.g.
// "007-trendelenburg-right-seed123-noise1.8-...-reps10".
std::string SetFolderName(const SimulationSet& set);
// meta.json's `source`: every parameter in words.
std::string SetSource(const SimulationSet& set);

// How far a corpus may stray; the defaults are the recording format's
// mounting limits.
struct CorpusOptions {
  double mount_tilt_max_deg = 15;
  double mount_heading_max_deg = 5;
};

// `sets` sets varied over every profile, both sides, noise, gyro bias and
// drift, tempo, depth and repetitions, deterministically from `seed` (same
// arguments, same corpus, on any platform). About half the sets have a
// wrist IMU, with 0-80% of reps using the arms; the rest are the very sets
// a corpus had before the wrist was modelled.
std::vector<SimulationSet> MakeCorpus(int sets, uint64_t seed,
                                      const CorpusOptions& options = {});

// The set's recording, with its source in meta.json.
absl::StatusOr<Recording> SimulateSet(const SimulationSet& set);
// Simulates the set and writes it to `dir`.
absl::Status WriteSet(const SimulationSet& set, const std::string& dir);

}  // namespace stephub::validate

#endif  // STEPHUB_TOOLS_VALIDATE_CORPUS_H_
