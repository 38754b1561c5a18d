// The simulated validation corpus (see validate_corpus.h).
#include "tools/validate_corpus.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace stephub::validate {
namespace {

// SplitMix64: a fixed, documented generator, so that a corpus seed gives the
// same corpus with any standard library (std::uniform_*_distribution does
// not promise that).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double Uniform(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(Next() >> 11) * 0x1.0p-53;
  }

 private:
  uint64_t state_;
};

// Rounded so that the folder name states the exact value used.
double RoundTo(double value, double step) {
  return std::round(value / step) * step;
}

absl::Status CheckRange(const char* what, std::optional<double> value,
                        double lo, double hi) {
  if (value && !(*value >= lo && *value <= hi)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s %g is out of range [%g, %g]", what, *value, lo, hi));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PatientProfile> ProfileForSet(const SimulationSet& set) {
  absl::StatusOr<PatientProfile> profile = ProfileByName(set.profile);
  if (!profile.ok()) return profile.status();
  const SimulationOverrides& o = set.overrides;
  for (const absl::Status& s : {
           CheckRange("noise scale", o.noise_scale, 0, 10),
           CheckRange("gyro bias (rad/s)", o.gyro_bias_radps, 0, 0.2),
           CheckRange("gyro bias walk (rad/s per s)",
                      o.gyro_bias_walk_radps_per_s, 0, 0.05),
           // The recording format promises scoring no more than this.
           CheckRange("mounting tilt (deg)", o.mount_tilt_max_deg, 0, 15),
           CheckRange("mounting heading (deg)", o.mount_heading_max_deg, 0, 5),
           CheckRange("tempo scale", o.tempo_scale, 0.3, 3),
           CheckRange("knee flexion (deg)", o.knee_flexion_deg, 20, 100),
           CheckRange("arms-used share", o.arms_use_probability, 0, 1),
       }) {
    if (!s.ok()) return s;
  }
  if (o.repetitions && (*o.repetitions < 1 || *o.repetitions > 100)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "repetitions %d is out of range [1, 100]", *o.repetitions));
  }
  PatientProfile& p = *profile;
  p.stance_side = set.side;
  if (o.noise_scale) {
    p.accel_noise_mps2 *= *o.noise_scale;
    p.gyro_noise_radps *= *o.noise_scale;
  }
  if (o.gyro_bias_radps) p.gyro_bias_radps = *o.gyro_bias_radps;
  if (o.gyro_bias_walk_radps_per_s) {
    p.gyro_bias_walk_radps_per_s = *o.gyro_bias_walk_radps_per_s;
  }
  if (o.mount_tilt_max_deg) p.mount_tilt_max_deg = *o.mount_tilt_max_deg;
  if (o.mount_heading_max_deg) {
    p.mount_heading_max_deg = *o.mount_heading_max_deg;
  }
  if (o.tempo_scale) {
    // The standing lead-in is left alone: scoring calibrates on it and the
    // format promises at least 1 s of it.
    p.lower_s *= *o.tempo_scale;
    p.hold_s *= *o.tempo_scale;
    p.rise_s *= *o.tempo_scale;
    p.pause_s *= *o.tempo_scale;
  }
  if (o.knee_flexion_deg) {
    // The hips' lowering goes with the knee's flexion beyond standing, as in
    // the named profiles, so that a deeper rep does not mean sitting back
    // oddly far (the simulator would let the knee win anyway).
    const double old_bend =
        p.knee_flexion_mean_deg - p.standing_knee_flexion_deg;
    const double new_bend = *o.knee_flexion_deg - p.standing_knee_flexion_deg;
    if (old_bend > 0 && new_bend > 0) {
      p.com_lowering_m = std::min(0.15, p.com_lowering_m * new_bend / old_bend);
    }
    p.knee_flexion_mean_deg = *o.knee_flexion_deg;
  }
  if (o.repetitions) p.repetitions = *o.repetitions;
  if (o.wrist_imu) p.wrist_imu = *o.wrist_imu;
  if (o.arms_use_probability) p.arms_use_probability = *o.arms_use_probability;
  return p;
}

std::string SetFolderName(const SimulationSet& set) {
  const SimulationOverrides& o = set.overrides;
  std::string name;
  if (set.index >= 0) absl::StrAppendFormat(&name, "%03d-", set.index);
  absl::StrAppend(&name, set.profile, "-", StanceSideName(set.side), "-seed",
                  set.seed);
  if (o.noise_scale) absl::StrAppendFormat(&name, "-noise%g", *o.noise_scale);
  if (o.gyro_bias_radps) {
    absl::StrAppendFormat(&name, "-bias%g", *o.gyro_bias_radps);
  }
  if (o.gyro_bias_walk_radps_per_s) {
    absl::StrAppendFormat(&name, "-walk%g", *o.gyro_bias_walk_radps_per_s);
  }
  if (o.mount_tilt_max_deg) {
    absl::StrAppendFormat(&name, "-tilt%g", *o.mount_tilt_max_deg);
  }
  if (o.mount_heading_max_deg) {
    absl::StrAppendFormat(&name, "-heading%g", *o.mount_heading_max_deg);
  }
  if (o.tempo_scale) absl::StrAppendFormat(&name, "-tempo%g", *o.tempo_scale);
  if (o.knee_flexion_deg) {
    absl::StrAppendFormat(&name, "-knee%g", *o.knee_flexion_deg);
  }
  if (o.repetitions) absl::StrAppendFormat(&name, "-reps%d", *o.repetitions);
  if (o.wrist_imu.value_or(false)) absl::StrAppend(&name, "-wrist");
  if (o.arms_use_probability) {
    absl::StrAppendFormat(&name, "-arms%g", *o.arms_use_probability);
  }
  return name;
}

std::string SetSource(const SimulationSet& set) {
  const SimulationOverrides& o = set.overrides;
  std::string s =
      absl::StrCat("stephub simulator, profile ", set.profile, ", seed ",
                   set.seed, ", stance side ", StanceSideName(set.side));
  if (o.noise_scale) {
    absl::StrAppendFormat(&s, ", sensor noise x%g", *o.noise_scale);
  }
  if (o.gyro_bias_radps) {
    absl::StrAppendFormat(&s, ", gyro bias up to %g rad/s", *o.gyro_bias_radps);
  }
  if (o.gyro_bias_walk_radps_per_s) {
    absl::StrAppendFormat(&s, ", gyro bias drift %g rad/s per s",
                          *o.gyro_bias_walk_radps_per_s);
  }
  if (o.mount_tilt_max_deg) {
    absl::StrAppendFormat(&s, ", mounting tilt up to %g deg",
                          *o.mount_tilt_max_deg);
  }
  if (o.mount_heading_max_deg) {
    absl::StrAppendFormat(&s, ", mounting heading up to %g deg",
                          *o.mount_heading_max_deg);
  }
  if (o.tempo_scale) absl::StrAppendFormat(&s, ", tempo x%g", *o.tempo_scale);
  if (o.knee_flexion_deg) {
    absl::StrAppendFormat(&s, ", knee flexion %g deg", *o.knee_flexion_deg);
  }
  if (o.repetitions) absl::StrAppendFormat(&s, ", %d reps", *o.repetitions);
  if (o.wrist_imu.value_or(false)) absl::StrAppend(&s, ", wrist IMU");
  if (o.arms_use_probability) {
    absl::StrAppendFormat(&s, ", arms used in %g of reps",
                          *o.arms_use_probability);
  }
  if (set.index >= 0) absl::StrAppendFormat(&s, ", corpus set %d", set.index);
  return s;
}

std::vector<SimulationSet> MakeCorpus(int sets, uint64_t seed,
                                      const CorpusOptions& options) {
  const std::vector<std::string> profiles = AllProfileNames();
  const int n = static_cast<int>(profiles.size());
  std::vector<SimulationSet> corpus;
  for (int i = 0; i < sets; ++i) {
    // One generator per set: set i does not depend on how many come before.
    SplitMix64 rng(seed * 0x2545f4914f6cdd1dULL + static_cast<uint64_t>(i));
    SimulationSet set;
    set.index = i;
    // Every profile in turn, then the same with the other stance leg.
    set.profile = profiles[i % n];
    set.side = (i / n) % 2 == 0 ? StanceSide::kLeft : StanceSide::kRight;
    set.seed = rng.Next() % 1'000'000'000;
    const PatientProfile base = *ProfileByName(set.profile);
    SimulationOverrides& o = set.overrides;
    o.noise_scale = RoundTo(rng.Uniform(0.5, 3.0), 0.1);
    o.gyro_bias_radps = RoundTo(rng.Uniform(0, 0.03), 0.001);
    o.gyro_bias_walk_radps_per_s = RoundTo(rng.Uniform(0, 0.002), 0.0001);
    // The simulator draws each sensor's actual tilt uniformly in [0, max]
    // and heading in [-max, max]: the whole range is covered in every set.
    o.mount_tilt_max_deg = options.mount_tilt_max_deg;
    o.mount_heading_max_deg = options.mount_heading_max_deg;
    o.tempo_scale = RoundTo(rng.Uniform(0.8, 1.3), 0.05);
    o.knee_flexion_deg =
        RoundTo(base.knee_flexion_mean_deg + rng.Uniform(-8, 8), 1);
    o.repetitions = 8 + static_cast<int>(rng.Next() % 5);
    // Drawn after everything else, so that the draws above (and a set
    // without a wrist) are what they were before the wrist.
    const bool wrist = rng.Uniform(0, 1) < 0.5;
    const double arms = RoundTo(rng.Uniform(0, 0.8), 0.05);
    if (wrist) {
      o.wrist_imu = true;
      o.arms_use_probability = arms;
    }
    corpus.push_back(set);
  }
  return corpus;
}

absl::StatusOr<Recording> SimulateSet(const SimulationSet& set) {
  absl::StatusOr<PatientProfile> profile = ProfileForSet(set);
  if (!profile.ok()) return profile.status();
  Recording recording = SimulateRecording(*profile, set.seed);
  recording.meta.source = SetSource(set);
  return recording;
}

absl::Status WriteSet(const SimulationSet& set, const std::string& dir) {
  absl::StatusOr<Recording> recording = SimulateSet(set);
  if (!recording.ok()) return recording.status();
  return WriteRecording(dir, *recording);
}

}  // namespace stephub::validate
