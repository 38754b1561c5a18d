// Tests of the recording folder reader and writer.
#include "common/recording.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/simulator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stephub {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kMeta[] =
    R"({"format": "stephub-recording/1", "stance_side": "right",
        "exercise": "lateral_step_down", "body_mass_kg": 72.5,
        "load": "band", "colour": "blue"})";
constexpr char kImuHeader[] =
    "t_us,ax_mps2,ay_mps2,az_mps2,gx_radps,gy_radps,gz_radps\n";
constexpr char kForceHeader[] = "t_us,fz_n,cop_x_mm,cop_y_mm\n";
constexpr char kTruthHeader[] =
    "rep,start_us,end_us,peak_pelvic_drop_deg,peak_trunk_lean_deg,"
    "knee_flexion_deg,knee_valgus_deg,cop_ml_range_mm\n";

class RecordingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           (std::string("stephub_recording_") + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Put(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  absl::StatusOr<Recording> Read() { return ReadRecording(dir_.string()); }
  // The error of reading a folder with kMeta and one extra file.
  std::string ErrorWith(const std::string& name, const std::string& text) {
    Put("meta.json", kMeta);
    Put(name, text);
    auto rec = Read();
    EXPECT_FALSE(rec.ok());
    return std::string(rec.status().message());
  }

  fs::path dir_;
};

Recording ShortSimulation() {
  PatientProfile profile = *ProfileByName("moderate");
  profile.repetitions = 2;
  return SimulateRecording(profile, 3);
}

TEST_F(RecordingTest, RoundTripKeepsEverything) {
  const Recording original = ShortSimulation();
  ASSERT_TRUE(WriteRecording(dir_.string(), original).ok());
  auto read = Read();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->meta.stance_side, original.meta.stance_side);
  EXPECT_EQ(read->meta.exercise, original.meta.exercise);
  EXPECT_EQ(read->meta.body_mass_kg, original.meta.body_mass_kg);
  EXPECT_EQ(read->meta.source, original.meta.source);
  EXPECT_EQ(read->meta.load, original.meta.load);

  // The simulator writes all four IMUs.
  ASSERT_EQ(original.imu.size(), 4u);
  ASSERT_EQ(read->imu.size(), original.imu.size());
  for (const auto& [placement, imu] : original.imu) {
    ASSERT_EQ(read->imu.count(placement), 1u) << PlacementName(placement);
    const auto& imu_read = read->imu.at(placement);
    ASSERT_EQ(imu_read.size(), imu.size());
    for (size_t i = 0; i < imu.size(); ++i) {
      EXPECT_EQ(imu_read[i].t_us, imu[i].t_us);
      EXPECT_NEAR(imu_read[i].az_mps2, imu[i].az_mps2, 1e-5 * 10);
      EXPECT_NEAR(imu_read[i].gx_radps, imu[i].gx_radps,
                  1e-5 * std::abs(imu[i].gx_radps) + 1e-12);
    }
  }
  ASSERT_EQ(read->force.size(), original.force.size());
  for (size_t i = 0; i < original.force.size(); i += 97) {
    EXPECT_EQ(read->force[i].t_us, original.force[i].t_us);
    EXPECT_NEAR(read->force[i].fz_n, original.force[i].fz_n, 1e-2);
    EXPECT_NEAR(read->force[i].cop_x_mm, original.force[i].cop_x_mm, 1e-4);
  }
  ASSERT_EQ(read->truth.size(), original.truth.size());
  for (size_t i = 0; i < original.truth.size(); ++i) {
    const TruthRepetition& a = original.truth[i];
    const TruthRepetition& b = read->truth[i];
    EXPECT_EQ(b.rep, a.rep);
    EXPECT_EQ(b.start_us, a.start_us);
    EXPECT_EQ(b.end_us, a.end_us);
    EXPECT_NEAR(*b.peak_pelvic_drop_deg, *a.peak_pelvic_drop_deg, 1e-4);
    EXPECT_NEAR(*b.cop_ml_range_mm, *a.cop_ml_range_mm, 1e-3);
    // Six significant digits.
    EXPECT_NEAR(*b.peak_trunk_lean_deg, *a.peak_trunk_lean_deg, 1e-4);
    EXPECT_NEAR(*b.knee_flexion_deg, *a.knee_flexion_deg, 1e-3);
    EXPECT_NEAR(*b.knee_valgus_deg, *a.knee_valgus_deg, 1e-4);
  }
}

TEST_F(RecordingTest, ReadsOptionalPartsAndIgnoresUnknownKeys) {
  Put("meta.json", kMeta);
  Put("force.csv",
      std::string(kForceHeader) + "-5,700.5,1.5,-2\r\n10,12.5,,\r\n20,0,,\r\n");
  Put("imu_thigh.csv", std::string(kImuHeader) + "7,0,0,9.81,0,0,1e-3\n");
  Put("truth.csv", std::string(kTruthHeader) + "1,0,100,4.5,,,,\n");
  Put("notes.txt", "anything");
  auto rec = Read();
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->meta.stance_side, StanceSide::kRight);
  EXPECT_EQ(rec->meta.body_mass_kg, 72.5);
  EXPECT_FALSE(rec->meta.step_height_cm.has_value());
  EXPECT_EQ(rec->meta.load, "band");
  ASSERT_EQ(rec->force.size(), 3u);
  EXPECT_EQ(rec->force[0].t_us, -5);
  EXPECT_EQ(rec->force[0].cop_x_mm, 1.5);
  EXPECT_TRUE(std::isnan(rec->force[1].cop_x_mm));
  EXPECT_TRUE(std::isnan(rec->force[2].cop_y_mm));
  ASSERT_EQ(rec->imu.count(Placement::kThigh), 1u);
  EXPECT_EQ(rec->imu.at(Placement::kThigh)[0].gz_radps, 1e-3);
  ASSERT_EQ(rec->truth.size(), 1u);
  EXPECT_EQ(rec->truth[0].peak_pelvic_drop_deg, 4.5);
  EXPECT_FALSE(rec->truth[0].cop_ml_range_mm.has_value());
}

TEST_F(RecordingTest, WrongFieldCountNamesLineAndColumn) {
  EXPECT_THAT(ErrorWith("force.csv",
                        std::string(kForceHeader) + "1,700,0,0\n2,700,0,0,9\n"),
              HasSubstr("force.csv:3:5: "));
  EXPECT_THAT(ErrorWith("force.csv",
                        std::string(kForceHeader) + "1,700,0,0\n2,700,0\n"),
              HasSubstr("force.csv:3:4: missing 'cop_y_mm'"));
}

TEST_F(RecordingTest, BadNumbersNameLineColumnAndField) {
  EXPECT_THAT(ErrorWith("imu_sacrum.csv",
                        std::string(kImuHeader) + "1,0,x1,9.8,0,0,0\n"),
              HasSubstr("imu_sacrum.csv:2:3: 'ay_mps2' is not a number"));
  EXPECT_THAT(ErrorWith("imu_sacrum.csv",
                        std::string(kImuHeader) + "1,0,0,9.8,nan,0,0\n"),
              HasSubstr("imu_sacrum.csv:2:5: 'gx_radps' is not a finite"));
  EXPECT_THAT(ErrorWith("imu_sacrum.csv",
                        std::string(kImuHeader) + "1,0,0,inf,0,0,0\n"),
              HasSubstr("imu_sacrum.csv:2:4:"));
  EXPECT_THAT(ErrorWith("imu_sacrum.csv",
                        std::string(kImuHeader) + "1,0,0, 9.8,0,0,0\n"),
              HasSubstr("imu_sacrum.csv:2:4:"));
  EXPECT_THAT(ErrorWith("imu_sacrum.csv",
                        std::string(kImuHeader) + "1.5,0,0,9.8,0,0,0\n"),
              HasSubstr("imu_sacrum.csv:2:1: 't_us' is not an integer"));
  EXPECT_THAT(
      ErrorWith("imu_sacrum.csv", std::string(kImuHeader) + "1,0,,9.8,0,0,0\n"),
      HasSubstr("imu_sacrum.csv:2:3: 'ay_mps2' is empty"));
}

TEST_F(RecordingTest, TimeMustIncreaseStrictly) {
  EXPECT_THAT(ErrorWith("force.csv",
                        std::string(kForceHeader) + "5,700,0,0\n5,700,0,0\n"),
              HasSubstr("force.csv:3:1: 't_us' 5 is not after"));
}

TEST_F(RecordingTest, HeaderMustMatchExactly) {
  EXPECT_THAT(ErrorWith("force.csv", "t_us,fz,cop_x_mm,cop_y_mm\n"),
              HasSubstr("force.csv:1:2: "));
  EXPECT_THAT(ErrorWith("force.csv", "t_us,fz_n,cop_x_mm\n"),
              HasSubstr("force.csv:1:4: header lacks column 'cop_y_mm'"));
  EXPECT_THAT(ErrorWith("force.csv", ""), HasSubstr("force.csv:1:1: empty"));
}

TEST_F(RecordingTest, CopMayBeEmptyOnlyAtLowForce) {
  EXPECT_THAT(ErrorWith("force.csv", std::string(kForceHeader) + "1,20,,0\n"),
              HasSubstr("force.csv:2:3: 'cop_x_mm' is empty"));
}

TEST_F(RecordingTest, TruthRepsCountFromOne) {
  EXPECT_THAT(ErrorWith("truth.csv", std::string(kTruthHeader) +
                                         "1,0,10,,,,,\n3,20,30,,,,,\n"),
              HasSubstr("truth.csv:3:1: 'rep' is 3, expected 2"));
}

TEST_F(RecordingTest, UnknownImuPlacementIsAnError) {
  EXPECT_THAT(ErrorWith("imu_elbow.csv", kImuHeader),
              HasSubstr("imu_elbow.csv: unknown IMU placement 'elbow'"));
}

TEST_F(RecordingTest, MissingRequiredMetaKeyIsNamed) {
  for (const char* key : {"format", "stance_side", "exercise"}) {
    std::string meta = R"({"format": "stephub-recording/1",
                           "stance_side": "left",
                           "exercise": "lateral_step_down"})";
    const std::string quoted = std::string("\"") + key + "\"";
    meta.replace(meta.find(quoted), quoted.size(), "\"other\"");
    Put("meta.json", meta);
    auto rec = Read();
    ASSERT_FALSE(rec.ok()) << key;
    EXPECT_EQ(rec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(rec.status().message()), HasSubstr("meta.json"));
    EXPECT_THAT(std::string(rec.status().message()),
                HasSubstr(std::string("'") + key + "' is required"));
  }
}

TEST_F(RecordingTest, BadMetaValuesAreRejected) {
  Put("meta.json",
      R"({"format": "stephub-recording/2", "stance_side": "left",
          "exercise": "x"})");
  EXPECT_THAT(std::string(Read().status().message()), HasSubstr("'format' is"));
  Put("meta.json",
      R"({"format": "stephub-recording/1", "stance_side": "up",
          "exercise": "x"})");
  EXPECT_THAT(std::string(Read().status().message()),
              HasSubstr("'stance_side' must be 'left' or 'right'"));
  Put("meta.json",
      R"({"format": "stephub-recording/1", "stance_side": "left",
          "exercise": "x", "body_mass_kg": "heavy"})");
  EXPECT_THAT(std::string(Read().status().message()),
              HasSubstr("'body_mass_kg' must be a number"));
}

TEST_F(RecordingTest, InvalidJsonNamesLineAndColumn) {
  Put("meta.json", "{\n  \"format\": \"stephub-recording/1\",\n  oops\n}");
  auto rec = Read();
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rec.status().message()),
              HasSubstr("meta.json:3:3: not valid"));
}

// Valid JSON syntax that nlohmann cannot hold threw past the reader and
// ended the process (found by fuzz/recording_reader_fuzzer).
TEST_F(RecordingTest, NumberPastADoublesRangeIsAnError) {
  Put("meta.json",
      R"({"format": "stephub-recording/1", "stance_side": "left", )"
      R"("exercise": "lateral_step_down", "body_mass_kg": 71e308})");
  auto rec = Read();
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rec.status().message()),
              HasSubstr("meta.json: not valid JSON"));
}

// What ReadRecording reads through, from files already in memory.
TEST_F(RecordingTest, ParseRecordingReadsFilesByName) {
  auto rec = ParseRecording(
      {{"meta.json", kMeta},
       {"imu_sacrum.csv",
        "t_us,ax_mps2,ay_mps2,az_mps2,gx_radps,gy_radps,gz_radps\n"
        "0,0,0,9.8,0,0,0\n5000,0,0,9.8,0,0,0\n"},
       {"notes.txt", "not ours"}},
      "in-memory");
  ASSERT_TRUE(rec.ok()) << rec.status();
  ASSERT_EQ(rec->imu.count(Placement::kSacrum), 1u);
  EXPECT_EQ(rec->imu.at(Placement::kSacrum).size(), 2u);
  EXPECT_TRUE(rec->force.empty());
  auto missing = ParseRecording({}, "in-memory");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("in-memory/meta.json: required file is missing"));
}

TEST_F(RecordingTest, MissingFolderOrMetaIsNotFound) {
  EXPECT_EQ(ReadRecording((dir_ / "nope").string()).status().code(),
            absl::StatusCode::kNotFound);
  auto rec = Read();
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(rec.status().message()), HasSubstr("meta.json"));
}

TEST_F(RecordingTest, WriteRefusesWhatReadWouldReject) {
  Recording rec;
  rec.imu[Placement::kSacrum] = {ImuSample{.t_us = 1}, ImuSample{.t_us = 1}};
  EXPECT_THAT(std::string(WriteRecording(dir_.string(), rec).message()),
              HasSubstr("imu_sacrum.csv:3:1:"));
  rec.imu[Placement::kSacrum] = {ImuSample{.t_us = 1, .ax_mps2 = NAN}};
  EXPECT_THAT(std::string(WriteRecording(dir_.string(), rec).message()),
              HasSubstr("'ax_mps2' is not a finite number"));
}

TEST_F(RecordingTest, WriteReplacesAnEarlierRecording) {
  Put("imu_wrist.csv", kImuHeader);
  Recording rec;
  rec.force = {
      ForceSample{.t_us = 0, .fz_n = 5, .cop_x_mm = NAN, .cop_y_mm = NAN}};
  ASSERT_TRUE(WriteRecording(dir_.string(), rec).ok());
  auto read = Read();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->imu.empty());
  ASSERT_EQ(read->force.size(), 1u);
  EXPECT_TRUE(std::isnan(read->force[0].cop_x_mm));
}

// Our extension: the arm's truth in truth_arms.csv, beside truth.csv.
TEST_F(RecordingTest, ArmTruthRoundTripsInItsOwnFile) {
  PatientProfile profile = *ProfileByName("trendelenburg");
  profile.repetitions = 4;
  profile.wrist_imu = true;
  profile.arms_use_probability = 0.5;
  const Recording original = SimulateRecording(profile, 3);
  ASSERT_TRUE(WriteRecording(dir_.string(), original).ok());
  EXPECT_TRUE(fs::exists(dir_ / "imu_wrist.csv"));
  EXPECT_TRUE(fs::exists(dir_ / "truth_arms.csv"));
  auto read = Read();
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->truth.size(), original.truth.size());
  for (size_t i = 0; i < original.truth.size(); ++i) {
    EXPECT_EQ(read->truth[i].arms_used, original.truth[i].arms_used);
    EXPECT_NEAR(*read->truth[i].peak_arm_elevation_deg,
                *original.truth[i].peak_arm_elevation_deg, 1e-3);
  }
  // Written again without a wrist, the arm's files go with it.
  ASSERT_TRUE(WriteRecording(dir_.string(), ShortSimulation()).ok());
  EXPECT_FALSE(fs::exists(dir_ / "imu_wrist.csv"));
  EXPECT_FALSE(fs::exists(dir_ / "truth_arms.csv"));
  read = Read();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_FALSE(read->truth[0].arms_used.has_value());
}

TEST_F(RecordingTest, ArmTruthMustMatchTruthRepForRep) {
  Put("truth.csv", std::string(kTruthHeader) + "1,0,10,,,,,\n2,20,30,,,,,\n");
  EXPECT_THAT(ErrorWith("truth_arms.csv",
                        "rep,arms_used,peak_arm_elevation_deg\n1,1,30\n"),
              HasSubstr("truth_arms.csv: 1 repetitions, but truth.csv has 2"));
  EXPECT_THAT(ErrorWith("truth_arms.csv",
                        "rep,arms_used,peak_arm_elevation_deg\n1,1,30\n"
                        "2,2,\n"),
              HasSubstr("truth_arms.csv:3:2: 'arms_used' must be 0 or 1"));
  Put("truth_arms.csv", "rep,arms_used,peak_arm_elevation_deg\n1,0,3\n2,,\n");
  auto rec = Read();
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->truth[0].arms_used, false);
  EXPECT_EQ(rec->truth[0].peak_arm_elevation_deg, 3);
  EXPECT_FALSE(rec->truth[1].arms_used.has_value());
}

}  // namespace
}  // namespace stephub
