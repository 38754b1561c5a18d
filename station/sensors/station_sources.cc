// Station sources from configuration; see station_sources.h.
#include "station/sensors/station_sources.h"

#include <boost/asio/io_context.hpp>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/simulator.h"
#include "station/sensors/iio_imu.h"
#include "station/sensors/sensors.h"
#include "station/sensors/serial_force_plate.h"

namespace stephub::station {
namespace {

class CombinedSource : public SensorSource {
 public:
  explicit CombinedSource(std::vector<std::unique_ptr<SensorSource>> parts)
      : parts_(std::move(parts)) {}

  std::vector<v1::SensorInfo> Sensors() const override {
    std::vector<v1::SensorInfo> out;
    for (const auto& part : parts_) {
      for (auto& sensor : part->Sensors()) out.push_back(std::move(sensor));
    }
    return out;
  }
  std::optional<bool> CalibrationMovement() const override {
    for (const auto& part : parts_) {
      if (auto movement = part->CalibrationMovement()) return movement;
    }
    return std::nullopt;
  }
  absl::Status Start() override {
    for (const auto& part : parts_) {
      if (auto s = part->Start(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  absl::Status Poll(int64_t now_us, v1::SampleBatch* batch) override {
    for (const auto& part : parts_) {
      if (auto s = part->Poll(now_us, batch); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  void OnSetStarted(int64_t now_us, StanceSide side) override {
    for (const auto& part : parts_) part->OnSetStarted(now_us, side);
  }
  bool SetPlayed() const override {
    for (const auto& part : parts_) {
      if (!part->SetPlayed()) return false;
    }
    return !parts_.empty();
  }
  std::vector<v1::SensorHealth> Health(int64_t now_us) const override {
    std::vector<v1::SensorHealth> out;
    for (const auto& part : parts_) {
      for (auto& h : part->Health(now_us)) out.push_back(std::move(h));
    }
    return out;
  }
  void Stop() override {
    for (const auto& part : parts_) part->Stop();
  }

 private:
  std::vector<std::unique_ptr<SensorSource>> parts_;
};

// IIO IMUs and the serial force plate; ids of 0 are assigned.
absl::StatusOr<std::unique_ptr<SensorSource>> MakeHardwareSource(
    const v1::SensorConfig& sensor, uint32_t& next_imu_id,
    boost::asio::io_context& io) {
  if (sensor.has_iio_imu()) {
    const uint32_t id =
        sensor.sensor_id() != 0 ? sensor.sensor_id() : next_imu_id++;
    return MakeIioImu(sensor.iio_imu(), id, sensor.placement(), io);
  }
  if (sensor.has_serial_force_plate()) {
    const uint32_t id = sensor.sensor_id() != 0 ? sensor.sensor_id() : 1;
    SerialForcePlateOptions options;
    options.debug_log = [id](absl::string_view note) {
      Log(LogLevel::kDebug, "force_plate")
          .With("sensor_id", id)
          .With("note", note);
    };
    return MakeSerialForcePlate(sensor.serial_force_plate(), id, io,
                                std::move(options));
  }
  return absl::InvalidArgumentError(
      "no driver: set one of sim, replay, iio_imu, serial_force_plate");
}

}  // namespace

std::unique_ptr<SensorSource> CombineSources(
    std::vector<std::unique_ptr<SensorSource>> parts) {
  if (parts.size() == 1) return std::move(parts.front());
  return std::make_unique<CombinedSource>(std::move(parts));
}

absl::StatusOr<std::unique_ptr<SensorSource>> MakeStationSources(
    const v1::StationConfig& config, boost::asio::io_context& io) {
  std::vector<std::unique_ptr<SensorSource>> parts;
  uint32_t next_imu_id = 10;
  for (int i = 0; i < config.sensors_size(); ++i) {
    const v1::SensorConfig& sensor = config.sensors(i);
    const std::string at = absl::StrCat("sensors[", i, "]");
    absl::StatusOr<std::unique_ptr<SensorSource>> part;
    switch (sensor.driver_case()) {
      case v1::SensorConfig::kSim: {
        auto profile = ProfileByName(sensor.sim().profile());
        if (!profile.ok()) {
          part = profile.status();
          break;
        }
        if (sensor.sim().repetitions() > 0) {
          profile->repetitions = static_cast<int>(sensor.sim().repetitions());
        }
        if (sensor.sim().wrist_imu()) profile->wrist_imu = true;
        part = MakeSimulatedSource(*profile, sensor.sim().seed(),
                                   MonotonicMicros());
        break;
      }
      case v1::SensorConfig::kReplay:
        part = MakeSensorSource(absl::StrCat("replay:", sensor.replay().dir()),
                                0, MonotonicMicros());
        break;
      default:
        part = MakeHardwareSource(sensor, next_imu_id, io);
        break;
    }
    if (!part.ok()) {
      return absl::Status(part.status().code(),
                          absl::StrCat(at, ": ", part.status().message()));
    }
    parts.push_back(*std::move(part));
  }
  if (parts.empty()) {
    return absl::InvalidArgumentError("sensors: no sensors configured");
  }
  return CombineSources(std::move(parts));
}

}  // namespace stephub::station
