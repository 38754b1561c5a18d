// The IIO IMU driver; see iio_imu.h. Everything the kernel exposes is files:
// sysfs attributes to configure the device and one character device that
// delivers "scans" (one record per sample, layout in scan_elements/).
#include "station/sensors/iio_imu.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "boost/asio/error.hpp"
#include "boost/asio/posix/stream_descriptor.hpp"
#include "boost/asio/steady_timer.hpp"

namespace stephub::station {
namespace {

namespace fs = std::filesystem;

constexpr double kStandardGravity = 9.80665;  // m/s^2 per g
constexpr double kRadPerDegree = 3.14159265358979323846 / 180.0;
constexpr std::chrono::seconds kReopenInterval{1};
constexpr int64_t kMinNoDataUs = 200'000;

// --- sysfs -----------------------------------------------------------------

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

absl::StatusOr<std::string> ReadAttribute(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(text.str()));
}

// sysfs reports a rejected value on write(2), so the result is checked.
absl::Status WriteAttribute(const std::string& path, absl::string_view value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int write_errno = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return absl::UnavailableError(absl::StrCat(
        "writing \"", value, "\" to ", path,
        " failed: ", n < 0 ? std::strerror(write_errno) : "short write"));
  }
  return absl::OkStatus();
}

std::string Basename(const std::string& path) {
  return fs::path(path).lexically_normal().filename().string();
}

std::vector<std::string> Tokens(const std::string& text) {
  return absl::StrSplit(text, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
}

// --- configuration ---------------------------------------------------------

// A signed axis permutation: out[i] = sign[i] * in[source[i]].
struct AxisMap {
  std::array<int, 3> source = {0, 1, 2};
  std::array<float, 3> sign = {1, 1, 1};

  std::array<float, 3> Apply(const std::array<float, 3>& in) const {
    return {sign[0] * in[source[0]], sign[1] * in[source[1]],
            sign[2] * in[source[2]]};
  }
};

absl::StatusOr<AxisMap> ParseAxisMap(const std::string& text) {
  AxisMap map;
  if (text.empty()) return map;
  auto bad = [&text](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("iio_imu.axis_map: \"", text, "\" ", why,
                     "; write three signed chip axes for segment x,y,z, "
                     "e.g. \"x,y,z\" or \"-y,x,z\""));
  };
  const std::vector<std::string> parts =
      absl::StrSplit(text, ',', absl::SkipWhitespace());
  if (parts.size() != 3) return bad("does not name three axes");
  std::array<bool, 3> used = {false, false, false};
  for (int i = 0; i < 3; ++i) {
    absl::string_view axis = absl::StripAsciiWhitespace(parts[i]);
    float sign = 1;
    if (absl::ConsumePrefix(&axis, "-")) {
      sign = -1;
    } else {
      absl::ConsumePrefix(&axis, "+");
    }
    if (axis.size() != 1 || axis[0] < 'x' || axis[0] > 'z') {
      return bad(absl::StrCat("has \"", parts[i], "\", not an axis"));
    }
    const int source = axis[0] - 'x';
    if (used[source]) return bad("uses an axis twice");
    used[source] = true;
    map.source[i] = source;
    map.sign[i] = sign;
  }
  return map;
}

// Finds the sysfs directory of a device given as a path, as a directory name
// under the root (iio:device0) or by the contents of its name file.
absl::StatusOr<std::string> ResolveDevice(absl::string_view field,
                                          const std::string& spec,
                                          const std::string& root) {
  std::error_code ec;
  if (spec.find('/') != std::string::npos) {
    if (!fs::is_directory(spec, ec)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": ", spec, " is not a directory"));
    }
    return spec;
  }
  const std::string direct = (fs::path(root) / spec).string();
  if (Exists(direct + "/name")) return direct;
  std::vector<std::string> matches;
  std::vector<std::string> seen;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    auto name = ReadAttribute(entry.path().string() + "/name");
    if (!name.ok()) continue;
    seen.push_back(
        absl::StrCat(*name, " (", entry.path().filename().string(), ")"));
    if (*name == spec) matches.push_back(entry.path().string());
  }
  std::sort(matches.begin(), matches.end());
  std::sort(seen.begin(), seen.end());
  if (matches.size() == 1) return matches.front();
  if (matches.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": no IIO device named \"", spec, "\" under ", root,
        seen.empty() ? " (no IIO devices there"
                     : absl::StrCat(" (there are: ", absl::StrJoin(seen, ", ")),
        ")"));
  }
  std::vector<std::string> names;
  for (const auto& m : matches) names.push_back(Basename(m));
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": ", matches.size(), " IIO devices are named \"", spec, "\" (",
      absl::StrJoin(names, ", "), "); give the sysfs directory instead"));
}

std::string Label(const std::string& name, const std::string& dir) {
  return absl::StrCat(name, " (", Basename(dir), ")");
}

// Picks the available sampling frequency nearest to the request.
absl::StatusOr<std::pair<std::string, double>> ChooseFrequency(
    absl::string_view field, const std::string& dir, const std::string& label,
    double requested_hz) {
  auto available = ReadAttribute(dir + "/sampling_frequency_available");
  if (!available.ok()) {
    if (!Exists(dir + "/sampling_frequency")) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": ", label, " has no sampling_frequency attribute"));
    }
    // Nothing to choose from: ask for the value and let the kernel round.
    return std::make_pair(absl::StrFormat("%g", requested_hz), requested_hz);
  }
  std::pair<std::string, double> best;
  double best_distance = std::numeric_limits<double>::infinity();
  for (const std::string& token : Tokens(*available)) {
    double hz;
    if (!absl::SimpleAtod(token, &hz) || hz <= 0) continue;
    if (std::abs(hz - requested_hz) < best_distance) {
      best_distance = std::abs(hz - requested_hz);
      best = {token, hz};
    }
  }
  if (best.first.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", label, " lists no sampling frequency (\"",
                     *available, "\")"));
  }
  return best;
}

// Picks the finest scale whose full range (scale * 2^(bits-1)) covers the
// request. Returns "" when the device offers no choice (the current scale
// stays). unit_si is the SI value of one unit (g or dps).
absl::StatusOr<std::string> ChooseScale(
    absl::string_view field, const std::string& dir, const std::string& label,
    const std::string& channel_type, int bits, double requested, double unit_si,
    absl::string_view unit) {
  auto available =
      ReadAttribute(absl::StrCat(dir, "/", channel_type, "_scale_available"));
  if (!available.ok()) return std::string();
  std::vector<std::pair<double, std::string>> ranges;  // (range, token)
  for (const std::string& token : Tokens(*available)) {
    double scale;
    if (!absl::SimpleAtod(token, &scale) || scale <= 0) continue;
    ranges.emplace_back(scale * std::ldexp(1.0, bits - 1) / unit_si, token);
  }
  std::sort(ranges.begin(), ranges.end());
  // Nominal ranges are a hair above what the counts reach (8 g is 7.996 g).
  for (const auto& [range, token] : ranges) {
    if (range >= requested * 0.98) return token;
  }
  std::vector<std::string> offered;
  for (const auto& [range, token] : ranges) {
    offered.push_back(unit == "g" ? absl::StrFormat("%.3g", range)
                                  : absl::StrFormat("%.0f", range));
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: %g %s is more than %s offers (%s)", field, requested,
                      unit, label, absl::StrJoin(offered, ", ")));
}

// --- scan layout -------------------------------------------------------------

struct Element {
  std::string channel;  // e.g. "in_accel_x"
  int index = 0;
  IioScanType type;
  size_t offset = 0;  // bytes into the record
  double scale = 1;
  double value_offset = 0;
};

struct Layout {
  std::vector<Element> elements;
  size_t record_bytes = 0;
  std::array<int, 3> accel = {-1, -1, -1};  // positions in elements
  std::array<int, 3> gyro = {-1, -1, -1};
  int timestamp = -1;
};

// Reads a per-channel attribute, falling back to the one shared by type
// (in_accel_x_scale, then in_accel_scale).
absl::StatusOr<double> ChannelNumber(const std::string& dir,
                                     const std::string& channel,
                                     absl::string_view what) {
  std::string shared = channel.substr(0, channel.rfind('_'));
  for (const std::string& path : {absl::StrCat(dir, "/", channel, "_", what),
                                  absl::StrCat(dir, "/", shared, "_", what)}) {
    auto text = ReadAttribute(path);
    if (!text.ok()) continue;
    double value;
    if (!absl::SimpleAtod(*text, &value)) {
      return absl::DataLossError(
          absl::StrCat(path, " holds \"", *text, "\", not a number"));
    }
    return value;
  }
  return absl::NotFoundError(absl::StrCat("no ", what, " for ", channel));
}

// The record layout of the enabled scan elements, as the kernel packs them:
// ordered by index, each aligned to its own storage size, the record padded
// to its largest element.
absl::StatusOr<Layout> ReadLayout(const std::string& dir,
                                  const std::string& label) {
  Layout layout;
  std::error_code ec;
  const std::string scan_dir = dir + "/scan_elements";
  for (const auto& entry : fs::directory_iterator(scan_dir, ec)) {
    std::string file = entry.path().filename().string();
    if (!absl::EndsWith(file, "_en")) continue;
    auto enabled = ReadAttribute(entry.path().string());
    if (!enabled.ok() || *enabled != "1") continue;
    Element e;
    e.channel = file.substr(0, file.size() - 3);
    auto index =
        ReadAttribute(absl::StrCat(scan_dir, "/", e.channel, "_index"));
    auto type = ReadAttribute(absl::StrCat(scan_dir, "/", e.channel, "_type"));
    if (!index.ok()) return index.status();
    if (!type.ok()) return type.status();
    if (!absl::SimpleAtoi(*index, &e.index)) {
      return absl::DataLossError(absl::StrCat(label, ": ", e.channel,
                                              "_index holds \"", *index, "\""));
    }
    auto parsed = ParseIioScanType(*type);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": scan element ", e.channel, ": ",
                       parsed.status().message()));
    }
    e.type = *parsed;
    layout.elements.push_back(std::move(e));
  }
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot list ", scan_dir, ": ", ec.message()));
  }
  std::sort(
      layout.elements.begin(), layout.elements.end(),
      [](const Element& a, const Element& b) { return a.index < b.index; });
  size_t offset = 0;
  size_t largest = 1;
  static constexpr std::array<const char*, 3> kAxes = {"x", "y", "z"};
  for (size_t i = 0; i < layout.elements.size(); ++i) {
    Element& e = layout.elements[i];
    const size_t bytes = e.type.storage_bits / 8;
    offset = (offset + bytes - 1) / bytes * bytes;
    e.offset = offset;
    offset += bytes;
    largest = std::max(largest, bytes);
    const int pos = static_cast<int>(i);
    if (e.channel == "in_timestamp") {
      layout.timestamp = pos;
      continue;
    }
    for (int axis = 0; axis < 3; ++axis) {
      if (e.channel == absl::StrCat("in_accel_", kAxes[axis])) {
        layout.accel[axis] = pos;
      } else if (e.channel == absl::StrCat("in_anglvel_", kAxes[axis])) {
        layout.gyro[axis] = pos;
      } else {
        continue;
      }
      auto scale = ChannelNumber(dir, e.channel, "scale");
      if (!scale.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat(label, ": ", scale.status().message()));
      }
      e.scale = *scale;
      e.value_offset = ChannelNumber(dir, e.channel, "offset").value_or(0.0);
    }
  }
  layout.record_bytes = (offset + largest - 1) / largest * largest;
  return layout;
}

// Kernel timestamps are on the clock named in current_timestamp_clock
// (CLOCK_REALTIME on kernels before 4.10, which lack the file). Returns what
// to add to move them onto CLOCK_MONOTONIC, the station clock.
absl::StatusOr<int64_t> ClockOffsetNs(const std::string& clock_name) {
  static const std::array<std::pair<const char*, clockid_t>, 7> kClocks = {{
      {"monotonic", CLOCK_MONOTONIC},
      {"realtime", CLOCK_REALTIME},
      {"boottime", CLOCK_BOOTTIME},
      {"monotonic_raw", CLOCK_MONOTONIC_RAW},
      {"realtime_coarse", CLOCK_REALTIME_COARSE},
      {"monotonic_coarse", CLOCK_MONOTONIC_COARSE},
      {"tai", CLOCK_TAI},
  }};
  auto now_ns = [](clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  };
  for (const auto& [name, clock] : kClocks) {
    if (clock_name != name) continue;
    if (clock == CLOCK_MONOTONIC) return 0;
    return now_ns(CLOCK_MONOTONIC) - now_ns(clock);
  }
  return absl::FailedPreconditionError(
      absl::StrCat("unknown timestamp clock \"", clock_name, "\""));
}

// --- the driver --------------------------------------------------------------

// What the factory decided for one IIO device.
struct DeviceSetup {
  std::string dir;
  std::string name;  // contents of the name file
  std::string label;
  std::string buffer_path;
  bool accel = false;
  bool gyro = false;
  std::string frequency;  // token written to sampling_frequency
  double frequency_hz = 0;
  std::string accel_scale;  // tokens; "" keeps the current scale
  std::string gyro_scale;
};

// A decoded scan of one device.
struct Reading {
  int64_t t_us = 0;
  std::array<float, 3> accel = {0, 0, 0};
  std::array<float, 3> gyro = {0, 0, 0};
};

struct ImuRow {
  int64_t t_us;
  std::array<float, 3> accel;
  std::array<float, 3> gyro;
};

// One IIO device and its buffer.
struct Stream {
  Stream(DeviceSetup setup, boost::asio::io_context& io)
      : setup(std::move(setup)), buffer(io) {}

  DeviceSetup setup;
  boost::asio::posix::stream_descriptor buffer;
  uint64_t generation = 0;  // bumped per open; stale completions are ignored
  bool open = false;
  std::string problem = "not started";
  Layout layout;
  int64_t clock_offset_ns = 0;
  std::array<uint8_t, 4096> chunk{};
  std::vector<uint8_t> partial;  // bytes of a record split across reads
  int64_t last_arrival_us = 0;   // station time of the last sample (or open)
  int64_t last_t_us = std::numeric_limits<int64_t>::min();
  std::deque<Reading> unpaired;  // two-device IMUs: waiting for the partner
};

class IioImu : public SensorSource {
 public:
  IioImu(uint32_t sensor_id, v1::Placement placement, AxisMap axis_map,
         uint32_t watermark, std::vector<DeviceSetup> setups,
         boost::asio::io_context& io)
      : sensor_id_(sensor_id),
        placement_(placement),
        axis_map_(axis_map),
        watermark_(watermark),
        rate_hz_(setups.front().frequency_hz),
        period_us_(1e6 / rate_hz_),
        timer_(io) {
    for (auto& setup : setups) {
      streams_.push_back(std::make_unique<Stream>(std::move(setup), io));
    }
  }

  ~IioImu() override { Stop(); }

  std::vector<v1::SensorInfo> Sensors() const override {
    v1::SensorInfo info;
    info.set_sensor_id(sensor_id_);
    info.set_kind(v1::SENSOR_KIND_IMU);
    info.set_placement(placement_);
    info.set_rate_hz(rate_hz_);
    std::vector<std::string> names, dirs;
    for (const auto& s : streams_) {
      names.push_back(s->setup.name);
      dirs.push_back(s->setup.dir);
    }
    info.set_model(absl::StrJoin(names, " + "));
    info.set_driver("iio");
    info.set_device(absl::StrJoin(dirs, " + "));
    return {info};
  }

  absl::Status Start() override {
    stopped_ = false;
    bool all_open = true;
    for (auto& s : streams_) {
      if (!s->open) all_open &= TryOpen(*s);
    }
    if (!all_open) ScheduleReopen();
    return absl::OkStatus();
  }

  absl::Status Poll(int64_t now_us, v1::SampleBatch* batch) override {
    if (rows_.empty() || rows_.front().t_us > now_us) return absl::OkStatus();
    v1::ImuSamples* out = batch->add_imu();
    out->set_sensor_id(sensor_id_);
    while (!rows_.empty() && rows_.front().t_us <= now_us) {
      const ImuRow& row = rows_.front();
      out->add_t_us(row.t_us);
      out->add_ax_mps2(row.accel[0]);
      out->add_ay_mps2(row.accel[1]);
      out->add_az_mps2(row.accel[2]);
      out->add_gx_radps(row.gyro[0]);
      out->add_gy_radps(row.gyro[1]);
      out->add_gz_radps(row.gyro[2]);
      rows_.pop_front();
    }
    return absl::OkStatus();
  }

  std::vector<v1::SensorHealth> Health(int64_t now_us) const override {
    v1::SensorHealth health;
    health.set_sensor_id(sensor_id_);
    health.set_samples_lost(samples_lost_);
    std::vector<std::string> disconnected, silent;
    // A FIFO delivers a watermark's worth at once, so silence shorter than
    // two bursts is normal.
    const int64_t no_data_us =
        std::max<int64_t>({kMinNoDataUs, static_cast<int64_t>(10 * period_us_),
                           static_cast<int64_t>(2 * watermark_ * period_us_)});
    for (const auto& s : streams_) {
      if (!s->open) {
        disconnected.push_back(absl::StrCat(s->setup.label, ": ", s->problem));
      } else if (now_us - s->last_arrival_us > no_data_us) {
        silent.push_back(absl::StrFormat("no samples from %s for %.1f s",
                                         s->setup.label,
                                         (now_us - s->last_arrival_us) / 1e6));
      }
    }
    if (!disconnected.empty()) {
      health.set_state(v1::SENSOR_STATE_DISCONNECTED);
      health.set_detail(absl::StrJoin(disconnected, "; "));
    } else if (!silent.empty()) {
      health.set_state(v1::SENSOR_STATE_NO_DATA);
      health.set_detail(absl::StrJoin(silent, "; "));
    } else {
      health.set_state(v1::SENSOR_STATE_OK);
    }
    return {health};
  }

  void Stop() override {
    stopped_ = true;
    timer_.cancel();
    for (auto& s : streams_) {
      if (!s->open) continue;
      Close(*s, "stopped");
      // Stops the chip's FIFO; the device may be gone, which is fine.
      (void)WriteAttribute(s->setup.dir + "/buffer/enable", "0");
    }
  }

 private:
  // Configures the device through sysfs and opens its buffer. On failure
  // records why (for Health) and returns false.
  bool TryOpen(Stream& s) {
    absl::Status status = Configure(s);
    if (status.ok()) status = OpenBuffer(s);
    if (!status.ok()) {
      s.problem = absl::StrCat(status.message(), "; retrying every second");
      return false;
    }
    return true;
  }

  absl::Status Configure(Stream& s) {
    const DeviceSetup& setup = s.setup;
    const std::string& dir = setup.dir;
    // Most attributes are refused while the buffer runs.
    if (auto st = WriteAttribute(dir + "/buffer/enable", "0"); !st.ok()) {
      return st;
    }
    std::vector<std::pair<std::string, std::string>> writes;
    writes.emplace_back("sampling_frequency", setup.frequency);
    if (setup.accel && !setup.accel_scale.empty()) {
      writes.emplace_back("in_accel_scale", setup.accel_scale);
    }
    if (setup.gyro && !setup.gyro_scale.empty()) {
      writes.emplace_back("in_anglvel_scale", setup.gyro_scale);
    }
    if (Exists(dir + "/current_timestamp_clock")) {
      writes.emplace_back("current_timestamp_clock", "monotonic");
    }
    for (const char* axis : {"x", "y", "z"}) {
      if (setup.accel) {
        writes.emplace_back(
            absl::StrCat("scan_elements/in_accel_", axis, "_en"), "1");
      }
      if (setup.gyro) {
        writes.emplace_back(
            absl::StrCat("scan_elements/in_anglvel_", axis, "_en"), "1");
      }
    }
    writes.emplace_back("scan_elements/in_timestamp_en", "1");
    // About a second of kernel buffering (at least four bursts) rides out a
    // busy station without overflowing.
    const uint32_t length =
        std::max<uint32_t>(4 * watermark_, static_cast<uint32_t>(rate_hz_));
    writes.emplace_back("buffer/length", absl::StrCat(length));
    if (Exists(dir + "/buffer/watermark")) {
      writes.emplace_back("buffer/watermark", absl::StrCat(watermark_));
    }
    for (const auto& [file, value] : writes) {
      if (auto st = WriteAttribute(absl::StrCat(dir, "/", file), value);
          !st.ok()) {
        return st;
      }
    }
    auto layout = ReadLayout(dir, setup.label);
    if (!layout.ok()) return layout.status();
    if (layout->timestamp < 0 ||
        (setup.accel &&
         *std::min_element(layout->accel.begin(), layout->accel.end()) < 0) ||
        (setup.gyro &&
         *std::min_element(layout->gyro.begin(), layout->gyro.end()) < 0)) {
      return absl::FailedPreconditionError(absl::StrCat(
          setup.label, ": the scan does not hold the enabled channels"));
    }
    if (layout->record_bytes > s.chunk.size()) {
      return absl::FailedPreconditionError(
          absl::StrCat(setup.label, ": scan record of ", layout->record_bytes,
                       " bytes is too large"));
    }
    std::string clock = "realtime";
    if (Exists(dir + "/current_timestamp_clock")) {
      auto text = ReadAttribute(dir + "/current_timestamp_clock");
      if (!text.ok()) return text.status();
      clock = *text;
    }
    auto offset = ClockOffsetNs(clock);
    if (!offset.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(setup.label, ": ", offset.status().message()));
    }
    s.layout = *std::move(layout);
    s.clock_offset_ns = *offset;
    return WriteAttribute(dir + "/buffer/enable", "1");
  }

  absl::Status OpenBuffer(Stream& s) {
    const int fd =
        ::open(s.setup.buffer_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot open ", s.setup.buffer_path, ": ", std::strerror(errno)));
    }
    boost::system::error_code ec;
    s.buffer.assign(fd, ec);
    if (ec) {
      ::close(fd);
      return absl::UnavailableError(
          absl::StrCat("cannot read ", s.setup.buffer_path,
                       " asynchronously: ", ec.message()));
    }
    s.open = true;
    s.problem.clear();
    ++s.generation;
    s.partial.clear();
    s.last_arrival_us = MonotonicMicros();
    s.last_t_us = std::numeric_limits<int64_t>::min();
    Read(s);
    return absl::OkStatus();
  }

  void Read(Stream& s) {
    s.buffer.async_read_some(
        boost::asio::buffer(s.chunk),
        [this, &s, generation = s.generation,
         alive = std::weak_ptr<const bool>(alive_)](
            const boost::system::error_code& ec, size_t n) {
          if (alive.expired() || generation != s.generation) return;
          OnRead(s, ec, n);
        });
  }

  void OnRead(Stream& s, const boost::system::error_code& ec, size_t n) {
    if (ec == boost::asio::error::operation_aborted || !s.open) return;
    if (ec) {
      Close(s, ec == boost::asio::error::eof
                   ? absl::StrCat("buffer ", s.setup.buffer_path,
                                  " closed (end of file)")
                   : absl::StrCat("reading ", s.setup.buffer_path,
                                  " failed: ", ec.message()));
      s.problem += "; reopening every second";
      ScheduleReopen();
      return;
    }
    const int64_t arrival_us = MonotonicMicros();
    s.partial.insert(s.partial.end(), s.chunk.begin(), s.chunk.begin() + n);
    const size_t record = s.layout.record_bytes;
    size_t used = 0;
    for (; used + record <= s.partial.size(); used += record) {
      Decode(s, s.partial.data() + used, arrival_us);
    }
    s.partial.erase(s.partial.begin(), s.partial.begin() + used);
    Pair();
    Read(s);
  }

  void Close(Stream& s, std::string problem) {
    boost::system::error_code ignored;
    s.buffer.close(ignored);
    s.open = false;
    ++s.generation;
    s.problem = std::move(problem);
    for (auto& other : streams_) other->unpaired.clear();
    restart_gap_count_ = true;  // downtime shows as DISCONNECTED, not loss
  }

  void ScheduleReopen() {
    if (stopped_ || reopen_pending_) return;
    reopen_pending_ = true;
    timer_.expires_after(kReopenInterval);
    timer_.async_wait([this, alive = std::weak_ptr<const bool>(alive_)](
                          const boost::system::error_code& ec) {
      if (alive.expired()) return;
      reopen_pending_ = false;
      if (ec || stopped_) return;
      bool all_open = true;
      for (auto& s : streams_) {
        if (!s->open) all_open &= TryOpen(*s);
      }
      if (!all_open) ScheduleReopen();
    });
  }

  void Decode(Stream& s, const uint8_t* record, int64_t arrival_us) {
    const Layout& layout = s.layout;
    const Element& ts = layout.elements[layout.timestamp];
    const int64_t t_us =
        (DecodeIioElement(ts.type, record + ts.offset) + s.clock_offset_ns) /
        1000;
    // A repeated or backward timestamp cannot go into a strictly increasing
    // series; the kernel does not produce them in normal operation.
    if (t_us <= s.last_t_us) return;
    s.last_t_us = t_us;
    s.last_arrival_us = arrival_us;
    auto value = [&](int pos) {
      const Element& e = layout.elements[pos];
      return static_cast<float>(
          (DecodeIioElement(e.type, record + e.offset) + e.value_offset) *
          e.scale);
    };
    Reading reading;
    reading.t_us = t_us;
    for (int axis = 0; axis < 3; ++axis) {
      if (s.setup.accel) reading.accel[axis] = value(layout.accel[axis]);
      if (s.setup.gyro) reading.gyro[axis] = value(layout.gyro[axis]);
    }
    s.unpaired.push_back(reading);
  }

  // Turns decoded scans into rows: directly for one device; for two, by
  // pairing each accelerometer scan with the gyroscope scan nearest in time
  // (within half a period; both streams are strictly increasing, so only
  // the two fronts need comparing). A scan without a partner is dropped and
  // shows as a gap.
  void Pair() {
    if (streams_.size() == 1) {
      for (const Reading& r : streams_[0]->unpaired) {
        Emit(r.t_us, r.accel, r.gyro);
      }
      streams_[0]->unpaired.clear();
      return;
    }
    std::deque<Reading>& accel = streams_[0]->unpaired;
    std::deque<Reading>& gyro = streams_[1]->unpaired;
    const double half_period_us = period_us_ / 2;
    while (!accel.empty() && !gyro.empty()) {
      const Reading& a = accel.front();
      const Reading& g = gyro.front();
      if (std::abs(static_cast<double>(a.t_us - g.t_us)) <= half_period_us) {
        Emit(a.t_us, a.accel, g.gyro);
        accel.pop_front();
        gyro.pop_front();
      } else if (a.t_us < g.t_us) {
        accel.pop_front();
      } else {
        gyro.pop_front();
      }
    }
    // One stream stopped: keep two seconds for it to catch up, no more.
    const size_t cap = static_cast<size_t>(2 * rate_hz_) + 2 * watermark_;
    for (auto* queue : {&accel, &gyro}) {
      while (queue->size() > cap) queue->pop_front();
    }
  }

  void Emit(int64_t t_us, const std::array<float, 3>& accel,
            const std::array<float, 3>& gyro) {
    if (have_last_row_ && t_us <= last_row_us_) return;
    if (have_last_row_ && !restart_gap_count_) {
      // The kernel skips what a full FIFO could not hold; the gap shows it.
      const double periods = (t_us - last_row_us_) / period_us_;
      if (periods > 1.5) samples_lost_ += std::llround(periods) - 1;
    }
    restart_gap_count_ = false;
    have_last_row_ = true;
    last_row_us_ = t_us;
    rows_.push_back({t_us, axis_map_.Apply(accel), axis_map_.Apply(gyro)});
  }

  const uint32_t sensor_id_;
  const v1::Placement placement_;
  const AxisMap axis_map_;
  const uint32_t watermark_;
  const double rate_hz_;
  const double period_us_;
  std::vector<std::unique_ptr<Stream>> streams_;  // accel (+gyro) device
  boost::asio::steady_timer timer_;
  bool reopen_pending_ = false;
  bool stopped_ = false;
  std::deque<ImuRow> rows_;  // decoded, not yet polled
  bool have_last_row_ = false;
  bool restart_gap_count_ = false;
  int64_t last_row_us_ = 0;
  uint64_t samples_lost_ = 0;
  // Handlers still queued after destruction see this expired.
  std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true);
};

absl::StatusOr<int> ChannelBits(const std::string& dir,
                                const std::string& channel) {
  auto type = ReadAttribute(dir + "/scan_elements/" + channel + "_type");
  if (!type.ok()) return type.status();
  auto parsed = ParseIioScanType(*type);
  if (!parsed.ok()) return parsed.status();
  return parsed->bits;
}

// Checks that a device has the scan elements we need.
absl::Status CheckChannels(absl::string_view field, const std::string& dir,
                           const std::string& label,
                           absl::string_view channel_type) {
  if (!Exists(dir + "/buffer/enable")) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", label,
        " has no buffer (buffer/enable): not a buffered IIO device"));
  }
  for (const std::string& channel :
       {absl::StrCat("in_", channel_type, "_x"),
        absl::StrCat("in_", channel_type, "_y"),
        absl::StrCat("in_", channel_type, "_z"), std::string("in_timestamp")}) {
    if (!Exists(absl::StrCat(dir, "/scan_elements/", channel, "_type"))) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": ", label, " has no ", channel, " scan element"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<IioScanType> ParseIioScanType(absl::string_view text) {
  const std::string original(text);
  auto bad = [&original](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("scan type \"", original, "\" ", why));
  };
  IioScanType type;
  if (absl::ConsumePrefix(&text, "be:")) {
    type.big_endian = true;
  } else if (!absl::ConsumePrefix(&text, "le:")) {
    return bad("does not start with be: or le:");
  }
  if (absl::ConsumePrefix(&text, "s")) {
    type.is_signed = true;
  } else if (absl::ConsumePrefix(&text, "u")) {
    type.is_signed = false;
  } else {
    return bad("has no sign (s or u)");
  }
  auto number = [&text](int* out) {
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
      ++digits;
    }
    if (digits == 0 || !absl::SimpleAtoi(text.substr(0, digits), out)) {
      return false;
    }
    text.remove_prefix(digits);
    return true;
  };
  if (!number(&type.bits) || !absl::ConsumePrefix(&text, "/") ||
      !number(&type.storage_bits)) {
    return bad("is not <bits>/<storage bits>");
  }
  if (absl::StartsWith(text, "X")) {
    return bad("repeats its element; repeated scan elements are not supported");
  }
  if (!absl::ConsumePrefix(&text, ">>") || !number(&type.shift) ||
      !text.empty()) {
    return bad("does not end in >><shift>");
  }
  if (type.storage_bits != 8 && type.storage_bits != 16 &&
      type.storage_bits != 32 && type.storage_bits != 64) {
    return bad("has a storage size other than 8, 16, 32 or 64 bits");
  }
  if (type.bits < 1 || type.shift + type.bits > type.storage_bits) {
    return bad("does not fit its storage");
  }
  return type;
}

int64_t DecodeIioElement(const IioScanType& type, const uint8_t* data) {
  const int bytes = type.storage_bits / 8;
  uint64_t raw = 0;
  for (int i = 0; i < bytes; ++i) {
    raw = (raw << 8) | data[type.big_endian ? i : bytes - 1 - i];
  }
  raw >>= type.shift;
  if (type.bits < 64) {
    const uint64_t mask = (uint64_t{1} << type.bits) - 1;
    raw &= mask;
    if (type.is_signed && ((raw >> (type.bits - 1)) & 1)) raw |= ~mask;
  }
  return static_cast<int64_t>(raw);
}

absl::StatusOr<std::unique_ptr<SensorSource>> MakeIioImu(
    const v1::IioImuConfig& config, uint32_t sensor_id, v1::Placement placement,
    boost::asio::io_context& io) {
  const std::string root = config.sysfs_root().empty() ? "/sys/bus/iio/devices"
                                                       : config.sysfs_root();
  auto positive = [](absl::string_view field, double value, double fallback,
                     double most,
                     absl::string_view unit) -> absl::StatusOr<double> {
    if (value == 0) return fallback;
    if (!std::isfinite(value) || value < 0 || value > most) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: %g %s is outside (0, %g]", field, value, unit, most));
    }
    return value;
  };
  auto rate_hz = positive("iio_imu.sampling_frequency_hz",
                          config.sampling_frequency_hz(), 208, 10000, "Hz");
  if (!rate_hz.ok()) return rate_hz.status();
  auto range_g =
      positive("iio_imu.accel_range_g", config.accel_range_g(), 8, 1000, "g");
  if (!range_g.ok()) return range_g.status();
  auto range_dps = positive("iio_imu.gyro_range_dps", config.gyro_range_dps(),
                            1000, 100000, "dps");
  if (!range_dps.ok()) return range_dps.status();
  const uint32_t watermark =
      config.fifo_watermark() == 0 ? 16 : config.fifo_watermark();
  if (watermark > 1024) {
    return absl::InvalidArgumentError(absl::StrCat(
        "iio_imu.fifo_watermark: ", watermark,
        " samples per burst is more than 1024 (no IMU FIFO holds that)"));
  }
  auto axis_map = ParseAxisMap(config.axis_map());
  if (!axis_map.ok()) return axis_map.status();
  if (config.accel_device().empty()) {
    return absl::InvalidArgumentError(
        "iio_imu.accel_device: required, e.g. /sys/bus/iio/devices/iio:device0 "
        "or the device's name such as lsm6dsox_accel");
  }

  auto accel_dir =
      ResolveDevice("iio_imu.accel_device", config.accel_device(), root);
  if (!accel_dir.ok()) return accel_dir.status();
  std::vector<DeviceSetup> setups(1);
  setups[0].dir = *accel_dir;
  setups[0].accel = true;
  if (config.gyro_device().empty()) {
    setups[0].gyro = true;
  } else {
    auto gyro_dir =
        ResolveDevice("iio_imu.gyro_device", config.gyro_device(), root);
    if (!gyro_dir.ok()) return gyro_dir.status();
    std::error_code ec;
    if (fs::equivalent(*gyro_dir, *accel_dir, ec)) {
      return absl::InvalidArgumentError(
          "iio_imu.gyro_device: names the accel device again; leave it empty "
          "when one device carries both");
    }
    DeviceSetup gyro;
    gyro.dir = *gyro_dir;
    gyro.gyro = true;
    setups.push_back(std::move(gyro));
  }

  for (size_t i = 0; i < setups.size(); ++i) {
    DeviceSetup& setup = setups[i];
    const std::string field =
        i == 0 ? "iio_imu.accel_device" : "iio_imu.gyro_device";
    auto name = ReadAttribute(setup.dir + "/name");
    if (!name.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": ", setup.dir, " is not an IIO device (no name file)"));
    }
    setup.name = *name;
    setup.label = Label(setup.name, setup.dir);
    const std::string& buffer =
        i == 0 ? config.accel_buffer_device() : config.gyro_buffer_device();
    setup.buffer_path =
        buffer.empty() ? absl::StrCat("/dev/", Basename(setup.dir)) : buffer;

    if (setup.accel) {
      if (auto st = CheckChannels(field, setup.dir, setup.label, "accel");
          !st.ok()) {
        return st;
      }
    }
    if (setup.gyro) {
      const bool has_gyro =
          Exists(setup.dir + "/scan_elements/in_anglvel_x_type");
      if (!has_gyro && config.gyro_device().empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "iio_imu.gyro_device: empty, but ", setup.label,
            " has no gyroscope channels; give the gyroscope's IIO device "
            "(st_lsm6dsx and inv_icm42600 register it separately)"));
      }
      if (auto st = CheckChannels(field, setup.dir, setup.label, "anglvel");
          !st.ok()) {
        return st;
      }
    }

    auto frequency = ChooseFrequency("iio_imu.sampling_frequency_hz", setup.dir,
                                     setup.label, *rate_hz);
    if (!frequency.ok()) return frequency.status();
    setup.frequency = frequency->first;
    setup.frequency_hz = frequency->second;
    if (setup.accel) {
      auto bits = ChannelBits(setup.dir, "in_accel_x");
      if (!bits.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ": ", bits.status().message()));
      }
      auto scale =
          ChooseScale("iio_imu.accel_range_g", setup.dir, setup.label,
                      "in_accel", *bits, *range_g, kStandardGravity, "g");
      if (!scale.ok()) return scale.status();
      setup.accel_scale = *scale;
    }
    if (setup.gyro) {
      auto bits = ChannelBits(setup.dir, "in_anglvel_x");
      if (!bits.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ": ", bits.status().message()));
      }
      auto scale =
          ChooseScale("iio_imu.gyro_range_dps", setup.dir, setup.label,
                      "in_anglvel", *bits, *range_dps, kRadPerDegree, "dps");
      if (!scale.ok()) return scale.status();
      setup.gyro_scale = *scale;
    }
  }
  if (setups.size() == 2 &&
      std::abs(setups[0].frequency_hz - setups[1].frequency_hz) >
          0.01 * setups[0].frequency_hz) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "iio_imu.sampling_frequency_hz: nearest to %g Hz, %s runs at %g Hz "
        "but %s at %g Hz; pick a frequency both offer",
        *rate_hz, setups[0].label, setups[0].frequency_hz, setups[1].label,
        setups[1].frequency_hz));
  }
  return std::make_unique<IioImu>(sensor_id, placement, *axis_map, watermark,
                                  std::move(setups), io);
}

}  // namespace stephub::station
