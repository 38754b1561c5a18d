// The fake IIO device; see fake_iio_device.h. Attribute values follow what
// the mainline drivers print (st_lsm6dsx, inv_mpu6050).
#include "station/sensors/testing/fake_iio_device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace stephub::station::testing {
namespace {

namespace fs = std::filesystem;

// Attributes every buffered IIO device has, as the kernel leaves them.
void AddCoreAttributes(FakeIioSpec& spec) {
  spec.attributes["buffer/enable"] = "0";
  spec.attributes["buffer/length"] = "1";
  spec.attributes["buffer/watermark"] = "1";
  spec.attributes["current_timestamp_clock"] = "realtime";
}

FakeIioSpec Lsm6dsox(std::string name, std::string type) {
  FakeIioSpec spec;
  spec.name = std::move(name);
  const char* axes[] = {"x", "y", "z"};
  for (int i = 0; i < 3; ++i) {
    spec.channels.push_back(
        {absl::StrCat("in_", type, "_", axes[i]), i, "le:s16/16>>0", false});
  }
  spec.channels.push_back({"in_timestamp", 3, "le:s64/64>>0", false});
  AddCoreAttributes(spec);
  // st_lsm6dsx prints frequencies in mHz precision.
  spec.attributes["sampling_frequency"] = "12.500";
  spec.attributes["sampling_frequency_available"] =
      "12.500 26.000 52.000 104.000 208.000 416.000 833.000";
  return spec;
}

}  // namespace

FakeIioSpec Lsm6dsoxAccelSpec() {
  FakeIioSpec spec = Lsm6dsox("lsm6dsox_accel", "accel");
  // IIO_G_TO_M_S_2(61, 122, 244, 488 ug/LSB) in nano-units.
  spec.attributes["in_accel_scale"] = "0.000598205";
  spec.attributes["in_accel_scale_available"] =
      "0.000598205 0.001196411 0.002392822 0.004785645";
  return spec;
}

FakeIioSpec Lsm6dsoxGyroSpec() {
  FakeIioSpec spec = Lsm6dsox("lsm6dsox_gyro", "anglvel");
  // IIO_DEGREE_TO_RAD(8.75, 17.5, 35, 70 mdps/LSB) in nano-units.
  spec.attributes["in_anglvel_scale"] = "0.000152716";
  spec.attributes["in_anglvel_scale_available"] =
      "0.000152716 0.000305432 0.000610865 0.001221730";
  return spec;
}

FakeIioSpec Mpu6050Spec() {
  FakeIioSpec spec;
  spec.name = "mpu6050";
  spec.channels = {
      {"in_accel_x", 0, "be:s16/16>>0", false},
      {"in_accel_y", 1, "be:s16/16>>0", false},
      {"in_accel_z", 2, "be:s16/16>>0", false},
      {"in_temp", 3, "be:s16/16>>0", true},
      {"in_anglvel_x", 4, "be:s16/16>>0", false},
      {"in_anglvel_y", 5, "be:s16/16>>0", false},
      {"in_anglvel_z", 6, "be:s16/16>>0", false},
      {"in_timestamp", 7, "le:s64/64>>0", false},
  };
  AddCoreAttributes(spec);
  spec.attributes["sampling_frequency"] = "50";
  spec.attributes["sampling_frequency_available"] = "10 20 50 100 200 500 1000";
  spec.attributes["in_accel_scale"] = "0.000598";
  spec.attributes["in_accel_scale_available"] =
      "0.000598 0.001196 0.002392 0.004785";
  spec.attributes["in_anglvel_scale"] = "0.001064724";
  spec.attributes["in_anglvel_scale_available"] =
      "0.000133090 0.000266181 0.000532362 0.001064724";
  spec.attributes["in_temp_scale"] = "2.941176";
  spec.attributes["in_temp_offset"] = "12420";
  return spec;
}

absl::StatusOr<std::unique_ptr<FakeIioDevice>> FakeIioDevice::Create(
    const std::string& root, const std::string& dir_name,
    const FakeIioSpec& spec) {
  std::error_code ec;
  const fs::path dir = fs::path(root) / dir_name;
  fs::create_directories(dir / "buffer", ec);
  fs::create_directories(dir / "scan_elements", ec);
  fs::create_directories(fs::path(root) / "dev", ec);
  if (ec) return absl::InternalError(ec.message());
  std::unique_ptr<FakeIioDevice> device(new FakeIioDevice(
      dir.string(), (fs::path(root) / "dev" / dir_name).string()));
  device->Write("name", spec.name);
  for (const auto& [attribute, value] : spec.attributes) {
    device->Write(attribute, value);
  }
  for (const FakeIioChannel& channel : spec.channels) {
    const std::string base = "scan_elements/" + channel.name;
    device->Write(base + "_en", channel.enabled ? "1" : "0");
    device->Write(base + "_index", absl::StrCat(channel.index));
    device->Write(base + "_type", channel.type);
  }
  if (auto status = device->Replug(); !status.ok()) return status;
  return device;
}

FakeIioDevice::~FakeIioDevice() {
  if (fd_ >= 0) ::close(fd_);
}

std::string FakeIioDevice::Read(absl::string_view attribute) const {
  std::ifstream in(absl::StrCat(dir_, "/", attribute));
  std::stringstream text;
  text << in.rdbuf();
  return std::string(absl::StripTrailingAsciiWhitespace(text.str()));
}

void FakeIioDevice::Write(absl::string_view attribute,
                          absl::string_view value) {
  std::ofstream out(absl::StrCat(dir_, "/", attribute), std::ios::trunc);
  out << value << "\n";
}

absl::StatusOr<std::vector<uint8_t>> FakeIioDevice::EncodeScan(
    const std::map<std::string, int64_t>& raw, int64_t timestamp_ns) const {
  struct Enabled {
    int index;
    std::string name;
    bool big_endian;
    int storage_bytes;
    int shift;
  };
  std::vector<Enabled> enabled;
  std::error_code ec;
  for (const auto& entry :
       fs::directory_iterator(dir_ + "/scan_elements", ec)) {
    const std::string file = entry.path().filename().string();
    if (file.size() < 3 || file.substr(file.size() - 3) != "_en") continue;
    const std::string name = file.substr(0, file.size() - 3);
    if (Read("scan_elements/" + file) != "1") continue;
    const std::string type = Read("scan_elements/" + name + "_type");
    char endian[3] = {};
    char sign = 0;
    int bits = 0, storage = 0, shift = 0;
    if (std::sscanf(type.c_str(), "%2[bl]e:%c%d/%d>>%d", endian, &sign, &bits,
                    &storage, &shift) != 5) {
      return absl::InvalidArgumentError("bad fake type " + type);
    }
    enabled.push_back({std::stoi(Read("scan_elements/" + name + "_index")),
                       name, endian[0] == 'b', storage / 8, shift});
  }
  std::sort(
      enabled.begin(), enabled.end(),
      [](const Enabled& a, const Enabled& b) { return a.index < b.index; });
  std::vector<uint8_t> scan;
  size_t largest = 1;
  for (const Enabled& e : enabled) {
    const size_t bytes = e.storage_bytes;
    largest = std::max(largest, bytes);
    scan.resize((scan.size() + bytes - 1) / bytes * bytes, 0);
    int64_t value = 0;
    if (e.name == "in_timestamp") {
      value = timestamp_ns;
    } else if (auto it = raw.find(e.name); it != raw.end()) {
      value = it->second;
    }
    const uint64_t stored = static_cast<uint64_t>(value) << e.shift;
    for (size_t i = 0; i < bytes; ++i) {
      const size_t byte = e.big_endian ? bytes - 1 - i : i;
      scan.push_back(static_cast<uint8_t>(stored >> (8 * byte)));
    }
  }
  scan.resize((scan.size() + largest - 1) / largest * largest, 0);
  return scan;
}

absl::Status FakeIioDevice::PushScan(const std::map<std::string, int64_t>& raw,
                                     int64_t timestamp_ns) {
  auto scan = EncodeScan(raw, timestamp_ns);
  if (!scan.ok()) return scan.status();
  return PushBytes(*scan);
}

absl::Status FakeIioDevice::PushBytes(const std::vector<uint8_t>& bytes) {
  if (fd_ < 0) return absl::FailedPreconditionError("unplugged");
  const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
  if (n != static_cast<ssize_t>(bytes.size())) {
    return absl::InternalError(
        absl::StrCat("fifo write: ", n < 0 ? std::strerror(errno) : "short"));
  }
  return absl::OkStatus();
}

void FakeIioDevice::Unplug() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(buffer_path_.c_str());
}

absl::Status FakeIioDevice::Replug() {
  if (fd_ >= 0) return absl::OkStatus();
  if (::mkfifo(buffer_path_.c_str(), 0600) != 0 && errno != EEXIST) {
    return absl::InternalError(
        absl::StrCat("mkfifo ", buffer_path_, ": ", std::strerror(errno)));
  }
  // Non-blocking: a test that overfills the pipe fails instead of hanging.
  fd_ = ::open(buffer_path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    return absl::InternalError(
        absl::StrCat("open ", buffer_path_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace stephub::station::testing
