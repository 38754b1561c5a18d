// Feeds the real station drivers (four st_lsm6dsx IIO IMUs, the serial force
// plate) full-rate device data from the fake devices, as fast as they decode
// it, so that bench/driver_cost.sh can count their instructions under
// callgrind. Driver work runs only inside the Drive*/Poll* functions below;
// the fakes' encoding and writing only inside the Write* functions.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "boost/asio/io_context.hpp"
#include "station/sensors/iio_imu.h"
#include "station/sensors/sensor_source.h"
#include "station/sensors/serial_force_plate.h"
#include "station/sensors/testing/fake_force_plate.h"
#include "station/sensors/testing/fake_iio_device.h"

namespace stephub::station {
namespace {

using ::stephub::station::testing::FakeForcePlate;
using ::stephub::station::testing::FakeIioDevice;

constexpr int kImus = 4;
constexpr int kImuRateHz = 208;
constexpr int64_t kImuPeriodNs = 4'807'692;  // 208 Hz
// The driver's default FIFO watermark: the kernel hands over 16 scans at a
// time.
constexpr int kWatermark = 16;
// st_lsm6dsx's scan: x, y, z as le:s16, padding, the le:s64 timestamp at 8.
constexpr size_t kRecordBytes = 16;
constexpr int kPlateRateHz = 1000;
constexpr int kTickMs = 25;  // the station polls every 25 ms
// How long one event-loop turn may wait for a device's bytes; a driver that
// stops reading fails the run instead of hanging it.
constexpr auto kWait = std::chrono::seconds(1);
constexpr int kMaxIdleTurns = 10;

[[noreturn]] void Fail(const std::string& why) {
  std::fprintf(stderr, "driver_cost: FAILED: %s\n", why.c_str());
  std::exit(1);
}

// Cheap deterministic noise: real sensors never repeat a reading exactly,
// and the plate driver treats a constant cell as stuck.
class Noise {
 public:
  int32_t Next(int32_t amplitude) {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return static_cast<int32_t>(state_ % (2 * amplitude + 1)) - amplitude;
  }

 private:
  uint64_t state_ = 0x9E3779B97F4A7C15u;
};

// Bytes the kernel holds for a reader of `fd` (a FIFO, or the plate's
// pseudo-terminal slave): zero once the driver has read everything.
int BytesWaiting(int fd) {
  int n = 0;
  if (::ioctl(fd, FIONREAD, &n) != 0) Fail("FIONREAD failed");
  return n;
}

// One IIO device of one IMU (st_lsm6dsx registers accelerometer and
// gyroscope separately) and where its data stream stands.
struct ImuDevice {
  std::unique_ptr<FakeIioDevice> fake;
  bool accel = true;
  int64_t phase_ns = 0;  // its scans' offset from the simulated clock
  int next_scan = 0;
  int probe_fd = -1;  // our own read end of its FIFO, only for FIONREAD
};

void PutScan(const std::array<int16_t, 3>& xyz, int64_t timestamp_ns,
             uint8_t* out) {
  std::memset(out, 0, kRecordBytes);
  for (int i = 0; i < 3; ++i) {
    const auto v = static_cast<uint16_t>(xyz[i]);
    out[2 * i] = static_cast<uint8_t>(v);
    out[2 * i + 1] = static_cast<uint8_t>(v >> 8);
  }
  const auto ts = static_cast<uint64_t>(timestamp_ns);
  for (int i = 0; i < 8; ++i) out[8 + i] = static_cast<uint8_t>(ts >> (8 * i));
}

std::array<int16_t, 3> RawImu(bool accel, Noise& noise) {
  // Standing still: about 1 g on z at 8 g full scale, gyroscope near zero.
  if (accel) {
    return {static_cast<int16_t>(noise.Next(40)),
            static_cast<int16_t>(noise.Next(40)),
            static_cast<int16_t>(4100 + noise.Next(40))};
  }
  return {static_cast<int16_t>(noise.Next(30)),
          static_cast<int16_t>(noise.Next(30)),
          static_cast<int16_t>(noise.Next(30))};
}

// The fake kernel's side: one FIFO burst of scans [begin, end). Encodes with
// our own packer, checked against FakeIioDevice::EncodeScan once, because
// EncodeScan rereads scan_elements/ from disk for every scan.
[[gnu::noinline]] void WriteImuBurst(ImuDevice& d, int begin, int end,
                                     int64_t base_ns, Noise& noise) {
  std::vector<uint8_t> bytes((end - begin) * kRecordBytes);
  for (int k = begin; k < end; ++k) {
    PutScan(RawImu(d.accel, noise), base_ns + d.phase_ns + k * kImuPeriodNs,
            bytes.data() + (k - begin) * kRecordBytes);
  }
  if (auto s = d.fake->PushBytes(bytes); !s.ok()) {
    Fail(absl::StrCat("IIO write: ", s.ToString()));
  }
}

void CheckPacker(const ImuDevice& d) {
  const std::array<int16_t, 3> xyz = {-1234, 5678, -32768};
  const int64_t ts = 1'234'567'890'123;
  const char* prefix = d.accel ? "in_accel_" : "in_anglvel_";
  auto expected = d.fake->EncodeScan({{absl::StrCat(prefix, "x"), xyz[0]},
                                      {absl::StrCat(prefix, "y"), xyz[1]},
                                      {absl::StrCat(prefix, "z"), xyz[2]}},
                                     ts);
  if (!expected.ok()) Fail(expected.status().ToString());
  std::vector<uint8_t> ours(kRecordBytes);
  PutScan(xyz, ts, ours.data());
  if (*expected != ours) {
    Fail("the benchmark's scan packer disagrees with FakeIioDevice");
  }
}

// The plate's firmware: `n` frames, ~70 kg standing on the plate of
// PlateConfig(), written as one USB transfer.
[[gnu::noinline]] void WritePlateChunk(FakeForcePlate& fake, int n,
                                       Noise& noise) {
  for (int i = 0; i < n; ++i) {
    fake.QueueSample(
        {1000 + 17500 + noise.Next(20), -2000 + 17500 + noise.Next(20),
         3000 - 17500 + noise.Next(20), 500 + 8750 + noise.Next(20)});
  }
  if (fake.Flush() != 0) Fail("the pseudo-terminal did not take a chunk");
}

// The drivers' side: one event-loop turn. The fakes write synchronously
// outside the loop, so every handler it runs is driver work: the reactor's
// epoll_wait and read(2) calls, and the driver's read handler (decode).
// Two functions, so that callgrind tells the two drivers apart.
[[gnu::noinline]] size_t DriveImus(boost::asio::io_context& io) {
  return io.run_one_for(kWait);
}
[[gnu::noinline]] size_t DrivePlate(boost::asio::io_context& io) {
  return io.run_one_for(kWait);
}

// Runs the event loop until `reads` read completions ran and no probed
// device holds unread bytes. Waiting for each write to be read before the
// next keeps the number of reads realistic (a pseudo-terminal would merge
// chunks written back to back) and keeps one driver's handlers out of the
// other's Drive function.
int RunReads(boost::asio::io_context& io,
             size_t (*drive)(boost::asio::io_context&), int reads,
             const std::vector<int>& probes, const char* what) {
  int done = 0;
  int idle = 0;
  auto waiting = [&] {
    return std::any_of(probes.begin(), probes.end(),
                       [](int fd) { return BytesWaiting(fd) > 0; });
  };
  while (done < reads || waiting()) {
    if (io.stopped()) Fail(absl::StrCat(what, ": the io_context stopped"));
    const size_t n = drive(io);
    if (n == 0 && ++idle > kMaxIdleTurns) {
      Fail(absl::StrCat(what, ": the driver stopped reading"));
    }
    done += static_cast<int>(n);
  }
  return done;
}

struct Counts {
  int64_t imu = 0;
  int64_t force = 0;
};

Counts CountSamples(const v1::SampleBatch& batch) {
  Counts c;
  for (const v1::ImuSamples& imu : batch.imu()) c.imu += imu.t_us_size();
  for (const v1::ForceSamples& f : batch.force()) c.force += f.t_us_size();
  return c;
}

[[gnu::noinline]] void PollImus(
    const std::vector<std::unique_ptr<SensorSource>>& imus, int64_t now_us,
    v1::SampleBatch* batch) {
  for (const auto& imu : imus) {
    if (auto s = imu->Poll(now_us, batch); !s.ok()) Fail(s.ToString());
  }
}

[[gnu::noinline]] void PollPlate(SensorSource& plate, int64_t now_us,
                                 v1::SampleBatch* batch) {
  if (auto s = plate.Poll(now_us, batch); !s.ok()) Fail(s.ToString());
}

// A 400 x 600 mm plate, cells at the corners (as the driver tests use).
v1::SerialForcePlateConfig PlateConfig(const std::string& device) {
  v1::SerialForcePlateConfig config;
  config.set_device(device);
  config.set_expected_rate_hz(kPlateRateHz);
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

int OpenProbe(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) Fail(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  return fd;
}

int ParseFlag(absl::string_view arg, absl::string_view name, int fallback) {
  int value = fallback;
  if (absl::ConsumePrefix(&arg, name) && !absl::SimpleAtoi(arg, &value)) {
    Fail(absl::StrCat("bad flag value in ", name, arg));
  }
  return value;
}

int Run(int seconds, int plate_chunk) {
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "driver_cost.XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) Fail("mkdtemp failed");
  const std::string tmp = tmpl;
  fs::create_directories(tmp + "/plate");

  boost::asio::io_context io;
  // Device timestamps run on a simulated clock that ends well before now on
  // CLOCK_MONOTONIC, so every sample is in the driver's past.
  const int64_t base_ns =
      (MonotonicMicros() - (seconds + 5) * 1'000'000LL) * 1000;

  // Four LSM6DSOX: eight IIO devices, named by sysfs directory since the
  // names repeat. Each IMU's FIFO runs on its own phase; each gyroscope's
  // timestamps trail its accelerometer's by 0.3 ms.
  std::vector<ImuDevice> devices;
  std::vector<std::unique_ptr<SensorSource>> imus;
  const v1::Placement placements[kImus] = {
      v1::PLACEMENT_SACRUM, v1::PLACEMENT_STERNUM, v1::PLACEMENT_THIGH,
      v1::PLACEMENT_SHANK};
  for (int i = 0; i < kImus; ++i) {
    v1::IioImuConfig config;
    for (bool accel : {true, false}) {
      auto fake = FakeIioDevice::Create(
          tmp + "/iio", absl::StrCat("iio:device", devices.size()),
          accel ? testing::Lsm6dsoxAccelSpec() : testing::Lsm6dsoxGyroSpec());
      if (!fake.ok()) Fail(fake.status().ToString());
      ImuDevice d;
      d.fake = *std::move(fake);
      d.accel = accel;
      d.phase_ns = i * 1'200'000 + (accel ? 0 : 300'000);
      if (accel) {
        config.set_accel_device(d.fake->sysfs_dir());
        config.set_accel_buffer_device(d.fake->buffer_path());
      } else {
        config.set_gyro_device(d.fake->sysfs_dir());
        config.set_gyro_buffer_device(d.fake->buffer_path());
      }
      devices.push_back(std::move(d));
    }
    config.set_sysfs_root(tmp + "/iio");
    config.set_sampling_frequency_hz(kImuRateHz);
    config.set_accel_range_g(8);
    config.set_gyro_range_dps(1000);
    config.set_fifo_watermark(kWatermark);
    auto imu = MakeIioImu(config, 10 + i, placements[i], io);
    if (!imu.ok()) Fail(imu.status().ToString());
    if (auto s = (*imu)->Start(); !s.ok()) Fail(s.ToString());
    imus.push_back(*std::move(imu));
  }
  std::vector<int> imu_probes;
  for (ImuDevice& d : devices) {
    if (d.fake->Read("buffer/enable") != "1") Fail("an IMU did not start");
    CheckPacker(d);
    d.probe_fd = OpenProbe(d.fake->buffer_path());
    imu_probes.push_back(d.probe_fd);
  }

  auto fake_plate = FakeForcePlate::Create(tmp + "/plate", kPlateRateHz);
  if (!fake_plate.ok()) Fail(fake_plate.status().ToString());
  SerialForcePlateOptions options;
  options.sysfs_root = (*fake_plate)->sysfs_root();
  auto plate = MakeSerialForcePlate(PlateConfig((*fake_plate)->device_path()),
                                    1, io, options);
  if (!plate.ok()) Fail(plate.status().ToString());
  if (auto s = (*plate)->Start(); !s.ok()) Fail(s.ToString());
  const std::vector<int> plate_probes = {
      OpenProbe((*fake_plate)->device_path())};
  io.poll();

  const int scans = seconds * kImuRateHz;  // per IIO device
  const int frames = seconds * kPlateRateHz;
  Noise noise;
  Counts got;
  int frames_written = 0;
  int64_t imu_reads = 0, plate_reads = 0, polls = 0;
  for (int64_t ms = 1;; ++ms) {
    const int64_t now_ns = ms * 1'000'000;
    // Each FIFO interrupts when its 16th scan lands (or the last one).
    int bursts = 0;
    for (ImuDevice& d : devices) {
      while (d.next_scan < scans) {
        const int end = std::min(d.next_scan + kWatermark, scans);
        if (d.phase_ns + (end - 1) * kImuPeriodNs > now_ns) break;
        WriteImuBurst(d, d.next_scan, end, base_ns, noise);
        d.next_scan = end;
        ++bursts;
      }
    }
    if (bursts > 0) {
      imu_reads += RunReads(io, DriveImus, bursts, imu_probes, "IMUs");
    }
    // Frame f is complete at f + 1 ms; a chunk goes out with its last frame.
    while (frames_written < frames) {
      const int n = std::min(plate_chunk, frames - frames_written);
      if (frames_written + n > ms) break;
      WritePlateChunk(**fake_plate, n, noise);
      frames_written += n;
      plate_reads += RunReads(io, DrivePlate, 1, plate_probes, "plate");
    }
    if (ms % kTickMs != 0) continue;
    // The station's tick: one batch from every source. The plate stamps
    // frames by their arrival on the real clock (DeviceClockMapper), which
    // here runs behind the data, so it hands out all it decoded; the IMUs
    // stamp on the device clock, the simulated one.
    v1::SampleBatch batch;
    PollImus(imus, base_ns / 1000 + ms * 1000, &batch);
    PollPlate(**plate, std::numeric_limits<int64_t>::max(), &batch);
    ++polls;
    const Counts c = CountSamples(batch);
    got.imu += c.imu;
    got.force += c.force;
    const bool all_written =
        frames_written == frames &&
        std::all_of(devices.begin(), devices.end(),
                    [&](const ImuDevice& d) { return d.next_scan == scans; });
    if (all_written) break;
  }
  // Nothing may be left behind a tick.
  v1::SampleBatch rest;
  PollImus(imus, std::numeric_limits<int64_t>::max(), &rest);
  PollPlate(**plate, std::numeric_limits<int64_t>::max(), &rest);
  const Counts left = CountSamples(rest);

  uint64_t imu_lost = 0, plate_lost = 0;
  const int64_t now = MonotonicMicros();
  for (const auto& imu : imus) imu_lost += imu->Health(now)[0].samples_lost();
  plate_lost = (*plate)->Health(now)[0].samples_lost();

  const int64_t imu_expected = int64_t{kImus} * scans;
  std::printf("seconds of data: %d\n", seconds);
  std::printf(
      "imu samples: %lld of %lld (%d IMUs x %d; lost %llu; %lld reads)\n",
      static_cast<long long>(got.imu), static_cast<long long>(imu_expected),
      kImus, scans, static_cast<unsigned long long>(imu_lost),
      static_cast<long long>(imu_reads));
  std::printf(
      "plate samples: %lld of %d (lost %llu; %lld reads of %d frames)\n",
      static_cast<long long>(got.force), frames,
      static_cast<unsigned long long>(plate_lost),
      static_cast<long long>(plate_reads), plate_chunk);
  std::printf("polls: %lld (one per 25 ms of data)\n",
              static_cast<long long>(polls));

  for (auto& imu : imus) imu->Stop();
  (*plate)->Stop();
  for (ImuDevice& d : devices) ::close(d.probe_fd);
  ::close(plate_probes[0]);
  imus.clear();
  plate->reset();
  devices.clear();
  fake_plate->reset();
  std::error_code ec;
  fs::remove_all(tmp, ec);

  if (got.imu != imu_expected || got.force != frames || left.imu != 0 ||
      left.force != 0 || imu_lost != 0 || plate_lost != 0) {
    Fail(absl::StrCat("not every sample came out of Poll on its tick (",
                      left.imu, " IMU and ", left.force,
                      " plate samples left over)"));
  }
  std::printf("OK: every sample decoded\n");
  return 0;
}

}  // namespace
}  // namespace stephub::station

// usage: driver_cost [--seconds=30] [--plate_chunk=1]   (or: driver_cost 30)
int main(int argc, char** argv) {
  int seconds = 30;
  int plate_chunk = 1;  // frames per USB transfer: 1 ms at 1 kHz
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (absl::StartsWith(arg, "--seconds=")) {
      seconds = stephub::station::ParseFlag(arg, "--seconds=", seconds);
    } else if (absl::StartsWith(arg, "--plate_chunk=")) {
      plate_chunk =
          stephub::station::ParseFlag(arg, "--plate_chunk=", plate_chunk);
    } else if (!absl::SimpleAtoi(arg, &seconds)) {
      std::fprintf(stderr,
                   "usage: driver_cost [--seconds=30] [--plate_chunk=1]\n");
      return 2;
    }
  }
  if (seconds < 1 || plate_chunk < 1) {
    std::fprintf(stderr, "driver_cost: --seconds and --plate_chunk >= 1\n");
    return 2;
  }
  return stephub::station::Run(seconds, plate_chunk);
}
