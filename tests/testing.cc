// Helpers shared by the integration tests; see testing.h.
#include "tests/testing.h"

#include <filesystem>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace stephub::testing {

TempDir::TempDir() {
  std::random_device rd;
  const char* base = std::getenv("TEST_TMPDIR");
  std::filesystem::path dir =
      base ? base : std::filesystem::temp_directory_path();
  path_ = (dir / absl::StrCat("stephub-test-", rd(), "-", rd())).string();
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

v1::StationHello SacrumHello(const std::string& station_id,
                             const std::string& boot_id) {
  v1::StationHello hello;
  hello.set_station_id(station_id);
  hello.set_boot_id(boot_id);
  v1::SensorInfo* imu = hello.add_sensors();
  imu->set_sensor_id(10);
  imu->set_kind(v1::SENSOR_KIND_IMU);
  imu->set_placement(v1::PLACEMENT_SACRUM);
  imu->set_rate_hz(200);
  return hello;
}

v1::SampleBatch StandingBatch(uint64_t seq, int64_t t0_us, int n) {
  v1::SampleBatch batch;
  batch.set_seq(seq);
  v1::ImuSamples* imu = batch.add_imu();
  imu->set_sensor_id(10);
  for (int i = 0; i < n; ++i) {
    imu->add_t_us(t0_us + i * 5000);
    imu->add_ax_mps2(0);
    imu->add_ay_mps2(0);
    imu->add_az_mps2(9.81f);
    imu->add_gx_radps(0);
    imu->add_gy_radps(0);
    imu->add_gz_radps(0);
  }
  return batch;
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

}  // namespace stephub::testing
