// The fake force plate; see fake_force_plate.h. The frame encoder is written
// independently of the driver's decoder (its own table-driven CRC), as the
// firmware would be.
#include "station/sensors/testing/fake_force_plate.h"

#include <fcntl.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace stephub::station::testing {
namespace {

namespace fs = std::filesystem;

// CRC-16/CCITT-FALSE, table-driven like the firmware's.
uint16_t FirmwareCrc(const uint8_t* data, size_t size) {
  static const auto table = [] {
    std::array<uint16_t, 256> t{};
    for (int i = 0; i < 256; ++i) {
      uint16_t crc = static_cast<uint16_t>(i << 8);
      for (int bit = 0; bit < 8; ++bit) {
        crc = static_cast<uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021
                                                   : crc << 1);
      }
      t[i] = crc;
    }
    return t;
  }();
  uint16_t crc = 0xFFFF;
  for (size_t i = 0; i < size; ++i) {
    crc = static_cast<uint16_t>((crc << 8) ^ table[(crc >> 8) ^ data[i]]);
  }
  return crc;
}

void PutU32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// Frame = A5 5A, type, 20 payload bytes, CRC over type + payload.
std::vector<uint8_t> Frame(uint8_t type, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> frame = {0xA5, 0x5A, type};
  frame.insert(frame.end(), payload.begin(), payload.end());
  frame.resize(23, 0);
  const uint16_t crc = FirmwareCrc(frame.data() + 2, 21);
  frame.push_back(static_cast<uint8_t>(crc));
  frame.push_back(static_cast<uint8_t>(crc >> 8));
  return frame;
}

}  // namespace

std::vector<uint8_t> EncodePlateSample(uint32_t counter, uint32_t device_us,
                                       const std::array<int32_t, 4>& counts) {
  std::vector<uint8_t> payload;
  PutU32(payload, counter);
  PutU32(payload, device_us);
  for (int32_t c : counts) {
    const uint32_t raw = static_cast<uint32_t>(c);
    for (int i = 0; i < 3; ++i) {
      payload.push_back(static_cast<uint8_t>(raw >> (8 * i)));
    }
  }
  return Frame(0x11, payload);
}

FakeForcePlate::FakeForcePlate(std::string dir, double rate_hz,
                               uint32_t device_start_us)
    : dir_(std::move(dir)),
      link_(dir_ + "/usb-StepHub_plate-if00"),
      sysfs_root_(dir_ + "/sys"),
      period_us_(static_cast<uint32_t>(std::lround(1e6 / rate_hz))),
      device_us_(device_start_us) {}

absl::StatusOr<std::unique_ptr<FakeForcePlate>> FakeForcePlate::Create(
    const std::string& dir, double rate_hz, uint32_t device_start_us) {
  std::unique_ptr<FakeForcePlate> plate(
      new FakeForcePlate(dir, rate_hz, device_start_us));
  if (auto status = plate->Replug(); !status.ok()) return status;
  return plate;
}

FakeForcePlate::~FakeForcePlate() {
  if (master_ >= 0) ::close(master_);
}

std::string FakeForcePlate::LatencyTimer() const {
  std::ifstream in(tty_dir_ + "/device/latency_timer");
  std::stringstream text;
  text << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(text.str()));
}

std::vector<uint8_t> FakeForcePlate::SampleFrame(
    const std::array<int32_t, 4>& counts) {
  std::vector<uint8_t> frame =
      EncodePlateSample(counter_++, device_us_, counts);
  device_us_ += period_us_;  // wraps like the firmware's u32 timer
  return frame;
}

void FakeForcePlate::QueueSample(const std::array<int32_t, 4>& counts) {
  const std::vector<uint8_t> frame = SampleFrame(counts);
  queued_.insert(queued_.end(), frame.begin(), frame.end());
}

void FakeForcePlate::QueueCorruptSample(const std::array<int32_t, 4>& counts) {
  std::vector<uint8_t> frame = SampleFrame(counts);
  frame[12] ^= 0x10;
  queued_.insert(queued_.end(), frame.begin(), frame.end());
}

void FakeForcePlate::QueueGarbage(const std::vector<uint8_t>& bytes) {
  queued_.insert(queued_.end(), bytes.begin(), bytes.end());
}

void FakeForcePlate::SkipSamples(uint32_t n) {
  counter_ += n;
  device_us_ += n * period_us_;
}

void FakeForcePlate::QueueStatus(uint8_t adc_errors, uint8_t flags) {
  std::vector<uint8_t> payload;
  PutU32(payload, counter_ - 1);
  PutU32(payload, device_us_);
  payload.push_back(adc_errors);
  payload.push_back(flags);
  payload.push_back(1);  // firmware 1.4
  payload.push_back(4);
  const std::vector<uint8_t> frame = Frame(0x12, payload);
  queued_.insert(queued_.end(), frame.begin(), frame.end());
}

size_t FakeForcePlate::Flush() {
  while (!queued_.empty() && master_ >= 0) {
    const ssize_t n = ::write(master_, queued_.data(), queued_.size());
    if (n <= 0) break;  // EAGAIN: the driver has not read yet
    queued_.erase(queued_.begin(), queued_.begin() + n);
  }
  return queued_.size();
}

void FakeForcePlate::Unplug() {
  if (master_ >= 0) ::close(master_);
  master_ = -1;
  queued_.clear();
  ::unlink(link_.c_str());
}

absl::Status FakeForcePlate::Replug() {
  if (master_ >= 0) return absl::OkStatus();
  master_ = ::posix_openpt(O_RDWR | O_NOCTTY);
  if (master_ < 0 || ::grantpt(master_) != 0 || ::unlockpt(master_) != 0) {
    return absl::InternalError(
        absl::StrCat("pseudo-terminal: ", std::strerror(errno)));
  }
  ::fcntl(master_, F_SETFD, FD_CLOEXEC);
  ::fcntl(master_, F_SETFL, ::fcntl(master_, F_GETFL) | O_NONBLOCK);
  // Raw mode on the master sets the slave's line discipline: bytes written
  // before the driver opens the slave must not be edited (CR->NL, echo).
  termios tio{};
  ::tcgetattr(master_, &tio);
  ::cfmakeraw(&tio);
  ::tcsetattr(master_, TCSANOW, &tio);
  const std::string slave = ::ptsname(master_);

  std::error_code ec;
  const std::string tmp_link = link_ + ".new";
  fs::remove(tmp_link, ec);
  fs::create_symlink(slave, tmp_link, ec);
  if (!ec) fs::rename(tmp_link, link_, ec);
  if (ec) return absl::InternalError(absl::StrCat("link: ", ec.message()));

  // Like /sys/class/tty/ttyUSB0/device/latency_timer, at the FTDI default.
  tty_dir_ = (fs::path(sysfs_root_) / "class/tty" / fs::path(slave).filename())
                 .string();
  fs::create_directories(tty_dir_ + "/device", ec);
  std::ofstream(tty_dir_ + "/device/latency_timer") << "16\n";
  return absl::OkStatus();
}

}  // namespace stephub::station::testing
