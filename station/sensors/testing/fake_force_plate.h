// A fake USB force plate for driver tests: a pseudo-terminal whose master
// side plays the plate's microcontroller firmware (docs/
// FORCE_PLATE_PROTOCOL.md), reached through a by-id style symlink, plus the
// sysfs latency_timer an FTDI adapter would have.
#ifndef STEPHUB_STATION_SENSORS_TESTING_FAKE_FORCE_PLATE_H_
#define STEPHUB_STATION_SENSORS_TESTING_FAKE_FORCE_PLATE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stephub::station::testing {

// The firmware's sample-frame encoder, for tests that feed bytes directly.
std::vector<uint8_t> EncodePlateSample(uint32_t counter, uint32_t device_us,
                                       const std::array<int32_t, 4>& counts);

class FakeForcePlate {
 public:
  // Opens the pseudo-terminal; `dir` receives the symlink and the sysfs
  // tree. The firmware samples at rate_hz on a clock starting at
  // device_start_us.
  static absl::StatusOr<std::unique_ptr<FakeForcePlate>> Create(
      const std::string& dir, double rate_hz = 1000,
      uint32_t device_start_us = 1'000'000);
  ~FakeForcePlate();
  FakeForcePlate(const FakeForcePlate&) = delete;
  FakeForcePlate& operator=(const FakeForcePlate&) = delete;

  // What the driver is configured with.
  const std::string& device_path() const { return link_; }
  const std::string& sysfs_root() const { return sysfs_root_; }
  // The adapter's latency timer as the driver left it (ms).
  std::string LatencyTimer() const;

  // Firmware behaviour; frames are queued, then written by Flush().
  // One sample frame: the next counter, the clock advanced by a period.
  void QueueSample(const std::array<int32_t, 4>& counts);
  // A sample frame damaged on the wire (one bit flipped): it consumes its
  // counter like any frame the firmware sent.
  void QueueCorruptSample(const std::array<int32_t, 4>& counts);
  // Bytes that are no frame at all.
  void QueueGarbage(const std::vector<uint8_t>& bytes);
  // The firmware dropped n samples (its UART was busy): counter and clock
  // move on without frames.
  void SkipSamples(uint32_t n);
  // A status frame: bit i of adc_errors = cell i+1's ADC not converting.
  void QueueStatus(uint8_t adc_errors, uint8_t flags = 0);

  // Writes queued bytes as far as the pseudo-terminal takes them without
  // blocking; returns how many are still queued.
  size_t Flush();

  // The plate is unplugged: the master closes and the by-id link goes.
  void Unplug();
  // Plugged in again: a new pseudo-terminal behind the same link, the
  // latency timer back at its 16 ms default.
  absl::Status Replug();

  uint32_t next_counter() const { return counter_; }
  uint32_t device_time_us() const { return device_us_; }

 private:
  FakeForcePlate(std::string dir, double rate_hz, uint32_t device_start_us);
  std::vector<uint8_t> SampleFrame(const std::array<int32_t, 4>& counts);

  std::string dir_;
  std::string link_;
  std::string sysfs_root_;
  std::string tty_dir_;  // sysfs class/tty/<name> of the current pty
  const uint32_t period_us_;
  uint32_t counter_ = 0;
  uint32_t device_us_;
  int master_ = -1;
  std::vector<uint8_t> queued_;
};

}  // namespace stephub::station::testing

#endif  // STEPHUB_STATION_SENSORS_TESTING_FAKE_FORCE_PLATE_H_
