// Tests of the serial force-plate driver against a fake plate on a
// pseudo-terminal, and of its pure parts (checksum, calibration, force and
// centre of pressure, clock mapping).
#include "station/sensors/serial_force_plate.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "station/sensors/testing/fake_force_plate.h"
#include "station/sensors/testing/run_until.h"
#include "tests/testing.h"

namespace stephub::station {
namespace {

using ::stephub::station::testing::FakeForcePlate;
using ::stephub::station::testing::RunUntil;
using ::testing::HasSubstr;

// A 400 x 600 mm plate, cells at the corners (x right, y forward). Cell 3's
// counts fall under load.
v1::SerialForcePlateConfig PlateConfig() {
  v1::SerialForcePlateConfig config;
  config.set_device("/dev/serial/by-id/usb-StepHub_plate-if00");
  config.set_expected_rate_hz(1000);
  const double xy[4][2] = {{-200, -300}, {200, -300}, {200, 300}, {-200, 300}};
  const int64_t zero[4] = {1000, -2000, 3000, 500};
  const double scale[4] = {0.01, 0.01, -0.01, 0.02};
  for (int i = 0; i < 4; ++i) {
    v1::LoadCell* cell = config.add_cells();
    cell->set_x_mm(xy[i][0]);
    cell->set_y_mm(xy[i][1]);
    cell->set_zero_counts(zero[i]);
    cell->set_newtons_per_count(scale[i]);
  }
  return config;
}

// Counts that read the given newtons on each cell of PlateConfig().
std::array<int32_t, 4> Counts(double n1, double n2, double n3, double n4) {
  return {static_cast<int32_t>(1000 + std::lround(n1 / 0.01)),
          static_cast<int32_t>(-2000 + std::lround(n2 / 0.01)),
          static_cast<int32_t>(3000 - std::lround(n3 / 0.01)),
          static_cast<int32_t>(500 + std::lround(n4 / 0.02))};
}

TEST(PlateProtocolTest, CrcIsCcittFalse) {
  const std::string check = "123456789";
  EXPECT_EQ(plate_protocol::Crc16Ccitt(absl::MakeConstSpan(
                reinterpret_cast<const uint8_t*>(check.data()), check.size())),
            0x29B1);
}

TEST(PlateFrameDecoderTest, ResyncsByteByByteAfterDamage) {
  std::vector<uint8_t> stream;
  auto append = [&stream](const std::vector<uint8_t>& bytes) {
    stream.insert(stream.end(), bytes.begin(), bytes.end());
  };
  append({0x5A, 0x00, 0x12});  // tail of a frame sent before we listened
  append(testing::EncodePlateSample(7, 1000, {1, -1, 8388607, -8388608}));
  append({0xA5, 0x5A, 0x11, 0x00});  // noise with a false sync
  append(testing::EncodePlateSample(8, 2000, {2, 0, 0, 0}));
  std::vector<uint8_t> damaged =
      testing::EncodePlateSample(9, 3000, {3, 0, 0, 0});
  damaged[15] ^= 0x01;
  append(damaged);
  append(testing::EncodePlateSample(10, 4000, {4, 0, 0, 0}));

  PlateFrameDecoder decoder;
  std::vector<PlateFrame> frames;
  for (uint8_t byte : stream)
    decoder.Feed(absl::MakeConstSpan(&byte, 1), &frames);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].version, plate_protocol::kVersion);
  EXPECT_EQ(frames[0].type, plate_protocol::kSampleFrame);
  EXPECT_FALSE(frames[0].after_malformed);
  EXPECT_EQ(frames[0].counter, 7u);
  EXPECT_EQ(frames[0].device_us, 1000u);
  EXPECT_EQ(frames[0].counts,
            (std::array<int32_t, 4>{1, -1, 8388607, -8388608}));
  EXPECT_TRUE(frames[1].after_malformed);
  EXPECT_EQ(frames[1].counter, 8u);
  EXPECT_TRUE(frames[2].after_malformed);
  EXPECT_EQ(frames[2].counter, 10u);
  EXPECT_EQ(frames[2].counts[0], 4);
}

TEST(PlateCalibrationTest, ForceAndCopExactOnKnownLoads) {
  const auto config = PlateConfig();
  // 100, 200, 300, 400 N: the centre of pressure sits at
  // x = (-20000 + 40000 + 60000 - 80000) / 1000 = 0,
  // y = (-30000 - 60000 + 90000 + 120000) / 1000 = 120.
  PlateReading r = ComputePlateReading(config, Counts(100, 200, 300, 400));
  EXPECT_DOUBLE_EQ(r.fz_n, 1000);
  EXPECT_NEAR(r.cop_x_mm, 0, 1e-9);
  EXPECT_DOUBLE_EQ(r.cop_y_mm, 120);
  // All on cell 2: the COP is the cell.
  r = ComputePlateReading(config, Counts(0, 700, 0, 0));
  EXPECT_DOUBLE_EQ(r.fz_n, 700);
  EXPECT_DOUBLE_EQ(r.cop_x_mm, 200);
  EXPECT_DOUBLE_EQ(r.cop_y_mm, -300);
  // Below 20 N there is no meaningful COP.
  r = ComputePlateReading(config, Counts(5, 5, 5, 4));
  EXPECT_DOUBLE_EQ(r.fz_n, 19);
  EXPECT_TRUE(std::isnan(r.cop_x_mm));
  EXPECT_TRUE(std::isnan(r.cop_y_mm));
}

TEST(PlateCalibrationTest, ZeroFromUnloadedRecordingIsTheMean) {
  const std::vector<std::array<int32_t, 4>> unloaded = {
      {100, -5, 8388607, 0}, {102, -7, 8388607, 1}, {104, -6, 8388607, 1}};
  auto zero = ZeroCountsFromUnloaded(unloaded);
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(*zero, (std::array<int64_t, 4>{102, -6, 8388607, 1}));
  EXPECT_FALSE(ZeroCountsFromUnloaded({}).ok());
}

TEST(PlateCalibrationTest, ScaleFromKnownMass) {
  // 20 kg on the cell moves it by 40000 counts from its zero of 1000.
  const std::vector<int32_t> loaded = {40990, 41000, 41010};
  auto scale = NewtonsPerCountFromKnownMass(loaded, 1000, 20);
  ASSERT_TRUE(scale.ok());
  EXPECT_DOUBLE_EQ(*scale, 20 * kStandardGravityMps2 / 40000);
  // A cell whose counts fall under load gets a negative scale.
  const std::vector<int32_t> falling = {-39000};
  EXPECT_DOUBLE_EQ(*NewtonsPerCountFromKnownMass(falling, 1000, 20),
                   -20 * kStandardGravityMps2 / 40000);
  EXPECT_FALSE(NewtonsPerCountFromKnownMass(loaded, 1000, 0).ok());
  EXPECT_FALSE(NewtonsPerCountFromKnownMass({}, 1000, 20).ok());
  const std::vector<int32_t> not_on_cell = {1010, 1020};
  EXPECT_THAT(
      NewtonsPerCountFromKnownMass(not_on_cell, 1000, 20).status().message(),
      HasSubstr("is the mass on this cell"));
}

TEST(DeviceClockMapperTest, BurstsMapToTheLeastDelayedFrame) {
  // Frames every 1000 us, delivered by USB in bursts of 8 that arrive 500 us
  // after the burst's last frame: delays 7500, 6500, ... 500 us.
  DeviceClockMapper mapper(2'000'000, 100);
  constexpr int64_t kOffset = 5'000'000'000;  // station - device
  int64_t last = std::numeric_limits<int64_t>::min();
  for (int i = 0; i < 2000; ++i) {
    const int64_t device_us = 1'000'000 + int64_t{i} * 1000;
    const int64_t burst_end = 1'000'000 + (i / 8 * 8 + 7) * int64_t{1000};
    const int64_t arrival = burst_end + kOffset + 500;
    const int64_t t = mapper.Map(static_cast<uint32_t>(device_us), arrival);
    ASSERT_GT(t, last) << i;
    if (i > 0) {
      ASSERT_LE(t - last, 1100) << i;  // smooth: never more than a slew step
    }
    if (i > 100) {
      ASSERT_EQ(t, device_us + kOffset + 500) << i;
    }
    last = t;
  }
}

TEST(DeviceClockMapperTest, UnwrapsTheDeviceClockAndSurvivesRestart) {
  DeviceClockMapper mapper(2'000'000, 100);
  uint32_t device_us = 0xFFFFFFFFu - 4500;  // wraps after five frames
  int64_t arrival = 7'000'000;
  int64_t last = mapper.Map(device_us, arrival);
  for (int i = 0; i < 10; ++i) {
    device_us += 1000;
    arrival += 1000;
    const int64_t t = mapper.Map(device_us, arrival);
    EXPECT_EQ(t - last, 1000) << i;
    last = t;
  }
  // The plate restarts with its clock at zero: timestamps keep increasing.
  mapper.Reset();
  const int64_t t = mapper.Map(0, arrival + 1000);
  EXPECT_EQ(t, arrival + 1000);
  EXPECT_GT(t, last);
}

class SerialForcePlateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = FakeForcePlate::Create(tmp_.path());
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = *std::move(fake);
    config_ = PlateConfig();
    config_.set_device(fake_->device_path());
  }

  std::unique_ptr<SensorSource> Start() {
    SerialForcePlateOptions options;
    options.sysfs_root = fake_->sysfs_root();
    options.debug_log = [this](absl::string_view note) {
      notes_.emplace_back(note);
    };
    auto plate = MakeSerialForcePlate(config_, kId, io_, options);
    EXPECT_TRUE(plate.ok()) << plate.status();
    if (!plate.ok()) return nullptr;
    EXPECT_TRUE((*plate)->Start().ok());
    return *std::move(plate);
  }

  void Drain(SensorSource& plate) {
    v1::SampleBatch batch;
    ASSERT_TRUE(plate.Poll(std::numeric_limits<int64_t>::max(), &batch).ok());
    for (const v1::ForceSamples& force : batch.force()) {
      ASSERT_EQ(force.sensor_id(), kId);
      for (int i = 0; i < force.t_us_size(); ++i) {
        t_us_.push_back(force.t_us(i));
        fz_.push_back(force.fz_n(i));
        cop_x_.push_back(force.cop_x_mm(i));
        cop_y_.push_back(force.cop_y_mm(i));
      }
    }
  }

  // Writes what the fake queued and runs the driver until n rows came out.
  bool RunUntilRows(SensorSource& plate, size_t n) {
    return RunUntil(
        io_,
        [&] {
          Drain(plate);
          return fz_.size() >= n;
        },
        [&] { fake_->Flush(); });
  }

  v1::SensorHealth HealthNow(const SensorSource& plate) {
    auto health = plate.Health(MonotonicMicros());
    EXPECT_EQ(health.size(), 1u);
    return health.empty() ? v1::SensorHealth() : health.front();
  }

  static constexpr uint32_t kId = 1;
  stephub::testing::TempDir tmp_;
  boost::asio::io_context io_;
  std::unique_ptr<FakeForcePlate> fake_;
  v1::SerialForcePlateConfig config_;
  std::vector<std::string> notes_;
  std::vector<int64_t> t_us_;
  std::vector<float> fz_, cop_x_, cop_y_;
};

TEST_F(SerialForcePlateTest, DecodesFramesIntoForceAndCop) {
  auto plate = Start();
  ASSERT_NE(plate, nullptr);
  EXPECT_EQ(fake_->LatencyTimer(), "1");  // FTDI: 16 ms bursts -> 1 ms
  for (int k = 0; k < 50; ++k) fake_->QueueSample(Counts(100, 200, 300, 400));
  fake_->QueueSample(Counts(1, 2, 3, 4));
  ASSERT_TRUE(RunUntilRows(*plate, 51));
  ASSERT_EQ(fz_.size(), 51u);
  for (int k = 0; k < 50; ++k) {
    EXPECT_FLOAT_EQ(fz_[k], 1000);
    EXPECT_NEAR(cop_x_[k], 0, 1e-4);
    EXPECT_FLOAT_EQ(cop_y_[k], 120);
  }
  EXPECT_FLOAT_EQ(fz_[50], 10);
  EXPECT_TRUE(std::isnan(cop_x_[50]));
  for (size_t i = 1; i < t_us_.size(); ++i) EXPECT_GT(t_us_[i], t_us_[i - 1]);

  const auto sensors = plate->Sensors();
  ASSERT_EQ(sensors.size(), 1u);
  EXPECT_EQ(sensors[0].sensor_id(), kId);
  EXPECT_EQ(sensors[0].kind(), v1::SENSOR_KIND_FORCE_PLATE);
  EXPECT_EQ(sensors[0].placement(), v1::PLACEMENT_STANCE_FOOT);
  EXPECT_DOUBLE_EQ(sensors[0].rate_hz(), 1000);
  EXPECT_EQ(sensors[0].driver(), "serial-plate");
  EXPECT_EQ(sensors[0].device(), fake_->device_path());
  const auto health = HealthNow(*plate);
  EXPECT_EQ(health.state(), v1::SENSOR_STATE_OK);
  EXPECT_EQ(health.samples_lost(), 0u);
}

TEST_F(SerialForcePlateTest, MalformedFramesAreSkippedAndCounted) {
  auto plate = Start();
  ASSERT_NE(plate, nullptr);
  for (int k = 0; k < 10; ++k) fake_->QueueSample(Counts(k + 100, 0, 0, 0));
  fake_->QueueCorruptSample(Counts(999, 0, 0, 0));  // counter 10
  for (int k = 11; k < 20; ++k) fake_->QueueSample(Counts(k + 100, 0, 0, 0));
  // Line noise with a false sync in it, between two frames.
  fake_->QueueGarbage({0x00, 0xA5, 0x5A, 0x11, 0x42, 0xFF, 0xA5});
  for (int k = 20; k < 30; ++k) fake_->QueueSample(Counts(k + 100, 0, 0, 0));
  ASSERT_TRUE(RunUntilRows(*plate, 29));
  ASSERT_EQ(fz_.size(), 29u);
  std::vector<float> expected;
  for (int k = 0; k < 30; ++k) {
    if (k != 10) expected.push_back(static_cast<float>(k + 100));
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(fz_[i], expected[i], 1e-3) << i;
  }
  // The damaged frame (its counter missing) and the noise: two losses.
  EXPECT_EQ(HealthNow(*plate).samples_lost(), 2u);
  EXPECT_EQ(HealthNow(*plate).state(), v1::SENSOR_STATE_OK);
}

TEST_F(SerialForcePlateTest, CounterGapCountsLostSamples) {
  auto plate = Start();
  ASSERT_NE(plate, nullptr);
  for (int k = 0; k < 5; ++k) fake_->QueueSample(Counts(300, 0, 0, 0));
  fake_->SkipSamples(7);
  for (int k = 0; k < 5; ++k) fake_->QueueSample(Counts(300, 0, 0, 0));
  ASSERT_TRUE(RunUntilRows(*plate, 10));
  EXPECT_EQ(HealthNow(*plate).samples_lost(), 7u);
  // The gap shows in the timestamps too.
  EXPECT_GE(t_us_[5] - t_us_[4], 7000);
}

TEST_F(SerialForcePlateTest, StuckCellIsFaultUntilItVaries) {
  auto plate = Start();
  ASSERT_NE(plate, nullptr);
  // 1.1 s of plate time with cell 3 pinned at full scale, the others noisy.
  for (int k = 0; k < 1100; ++k) {
    auto counts = Counts(200 + k % 7, 200 - k % 5, 0, 200 + k % 3);
    counts[2] = 8388607;
    fake_->QueueSample(counts);
  }
  ASSERT_TRUE(RunUntilRows(*plate, 1100));
  auto health = HealthNow(*plate);
  EXPECT_EQ(health.state(), v1::SENSOR_STATE_FAULT);
  EXPECT_EQ(health.detail(),
            "load cell 3 reads a constant 8388607 — saturated or unplugged");

  fake_->QueueSample(Counts(200, 200, 200, 200));
  ASSERT_TRUE(RunUntilRows(*plate, 1101));
  EXPECT_EQ(HealthNow(*plate).state(), v1::SENSOR_STATE_OK);
}

TEST_F(SerialForcePlateTest, HalfASecondOfAConstantCellIsNoFault) {
  auto plate = Start();
  ASSERT_NE(plate, nullptr);
  for (int k = 0; k < 500; ++k)
    fake_->QueueSample(Counts(200 + k % 7, 0, 0, 0));
  ASSERT_TRUE(RunUntilRows(*plate, 500));
  EXPECT_EQ(HealthNow(*plate).state(), v1::SENSOR_STATE_OK);
}

TEST_F(SerialForcePlateTest, StatusFrameAdcErrorIsFault) {
  auto plate = Start();
  ASSERT_NE(plate, nullptr);
  fake_->QueueSample(Counts(100, 100, 100, 100));
  fake_->QueueStatus(0b0010);
  fake_->QueueSample(Counts(100, 100, 100, 100));
  ASSERT_TRUE(RunUntilRows(*plate, 2));
  auto health = HealthNow(*plate);
  EXPECT_EQ(health.state(), v1::SENSOR_STATE_FAULT);
  EXPECT_THAT(health.detail(), HasSubstr("load cell 2: ADC not converting"));
  EXPECT_EQ(health.samples_lost(), 0u);  // a status frame takes no counter
  EXPECT_EQ(plate->Sensors()[0].model(), "stephub-plate fw 1.4");

  fake_->QueueStatus(0);
  fake_->QueueSample(Counts(100, 100, 100, 100));
  ASSERT_TRUE(RunUntilRows(*plate, 3));
  EXPECT_EQ(HealthNow(*plate).state(), v1::SENSOR_STATE_OK);
}

TEST_F(SerialForcePlateTest, SilentPlateIsNoData) {
  auto plate = Start();
  ASSERT_NE(plate, nullptr);
  fake_->QueueSample(Counts(100, 100, 100, 100));
  ASSERT_TRUE(RunUntilRows(*plate, 1));
  const int64_t now = MonotonicMicros();
  EXPECT_EQ(plate->Health(now)[0].state(), v1::SENSOR_STATE_OK);
  const auto health = plate->Health(now + 300'000)[0];
  EXPECT_EQ(health.state(), v1::SENSOR_STATE_NO_DATA);
  EXPECT_THAT(health.detail(), HasSubstr("no frames from the force plate"));
}

TEST_F(SerialForcePlateTest, UnpluggedPlateIsDisconnectedThenReopened) {
  auto plate = Start();
  ASSERT_NE(plate, nullptr);
  fake_->QueueSample(Counts(100, 100, 100, 100));
  ASSERT_TRUE(RunUntilRows(*plate, 1));

  fake_->Unplug();
  ASSERT_TRUE(RunUntil(io_, [&] {
    return HealthNow(*plate).state() == v1::SENSOR_STATE_DISCONNECTED;
  }));
  EXPECT_THAT(HealthNow(*plate).detail(), HasSubstr("went away"));

  ASSERT_TRUE(fake_->Replug().ok());
  EXPECT_EQ(fake_->LatencyTimer(), "16");  // a new adapter, at its default
  // Keeps sending until the driver, retrying every second, reads again.
  ASSERT_TRUE(RunUntil(
      io_,
      [&] {
        Drain(*plate);
        return fz_.size() >= 2;
      },
      [&] {
        if (fake_->Flush() == 0) fake_->QueueSample(Counts(50, 50, 50, 50));
      }));
  EXPECT_FLOAT_EQ(fz_.back(), 200);
  EXPECT_EQ(HealthNow(*plate).state(), v1::SENSOR_STATE_OK);
  EXPECT_EQ(fake_->LatencyTimer(), "1");
  for (size_t i = 1; i < t_us_.size(); ++i) EXPECT_GT(t_us_[i], t_us_[i - 1]);
}

TEST_F(SerialForcePlateTest, MissingLatencyTimerIsADebugNote) {
  // A serial adapter that is not an FTDI: no latency_timer in sysfs.
  std::error_code ec;
  std::filesystem::remove_all(fake_->sysfs_root(), ec);
  auto plate = Start();
  ASSERT_NE(plate, nullptr);
  ASSERT_FALSE(notes_.empty());
  EXPECT_THAT(notes_.front(), HasSubstr("no latency_timer"));
}

TEST(SerialForcePlateConfigTest, BadConfigNamesTheField) {
  boost::asio::io_context io;
  auto error = [&io](const v1::SerialForcePlateConfig& config) {
    return MakeSerialForcePlate(config, 1, io).status();
  };
  EXPECT_TRUE(error(PlateConfig()).ok());

  auto config = PlateConfig();
  config.mutable_cells()->RemoveLast();
  EXPECT_EQ(error(config).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(error(config).message(),
              HasSubstr("serial_force_plate.cells: 3 given"));

  config = PlateConfig();
  config.set_expected_rate_hz(80);
  EXPECT_THAT(error(config).message(),
              HasSubstr("serial_force_plate.expected_rate_hz: 80 Hz"));
  EXPECT_THAT(error(config).message(), HasSubstr("HX711"));

  config = PlateConfig();
  config.mutable_cells(2)->set_newtons_per_count(0);
  EXPECT_THAT(error(config).message(),
              HasSubstr("serial_force_plate.cells[2].newtons_per_count"));

  config = PlateConfig();
  for (int i = 0; i < 4; ++i) {
    config.mutable_cells(i)->set_x_mm(10.0 * i);
    config.mutable_cells(i)->set_y_mm(20.0 * i);
  }
  EXPECT_THAT(error(config).message(), HasSubstr("lie on one line"));

  config = PlateConfig();
  config.set_baud(115200);
  EXPECT_THAT(error(config).message(),
              HasSubstr("serial_force_plate.baud: 115200 baud carries"));
  config.set_baud(123456);
  EXPECT_THAT(error(config).message(), HasSubstr("not a standard rate"));

  config = PlateConfig();
  config.clear_device();
  EXPECT_THAT(error(config).message(),
              HasSubstr("serial_force_plate.device: required"));
}

}  // namespace
}  // namespace stephub::station
