// Biomechanical simulator of lateral step-downs: a kinematic model of the
// stance leg (shank, thigh), pelvis, trunk and one arm from which it derives
// what four IMUs (sacrum, sternum, thigh, shank), an optional wrist IMU and a
// force plate under the stance foot would read, plus per-repetition truth.
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

// Angles follow truth.csv (RECORDING_FORMAT.md). Per-rep quantities are drawn
// independently for every repetition from a normal distribution (mean, sd).
struct PatientProfile {
  std::string name;
  StanceSide stance_side = StanceSide::kLeft;
  double body_mass_kg = 70;
  double body_height_m = 1.75;  // scales the segment lengths
  int repetitions = 10;
  double pelvic_drop_mean_deg = 1.0;  // per-rep peak drop (+ = free side lower)
  double pelvic_drop_sd_deg = 0.5;
  double pelvic_forward_tilt_deg = 12;  // anterior tilt at the deepest point
  // How far the pelvis (at the sacrum) sinks in a rep of mean knee flexion.
  // The knee's flexion fixes how high the hip can be, so this sets how far
  // the hips sit back behind the ankle (at most 15 cm; where the two cannot
  // go together, the knee flexion wins). Each rep's own knee flexion then
  // sets that rep's lowering. The named profiles keep the two consistent.
  double com_lowering_m = 0.12;
  // Trunk lean at the deepest point: the elevation of the trunk's
  // mediolateral axis relative to standing, + = the free-leg side lower
  // (the trunk leans toward the free leg, as a dropping pelvis would carry
  // it); a lean over the stance leg, the usual compensation, is negative.
  double trunk_lean_mean_deg = 0;
  double trunk_lean_sd_deg = 1.0;
  // Frontal-plane thigh-shank angle at the deepest point, relative to
  // standing; + = the knee moves medially (valgus).
  double knee_valgus_mean_deg = 2;
  double knee_valgus_sd_deg = 1.5;
  // Knee flexion at the deepest point (0 = straight leg).
  double knee_flexion_mean_deg = 66;
  double knee_flexion_sd_deg = 3;
  double standing_knee_flexion_deg = 5;  // the knee is never fully locked
  double lower_s = 1.2;                  // lowering phase duration
  double hold_s = 0.2;   // pause at the bottom (varies by 20% either way)
  double rise_s = 1.2;   // rising phase duration
  double pause_s = 0.8;  // standing between repetitions
  // Per-rep tempo: lower_s, rise_s and pause_s each vary uniformly by this
  // fraction either way.
  double tempo_variation = 0.1;
  double standing_lead_s = 2.0;  // quiet standing before the first rep
  double standing_tail_s = 1.5;  // quiet standing after the last rep
  // The prompted heading-calibration movement after the standing lead-in:
  // free foot down beside the stance foot, both knees bend once to
  // calibration_knee_flexion_deg and straighten (each way over
  // calibration_lower_s), free foot up, then calibration_settle_s of
  // standing before the first rep. The scorer finds each IMU's heading on
  // its segment from it.
  bool calibration_movement = true;
  double calibration_knee_flexion_deg = 40;
  double calibration_lower_s = 1.5;
  double calibration_settle_s = 1.5;
  // Sideways COP sway of the stance foot's balance corrections (amplitude,
  // mm; anteroposterior sway is 1.5 times this). It grows at depth.
  double cop_sway_mm = 2;
  // Chance per rep that the free foot touches the floor near the deepest
  // point (for 0.2-0.5 s), and the fraction of body weight it then takes off
  // the plate.
  double touchdown_probability = 0;
  double touchdown_weight_fraction = 0.2;
  // A wrist IMU on the free-leg side's forearm, just above the wrist
  // (imu_wrist.csv, with truth_arms.csv). Off by default, so that the named
  // profiles' recordings stay the four IMUs and the plate.
  bool wrist_imu = false;
  // Chance per rep that the patient uses the arms for balance: the arm
  // lifts away from the side by arm_use_min_deg..arm_use_max_deg (uniform,
  // mostly sideways) with the lowering and comes back with the rising.
  // Otherwise it hangs at the side and moves by at most
  // relaxed_arm_max_deg with the lowering. Either way it hangs plumb while
  // standing, whatever the trunk does, with a quiet sway of some 0.3 deg.
  double arms_use_probability = 0;
  double arm_use_min_deg = 25;
  double arm_use_max_deg = 60;
  double relaxed_arm_max_deg = 5;
  // Sensor realism, for every IMU independently.
  double accel_noise_mps2 = 0.03;  // white noise, 1 sigma
  double gyro_noise_radps = 0.003;
  double gyro_bias_radps = 0.01;  // initial bias magnitude per axis (max)
  double gyro_bias_walk_radps_per_s = 0.0005;  // random-walk drift
  double mount_tilt_max_deg = 5;               // sensor tilt on the segment
  double mount_heading_max_deg = 1;            // sensor heading on the segment
  double force_noise_n = 2;  // the plate's load cells, white noise, 1 sigma
  double imu_rate_hz = 200;
  double force_rate_hz = 1000;
};

// Named profiles. The pelvic reference profiles, which the hub's scoring is
// validated against: "level" (pelvis stays level), "moderate" (about 5-6 deg
// drop), "trendelenburg" (marked drop, about 10-12 deg). Profiles for the
// other faults: "valgus" (knee collapses medially, pelvis fairly level),
// "touchdown" (the free foot often takes weight), "fast" (quick shallow
// reps), "hike" (the free side hikes instead of dropping), "lean" (trunk
// leans over the stance leg). Errors list every name. The unsteady ones use
// the arms now and then (moderate, touchdown) or often (trendelenburg);
// that is seen only with wrist_imu.
absl::StatusOr<PatientProfile> ProfileByName(absl::string_view name);
// The pelvic reference profiles: level, moderate, trendelenburg (the hub's
// scoring tests iterate over exactly these).
std::vector<std::string> ProfileNames();
// Every named profile: the reference ones first, then the others.
std::vector<std::string> AllProfileNames();

// Samples produced by one GenerateUntil call.
struct SimulatedSamples {
  std::vector<ImuSample> sacrum;
  std::vector<ImuSample> sternum;
  std::vector<ImuSample> thigh;  // stance leg, lateral thigh
  std::vector<ImuSample> shank;  // stance leg
  std::vector<ImuSample> wrist;  // free-leg side; only with wrist_imu
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
  // Truth for every repetition scheduled so far (RECORDING_FORMAT.md columns,
  // and with wrist_imu our arms_used and peak_arm_elevation_deg).
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

// A complete recording of one set (standing lead-in, reps, tail) with all
// four IMUs (and the wrist's, with wrist_imu) and truth, starting at t_us =
// 0. Uses StepDownSimulator.
Recording SimulateRecording(const PatientProfile& profile, uint64_t seed);

}  // namespace stephub

#endif  // STEPHUB_COMMON_SIMULATOR_H_
