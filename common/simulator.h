// Biomechanical simulator of lateral step-downs: a kinematic model of the
// pelvis (and body centre of mass) from which it derives what a sacral IMU and
// a force plate under the stance foot would read, plus per-repetition truth.
#ifndef STEPHUB_COMMON_SIMULATOR_H_
#define STEPHUB_COMMON_SIMULATOR_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/recording.h"
#include "common/samples.h"

namespace stephub {

struct PatientProfile {
  std::string name;
  StanceSide stance_side = StanceSide::kLeft;
  double body_mass_kg = 70;
  int repetitions = 10;
  double pelvic_drop_mean_deg = 1.0;  // per-rep peak drop (+ = free side lower)
  double pelvic_drop_sd_deg = 0.5;
  double pelvic_forward_tilt_deg = 12;  // anterior tilt at the deepest point
  double com_lowering_m = 0.12;         // how far the pelvis sinks per rep
  double lower_s = 1.2;                 // lowering phase duration
  double hold_s = 0.2;                  // pause at the bottom
  double rise_s = 1.2;                  // rising phase duration
  double pause_s = 0.8;                 // standing between repetitions
  double standing_lead_s = 2.0;         // quiet standing before the first rep
  double standing_tail_s = 1.5;         // quiet standing after the last rep
  // Sensor realism.
  double accel_noise_mps2 = 0.03;  // white noise, 1 sigma
  double gyro_noise_radps = 0.003;
  double gyro_bias_radps = 0.01;  // initial bias magnitude per axis (max)
  double gyro_bias_walk_radps_per_s = 0.0005;  // random-walk drift
  double mount_tilt_max_deg = 5;               // sensor tilt on the segment
  double mount_heading_max_deg = 1;            // sensor heading on the segment
  double imu_rate_hz = 200;
  double force_rate_hz = 1000;
};

// Named profiles: "level" (pelvis stays level), "moderate" (about 5-6 deg
// drop), "trendelenburg" (marked drop, about 10-12 deg). Errors list the names.
absl::StatusOr<PatientProfile> ProfileByName(absl::string_view name);
std::vector<std::string> ProfileNames();

// Samples produced by one GenerateUntil call.
struct SimulatedSamples {
  std::vector<ImuSample> sacrum;
  std::vector<ForceSample> force;
};

// Streams a simulated patient at a station: quiet standing until BeginSet,
// then the profile's set of repetitions, then quiet standing again.
// Deterministic for a given profile, seed and call sequence.
class StepDownSimulator {
 public:
  StepDownSimulator(PatientProfile profile, uint64_t seed, int64_t start_us);

  // The set starts at t_us: standing_lead_s of standing, then the reps.
  void BeginSet(int64_t t_us);
  // True once every rep of the set and the standing tail are generated.
  bool set_finished() const;
  // Appends every sample with last_generated < t <= t_us to `out`.
  void GenerateUntil(int64_t t_us, SimulatedSamples* out);
  // Truth for every repetition scheduled so far (RECORDING_FORMAT.md columns).
  // cop_ml_range_mm is filled in once the rep's force samples are generated.
  const std::vector<TruthRepetition>& truth() const;
  const PatientProfile& profile() const;

  StepDownSimulator(const StepDownSimulator&) = delete;
  StepDownSimulator& operator=(const StepDownSimulator&) = delete;
  ~StepDownSimulator();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A complete recording of one set (standing lead-in, reps, tail) with truth,
// starting at t_us = 0. Uses StepDownSimulator.
Recording SimulateRecording(const PatientProfile& profile, uint64_t seed);

}  // namespace stephub

#endif  // STEPHUB_COMMON_SIMULATOR_H_
