// The serial force-plate driver; see serial_force_plate.h and
// docs/FORCE_PLATE_PROTOCOL.md.
#include "station/sensors/serial_force_plate.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "boost/asio/error.hpp"
#include "boost/asio/serial_port.hpp"
#include "boost/asio/steady_timer.hpp"

namespace stephub::station {

namespace plate_protocol {

uint16_t Crc16Ccitt(absl::Span<const uint8_t> bytes) {
  uint16_t crc = 0xFFFF;
  for (uint8_t byte : bytes) {
    crc ^= static_cast<uint16_t>(byte) << 8;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

}  // namespace plate_protocol

namespace {

uint32_t U32At(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 |
         uint32_t{p[3]} << 24;
}

int32_t S24At(const uint8_t* p) {
  uint32_t raw = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16;
  if (raw & 0x800000) raw |= 0xFF000000;
  return static_cast<int32_t>(raw);
}

}  // namespace

void PlateFrameDecoder::Feed(absl::Span<const uint8_t> bytes,
                             std::vector<PlateFrame>* frames) {
  namespace pp = plate_protocol;
  pending_.insert(pending_.end(), bytes.begin(), bytes.end());
  // Bytes before the first valid frame are no damage (see Reset).
  auto bad = [this] { bad_run_ = synced_; };
  size_t pos = 0;
  while (pending_.size() - pos >= 2) {
    const uint8_t* frame = pending_.data() + pos;
    if (frame[0] != pp::kSync0 || frame[1] != pp::kSync1) {
      bad();
      ++pos;
      continue;
    }
    if (pending_.size() - pos < pp::kFrameBytes) break;
    const uint16_t crc = uint16_t{frame[23]} | uint16_t{frame[24]} << 8;
    if (pp::Crc16Ccitt(absl::MakeConstSpan(frame + 2, 21)) != crc) {
      // Maybe a false sync inside noise, or a damaged frame: slide on.
      bad();
      ++pos;
      continue;
    }
    PlateFrame out;
    out.version = frame[2] >> 4;
    out.type = frame[2] & 0x0F;
    out.after_malformed = bad_run_;
    out.counter = U32At(frame + 3);
    out.device_us = U32At(frame + 7);
    for (int i = 0; i < 4; ++i) out.counts[i] = S24At(frame + 11 + 3 * i);
    out.adc_errors = frame[11];
    out.flags = frame[12];
    out.firmware_major = frame[13];
    out.firmware_minor = frame[14];
    frames->push_back(out);
    synced_ = true;
    bad_run_ = false;
    pos += pp::kFrameBytes;
  }
  pending_.erase(pending_.begin(), pending_.begin() + pos);
}

void PlateFrameDecoder::Reset() {
  pending_.clear();
  synced_ = false;
  bad_run_ = false;
}

namespace {

namespace fs = std::filesystem;
namespace pp = plate_protocol;

constexpr std::chrono::seconds kReopenInterval{1};
constexpr int64_t kNoDataUs = 200'000;
constexpr int64_t kStuckUs = 1'000'000;  // of the plate's own sample time
constexpr double kMinCopForceN = 20;
constexpr int64_t kClockWindowUs = 2'000'000;
constexpr uint32_t kDefaultBaud = 921600;
constexpr double kDefaultRateHz = 1000;
constexpr double kMinRateHz = 500;

// Baud rates Boost.Asio (and the Linux tty layer) set without a custom
// divisor.
constexpr std::array<uint32_t, 16> kBauds = {
    9600,   19200,  38400,   57600,   115200,  230400,  460800,  500000,
    576000, 921600, 1000000, 1152000, 1500000, 2000000, 3000000, 4000000};

std::optional<std::string> ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return std::string(absl::StripAsciiWhitespace(line));
}

struct ForceRow {
  int64_t t_us;
  float fz_n;
  float cop_x_mm;
  float cop_y_mm;
};

class SerialForcePlate : public SensorSource {
 public:
  SerialForcePlate(const v1::SerialForcePlateConfig& config, uint32_t sensor_id,
                   uint32_t baud, double rate_hz, boost::asio::io_context& io,
                   SerialForcePlateOptions options)
      : config_(config),
        sensor_id_(sensor_id),
        baud_(baud),
        rate_hz_(rate_hz),
        options_(std::move(options)),
        port_(io),
        timer_(io),
        // A tenth of a period per frame: follows crystal drift and burst
        // jitter without ever reordering samples.
        clock_(kClockWindowUs, static_cast<int64_t>(1e5 / rate_hz)) {}

  ~SerialForcePlate() override { Stop(); }

  std::vector<v1::SensorInfo> Sensors() const override {
    v1::SensorInfo info;
    info.set_sensor_id(sensor_id_);
    info.set_kind(v1::SENSOR_KIND_FORCE_PLATE);
    info.set_placement(v1::PLACEMENT_STANCE_FOOT);
    info.set_rate_hz(rate_hz_);
    info.set_model(firmware_.empty()
                       ? std::string("stephub-plate")
                       : absl::StrCat("stephub-plate fw ", firmware_));
    info.set_driver("serial-plate");
    info.set_device(config_.device());
    return {info};
  }

  absl::Status Start() override {
    stopped_ = false;
    if (!open_ && !TryOpen()) ScheduleReopen();
    return absl::OkStatus();
  }

  absl::Status Poll(int64_t now_us, v1::SampleBatch* batch) override {
    if (rows_.empty() || rows_.front().t_us > now_us) return absl::OkStatus();
    v1::ForceSamples* out = batch->add_force();
    out->set_sensor_id(sensor_id_);
    while (!rows_.empty() && rows_.front().t_us <= now_us) {
      const ForceRow& row = rows_.front();
      out->add_t_us(row.t_us);
      out->add_fz_n(row.fz_n);
      out->add_cop_x_mm(row.cop_x_mm);
      out->add_cop_y_mm(row.cop_y_mm);
      rows_.pop_front();
    }
    return absl::OkStatus();
  }

  std::vector<v1::SensorHealth> Health(int64_t now_us) const override {
    v1::SensorHealth health;
    health.set_sensor_id(sensor_id_);
    health.set_samples_lost(samples_lost_);
    health.set_state(v1::SENSOR_STATE_OK);
    if (!open_) {
      health.set_state(v1::SENSOR_STATE_DISCONNECTED);
      health.set_detail(problem_);
    } else if (now_us - last_frame_us_ > kNoDataUs) {
      health.set_state(v1::SENSOR_STATE_NO_DATA);
      health.set_detail(
          absl::StrFormat("no frames from the force plate on %s for %.1f s",
                          config_.device(), (now_us - last_frame_us_) / 1e6));
    } else if (!version_problem_.empty()) {
      health.set_state(v1::SENSOR_STATE_FAULT);
      health.set_detail(version_problem_);
    } else if (adc_errors_ != 0) {
      std::vector<std::string> cells;
      for (int i = 0; i < 4; ++i) {
        if (adc_errors_ & (1u << i)) cells.push_back(absl::StrCat(i + 1));
      }
      health.set_state(v1::SENSOR_STATE_FAULT);
      health.set_detail(absl::StrCat(
          "the force plate reports load cell ", absl::StrJoin(cells, ", "),
          ": ADC not converting (check the cell's cable)"));
    } else if (stuck_cell_ >= 0) {
      health.set_state(v1::SENSOR_STATE_FAULT);
      health.set_detail(
          absl::StrCat("load cell ", stuck_cell_ + 1, " reads a constant ",
                       runs_[stuck_cell_].value, " — saturated or unplugged"));
    }
    return {health};
  }

  void Stop() override {
    stopped_ = true;
    timer_.cancel();
    if (open_) Close("stopped");
  }

 private:
  // What the run of identical readings of one cell looked like.
  struct CellRun {
    int32_t value = 0;
    int64_t since_device_us = 0;
    bool others_varied = false;
    bool loaded = false;
  };

  void Note(absl::string_view message) const {
    if (options_.debug_log) options_.debug_log(message);
  }

  bool TryOpen() {
    boost::system::error_code ec;
    port_.open(config_.device(), ec);
    if (ec) {
      problem_ = absl::StrCat("cannot open ", config_.device(), ": ",
                              ec.message(), "; retrying every second");
      return false;
    }
    using Base = boost::asio::serial_port_base;
    port_.set_option(Base::baud_rate(baud_), ec);
    if (!ec) port_.set_option(Base::character_size(8), ec);
    if (!ec) port_.set_option(Base::parity(Base::parity::none), ec);
    if (!ec) port_.set_option(Base::stop_bits(Base::stop_bits::one), ec);
    if (!ec) port_.set_option(Base::flow_control(Base::flow_control::none), ec);
    if (ec) {
      boost::system::error_code ignored;
      port_.close(ignored);
      problem_ =
          absl::StrCat("cannot configure ", config_.device(), " (", baud_,
                       " 8N1): ", ec.message(), "; retrying every second");
      return false;
    }
    SetLatencyTimer();
    open_ = true;
    ++generation_;
    problem_.clear();
    last_frame_us_ = MonotonicMicros();
    // A fresh connection: the plate may have restarted, and the first bytes
    // may be the tail of a frame.
    decoder_.Reset();
    pending_malformed_ = 0;
    have_counter_ = false;
    runs_valid_ = false;
    stuck_cell_ = -1;
    adc_errors_ = 0;
    clock_.Reset();
    Read();
    return true;
  }

  // FTDI adapters hold received bytes up to 16 ms before sending them over
  // USB; at 1 kHz that is 16-sample bursts. 1 ms keeps frames near their
  // sample time. The attribute resets on every plug-in, so set it per open.
  void SetLatencyTimer() {
    std::error_code ec;
    const fs::path real = fs::canonical(config_.device(), ec);
    const std::string tty =
        (ec ? fs::path(config_.device()) : real).filename().string();
    const fs::path root(options_.sysfs_root);
    for (const fs::path& path :
         {root / "class/tty" / tty / "device/latency_timer",
          root / "bus/usb-serial/devices" / tty / "latency_timer"}) {
      if (!fs::exists(path, ec)) continue;
      if (ReadLine(path.string()) == "1") return;
      std::ofstream out(path);
      out << "1\n";
      out.flush();
      if (!out) {
        Note(absl::StrCat("cannot set ", path.string(), " to 1 ms (",
                          std::strerror(errno),
                          "); frames will arrive in bursts of up to 16 ms "
                          "(docs/HARDWARE.md has a udev rule)"));
      }
      return;
    }
    Note(absl::StrCat(tty, " has no latency_timer under ", root.string(),
                      " (not an FTDI adapter); USB latency left as is"));
  }

  void Close(std::string problem) {
    boost::system::error_code ignored;
    port_.close(ignored);
    open_ = false;
    ++generation_;
    problem_ = std::move(problem);
  }

  void ScheduleReopen() {
    if (stopped_ || reopen_pending_) return;
    reopen_pending_ = true;
    timer_.expires_after(kReopenInterval);
    timer_.async_wait([this, alive = std::weak_ptr<const bool>(alive_)](
                          const boost::system::error_code& ec) {
      if (alive.expired()) return;
      reopen_pending_ = false;
      if (ec || stopped_ || open_) return;
      if (!TryOpen()) ScheduleReopen();
    });
  }

  void Read() {
    port_.async_read_some(boost::asio::buffer(chunk_),
                          [this, generation = generation_,
                           alive = std::weak_ptr<const bool>(alive_)](
                              const boost::system::error_code& ec, size_t n) {
                            if (alive.expired() || generation != generation_)
                              return;
                            OnRead(ec, n);
                          });
  }

  void OnRead(const boost::system::error_code& ec, size_t n) {
    if (ec == boost::asio::error::operation_aborted) return;
    if (ec) {
      // EOF or EIO: the USB adapter went away (unplugged, plate powered off).
      Close(absl::StrCat(
          "the force plate on ", config_.device(), " went away (",
          ec == boost::asio::error::eof ? "end of file" : ec.message(),
          "); reopening every second"));
      ScheduleReopen();
      return;
    }
    const int64_t arrival_us = MonotonicMicros();
    frames_.clear();
    decoder_.Feed(absl::MakeConstSpan(chunk_.data(), n), &frames_);
    for (const PlateFrame& frame : frames_) {
      last_frame_us_ = arrival_us;
      HandleFrame(frame, arrival_us);
    }
    Read();
  }

  void HandleFrame(const PlateFrame& frame, int64_t arrival_us) {
    // One loss per run of bad bytes: a damaged frame often holds false sync
    // bytes, and noise between frames is no sample at all.
    if (frame.after_malformed) ++pending_malformed_;
    if (frame.version != pp::kVersion) {
      version_problem_ = absl::StrCat(
          "the force plate speaks protocol version ", frame.version,
          "; this station reads version ", pp::kVersion,
          " (update the station or the plate firmware)");
      return;
    }
    version_problem_.clear();
    if (frame.type == pp::kStatusFrame) {
      adc_errors_ = frame.adc_errors & 0x0F;
      firmware_ = absl::StrCat(frame.firmware_major, ".", frame.firmware_minor);
      // Bit 1: the plate restarted; its counter and clock start over.
      if (frame.flags & 0x02) {
        have_counter_ = false;
        clock_.Reset();
      }
      return;
    }
    if (frame.type != pp::kSampleFrame) return;  // newer frame types

    const uint32_t step = frame.counter - last_counter_;
    if (have_counter_ && step == 0) return;  // repeated frame
    // A counter that went backwards: the plate restarted unannounced.
    const bool new_epoch = !have_counter_ || step > 0x80000000u;
    if (new_epoch) {
      if (have_counter_) clock_.Reset();
      samples_lost_ += pending_malformed_;
      device_elapsed_us_ = 0;
      runs_valid_ = false;
    } else {
      // A damaged frame usually also leaves a counter gap; count it once.
      samples_lost_ += std::max<uint64_t>(step - 1, pending_malformed_);
      device_elapsed_us_ += frame.device_us - last_device_us_;
    }
    pending_malformed_ = 0;
    have_counter_ = true;
    last_counter_ = frame.counter;
    last_device_us_ = frame.device_us;

    const PlateReading reading = ComputePlateReading(config_, frame.counts);
    TrackStuckCells(frame.counts, reading.fz_n);
    rows_.push_back({clock_.Map(frame.device_us, arrival_us),
                     static_cast<float>(reading.fz_n),
                     static_cast<float>(reading.cop_x_mm),
                     static_cast<float>(reading.cop_y_mm)});
  }

  // A live load cell's 24-bit reading always carries a few counts of noise;
  // one that repeats exactly for a second, while the plate is loaded or the
  // other cells move, is saturated or disconnected.
  void TrackStuckCells(const std::array<int32_t, 4>& counts, double fz_n) {
    const int64_t now = device_elapsed_us_;
    if (!runs_valid_) {
      for (int i = 0; i < 4; ++i) runs_[i] = {counts[i], now, false, false};
      runs_valid_ = true;
      stuck_cell_ = -1;
      return;
    }
    std::array<bool, 4> changed;
    for (int i = 0; i < 4; ++i) changed[i] = counts[i] != runs_[i].value;
    stuck_cell_ = -1;
    for (int i = 0; i < 4; ++i) {
      CellRun& run = runs_[i];
      if (changed[i]) {
        run = {counts[i], now, false, false};
        continue;
      }
      for (int j = 0; j < 4; ++j) run.others_varied |= j != i && changed[j];
      run.loaded |= fz_n >= kMinCopForceN;
      if (stuck_cell_ < 0 && now - run.since_device_us >= kStuckUs &&
          (run.others_varied || run.loaded)) {
        stuck_cell_ = i;
      }
    }
  }

  const v1::SerialForcePlateConfig config_;
  const uint32_t sensor_id_;
  const uint32_t baud_;
  const double rate_hz_;
  const SerialForcePlateOptions options_;
  boost::asio::serial_port port_;
  boost::asio::steady_timer timer_;
  bool open_ = false;
  bool stopped_ = false;
  bool reopen_pending_ = false;
  uint64_t generation_ = 0;  // bumped per open/close; stale reads ignored
  std::string problem_ = "not started";
  std::array<uint8_t, 4096> chunk_{};
  PlateFrameDecoder decoder_;
  std::vector<PlateFrame> frames_;  // scratch, reused per read
  int64_t last_frame_us_ = 0;       // station time of the last good frame

  uint64_t pending_malformed_ = 0;  // bad runs since the last sample frame
  bool have_counter_ = false;
  uint32_t last_counter_ = 0;
  uint32_t last_device_us_ = 0;
  int64_t device_elapsed_us_ = 0;  // plate time since the connection began
  uint64_t samples_lost_ = 0;
  DeviceClockMapper clock_;

  std::string version_problem_;
  std::string firmware_;
  uint8_t adc_errors_ = 0;
  std::array<CellRun, 4> runs_;
  bool runs_valid_ = false;
  int stuck_cell_ = -1;

  std::deque<ForceRow> rows_;  // decoded, not yet polled
  // Handlers still queued after destruction see this expired.
  std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true);
};

absl::Status ValidateConfig(const v1::SerialForcePlateConfig& config,
                            uint32_t baud, double rate_hz) {
  if (config.device().empty()) {
    return absl::InvalidArgumentError(
        "serial_force_plate.device: required, e.g. "
        "/dev/serial/by-id/usb-StepHub_plate-if00");
  }
  if (!std::isfinite(rate_hz) || rate_hz < kMinRateHz) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "serial_force_plate.expected_rate_hz: %g Hz is too slow; a "
        "step-down's loading transient lasts tens of milliseconds and needs "
        "at least %g Hz (an HX711 tops out at 80 Hz: use a faster ADC such as "
        "the ADS131M04)",
        rate_hz, kMinRateHz));
  }
  if (rate_hz > 20000) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "serial_force_plate.expected_rate_hz: %g Hz is more than the plate "
        "firmware sends (20000 at most)",
        rate_hz));
  }
  if (std::find(kBauds.begin(), kBauds.end(), baud) == kBauds.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "serial_force_plate.baud: ", baud,
        " is not a standard rate (e.g. 460800, 921600, 1000000, 2000000)"));
  }
  // 8N1 sends ten bits per byte; keep a quarter spare for status frames and
  // the adapter's own gaps.
  const double frames_per_s = baud / 10.0 / pp::kFrameBytes;
  if (frames_per_s < 1.25 * rate_hz) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "serial_force_plate.baud: %u baud carries %.0f frames/s of %u bytes; "
        "%g Hz needs at least %.0f baud",
        baud, frames_per_s, pp::kFrameBytes, rate_hz,
        1.25 * rate_hz * pp::kFrameBytes * 10));
  }
  if (config.cells_size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("serial_force_plate.cells: ", config.cells_size(),
                     " given; the plate has exactly four load cells"));
  }
  for (int i = 0; i < 4; ++i) {
    const v1::LoadCell& cell = config.cells(i);
    const std::string field = absl::StrCat("serial_force_plate.cells[", i, "]");
    if (!std::isfinite(cell.x_mm()) || !std::isfinite(cell.y_mm())) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".x_mm/y_mm: not a finite position"));
    }
    if (!std::isfinite(cell.newtons_per_count()) ||
        cell.newtons_per_count() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".newtons_per_count: ", cell.newtons_per_count(),
                       "; calibrate the cell with a known mass "
                       "(docs/FORCE_PLATE_PROTOCOL.md)"));
    }
    if (cell.zero_counts() < -(int64_t{1} << 23) ||
        cell.zero_counts() >= (int64_t{1} << 23)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".zero_counts: ", cell.zero_counts(),
                       " is outside the 24-bit ADC's range"));
    }
  }
  // The centre of pressure needs the cells to span an area: the largest
  // triangle they form must not be a sliver of the plate's size.
  double largest_area2 = 0;  // twice the area
  double largest_span2 = 0;
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      const double dx = config.cells(j).x_mm() - config.cells(i).x_mm();
      const double dy = config.cells(j).y_mm() - config.cells(i).y_mm();
      largest_span2 = std::max(largest_span2, dx * dx + dy * dy);
      for (int k = 0; k < 4; ++k) {
        const double ex = config.cells(k).x_mm() - config.cells(i).x_mm();
        const double ey = config.cells(k).y_mm() - config.cells(i).y_mm();
        largest_area2 = std::max(largest_area2, std::abs(dx * ey - dy * ex));
      }
    }
  }
  if (largest_span2 == 0 || largest_area2 < 0.01 * largest_span2) {
    return absl::InvalidArgumentError(
        "serial_force_plate.cells: the four cells lie on one line; the centre "
        "of pressure needs them at the plate's corners");
  }
  return absl::OkStatus();
}

}  // namespace

int64_t DeviceClockMapper::Map(uint32_t device_us, int64_t arrival_us) {
  // Jumps of more than this are not jitter or drift but a wrong start.
  constexpr int64_t kSnapUs = 100'000;
  if (!started_) {
    device_us64_ = device_us;
  } else {
    // Unwraps the u32 (71.6 minutes); a small backward step stays backward.
    device_us64_ += static_cast<int32_t>(device_us - last_device_us_);
  }
  last_device_us_ = device_us;
  const int64_t offset = arrival_us - device_us64_;
  while (!window_.empty() && window_.back().second >= offset) {
    window_.pop_back();
  }
  window_.emplace_back(device_us64_, offset);
  while (window_.front().first < device_us64_ - window_us_) window_.pop_front();
  const int64_t best = window_.front().second;
  if (!started_) {
    started_ = true;
    applied_offset_us_ = best;
  } else if (std::abs(best - applied_offset_us_) > kSnapUs) {
    applied_offset_us_ = best;
  } else {
    applied_offset_us_ +=
        std::clamp(best - applied_offset_us_, -max_slew_us_, max_slew_us_);
  }
  int64_t t_us = device_us64_ + applied_offset_us_;
  if (have_last_station_us_ && t_us <= last_station_us_) {
    t_us = last_station_us_ + 1;
  }
  have_last_station_us_ = true;
  last_station_us_ = t_us;
  return t_us;
}

void DeviceClockMapper::Reset() {
  // Timestamps already handed out stay: later ones must still exceed them.
  started_ = false;
  window_.clear();
}

absl::StatusOr<std::array<int64_t, 4>> ZeroCountsFromUnloaded(
    absl::Span<const std::array<int32_t, 4>> unloaded) {
  if (unloaded.empty()) {
    return absl::InvalidArgumentError(
        "no unloaded samples to take the zero from");
  }
  std::array<int64_t, 4> sums = {0, 0, 0, 0};
  for (const auto& counts : unloaded) {
    for (int i = 0; i < 4; ++i) sums[i] += counts[i];
  }
  std::array<int64_t, 4> zero;
  for (int i = 0; i < 4; ++i) {
    zero[i] = std::llround(static_cast<double>(sums[i]) /
                           static_cast<double>(unloaded.size()));
  }
  return zero;
}

absl::StatusOr<double> NewtonsPerCountFromKnownMass(
    absl::Span<const int32_t> loaded_counts, int64_t zero_counts,
    double mass_kg) {
  if (!std::isfinite(mass_kg) || mass_kg <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the known mass must be positive, not ", mass_kg, " kg"));
  }
  if (loaded_counts.empty()) {
    return absl::InvalidArgumentError("no loaded samples to scale from");
  }
  int64_t sum = 0;
  for (int32_t c : loaded_counts) sum += c;
  const double delta =
      static_cast<double>(sum) / static_cast<double>(loaded_counts.size()) -
      static_cast<double>(zero_counts);
  // Fewer counts than this is noise: the mass is not on this cell.
  if (std::abs(delta) < 100) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%g kg moved the cell by only %.1f counts; is the mass on this cell?",
        mass_kg, delta));
  }
  return mass_kg * kStandardGravityMps2 / delta;
}

PlateReading ComputePlateReading(const v1::SerialForcePlateConfig& config,
                                 const std::array<int32_t, 4>& counts) {
  PlateReading out;
  double moment_x = 0;
  double moment_y = 0;
  for (int i = 0; i < 4 && i < config.cells_size(); ++i) {
    const v1::LoadCell& cell = config.cells(i);
    const double newtons = static_cast<double>(counts[i] - cell.zero_counts()) *
                           cell.newtons_per_count();
    out.fz_n += newtons;
    moment_x += newtons * cell.x_mm();
    moment_y += newtons * cell.y_mm();
  }
  if (out.fz_n < kMinCopForceN) {
    out.cop_x_mm = std::numeric_limits<double>::quiet_NaN();
    out.cop_y_mm = std::numeric_limits<double>::quiet_NaN();
  } else {
    out.cop_x_mm = moment_x / out.fz_n;
    out.cop_y_mm = moment_y / out.fz_n;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<SensorSource>> MakeSerialForcePlate(
    const v1::SerialForcePlateConfig& config, uint32_t sensor_id,
    boost::asio::io_context& io) {
  return MakeSerialForcePlate(config, sensor_id, io, SerialForcePlateOptions());
}

absl::StatusOr<std::unique_ptr<SensorSource>> MakeSerialForcePlate(
    const v1::SerialForcePlateConfig& config, uint32_t sensor_id,
    boost::asio::io_context& io, SerialForcePlateOptions options) {
  const uint32_t baud = config.baud() == 0 ? kDefaultBaud : config.baud();
  const double rate_hz = config.expected_rate_hz() == 0
                             ? kDefaultRateHz
                             : config.expected_rate_hz();
  if (auto status = ValidateConfig(config, baud, rate_hz); !status.ok()) {
    return status;
  }
  return std::make_unique<SerialForcePlate>(config, sensor_id, baud, rate_hz,
                                            io, std::move(options));
}

}  // namespace stephub::station
