// stephub-simulate: writes simulated recordings (with truth) for replay and
// for the accuracy corpus (docs/ACCURACY.md).
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "common/samples.h"
#include "tools/validate_corpus.h"

ABSL_FLAG(std::string, profile, "",
          "patient profile: level, moderate, trendelenburg, valgus, "
          "touchdown, fast, hike, lean");
ABSL_FLAG(uint64_t, seed, 1, "simulator seed (with --corpus: corpus seed)");
ABSL_FLAG(std::string, side, "left", "stance side: left or right");
ABSL_FLAG(std::string, out, "", "recording folder to write");
ABSL_FLAG(std::optional<double>, noise_scale, std::nullopt,
          "multiply the IMUs' white noise by this");
ABSL_FLAG(std::optional<double>, gyro_bias, std::nullopt,
          "initial gyro bias, rad/s (largest per axis)");
ABSL_FLAG(std::optional<double>, gyro_bias_walk, std::nullopt,
          "gyro bias drift (random walk), rad/s per s");
ABSL_FLAG(std::optional<double>, mount_tilt_max, std::nullopt,
          "largest sensor tilt on its segment, deg (0-15)");
ABSL_FLAG(std::optional<double>, mount_heading_max, std::nullopt,
          "largest sensor heading error on its segment, deg (0-5)");
ABSL_FLAG(std::optional<double>, tempo_scale, std::nullopt,
          "multiply every phase duration by this (> 1 slower)");
ABSL_FLAG(std::optional<double>, knee_flexion, std::nullopt,
          "mean knee flexion at the deepest point, deg");
ABSL_FLAG(std::optional<int>, repetitions, std::nullopt,
          "repetitions in the set");
ABSL_FLAG(bool, wrist, false,
          "add a wrist IMU (imu_wrist.csv, truth in truth_arms.csv)");
ABSL_FLAG(std::optional<double>, arms_share, std::nullopt,
          "share of reps (0-1) in which the arms are used for balance");
ABSL_FLAG(std::string, corpus, "",
          "write --sets varied recordings into this folder, one subfolder "
          "each, named after its parameters");
ABSL_FLAG(int, sets, 200, "number of sets with --corpus");

namespace {

int Fail(const std::string& message, int code) {
  std::cerr << "stephub-simulate: " << message << "\n";
  return code;
}

int WriteCorpus() {
  // A corpus varies everything itself; only the mounting limits may be
  // narrowed (e.g. --mount-heading-max=0 to measure the heading's effect).
  if (!absl::GetFlag(FLAGS_profile).empty() ||
      !absl::GetFlag(FLAGS_out).empty() || absl::GetFlag(FLAGS_noise_scale) ||
      absl::GetFlag(FLAGS_gyro_bias) || absl::GetFlag(FLAGS_gyro_bias_walk) ||
      absl::GetFlag(FLAGS_tempo_scale) || absl::GetFlag(FLAGS_knee_flexion) ||
      absl::GetFlag(FLAGS_repetitions) || absl::GetFlag(FLAGS_wrist) ||
      absl::GetFlag(FLAGS_arms_share)) {
    return Fail(
        "with --corpus only --sets, --seed, --mount-tilt-max and "
        "--mount-heading-max apply",
        2);
  }
  const int sets = absl::GetFlag(FLAGS_sets);
  if (sets < 1) return Fail("--sets must be at least 1", 2);
  stephub::validate::CorpusOptions options;
  if (auto v = absl::GetFlag(FLAGS_mount_tilt_max)) {
    options.mount_tilt_max_deg = *v;
  }
  if (auto v = absl::GetFlag(FLAGS_mount_heading_max)) {
    options.mount_heading_max_deg = *v;
  }
  const std::string dir = absl::GetFlag(FLAGS_corpus);
  for (const auto& set : stephub::validate::MakeCorpus(
           sets, absl::GetFlag(FLAGS_seed), options)) {
    const std::string path =
        absl::StrCat(dir, "/", stephub::validate::SetFolderName(set));
    if (absl::Status s = stephub::validate::WriteSet(set, path); !s.ok()) {
      return Fail(std::string(s.message()), 1);
    }
  }
  std::cout << "stephub-simulate: wrote " << sets << " recordings to " << dir
            << "\n";
  return 0;
}

int WriteOne() {
  if (absl::GetFlag(FLAGS_profile).empty() ||
      absl::GetFlag(FLAGS_out).empty()) {
    return Fail("name --profile and --out (or --corpus); see --help", 2);
  }
  auto side = stephub::ParseStanceSide(absl::GetFlag(FLAGS_side));
  if (!side.ok()) {
    return Fail(absl::StrCat("--side: ", side.status().message()), 2);
  }
  stephub::validate::SimulationSet set;
  set.profile = absl::GetFlag(FLAGS_profile);
  set.seed = absl::GetFlag(FLAGS_seed);
  set.side = *side;
  stephub::validate::SimulationOverrides& o = set.overrides;
  o.noise_scale = absl::GetFlag(FLAGS_noise_scale);
  o.gyro_bias_radps = absl::GetFlag(FLAGS_gyro_bias);
  o.gyro_bias_walk_radps_per_s = absl::GetFlag(FLAGS_gyro_bias_walk);
  o.mount_tilt_max_deg = absl::GetFlag(FLAGS_mount_tilt_max);
  o.mount_heading_max_deg = absl::GetFlag(FLAGS_mount_heading_max);
  o.tempo_scale = absl::GetFlag(FLAGS_tempo_scale);
  o.knee_flexion_deg = absl::GetFlag(FLAGS_knee_flexion);
  o.repetitions = absl::GetFlag(FLAGS_repetitions);
  if (absl::GetFlag(FLAGS_wrist)) o.wrist_imu = true;
  o.arms_use_probability = absl::GetFlag(FLAGS_arms_share);
  // Checked before writing, so that a typo leaves no half-written folder.
  if (auto p = stephub::validate::ProfileForSet(set); !p.ok()) {
    return Fail(std::string(p.status().message()), 2);
  }
  const std::string out = absl::GetFlag(FLAGS_out);
  if (absl::Status s = stephub::validate::WriteSet(set, out); !s.ok()) {
    return Fail(std::string(s.message()), 1);
  }
  std::cout << "stephub-simulate: wrote " << out << " ("
            << stephub::validate::SetSource(set) << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "StepHub simulator: writes recordings with truth.\n"
      "usage: stephub-simulate --profile=NAME --out=DIR [--seed=N] "
      "[--side=left|right] [overrides]\n"
      "       stephub-simulate --corpus=DIR [--sets=N] [--seed=S] "
      "[--mount-tilt-max=DEG] [--mount-heading-max=DEG]");
  std::vector<char*> positional =
      stephub::ParseFlagsAcceptingDashes(argc, argv);
  if (positional.size() > 1) {
    return Fail(absl::StrCat("unexpected argument '", positional[1],
                             "' (flags take --name=value)"),
                2);
  }
  return absl::GetFlag(FLAGS_corpus).empty() ? WriteOne() : WriteCorpus();
}
