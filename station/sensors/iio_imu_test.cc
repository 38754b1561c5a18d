// Tests of the IIO IMU driver against fake IIO devices (a sysfs tree plus a
// FIFO standing in for /dev/iio:deviceN).
#include "station/sensors/iio_imu.h"

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "station/sensors/testing/fake_iio_device.h"
#include "station/sensors/testing/run_until.h"
#include "tests/testing.h"

namespace stephub::station {
namespace {

using ::stephub::station::testing::FakeIioDevice;
using ::stephub::station::testing::RunUntil;
using ::testing::HasSubstr;

// What the driver handed out so far.
struct Rows {
  std::vector<int64_t> t_us;
  std::vector<std::array<float, 3>> accel;
  std::vector<std::array<float, 3>> gyro;
  size_t size() const { return t_us.size(); }
};

void Drain(SensorSource& source, uint32_t sensor_id, Rows* rows) {
  v1::SampleBatch batch;
  ASSERT_TRUE(source.Poll(std::numeric_limits<int64_t>::max(), &batch).ok());
  for (const v1::ImuSamples& imu : batch.imu()) {
    ASSERT_EQ(imu.sensor_id(), sensor_id);
    ASSERT_GT(imu.t_us_size(), 0);
    for (int i = 0; i < imu.t_us_size(); ++i) {
      rows->t_us.push_back(imu.t_us(i));
      rows->accel.push_back({imu.ax_mps2(i), imu.ay_mps2(i), imu.az_mps2(i)});
      rows->gyro.push_back({imu.gx_radps(i), imu.gy_radps(i), imu.gz_radps(i)});
    }
  }
}

std::map<std::string, int64_t> Accel(int64_t x, int64_t y, int64_t z) {
  return {{"in_accel_x", x}, {"in_accel_y", y}, {"in_accel_z", z}};
}
std::map<std::string, int64_t> Gyro(int64_t x, int64_t y, int64_t z) {
  return {{"in_anglvel_x", x}, {"in_anglvel_y", y}, {"in_anglvel_z", z}};
}
std::map<std::string, int64_t> Both(std::array<int64_t, 3> a,
                                    std::array<int64_t, 3> g) {
  auto raw = Accel(a[0], a[1], a[2]);
  raw.merge(Gyro(g[0], g[1], g[2]));
  raw["in_temp"] = 999;  // between accel and gyro in inv_mpu6050's scan
  return raw;
}

class IioImuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path() + "/iio";
    // Sample timestamps in the recent past, on CLOCK_MONOTONIC, in ns.
    base_ns_ = (MonotonicMicros() - 2'000'000) * 1000;
  }

  // st_lsm6dsx: accelerometer iio:device0, gyroscope iio:device1.
  void MakeLsm6dsox() {
    auto accel = FakeIioDevice::Create(root_, "iio:device0",
                                       testing::Lsm6dsoxAccelSpec());
    auto gyro = FakeIioDevice::Create(root_, "iio:device1",
                                      testing::Lsm6dsoxGyroSpec());
    ASSERT_TRUE(accel.ok()) << accel.status();
    ASSERT_TRUE(gyro.ok()) << gyro.status();
    accel_ = *std::move(accel);
    gyro_ = *std::move(gyro);
    config_.set_accel_device("lsm6dsox_accel");
    config_.set_gyro_device("lsm6dsox_gyro");
    config_.set_accel_buffer_device(accel_->buffer_path());
    config_.set_gyro_buffer_device(gyro_->buffer_path());
    config_.set_sysfs_root(root_);
    config_.set_sampling_frequency_hz(200);  // nearest offered: 208
    config_.set_accel_range_g(8);
    config_.set_gyro_range_dps(1000);
    config_.set_fifo_watermark(4);
    period_ns_ = 4'807'692;  // 208 Hz
  }

  // inv_mpu6050: one device, given by its sysfs path.
  void MakeMpu6050() {
    auto mpu =
        FakeIioDevice::Create(root_, "iio:device0", testing::Mpu6050Spec());
    ASSERT_TRUE(mpu.ok()) << mpu.status();
    accel_ = *std::move(mpu);
    config_.set_accel_device(accel_->sysfs_dir());
    config_.set_accel_buffer_device(accel_->buffer_path());
    config_.set_sysfs_root(root_);
    config_.set_sampling_frequency_hz(200);
    config_.set_accel_range_g(8);
    config_.set_gyro_range_dps(1000);
    config_.set_fifo_watermark(4);
    period_ns_ = 5'000'000;
  }

  std::unique_ptr<SensorSource> Start() {
    auto imu = MakeIioImu(config_, kId, v1::PLACEMENT_SACRUM, io_);
    EXPECT_TRUE(imu.ok()) << imu.status();
    if (!imu.ok()) return nullptr;
    EXPECT_TRUE((*imu)->Start().ok());
    return *std::move(imu);
  }

  absl::Status MakeError() {
    return MakeIioImu(config_, kId, v1::PLACEMENT_SACRUM, io_).status();
  }

  int64_t T(int k) const { return base_ns_ + k * period_ns_; }

  bool RunUntilRows(SensorSource& imu, Rows* rows, size_t n) {
    return RunUntil(io_, [&] {
      Drain(imu, kId, rows);
      return rows->size() >= n;
    });
  }

  v1::SensorHealth HealthAt(const SensorSource& imu, int64_t now_us) {
    auto health = imu.Health(now_us);
    EXPECT_EQ(health.size(), 1u);
    return health.empty() ? v1::SensorHealth() : health.front();
  }

  static constexpr uint32_t kId = 10;
  stephub::testing::TempDir tmp_;
  std::string root_;
  boost::asio::io_context io_;
  v1::IioImuConfig config_;
  std::unique_ptr<FakeIioDevice> accel_;
  std::unique_ptr<FakeIioDevice> gyro_;
  int64_t base_ns_ = 0;
  int64_t period_ns_ = 0;
};

TEST_F(IioImuTest, ConfiguresSysfsAsRequested) {
  MakeLsm6dsox();
  auto imu = Start();
  ASSERT_NE(imu, nullptr);

  EXPECT_EQ(accel_->Read("sampling_frequency"), "208.000");
  EXPECT_EQ(gyro_->Read("sampling_frequency"), "208.000");
  // 8 g: 0.244 mg/LSB; 1000 dps: 35 mdps/LSB.
  EXPECT_EQ(accel_->Read("in_accel_scale"), "0.002392822");
  EXPECT_EQ(gyro_->Read("in_anglvel_scale"), "0.000610865");
  for (FakeIioDevice* device : {accel_.get(), gyro_.get()}) {
    EXPECT_EQ(device->Read("current_timestamp_clock"), "monotonic");
    EXPECT_EQ(device->Read("scan_elements/in_timestamp_en"), "1");
    EXPECT_EQ(device->Read("buffer/watermark"), "4");
    EXPECT_EQ(device->Read("buffer/length"), "208");  // about a second
    EXPECT_EQ(device->Read("buffer/enable"), "1");
  }
  for (const char* axis : {"x", "y", "z"}) {
    EXPECT_EQ(
        accel_->Read(std::string("scan_elements/in_accel_") + axis + "_en"),
        "1");
    EXPECT_EQ(
        gyro_->Read(std::string("scan_elements/in_anglvel_") + axis + "_en"),
        "1");
  }

  const auto sensors = imu->Sensors();
  ASSERT_EQ(sensors.size(), 1u);
  EXPECT_EQ(sensors[0].sensor_id(), kId);
  EXPECT_EQ(sensors[0].kind(), v1::SENSOR_KIND_IMU);
  EXPECT_EQ(sensors[0].placement(), v1::PLACEMENT_SACRUM);
  EXPECT_DOUBLE_EQ(sensors[0].rate_hz(), 208);
  EXPECT_EQ(sensors[0].model(), "lsm6dsox_accel + lsm6dsox_gyro");
  EXPECT_EQ(sensors[0].driver(), "iio");
  EXPECT_EQ(sensors[0].device(),
            accel_->sysfs_dir() + " + " + gyro_->sysfs_dir());
  EXPECT_EQ(HealthAt(*imu, MonotonicMicros()).state(), v1::SENSOR_STATE_OK);

  imu->Stop();
  EXPECT_EQ(accel_->Read("buffer/enable"), "0");
}

TEST_F(IioImuTest, PairsTwoDevicesByTimestampInSiUnits) {
  MakeLsm6dsox();
  auto imu = Start();
  ASSERT_NE(imu, nullptr);
  for (int k = 0; k < 5; ++k) {
    ASSERT_TRUE(accel_->PushScan(Accel(4096, -2048, 16384 + k), T(k)).ok());
    // The gyroscope's scans carry their own, slightly later, timestamps.
    ASSERT_TRUE(gyro_->PushScan(Gyro(100, -200, 300 + k), T(k) + 300'000).ok());
  }
  Rows rows;
  ASSERT_TRUE(RunUntilRows(*imu, &rows, 5));
  ASSERT_EQ(rows.size(), 5u);
  for (int k = 0; k < 5; ++k) {
    EXPECT_EQ(rows.t_us[k], T(k) / 1000);
    EXPECT_FLOAT_EQ(rows.accel[k][0], static_cast<float>(4096 * 0.002392822));
    EXPECT_FLOAT_EQ(rows.accel[k][1], static_cast<float>(-2048 * 0.002392822));
    EXPECT_FLOAT_EQ(rows.accel[k][2],
                    static_cast<float>((16384 + k) * 0.002392822));
    EXPECT_FLOAT_EQ(rows.gyro[k][0], static_cast<float>(100 * 0.000610865));
    EXPECT_FLOAT_EQ(rows.gyro[k][1], static_cast<float>(-200 * 0.000610865));
    EXPECT_FLOAT_EQ(rows.gyro[k][2],
                    static_cast<float>((300 + k) * 0.000610865));
  }
  EXPECT_EQ(HealthAt(*imu, MonotonicMicros()).samples_lost(), 0u);
}

TEST_F(IioImuTest, ScanWithoutPartnerIsDroppedAndCounted) {
  MakeLsm6dsox();
  auto imu = Start();
  ASSERT_NE(imu, nullptr);
  for (int k = 0; k < 10; ++k) {
    ASSERT_TRUE(accel_->PushScan(Accel(k, 0, 0), T(k)).ok());
    if (k != 5) {
      ASSERT_TRUE(gyro_->PushScan(Gyro(k, 0, 0), T(k)).ok());
    }
  }
  Rows rows;
  ASSERT_TRUE(RunUntilRows(*imu, &rows, 9));
  ASSERT_EQ(rows.size(), 9u);
  for (size_t i = 0; i < rows.size(); ++i) {
    // Rows pair scans of the same instant.
    EXPECT_FLOAT_EQ(rows.accel[i][0] / 0.002392822f,
                    rows.gyro[i][0] / 0.000610865f);
  }
  EXPECT_EQ(HealthAt(*imu, MonotonicMicros()).samples_lost(), 1u);
}

TEST_F(IioImuTest, DecodesBigEndianScanWithTemperatureInBetween) {
  MakeMpu6050();
  auto imu = Start();
  ASSERT_NE(imu, nullptr);
  EXPECT_EQ(accel_->Read("sampling_frequency"), "200");
  EXPECT_EQ(accel_->Read("in_accel_scale"), "0.002392");
  EXPECT_EQ(accel_->Read("in_anglvel_scale"), "0.000532362");
  // The temperature channel stays as it was: the driver skips over it.
  EXPECT_EQ(accel_->Read("scan_elements/in_temp_en"), "1");

  auto scan =
      accel_->EncodeScan(Both({-1, 12345, -32768}, {1, -1, 32767}), T(0));
  ASSERT_TRUE(scan.ok());
  // 7 x s16 = 14 bytes, the timestamp aligned to 16, 24 in all.
  ASSERT_EQ(scan->size(), 24u);
  // A record split across two reads still decodes.
  ASSERT_TRUE(accel_->PushBytes({scan->begin(), scan->begin() + 10}).ok());
  Rows rows;
  // Lets the driver read the first half on its own.
  RunUntil(
      io_, [] { return false; }, nullptr, std::chrono::milliseconds(20));
  ASSERT_TRUE(accel_->PushBytes({scan->begin() + 10, scan->end()}).ok());
  ASSERT_TRUE(accel_->PushScan(Both({2, 3, 4}, {5, 6, 7}), T(1)).ok());
  ASSERT_TRUE(RunUntilRows(*imu, &rows, 2));

  EXPECT_EQ(rows.t_us[0], T(0) / 1000);
  EXPECT_FLOAT_EQ(rows.accel[0][0], static_cast<float>(-1 * 0.002392));
  EXPECT_FLOAT_EQ(rows.accel[0][1], static_cast<float>(12345 * 0.002392));
  EXPECT_FLOAT_EQ(rows.accel[0][2], static_cast<float>(-32768 * 0.002392));
  EXPECT_FLOAT_EQ(rows.gyro[0][0], static_cast<float>(1 * 0.000532362));
  EXPECT_FLOAT_EQ(rows.gyro[0][1], static_cast<float>(-1 * 0.000532362));
  EXPECT_FLOAT_EQ(rows.gyro[0][2], static_cast<float>(32767 * 0.000532362));
  EXPECT_FLOAT_EQ(rows.gyro[1][2], static_cast<float>(7 * 0.000532362));

  const auto sensors = imu->Sensors();
  EXPECT_EQ(sensors[0].model(), "mpu6050");
  EXPECT_DOUBLE_EQ(sensors[0].rate_hz(), 200);
}

TEST_F(IioImuTest, AppliesAxisMapToBothVectors) {
  MakeMpu6050();
  config_.set_axis_map("-y, x, z");
  auto imu = Start();
  ASSERT_NE(imu, nullptr);
  ASSERT_TRUE(accel_->PushScan(Both({10, 20, 30}, {-1, -2, -3}), T(0)).ok());
  Rows rows;
  ASSERT_TRUE(RunUntilRows(*imu, &rows, 1));
  EXPECT_FLOAT_EQ(rows.accel[0][0], static_cast<float>(-20 * 0.002392));
  EXPECT_FLOAT_EQ(rows.accel[0][1], static_cast<float>(10 * 0.002392));
  EXPECT_FLOAT_EQ(rows.accel[0][2], static_cast<float>(30 * 0.002392));
  EXPECT_FLOAT_EQ(rows.gyro[0][0], static_cast<float>(2 * 0.000532362));
  EXPECT_FLOAT_EQ(rows.gyro[0][1], static_cast<float>(-1 * 0.000532362));
  EXPECT_FLOAT_EQ(rows.gyro[0][2], static_cast<float>(-3 * 0.000532362));
}

TEST_F(IioImuTest, FifoOverflowGapCountsLostSamples) {
  MakeMpu6050();
  auto imu = Start();
  ASSERT_NE(imu, nullptr);
  // The kernel drops what an overflowing FIFO could not hold: 20 samples
  // never appear, only the jump in timestamps shows them.
  for (int k : {0, 1, 2, 3, 4, 25, 26, 27}) {
    ASSERT_TRUE(accel_->PushScan(Both({k, 0, 0}, {0, 0, 0}), T(k)).ok());
  }
  Rows rows;
  ASSERT_TRUE(RunUntilRows(*imu, &rows, 8));
  EXPECT_EQ(rows.t_us[5] - rows.t_us[4], 21 * period_ns_ / 1000);
  const auto health = HealthAt(*imu, MonotonicMicros());
  EXPECT_EQ(health.state(), v1::SENSOR_STATE_OK);
  EXPECT_EQ(health.samples_lost(), 20u);
}

TEST_F(IioImuTest, SensorThatStopsIsNoData) {
  MakeMpu6050();
  auto imu = Start();
  ASSERT_NE(imu, nullptr);
  ASSERT_TRUE(accel_->PushScan(Both({1, 2, 3}, {4, 5, 6}), T(0)).ok());
  Rows rows;
  ASSERT_TRUE(RunUntilRows(*imu, &rows, 1));
  const int64_t now = MonotonicMicros();
  EXPECT_EQ(HealthAt(*imu, now).state(), v1::SENSOR_STATE_OK);
  // 200 Hz: ten periods are 50 ms, so the 200 ms floor applies.
  EXPECT_EQ(HealthAt(*imu, now + 150'000).state(), v1::SENSOR_STATE_OK);
  const auto health = HealthAt(*imu, now + 1'500'000);
  EXPECT_EQ(health.state(), v1::SENSOR_STATE_NO_DATA);
  EXPECT_THAT(health.detail(),
              HasSubstr("no samples from mpu6050 (iio:device0)"));
}

TEST_F(IioImuTest, ClosedBufferIsDisconnectedThenRecovers) {
  MakeMpu6050();
  auto imu = Start();
  ASSERT_NE(imu, nullptr);
  ASSERT_TRUE(accel_->PushScan(Both({1, 2, 3}, {4, 5, 6}), T(0)).ok());
  Rows rows;
  ASSERT_TRUE(RunUntilRows(*imu, &rows, 1));

  accel_->Unplug();
  ASSERT_TRUE(RunUntil(io_, [&] {
    return HealthAt(*imu, MonotonicMicros()).state() ==
           v1::SENSOR_STATE_DISCONNECTED;
  }));
  EXPECT_THAT(HealthAt(*imu, MonotonicMicros()).detail(),
              HasSubstr("mpu6050 (iio:device0): buffer"));
  // The kernel forgets the buffer state when the device goes.
  accel_->Write("buffer/enable", "0");

  ASSERT_TRUE(accel_->Replug().ok());
  ASSERT_TRUE(accel_->PushScan(Both({7, 8, 9}, {1, 1, 1}), T(500)).ok());
  ASSERT_TRUE(RunUntilRows(*imu, &rows, 2));  // reopened within a second
  EXPECT_EQ(rows.t_us[1], T(500) / 1000);
  EXPECT_FLOAT_EQ(rows.accel[1][0], static_cast<float>(7 * 0.002392));
  EXPECT_EQ(accel_->Read("buffer/enable"), "1");
  const auto health = HealthAt(*imu, MonotonicMicros());
  EXPECT_EQ(health.state(), v1::SENSOR_STATE_OK);
  EXPECT_EQ(health.samples_lost(), 0u);  // downtime is not counted as loss
}

TEST_F(IioImuTest, BadConfigNamesTheField) {
  MakeLsm6dsox();
  config_.set_accel_range_g(40);
  EXPECT_EQ(MakeError().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MakeError().message(),
              HasSubstr("iio_imu.accel_range_g: 40 g is more than "
                        "lsm6dsox_accel (iio:device0) offers (2, 4, 8, 16)"));
  config_.set_accel_range_g(8);

  config_.set_gyro_range_dps(5000);
  EXPECT_THAT(MakeError().message(),
              HasSubstr("iio_imu.gyro_range_dps: 5000 dps is more than "
                        "lsm6dsox_gyro (iio:device1) offers"));
  config_.set_gyro_range_dps(1000);

  for (const char* bad : {"x,x,z", "x,y", "x,y,w", "-q,y,z"}) {
    config_.set_axis_map(bad);
    EXPECT_EQ(MakeError().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(MakeError().message(), HasSubstr("iio_imu.axis_map")) << bad;
  }
  config_.clear_axis_map();

  config_.set_accel_device("bmi160_accel");
  EXPECT_EQ(MakeError().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MakeError().message(),
              HasSubstr("iio_imu.accel_device: no IIO device named "
                        "\"bmi160_accel\""));
  EXPECT_THAT(MakeError().message(), HasSubstr("lsm6dsox_gyro (iio:device1)"));
  config_.set_accel_device("lsm6dsox_accel");

  config_.clear_gyro_device();  // st_lsm6dsx's accel device has no gyro
  EXPECT_THAT(MakeError().message(), HasSubstr("iio_imu.gyro_device"));
  config_.set_gyro_device("lsm6dsox_gyro");

  config_.set_sampling_frequency_hz(-5);
  EXPECT_THAT(MakeError().message(),
              HasSubstr("iio_imu.sampling_frequency_hz"));
  config_.set_sampling_frequency_hz(200);
  EXPECT_TRUE(MakeError().ok());
}

TEST(IioScanTypeTest, ParsesAndDecodesKernelFormats) {
  auto le = ParseIioScanType("le:s16/16>>0");
  ASSERT_TRUE(le.ok());
  const uint8_t le_bytes[] = {0xFE, 0xFF};
  EXPECT_EQ(DecodeIioElement(*le, le_bytes), -2);

  auto be = ParseIioScanType("be:s12/16>>4");
  ASSERT_TRUE(be.ok());
  EXPECT_TRUE(be->big_endian);
  const uint8_t be_bytes[] = {0xFF, 0xF3};  // 0xFFF in the top 12 bits: -1
  EXPECT_EQ(DecodeIioElement(*be, be_bytes), -1);

  auto u = ParseIioScanType("le:u10/16>>2");
  ASSERT_TRUE(u.ok());
  const uint8_t u_bytes[] = {0xFC, 0xFF};  // all ten bits set, shifted by 2
  EXPECT_EQ(DecodeIioElement(*u, u_bytes), 1023);

  auto ts = ParseIioScanType("le:s64/64>>0");
  ASSERT_TRUE(ts.ok());
  const uint8_t ts_bytes[] = {0x00, 0xCA, 0x9A, 0x3B, 0, 0, 0, 0};
  EXPECT_EQ(DecodeIioElement(*ts, ts_bytes), 1'000'000'000);

  EXPECT_THAT(ParseIioScanType("le:s16/16X2>>0").status().message(),
              HasSubstr("repeated scan elements are not supported"));
  EXPECT_FALSE(ParseIioScanType("xe:s16/16>>0").ok());
  EXPECT_FALSE(ParseIioScanType("le:s17/16>>0").ok());
  EXPECT_FALSE(ParseIioScanType("le:s16/12>>0").ok());
}

}  // namespace
}  // namespace stephub::station
