// stephub-validate: scores recordings offline with the hub's own scoring code
// and compares the results with their truth.csv (docs/ACCURACY.md).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"
#include "common/recording.h"
#include "hub/scoring/scoring.h"
#include "hub/scoring/scoring_config.h"
#include "tools/validate.h"

ABSL_FLAG(bool, json, false,
          "print the summary as one JSON object instead of the table");
ABSL_FLAG(std::string, reps_csv, "",
          "write every detected repetition to this CSV file");
ABSL_FLAG(double, max_pelvic_drop_rmse, 1.0, "bound: pelvic drop RMSE, deg");
ABSL_FLAG(double, max_pelvic_drop_bias, 0.3, "bound: |pelvic drop bias|, deg");
ABSL_FLAG(double, max_trunk_lean_rmse, 2.0, "bound: trunk lean RMSE, deg");
ABSL_FLAG(double, max_knee_valgus_rmse, 2.0, "bound: knee valgus RMSE, deg");
ABSL_FLAG(double, min_rep_count_exact, 0.99,
          "bound: fraction of recordings whose rep count is exact");
ABSL_FLAG(double, min_category_agreement, 0.95,
          "bound: fraction of matched reps whose quality category agrees");
ABSL_FLAG(double, min_arm_strategy_agreement, 0.95,
          "bound: fraction of matched reps with a wrist IMU and arm truth "
          "whose arm strategy item agrees");

ABSL_FLAG(std::string, sensors, "",
          "score as a station with only these sensors: a comma-separated list "
          "of force (the plate) and IMU placements (sacrum, sternum, thigh, "
          "shank, wrist); empty: every sensor of the recording");
ABSL_FLAG(std::string, scoring, "",
          "scoring settings over the defaults, name=value,... as the hub's "
          "--scoring");

namespace {

namespace fs = std::filesystem;

// The sensors --sensors keeps.
struct SensorChoice {
  bool force_plate = true;
  std::vector<stephub::Placement> imus;  // empty with all: every IMU
  bool all = true;
};

absl::StatusOr<SensorChoice> ParseSensorChoice(const std::string& text) {
  SensorChoice choice;
  if (text.empty()) return choice;
  choice.all = false;
  choice.force_plate = false;
  for (absl::string_view name : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    if (name == "force") {
      choice.force_plate = true;
      continue;
    }
    auto placement = stephub::ParsePlacement(name);
    if (!placement.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--sensors: \"", name, "\" is neither force nor an IMU placement"));
    }
    choice.imus.push_back(*placement);
  }
  return choice;
}

// A folder without meta.json whose subfolders are recordings stands for all
// of them, so that a whole corpus can be named by its folder.
std::vector<std::string> ExpandCorpus(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "meta.json", ec)) return {dir};
  std::vector<std::string> recordings;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory() && fs::exists(entry.path() / "meta.json", ec)) {
      recordings.push_back(entry.path().string());
    }
  }
  if (recordings.empty()) return {dir};  // ReadRecording will say what is wrong
  std::sort(recordings.begin(), recordings.end());
  return recordings;
}

std::string FolderName(const std::string& dir) {
  fs::path path(dir);
  if (path.filename().empty()) path = path.parent_path();  // "corpus/x/"
  return path.filename().string();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "StepHub scoring accuracy: scores recordings with the hub's scoring "
      "and compares them with their truth.csv.\n"
      "usage: stephub-validate [--json] [--reps-csv=FILE] [--sensors=LIST] "
      "[--scoring=NAME=VALUE,...] [--max-...=X] "
      "RECORDING_DIR...\n"
      "A folder holding recordings (a corpus) stands for all of them.\n"
      "Exit status: 0 every bound met, 1 a bound missed or a recording "
      "unreadable, 2 usage error.");
  std::vector<char*> positional =
      stephub::ParseFlagsAcceptingDashes(argc, argv);
  if (positional.size() < 2) {
    std::cerr << "stephub-validate: name at least one recording folder "
                 "(see --help)\n";
    return 2;
  }

  std::vector<std::string> dirs;
  for (size_t i = 1; i < positional.size(); ++i) {
    for (std::string& dir : ExpandCorpus(positional[i])) {
      dirs.push_back(std::move(dir));
    }
  }
  const auto choice = ParseSensorChoice(absl::GetFlag(FLAGS_sensors));
  if (!choice.ok()) {
    std::cerr << "stephub-validate: " << choice.status().message() << "\n";
    return 2;
  }
  const auto config =
      stephub::scoring::ParseScoringOverrides(absl::GetFlag(FLAGS_scoring));
  if (!config.ok()) {
    std::cerr << "stephub-validate: --scoring: " << config.status().message()
              << "\n";
    return 2;
  }
  std::vector<stephub::validate::RecordingResult> results;
  for (const std::string& dir : dirs) {
    absl::StatusOr<stephub::Recording> recording = stephub::ReadRecording(dir);
    if (!recording.ok()) {
      // Named here and in the table; the other recordings are still scored.
      std::cerr << "stephub-validate: " << recording.status().message() << "\n";
      results.push_back(stephub::validate::FailedRecording(
          FolderName(dir), std::string(recording.status().message())));
      continue;
    }
    if (!choice->all) {
      *recording = stephub::WithOnlySensors(*std::move(recording), choice->imus,
                                            choice->force_plate);
    }
    results.push_back(stephub::validate::EvaluateRecording(
        FolderName(dir), *recording, *config));
  }

  stephub::validate::Bounds bounds;
  bounds.pelvic_drop_rmse_deg = absl::GetFlag(FLAGS_max_pelvic_drop_rmse);
  bounds.pelvic_drop_abs_bias_deg = absl::GetFlag(FLAGS_max_pelvic_drop_bias);
  bounds.trunk_lean_rmse_deg = absl::GetFlag(FLAGS_max_trunk_lean_rmse);
  bounds.knee_valgus_rmse_deg = absl::GetFlag(FLAGS_max_knee_valgus_rmse);
  bounds.rep_count_exact_min = absl::GetFlag(FLAGS_min_rep_count_exact);
  bounds.category_agreement_min = absl::GetFlag(FLAGS_min_category_agreement);
  bounds.arm_strategy_agreement_min =
      absl::GetFlag(FLAGS_min_arm_strategy_agreement);
  const stephub::validate::Summary summary =
      stephub::validate::Summarize(results);
  const auto checks = stephub::validate::CheckBounds(summary, bounds);

  if (const std::string path = absl::GetFlag(FLAGS_reps_csv); !path.empty()) {
    std::ofstream csv(path);
    csv << stephub::validate::FormatRepsCsv(results);
    csv.close();
    if (!csv) {
      std::cerr << "stephub-validate: " << path << ": cannot write\n";
      return 1;
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << stephub::validate::FormatSummaryJson(summary);
  } else {
    std::cout << stephub::validate::FormatReport(results, summary, checks);
  }
  const bool missed = stephub::validate::AnyBoundMissed(checks);
  if (missed) std::cerr << "stephub-validate: an accuracy bound was missed\n";
  return missed || summary.recordings_failed > 0 ? 1 : 0;
}
