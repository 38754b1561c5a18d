// A fake Linux IIO device for driver tests: the sysfs tree the kernel would
// show (attributes, buffer/, scan_elements/) in a temporary directory, and a
// FIFO standing in for the buffered character device /dev/iio:deviceN.
#ifndef STEPHUB_STATION_SENSORS_TESTING_FAKE_IIO_DEVICE_H_
#define STEPHUB_STATION_SENSORS_TESTING_FAKE_IIO_DEVICE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stephub::station::testing {

struct FakeIioChannel {
  std::string name;  // as in scan_elements, e.g. "in_accel_x"
  int index = 0;
  std::string type;      // e.g. "le:s16/16>>0"
  bool enabled = false;  // initial contents of <name>_en
};

// What a kernel driver registers: its name, its scan elements and its
// attributes (path relative to the device directory -> initial contents).
struct FakeIioSpec {
  std::string name;
  std::vector<FakeIioChannel> channels;
  std::map<std::string, std::string> attributes;
};

// st_lsm6dsx with an LSM6DSOX: accelerometer and gyroscope are two devices,
// little-endian s16 x, y, z at indexes 0-2 and a timestamp at 3.
FakeIioSpec Lsm6dsoxAccelSpec();
FakeIioSpec Lsm6dsoxGyroSpec();
// inv_mpu6050: one device, big-endian s16 accel x, y, z (0-2), temperature
// (3), gyro x, y, z (4-6), timestamp (7). The temperature channel starts
// enabled, as another tool may have left it.
FakeIioSpec Mpu6050Spec();

class FakeIioDevice {
 public:
  // Builds <root>/<dir_name>/ and the FIFO <root>/dev/<dir_name>.
  static absl::StatusOr<std::unique_ptr<FakeIioDevice>> Create(
      const std::string& root, const std::string& dir_name,
      const FakeIioSpec& spec);
  ~FakeIioDevice();
  FakeIioDevice(const FakeIioDevice&) = delete;
  FakeIioDevice& operator=(const FakeIioDevice&) = delete;

  const std::string& sysfs_dir() const { return dir_; }
  const std::string& buffer_path() const { return buffer_path_; }

  // An attribute's contents without the trailing newline ("" if missing).
  std::string Read(absl::string_view attribute) const;
  // Changes an attribute as another program (or the kernel) would.
  void Write(absl::string_view attribute, absl::string_view value);

  // One scan as the kernel packs it: the channels enabled in scan_elements
  // now, by index, each aligned to its storage size, the record padded to
  // its largest element. `raw` holds counts by channel name (missing: 0).
  absl::StatusOr<std::vector<uint8_t>> EncodeScan(
      const std::map<std::string, int64_t>& raw, int64_t timestamp_ns) const;
  // Encodes and writes one scan into the buffer device.
  absl::Status PushScan(const std::map<std::string, int64_t>& raw,
                        int64_t timestamp_ns);
  // Writes raw bytes (e.g. half a scan) into the buffer device.
  absl::Status PushBytes(const std::vector<uint8_t>& bytes);

  // The buffer device goes away (sensor dropped off the bus, driver
  // unbound): the node disappears and the reader sees end of file.
  void Unplug();
  // The device node comes back.
  absl::Status Replug();

 private:
  FakeIioDevice(std::string dir, std::string buffer_path)
      : dir_(std::move(dir)), buffer_path_(std::move(buffer_path)) {}
  absl::Status OpenBuffer();

  std::string dir_;
  std::string buffer_path_;
  // Opened read-write, so the FIFO always has a writer and writes never
  // wait for the driver to open it.
  int fd_ = -1;
};

}  // namespace stephub::station::testing

#endif  // STEPHUB_STATION_SENSORS_TESTING_FAKE_IIO_DEVICE_H_
