// A force plate whose microcontroller streams timestamped four-cell frames
// over USB serial (docs/FORCE_PLATE_PROTOCOL.md), plus the pure pieces of it:
// the frame checksum, calibration, force and centre of pressure, and the
// mapping of the plate's clock onto the station's.
#ifndef STEPHUB_STATION_SENSORS_SERIAL_FORCE_PLATE_H_
#define STEPHUB_STATION_SENSORS_SERIAL_FORCE_PLATE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "boost/asio/io_context.hpp"
#include "station/sensors/sensor_source.h"
#include "stephub/v1/station_config.pb.h"

namespace stephub::station {

// The wire protocol, version 1 (docs/FORCE_PLATE_PROTOCOL.md): fixed
// 25-byte frames, little-endian fields.
namespace plate_protocol {
inline constexpr uint8_t kSync0 = 0xA5;
inline constexpr uint8_t kSync1 = 0x5A;
inline constexpr uint8_t kVersion = 1;        // high nibble of the type byte
inline constexpr uint8_t kSampleFrame = 0x1;  // low nibble
inline constexpr uint8_t kStatusFrame = 0x2;
inline constexpr size_t kFrameBytes = 25;
// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection): over the
// type byte and the payload, i.e. frame bytes 2..22.
uint16_t Crc16Ccitt(absl::Span<const uint8_t> bytes);
}  // namespace plate_protocol

// One valid frame off the wire.
struct PlateFrame {
  uint8_t version = 0;  // the type byte's high nibble
  uint8_t type = 0;     // its low nibble
  // Bytes that were no valid frame (damage, noise) came just before it.
  bool after_malformed = false;
  uint32_t counter = 0;
  uint32_t device_us = 0;
  std::array<int32_t, 4> counts = {0, 0, 0, 0};  // sample frames
  uint8_t adc_errors = 0;                        // status frames
  uint8_t flags = 0;
  uint8_t firmware_major = 0;
  uint8_t firmware_minor = 0;
};

// Cuts a byte stream into frames: finds the sync bytes, checks the CRC, and
// on damage slides forward a byte at a time until frames check again. Used
// by the driver and by calibration tools that read the plate directly.
class PlateFrameDecoder {
 public:
  // Decodes what it can of `bytes` (with what earlier calls left over) and
  // appends the frames.
  void Feed(absl::Span<const uint8_t> bytes, std::vector<PlateFrame>* frames);
  // A new connection: its first bytes may be the tail of a frame sent
  // before, which is not damage.
  void Reset();

 private:
  std::vector<uint8_t> pending_;
  bool synced_ = false;   // a valid frame was seen since Reset
  bool bad_run_ = false;  // inside bytes that are no frame
};

struct SerialForcePlateOptions {
  // sysfs mount point, where the FTDI latency timer lives; tests point it
  // at a fake tree.
  std::string sysfs_root = "/sys";
  // Debug-level notes (e.g. that the latency timer could not be set); the
  // station hands its logger here. Null drops them.
  std::function<void(absl::string_view)> debug_log;
};

// Validates the configuration (four non-collinear cells with non-zero
// scales, expected_rate_hz >= 500, a baud rate that carries it); errors are
// InvalidArgument naming the config field. Start() opens the port; a
// missing or failing plate shows in Health() and is reopened every second.
//
// Not thread-safe: Start, Poll, Health and Stop must run on the thread that
// runs `io` (the read handlers decode there), so nothing needs a lock.
absl::StatusOr<std::unique_ptr<SensorSource>> MakeSerialForcePlate(
    const v1::SerialForcePlateConfig& config, uint32_t sensor_id,
    boost::asio::io_context& io);
absl::StatusOr<std::unique_ptr<SensorSource>> MakeSerialForcePlate(
    const v1::SerialForcePlateConfig& config, uint32_t sensor_id,
    boost::asio::io_context& io, SerialForcePlateOptions options);

// Standard gravity; scales from a known mass use it (a clinic's local g
// differs by under 0.3%).
inline constexpr double kStandardGravityMps2 = 9.80665;

// Each cell's zero: the mean of an unloaded recording of counts.
absl::StatusOr<std::array<int64_t, 4>> ZeroCountsFromUnloaded(
    absl::Span<const std::array<int32_t, 4>> unloaded);

// One cell's scale from a recording with a known mass resting on that cell
// alone (on the bench, or the mass centred over the cell):
// mass * g / (mean(counts) - zero). Negative when the cell's counts fall
// under load, which is fine.
absl::StatusOr<double> NewtonsPerCountFromKnownMass(
    absl::Span<const int32_t> loaded_counts, int64_t zero_counts,
    double mass_kg);

// Vertical force and centre of pressure from one frame's counts.
struct PlateReading {
  double fz_n = 0;
  double cop_x_mm = 0;  // NaN when fz_n < 20 N
  double cop_y_mm = 0;
};
PlateReading ComputePlateReading(const v1::SerialForcePlateConfig& config,
                                 const std::array<int32_t, 4>& counts);

// Maps the plate's free-running u32 microsecond clock onto the station
// clock. USB delivers frames in bursts, late by varying amounts; the frame
// that arrived with the least delay in a sliding window bounds the offset
// (arrival - device time) best. The applied offset slews toward that bound
// by at most max_slew_us per frame, so timestamps stay smooth and strictly
// increasing.
class DeviceClockMapper {
 public:
  DeviceClockMapper(int64_t window_us, int64_t max_slew_us)
      : window_us_(window_us), max_slew_us_(max_slew_us) {}

  // Station time of a frame stamped device_us that arrived at arrival_us.
  int64_t Map(uint32_t device_us, int64_t arrival_us);
  // The plate restarted or was reconnected: its clock starts over.
  void Reset();

 private:
  const int64_t window_us_;
  const int64_t max_slew_us_;
  bool started_ = false;
  uint32_t last_device_us_ = 0;
  int64_t device_us64_ = 0;  // unwrapped
  int64_t applied_offset_us_ = 0;
  bool have_last_station_us_ = false;
  int64_t last_station_us_ = 0;
  // (unwrapped device time, offset) with increasing offsets: the front is
  // the window's minimum.
  std::deque<std::pair<int64_t, int64_t>> window_;
};

}  // namespace stephub::station

#endif  // STEPHUB_STATION_SENSORS_SERIAL_FORCE_PLATE_H_
