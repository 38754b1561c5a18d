// Reads and writes recording folders exactly as RECORDING_FORMAT.md defines
// them; every parse error points at file:line:column.
#include "common/recording.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"

namespace stephub {
namespace {

namespace fs = std::filesystem;
using Columns = absl::Span<const absl::string_view>;

constexpr absl::string_view kMetaFile = "meta.json";
constexpr absl::string_view kForceFile = "force.csv";
constexpr absl::string_view kTruthFile = "truth.csv";
// Our extension: per-rep arm truth, whose columns truth.csv cannot take.
constexpr absl::string_view kTruthArmsFile = "truth_arms.csv";
constexpr absl::string_view kImuPrefix = "imu_";
constexpr absl::string_view kCsvSuffix = ".csv";

constexpr absl::string_view kForceColumns[] = {"t_us", "fz_n", "cop_x_mm",
                                               "cop_y_mm"};
constexpr absl::string_view kImuColumns[] = {"t_us",    "ax_mps2",  "ay_mps2",
                                             "az_mps2", "gx_radps", "gy_radps",
                                             "gz_radps"};
constexpr absl::string_view kTruthColumns[] = {"rep",
                                               "start_us",
                                               "end_us",
                                               "peak_pelvic_drop_deg",
                                               "peak_trunk_lean_deg",
                                               "knee_flexion_deg",
                                               "knee_valgus_deg",
                                               "cop_ml_range_mm"};
constexpr absl::string_view kTruthArmsColumns[] = {"rep", "arms_used",
                                                   "peak_arm_elevation_deg"};

// Below this vertical force the COP is undefined and may be left empty.
constexpr double kCopMinForceN = 20;

std::string ImuFileName(Placement placement) {
  return absl::StrCat(kImuPrefix, PlacementName(placement), kCsvSuffix);
}

std::string Quoted(absl::string_view text) {
  constexpr size_t kMaxShown = 24;
  if (text.size() <= kMaxShown) return absl::StrCat("'", text, "'");
  return absl::StrCat("'", text.substr(0, kMaxShown), "...'");
}

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat(path.string(), ": read failed"));
  }
  return std::move(text).str();
}

// Writes via a temporary file and a rename so that a reader never sees a
// half-written file.
absl::Status WriteFile(const fs::path& path, const std::string& content) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) {
      return absl::InternalError(absl::StrCat(tmp.string(), ": write failed"));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(path.string(), ": rename failed: ", ec.message()));
  }
  return absl::OkStatus();
}

// One data line of a CSV file, split into fields.
struct CsvLine {
  int number = 0;  // 1-based, the header is line 1
  std::vector<absl::string_view> fields;
};

absl::Status CsvError(absl::string_view file, int line, int column,
                      absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(file, ":", line, ":", column, ": ", what));
}

absl::Status CheckHeader(absl::string_view file, absl::string_view header,
                         Columns columns) {
  const std::vector<absl::string_view> found = absl::StrSplit(header, ',');
  const std::string expected = absl::StrJoin(columns, ",");
  for (size_t i = 0; i < std::max(found.size(), columns.size()); ++i) {
    const int column = static_cast<int>(i) + 1;
    if (i >= found.size()) {
      return CsvError(file, 1, column,
                      absl::StrCat("header lacks column ", Quoted(columns[i]),
                                   " (expected ", expected, ")"));
    }
    if (i >= columns.size()) {
      return CsvError(
          file, 1, column,
          absl::StrCat("unexpected header column ", Quoted(found[i]),
                       " (expected ", expected, ")"));
    }
    if (found[i] != columns[i]) {
      return CsvError(
          file, 1, column,
          absl::StrCat("header column is ", Quoted(found[i]), ", expected ",
                       Quoted(columns[i]), " (header must be ", expected, ")"));
    }
  }
  return absl::OkStatus();
}

// Splits CSV text into data lines after checking the header and each line's
// field count. Tolerates CRLF line ends and one final newline.
absl::StatusOr<std::vector<CsvLine>> SplitCsv(absl::string_view file,
                                              absl::string_view text,
                                              Columns columns) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  for (absl::string_view& line : lines) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  }
  if (lines.empty()) {
    return CsvError(file, 1, 1,
                    absl::StrCat("empty file, expected the header ",
                                 absl::StrJoin(columns, ",")));
  }
  if (absl::Status s = CheckHeader(file, lines[0], columns); !s.ok()) return s;
  std::vector<CsvLine> out;
  out.reserve(lines.size() - 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    CsvLine line{static_cast<int>(i) + 1, absl::StrSplit(lines[i], ',')};
    const size_t n = line.fields.size();
    if (n < columns.size()) {
      return CsvError(
          file, line.number, static_cast<int>(n) + 1,
          absl::StrFormat("missing %s: expected %d fields, found %d",
                          Quoted(columns[n]), columns.size(), n));
    }
    if (n > columns.size()) {
      return CsvError(
          file, line.number, static_cast<int>(columns.size()) + 1,
          absl::StrFormat("expected %d fields, found %d", columns.size(), n));
    }
    out.push_back(std::move(line));
  }
  return out;
}

// Parses the fields of one CSV line strictly (no blanks, no signs other than
// '-', no NaN/Inf, no trailing text). Keeps the first error; later calls after
// an error return placeholders so that a row can be parsed in one expression.
class FieldParser {
 public:
  FieldParser(absl::string_view file, const CsvLine& line, Columns columns)
      : file_(file), line_(line), columns_(columns) {}

  int64_t Int(int i) {
    const absl::string_view text = line_.fields[i];
    int64_t value = 0;
    const auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty()) {
      Fail(i, "is empty");
    } else if (ec != std::errc() || end != text.data() + text.size()) {
      Fail(i, absl::StrCat("is not an integer (", Quoted(text), ")"));
    }
    return value;
  }

  double Number(int i) {
    const absl::string_view text = line_.fields[i];
    if (text.empty()) {
      Fail(i, "is empty");
      return 0;
    }
    return ParseNumber(i, text);
  }

  std::optional<double> OptionalNumber(int i) {
    const absl::string_view text = line_.fields[i];
    if (text.empty()) return std::nullopt;
    return ParseNumber(i, text);
  }

  bool IsEmpty(int i) const { return line_.fields[i].empty(); }

  // Reports a problem with field i (0-based) unless one is already recorded.
  void Fail(int i, absl::string_view what) {
    if (!status_.ok()) return;
    status_ = CsvError(file_, line_.number, i + 1,
                       absl::StrCat(Quoted(columns_[i]), " ", what));
  }

  const absl::Status& status() const { return status_; }

 private:
  double ParseNumber(int i, absl::string_view text) {
    double value = 0;
    const auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
      Fail(i, absl::StrCat("is not a number (", Quoted(text), ")"));
      return 0;
    }
    if (!std::isfinite(value)) {
      Fail(i, absl::StrCat("is not a finite number (", Quoted(text), ")"));
      return 0;
    }
    return value;
  }

  absl::string_view file_;
  const CsvLine& line_;
  Columns columns_;
  absl::Status status_;
};

// Checks that t_us grows strictly from line to line.
class TimeOrder {
 public:
  absl::Status Check(absl::string_view file, int line, int64_t t_us) {
    if (previous_.has_value() && t_us <= *previous_) {
      return CsvError(
          file, line, 1,
          absl::StrCat("'t_us' ", t_us, " is not after the previous line's ",
                       *previous_));
    }
    previous_ = t_us;
    return absl::OkStatus();
  }

 private:
  std::optional<int64_t> previous_;
};

double CopField(FieldParser& p, int i, double fz_n) {
  if (!p.IsEmpty(i)) return p.Number(i);
  if (fz_n >= kCopMinForceN) {
    p.Fail(i, absl::StrFormat("is empty although 'fz_n' is %g N (the COP may "
                              "be empty only below %g N)",
                              fz_n, kCopMinForceN));
  }
  return std::numeric_limits<double>::quiet_NaN();
}

absl::StatusOr<std::vector<ForceSample>> ParseForce(absl::string_view file,
                                                    absl::string_view text) {
  auto lines = SplitCsv(file, text, kForceColumns);
  if (!lines.ok()) return lines.status();
  std::vector<ForceSample> out;
  out.reserve(lines->size());
  TimeOrder order;
  for (const CsvLine& line : *lines) {
    FieldParser p(file, line, kForceColumns);
    ForceSample s{.t_us = p.Int(0), .fz_n = p.Number(1)};
    s.cop_x_mm = CopField(p, 2, s.fz_n);
    s.cop_y_mm = CopField(p, 3, s.fz_n);
    if (!p.status().ok()) return p.status();
    if (auto st = order.Check(file, line.number, s.t_us); !st.ok()) return st;
    out.push_back(s);
  }
  return out;
}

absl::StatusOr<std::vector<ImuSample>> ParseImu(absl::string_view file,
                                                absl::string_view text) {
  auto lines = SplitCsv(file, text, kImuColumns);
  if (!lines.ok()) return lines.status();
  std::vector<ImuSample> out;
  out.reserve(lines->size());
  TimeOrder order;
  for (const CsvLine& line : *lines) {
    FieldParser p(file, line, kImuColumns);
    const ImuSample s{.t_us = p.Int(0),
                      .ax_mps2 = p.Number(1),
                      .ay_mps2 = p.Number(2),
                      .az_mps2 = p.Number(3),
                      .gx_radps = p.Number(4),
                      .gy_radps = p.Number(5),
                      .gz_radps = p.Number(6)};
    if (!p.status().ok()) return p.status();
    if (auto st = order.Check(file, line.number, s.t_us); !st.ok()) return st;
    out.push_back(s);
  }
  return out;
}

absl::StatusOr<std::vector<TruthRepetition>> ParseTruth(
    absl::string_view file, absl::string_view text) {
  auto lines = SplitCsv(file, text, kTruthColumns);
  if (!lines.ok()) return lines.status();
  std::vector<TruthRepetition> out;
  out.reserve(lines->size());
  for (const CsvLine& line : *lines) {
    FieldParser p(file, line, kTruthColumns);
    const TruthRepetition r{.rep = static_cast<int>(p.Int(0)),
                            .start_us = p.Int(1),
                            .end_us = p.Int(2),
                            .peak_pelvic_drop_deg = p.OptionalNumber(3),
                            .peak_trunk_lean_deg = p.OptionalNumber(4),
                            .knee_flexion_deg = p.OptionalNumber(5),
                            .knee_valgus_deg = p.OptionalNumber(6),
                            .cop_ml_range_mm = p.OptionalNumber(7),
                            // From truth_arms.csv, if the recording has it.
                            .arms_used = std::nullopt,
                            .peak_arm_elevation_deg = std::nullopt};
    const int expected_rep = static_cast<int>(out.size()) + 1;
    if (r.rep != expected_rep) {
      p.Fail(0, absl::StrCat("is ", r.rep, ", expected ", expected_rep,
                             " (repetitions count from 1)"));
    }
    if (r.end_us < r.start_us) p.Fail(2, "is before 'start_us'");
    if (!p.status().ok()) return p.status();
    out.push_back(r);
  }
  return out;
}

// truth_arms.csv onto the repetitions read from truth.csv: one line per rep,
// in the same order, so that a file from another recording (a different
// count) is refused rather than half applied.
absl::Status ParseTruthArms(absl::string_view file, absl::string_view text,
                            std::vector<TruthRepetition>* truth) {
  auto lines = SplitCsv(file, text, kTruthArmsColumns);
  if (!lines.ok()) return lines.status();
  if (lines->size() != truth->size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": ", lines->size(), " repetitions, but ",
                     kTruthFile, " has ", truth->size()));
  }
  for (size_t i = 0; i < lines->size(); ++i) {
    const CsvLine& line = (*lines)[i];
    FieldParser p(file, line, kTruthArmsColumns);
    const int rep = static_cast<int>(p.Int(0));
    std::optional<bool> used;
    if (!p.IsEmpty(1)) {
      const int64_t flag = p.Int(1);
      if (flag != 0 && flag != 1) p.Fail(1, "must be 0 or 1 (or empty)");
      used = flag == 1;
    }
    const std::optional<double> elevation = p.OptionalNumber(2);
    if (rep != static_cast<int>(i) + 1) {
      p.Fail(0, absl::StrCat("is ", rep, ", expected ", i + 1,
                             " (repetitions count from 1)"));
    }
    if (!p.status().ok()) return p.status();
    (*truth)[i].arms_used = used;
    (*truth)[i].peak_arm_elevation_deg = elevation;
  }
  return absl::OkStatus();
}

bool HasArmTruth(const std::vector<TruthRepetition>& truth) {
  return std::any_of(truth.begin(), truth.end(), [](const TruthRepetition& r) {
    return r.arms_used || r.peak_arm_elevation_deg;
  });
}

// 1-based line and column of a 1-based byte offset, for JSON errors.
std::pair<int, int> LineColumnAt(absl::string_view text, size_t byte) {
  int line = 1, column = 1;
  for (size_t i = 0; i + 1 < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

absl::StatusOr<nlohmann::json> ParseJson(absl::string_view file,
                                         const std::string& text) {
  // nlohmann reports the error position only through its exception.
  try {
    nlohmann::json json = nlohmann::json::parse(text);
    if (!json.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": the top level must be a JSON object"));
    }
    return json;
  } catch (const nlohmann::json::parse_error& e) {
    const auto [line, column] = LineColumnAt(text, e.byte);
    return absl::InvalidArgumentError(absl::StrCat(
        file, ":", line, ":", column, ": not valid JSON (", e.what(), ")"));
  } catch (const nlohmann::json::exception& e) {
    // Valid syntax it cannot hold, e.g. a number past a double's range
    // (out_of_range; the recording fuzz target's find).
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": not valid JSON (", e.what(), ")"));
  }
}

absl::Status MetaError(absl::string_view file, absl::string_view key,
                       absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(file, ": ", Quoted(key), " ", what));
}

// Reads a string key; a missing required key is an error naming it.
absl::StatusOr<std::optional<std::string>> MetaString(
    absl::string_view file, const nlohmann::json& json, const char* key,
    bool required) {
  const auto it = json.find(key);
  if (it == json.end() || it->is_null()) {
    if (required) return MetaError(file, key, "is required but missing");
    return std::nullopt;
  }
  if (!it->is_string()) return MetaError(file, key, "must be a string");
  return it->get<std::string>();
}

absl::StatusOr<std::optional<double>> MetaNumber(absl::string_view file,
                                                 const nlohmann::json& json,
                                                 const char* key) {
  const auto it = json.find(key);
  if (it == json.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return MetaError(file, key, "must be a number");
  return it->get<double>();
}

absl::StatusOr<RecordingMeta> ParseMeta(absl::string_view file,
                                        const std::string& text) {
  auto json = ParseJson(file, text);
  if (!json.ok()) return json.status();
  auto format = MetaString(file, *json, "format", true);
  if (!format.ok()) return format.status();
  if (**format != kRecordingFormat) {
    return MetaError(file, "format",
                     absl::StrCat("is ", Quoted(**format), ", expected ",
                                  Quoted(kRecordingFormat)));
  }
  auto side = MetaString(file, *json, "stance_side", true);
  if (!side.ok()) return side.status();
  auto exercise = MetaString(file, *json, "exercise", true);
  if (!exercise.ok()) return exercise.status();
  auto mass = MetaNumber(file, *json, "body_mass_kg");
  if (!mass.ok()) return mass.status();
  auto step = MetaNumber(file, *json, "step_height_cm");
  if (!step.ok()) return step.status();
  auto load = MetaString(file, *json, "load", false);
  if (!load.ok()) return load.status();
  auto source = MetaString(file, *json, "source", false);
  if (!source.ok()) return source.status();
  // Our extension of the format (other readers ignore unknown keys).
  bool calibration_movement = false;
  if (const auto it = json->find("calibration_movement");
      it != json->end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return MetaError(file, "calibration_movement", "must be true or false");
    }
    calibration_movement = it->get<bool>();
  }

  RecordingMeta meta;
  auto stance = ParseStanceSide(**side);
  if (!stance.ok()) {
    return MetaError(
        file, "stance_side",
        absl::StrCat("must be 'left' or 'right', not ", Quoted(**side)));
  }
  meta.stance_side = *stance;
  meta.exercise = **exercise;
  meta.body_mass_kg = *mass;
  meta.step_height_cm = *step;
  meta.load = load->value_or("");
  meta.source = source->value_or("");
  meta.calibration_movement = calibration_movement;
  return meta;
}

std::string FormatMeta(const RecordingMeta& meta) {
  nlohmann::json json = {
      {"format", kRecordingFormat},
      {"stance_side", std::string(StanceSideName(meta.stance_side))},
      {"exercise", meta.exercise},
  };
  if (meta.body_mass_kg) json["body_mass_kg"] = *meta.body_mass_kg;
  if (meta.step_height_cm) json["step_height_cm"] = *meta.step_height_cm;
  if (!meta.load.empty()) json["load"] = meta.load;
  if (!meta.source.empty()) json["source"] = meta.source;
  if (meta.calibration_movement) json["calibration_movement"] = true;
  return json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

// Six significant digits are well below any of these sensors' noise.
void AppendValue(std::string* out, double value) {
  absl::StrAppendFormat(out, ",%.6g", value);
}

void AppendOptional(std::string* out, std::optional<double> value) {
  if (value.has_value()) {
    AppendValue(out, *value);
  } else {
    out->push_back(',');
  }
}

std::string FormatForce(const std::vector<ForceSample>& samples) {
  std::string out = absl::StrCat(absl::StrJoin(kForceColumns, ","), "\n");
  for (const ForceSample& s : samples) {
    absl::StrAppend(&out, s.t_us);
    AppendValue(&out, s.fz_n);
    // NaN means "no COP" (low force): written as an empty cell.
    AppendOptional(&out, std::isnan(s.cop_x_mm) ? std::nullopt
                                                : std::optional(s.cop_x_mm));
    AppendOptional(&out, std::isnan(s.cop_y_mm) ? std::nullopt
                                                : std::optional(s.cop_y_mm));
    out.push_back('\n');
  }
  return out;
}

std::string FormatImu(const std::vector<ImuSample>& samples) {
  std::string out = absl::StrCat(absl::StrJoin(kImuColumns, ","), "\n");
  for (const ImuSample& s : samples) {
    absl::StrAppend(&out, s.t_us);
    for (double v : {s.ax_mps2, s.ay_mps2, s.az_mps2, s.gx_radps, s.gy_radps,
                     s.gz_radps}) {
      AppendValue(&out, v);
    }
    out.push_back('\n');
  }
  return out;
}

std::string FormatTruth(const std::vector<TruthRepetition>& truth) {
  std::string out = absl::StrCat(absl::StrJoin(kTruthColumns, ","), "\n");
  for (const TruthRepetition& r : truth) {
    absl::StrAppend(&out, r.rep, ",", r.start_us, ",", r.end_us);
    for (const auto& v :
         {r.peak_pelvic_drop_deg, r.peak_trunk_lean_deg, r.knee_flexion_deg,
          r.knee_valgus_deg, r.cop_ml_range_mm}) {
      AppendOptional(&out, v);
    }
    out.push_back('\n');
  }
  return out;
}

std::string FormatTruthArms(const std::vector<TruthRepetition>& truth) {
  std::string out = absl::StrCat(absl::StrJoin(kTruthArmsColumns, ","), "\n");
  for (const TruthRepetition& r : truth) {
    absl::StrAppend(&out, r.rep, ",");
    if (r.arms_used) absl::StrAppend(&out, *r.arms_used ? 1 : 0);
    AppendOptional(&out, r.peak_arm_elevation_deg);
    out.push_back('\n');
  }
  return out;
}

}  // namespace

absl::StatusOr<Recording> ParseRecording(
    const std::map<std::string, std::string>& files, const std::string& dir) {
  auto file_at = [&](absl::string_view name) {
    return (fs::path(dir) / std::string(name)).string();
  };
  auto find = [&](absl::string_view name) -> const std::string* {
    const auto it = files.find(std::string(name));
    return it == files.end() ? nullptr : &it->second;
  };
  Recording recording;
  const std::string* meta_text = find(kMetaFile);
  if (meta_text == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(file_at(kMetaFile), ": required file is missing"));
  }
  auto meta = ParseMeta(file_at(kMetaFile), *meta_text);
  if (!meta.ok()) return meta.status();
  recording.meta = std::move(*meta);
  if (const std::string* text = find(kForceFile)) {
    auto force = ParseForce(file_at(kForceFile), *text);
    if (!force.ok()) return force.status();
    recording.force = std::move(*force);
  }
  // The map's order is the sorted file names' order, as a listing would be.
  for (const auto& [name, text] : files) {
    if (!absl::StartsWith(name, kImuPrefix) ||
        !absl::EndsWith(name, kCsvSuffix) ||
        name.size() < kImuPrefix.size() + kCsvSuffix.size()) {
      continue;
    }
    const std::string file = file_at(name);
    const std::string placement_name = name.substr(
        kImuPrefix.size(), name.size() - kImuPrefix.size() - kCsvSuffix.size());
    auto placement = ParsePlacement(placement_name);
    if (!placement.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": ", placement.status().message()));
    }
    auto samples = ParseImu(file, text);
    if (!samples.ok()) return samples.status();
    recording.imu[*placement] = std::move(*samples);
  }
  if (const std::string* text = find(kTruthFile)) {
    auto truth = ParseTruth(file_at(kTruthFile), *text);
    if (!truth.ok()) return truth.status();
    recording.truth = std::move(*truth);
    if (const std::string* arms_text = find(kTruthArmsFile)) {
      if (absl::Status s = ParseTruthArms(file_at(kTruthArmsFile), *arms_text,
                                          &recording.truth);
          !s.ok()) {
        return s;
      }
    }
  }
  return recording;
}

absl::StatusOr<Recording> ReadRecording(const std::string& dir) {
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": recording folder not found"));
  }
  // Only the files the format names are read; the rest of the folder
  // (notes, plots) is not ours.
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    const bool ours = name == kMetaFile || name == kForceFile ||
                      name == kTruthFile || name == kTruthArmsFile ||
                      (absl::StartsWith(name, kImuPrefix) &&
                       absl::EndsWith(name, kCsvSuffix));
    if (!ours) continue;
    auto text = ReadFile(entry.path());
    if (!text.ok()) return text.status();
    files[name] = std::move(*text);
  }
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": cannot list: ", ec.message()));
  }
  return ParseRecording(files, dir);
}

absl::Status WriteRecording(const std::string& dir,
                            const Recording& recording) {
  const fs::path root(dir);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(dir, ": cannot create folder: ", ec.message()));
  }
  // Every CSV is parsed back before it is written, so that this function
  // never produces a file ReadRecording would reject (NaN, time going back).
  std::vector<std::pair<std::string, std::string>> files;
  files.emplace_back(kMetaFile, FormatMeta(recording.meta));
  if (!recording.force.empty()) {
    std::string text = FormatForce(recording.force);
    const std::string path = (root / std::string(kForceFile)).string();
    if (auto s = ParseForce(path, text); !s.ok()) return s.status();
    files.emplace_back(kForceFile, std::move(text));
  }
  for (const auto& [placement, samples] : recording.imu) {
    const std::string name = ImuFileName(placement);
    std::string text = FormatImu(samples);
    if (auto s = ParseImu((root / name).string(), text); !s.ok()) {
      return s.status();
    }
    files.emplace_back(name, std::move(text));
  }
  if (!recording.truth.empty()) {
    std::string text = FormatTruth(recording.truth);
    const std::string path = (root / std::string(kTruthFile)).string();
    if (auto s = ParseTruth(path, text); !s.ok()) return s.status();
    files.emplace_back(kTruthFile, std::move(text));
    if (HasArmTruth(recording.truth)) {
      std::string arms = FormatTruthArms(recording.truth);
      const std::string arms_path =
          (root / std::string(kTruthArmsFile)).string();
      std::vector<TruthRepetition> check = recording.truth;
      if (auto s = ParseTruthArms(arms_path, arms, &check); !s.ok()) return s;
      files.emplace_back(kTruthArmsFile, std::move(arms));
    }
  }
  // A recording file left from an earlier write would be read back as part
  // of this recording; only names the format defines are removed.
  std::vector<std::string> stale = {std::string(kForceFile),
                                    std::string(kTruthFile),
                                    std::string(kTruthArmsFile)};
  for (Placement p :
       {Placement::kSacrum, Placement::kSternum, Placement::kThigh,
        Placement::kShank, Placement::kWrist}) {
    stale.push_back(ImuFileName(p));
  }
  for (const std::string& name : stale) {
    const bool written =
        std::any_of(files.begin(), files.end(),
                    [&](const auto& f) { return f.first == name; });
    if (!written) fs::remove(root / name, ec);
  }
  for (const auto& [name, text] : files) {
    if (absl::Status s = WriteFile(root / name, text); !s.ok()) return s;
  }
  return absl::OkStatus();
}

Recording WithOnlySensors(Recording recording,
                          const std::vector<Placement>& imus,
                          bool force_plate) {
  std::erase_if(recording.imu, [&](const auto& entry) {
    return std::find(imus.begin(), imus.end(), entry.first) == imus.end();
  });
  if (!force_plate) recording.force.clear();
  return recording;
}

}  // namespace stephub
