// An IMU read through the Linux IIO subsystem (st_lsm6dsx, inv_mpu6050,
// bno055, inv_icm42600): configured through sysfs, read from the buffered
// character device in FIFO bursts.
#ifndef STEPHUB_STATION_SENSORS_IIO_IMU_H_
#define STEPHUB_STATION_SENSORS_IIO_IMU_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "boost/asio/io_context.hpp"
#include "station/sensors/sensor_source.h"
#include "stephub/v1/common.pb.h"
#include "stephub/v1/station_config.pb.h"

namespace stephub::station {

// One IMU (accelerometer + gyroscope) as one sensor. The kernel may register
// both in one IIO device (inv_mpu6050, bno055) or as two (st_lsm6dsx,
// inv_icm42600); with two, samples are paired by nearest timestamp.
//
// Validates the configuration against what the device offers (its sysfs
// files must exist now); errors are InvalidArgument naming the config field.
// Start() configures the device and opens the buffer; trouble after that
// shows in Health() and the driver reopens the device every second.
//
// Not thread-safe: Start, Poll, Health and Stop must run on the thread that
// runs `io` (the read handlers decode there), so nothing needs a lock.
absl::StatusOr<std::unique_ptr<SensorSource>> MakeIioImu(
    const v1::IioImuConfig& config, uint32_t sensor_id, v1::Placement placement,
    boost::asio::io_context& io);

// The storage format of one scan element, as in scan_elements/*_type, e.g.
// "le:s16/16>>0" (little-endian, signed, 16 bits used of 16 stored, no
// shift). Exposed for tests.
struct IioScanType {
  bool big_endian = false;
  bool is_signed = true;
  int bits = 16;
  int storage_bits = 16;
  int shift = 0;
};
absl::StatusOr<IioScanType> ParseIioScanType(absl::string_view text);

// The raw value of one element stored at `data` (storage_bits / 8 bytes):
// byte order, shift, mask and sign extension applied.
int64_t DecodeIioElement(const IioScanType& type, const uint8_t* data);

}  // namespace stephub::station

#endif  // STEPHUB_STATION_SENSORS_IIO_IMU_H_
