// Validation of station messages; see validate.h.
#include "hub/ingest/validate.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/container/inlined_vector.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/text.h"

namespace stephub::ingest {
namespace {

absl::Status Invalid(const std::string& msg) {
  return absl::InvalidArgumentError(msg);
}

// Every value finite and within +-limit; names the first offender.
absl::Status CheckValues(const google::protobuf::RepeatedField<float>& values,
                         double limit, uint32_t sensor_id, const char* field) {
  for (int i = 0; i < values.size(); ++i) {
    const float v = values[i];
    if (!std::isfinite(v)) {
      return Invalid(absl::StrFormat("sensor %d: %s[%d] is not a finite number",
                                     sensor_id, field, i));
    }
    if (std::abs(v) > limit) {
      return Invalid(absl::StrFormat("sensor %d: %s[%d] = %g exceeds +-%g",
                                     sensor_id, field, i, v, limit));
    }
  }
  return absl::OkStatus();
}

// COP may be NaN when the foot is off the plate; never infinite.
absl::Status CheckCop(const google::protobuf::RepeatedField<float>& values,
                      double limit, uint32_t sensor_id, const char* field) {
  for (int i = 0; i < values.size(); ++i) {
    const float v = values[i];
    if (std::isnan(v)) continue;
    if (!std::isfinite(v) || std::abs(v) > limit) {
      return Invalid(absl::StrFormat("sensor %d: %s[%d] = %g is out of range",
                                     sensor_id, field, i, v));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSizes(uint32_t sensor_id, int n,
                        std::initializer_list<int> sizes, int max_samples) {
  if (n > max_samples) {
    return Invalid(absl::StrFormat(
        "sensor %d: %d samples in one batch, more than the limit of %d",
        sensor_id, n, max_samples));
  }
  for (int size : sizes) {
    if (size != n) {
      return Invalid(absl::StrFormat(
          "sensor %d: sample columns differ in length (%d timestamps, %d "
          "values)",
          sensor_id, n, size));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseStationMessage(absl::string_view bytes,
                                 v1::StationMessage* message) {
  if (!message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Invalid(absl::StrFormat(
        "a message of %d bytes is not a StationMessage (protobuf cannot parse "
        "it, or a string in it is not UTF-8)",
        bytes.size()));
  }
  return absl::OkStatus();
}

absl::Status ValidateStationId(const std::string& station_id) {
  if (station_id.empty() || station_id.size() > 64) {
    return Invalid("station_id must be 1 to 64 characters");
  }
  for (char c : station_id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) {
      return Invalid(absl::StrCat(
          "station_id may only hold a-z, 0-9, '-', '_' and '.'; got \"",
          absl::CEscape(station_id), "\""));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateHealth(const v1::StationHealth& health,
                            const v1::StationHello& hello) {
  if (health.sensors_size() > hello.sensors_size()) {
    return Invalid(
        absl::StrFormat("health reports %d sensors; the hello listed %d",
                        health.sensors_size(), hello.sensors_size()));
  }
  for (const v1::SensorHealth& h : health.sensors()) {
    bool known = false;
    for (const auto& sensor : hello.sensors()) {
      known = known || sensor.sensor_id() == h.sensor_id();
    }
    if (!known) {
      return Invalid(absl::StrFormat(
          "health names sensor %d, which the hello did not list",
          h.sensor_id()));
    }
    if (!v1::SensorState_IsValid(h.state()) ||
        h.state() == v1::SENSOR_STATE_UNSPECIFIED) {
      return Invalid(absl::StrFormat("sensor %d: health state %d is unknown",
                                     h.sensor_id(), h.state()));
    }
    if (auto s = CheckText(h.detail(), "health detail", 0, 512); !s.ok()) {
      return Invalid(
          absl::StrFormat("sensor %d: %s", h.sensor_id(), s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateClockOffset(const v1::ClockOffset& clock) {
  constexpr int64_t kMinute = 60'000'000;
  if (clock.round_trip_us() < 0 || clock.round_trip_us() > kMinute) {
    return Invalid(
        absl::StrFormat("clock_offset.round_trip_us %d is outside [0, 60 s]",
                        clock.round_trip_us()));
  }
  if (clock.uncertainty_us() < 0 || clock.uncertainty_us() > kMinute) {
    return Invalid(
        absl::StrFormat("clock_offset.uncertainty_us %d is outside [0, 60 s]",
                        clock.uncertainty_us()));
  }
  return absl::OkStatus();
}

absl::Status ValidateHello(const v1::StationHello& hello,
                           const IngestLimits& limits) {
  if (auto s = ValidateStationId(hello.station_id()); !s.ok()) return s;
  // Both are stored with every batch and shown on the station list.
  if (auto s = CheckText(hello.boot_id(), "boot_id", 1, 64); !s.ok()) return s;
  if (auto s = CheckText(hello.software_version(), "software_version", 0, 64);
      !s.ok()) {
    return s;
  }
  if (hello.sensors().empty()) return Invalid("hello lists no sensors");
  if (hello.sensors_size() > limits.max_sensors) {
    return Invalid(absl::StrFormat("hello lists %d sensors; the limit is %d",
                                   hello.sensors_size(), limits.max_sensors));
  }
  std::set<uint32_t> ids;
  std::set<int> imu_placements;
  for (const v1::SensorInfo& sensor : hello.sensors()) {
    const uint32_t id = sensor.sensor_id();
    if (!ids.insert(id).second) {
      return Invalid(absl::StrFormat("sensor_id %d is listed twice", id));
    }
    if (!(sensor.rate_hz() > 0 && sensor.rate_hz() <= limits.max_rate_hz)) {
      return Invalid(absl::StrFormat("sensor %d: rate_hz %g is outside (0, %g]",
                                     id, sensor.rate_hz(), limits.max_rate_hz));
    }
    switch (sensor.kind()) {
      case v1::SENSOR_KIND_IMU:
        if (sensor.placement() == v1::PLACEMENT_UNSPECIFIED ||
            sensor.placement() == v1::PLACEMENT_STANCE_FOOT ||
            !v1::Placement_IsValid(sensor.placement())) {
          return Invalid(absl::StrFormat(
              "sensor %d: an IMU needs a body placement (sacrum, sternum, "
              "thigh, shank, wrist)",
              id));
        }
        if (!imu_placements.insert(sensor.placement()).second) {
          return Invalid(
              absl::StrFormat("sensor %d: a second IMU at placement %s", id,
                              v1::Placement_Name(sensor.placement())));
        }
        break;
      case v1::SENSOR_KIND_FORCE_PLATE:
        if (sensor.placement() != v1::PLACEMENT_STANCE_FOOT) {
          return Invalid(
              absl::StrFormat("sensor %d: a force plate must have placement "
                              "PLACEMENT_STANCE_FOOT",
                              id));
        }
        break;
      default:
        return Invalid(absl::StrFormat("sensor %d: unknown sensor kind %d", id,
                                       static_cast<int>(sensor.kind())));
    }
  }
  return absl::OkStatus();
}

BatchValidator::BatchValidator(const v1::StationHello& hello,
                               uint64_t durable_seq, IngestLimits limits)
    : last_seq_(durable_seq), limits_(limits) {
  for (const v1::SensorInfo& sensor : hello.sensors()) {
    sensors_[sensor.sensor_id()] = sensor;
  }
}

absl::Status BatchValidator::CheckTime(
    uint32_t sensor_id, const google::protobuf::RepeatedField<int64_t>& t_us) {
  for (int i = 0; i < t_us.size(); ++i) {
    // A monotonic clock in microseconds is far inside this range; beyond it
    // the time arithmetic of scoring could overflow.
    constexpr int64_t kMaxTimeUs = int64_t{1} << 62;
    if (t_us[i] < 0 || t_us[i] >= kMaxTimeUs) {
      return Invalid(
          absl::StrFormat("sensor %d: t_us[%d] = %d is outside [0, 2^62)",
                          sensor_id, i, t_us[i]));
    }
    if (i > 0 && t_us[i] <= t_us[i - 1]) {
      return Invalid(absl::StrFormat(
          "sensor %d: t_us[%d] = %d does not come after t_us[%d] = %d: "
          "timestamps within a batch must strictly increase",
          sensor_id, i, t_us[i], i - 1, t_us[i - 1]));
    }
  }
  return absl::OkStatus();
}

absl::Status BatchValidator::Accept(const v1::SampleBatch& batch) {
  const uint64_t expected = last_seq_ + 1;
  if (batch.seq() != expected) {
    if (batch.seq() <= last_seq_) {
      return Invalid(absl::StrFormat(
          "batch seq %d repeats or goes back: the stream is at %d, expected %d",
          batch.seq(), last_seq_, expected));
    }
    if (!batch.follows_spool_loss()) {
      return Invalid(absl::StrFormat(
          "batch seq %d leaves a gap: expected %d (set follows_spool_loss if "
          "the station lost the batches in between)",
          batch.seq(), expected));
    }
  }
  // At most max_sensors (16 by default) ids: a walk over them on the stack
  // costs less than a tree's allocations, on every batch.
  absl::InlinedVector<uint32_t, 16> seen;
  auto known = [&](uint32_t id, v1::SensorKind kind) -> absl::Status {
    auto it = sensors_.find(id);
    if (it == sensors_.end()) {
      return Invalid(
          absl::StrFormat("batch %d: sensor %d was not announced in the hello",
                          batch.seq(), id));
    }
    if (it->second.kind() != kind) {
      return Invalid(absl::StrFormat("batch %d: sensor %d was announced as %s",
                                     batch.seq(), id,
                                     v1::SensorKind_Name(it->second.kind())));
    }
    if (std::find(seen.begin(), seen.end(), id) != seen.end()) {
      return Invalid(absl::StrFormat("batch %d: sensor %d appears twice",
                                     batch.seq(), id));
    }
    seen.push_back(id);
    return absl::OkStatus();
  };
  const int max_n = limits_.max_samples_per_sensor_per_batch;
  for (const v1::ImuSamples& imu : batch.imu()) {
    const uint32_t id = imu.sensor_id();
    if (auto s = known(id, v1::SENSOR_KIND_IMU); !s.ok()) return s;
    const int n = imu.t_us_size();
    if (auto s = CheckSizes(
            id, n,
            {imu.ax_mps2_size(), imu.ay_mps2_size(), imu.az_mps2_size(),
             imu.gx_radps_size(), imu.gy_radps_size(), imu.gz_radps_size()},
            max_n);
        !s.ok()) {
      return s;
    }
    for (auto [values, name] : {std::pair{&imu.ax_mps2(), "ax_mps2"},
                                {&imu.ay_mps2(), "ay_mps2"},
                                {&imu.az_mps2(), "az_mps2"}}) {
      if (auto s = CheckValues(*values, limits_.max_abs_accel_mps2, id, name);
          !s.ok()) {
        return s;
      }
    }
    for (auto [values, name] : {std::pair{&imu.gx_radps(), "gx_radps"},
                                {&imu.gy_radps(), "gy_radps"},
                                {&imu.gz_radps(), "gz_radps"}}) {
      if (auto s = CheckValues(*values, limits_.max_abs_gyro_radps, id, name);
          !s.ok()) {
        return s;
      }
    }
    if (auto s = CheckTime(id, imu.t_us()); !s.ok()) return s;
  }
  for (const v1::ForceSamples& force : batch.force()) {
    const uint32_t id = force.sensor_id();
    if (auto s = known(id, v1::SENSOR_KIND_FORCE_PLATE); !s.ok()) return s;
    const int n = force.t_us_size();
    if (auto s = CheckSizes(
            id, n,
            {force.fz_n_size(), force.cop_x_mm_size(), force.cop_y_mm_size()},
            max_n);
        !s.ok()) {
      return s;
    }
    if (auto s = CheckValues(force.fz_n(), limits_.max_abs_force_n, id, "fz_n");
        !s.ok()) {
      return s;
    }
    if (auto s =
            CheckCop(force.cop_x_mm(), limits_.max_abs_cop_mm, id, "cop_x_mm");
        !s.ok()) {
      return s;
    }
    if (auto s =
            CheckCop(force.cop_y_mm(), limits_.max_abs_cop_mm, id, "cop_y_mm");
        !s.ok()) {
      return s;
    }
    if (auto s = CheckTime(id, force.t_us()); !s.ok()) return s;
  }
  // Only a batch that passed every check moves the stream forward.
  last_seq_ = batch.seq();
  clock_steps_.clear();
  auto advance = [&](uint32_t id,
                     const google::protobuf::RepeatedField<int64_t>& t_us) {
    if (t_us.empty()) return;
    auto [last, first_batch] = last_t_us_.try_emplace(id, t_us.Get(0));
    if (!first_batch && t_us.Get(0) <= last->second) {
      clock_steps_.push_back({id, last->second, t_us.Get(0)});
    }
    last->second = t_us.Get(t_us.size() - 1);
  };
  for (const v1::ImuSamples& imu : batch.imu()) {
    advance(imu.sensor_id(), imu.t_us());
  }
  for (const v1::ForceSamples& force : batch.force()) {
    advance(force.sensor_id(), force.t_us());
  }
  return absl::OkStatus();
}

std::vector<ImuSample> ImuSamplesOf(const v1::SampleBatch& batch,
                                    uint32_t sensor_id) {
  std::vector<ImuSample> out;
  for (const v1::ImuSamples& imu : batch.imu()) {
    if (imu.sensor_id() != sensor_id) continue;
    out.reserve(imu.t_us_size());
    for (int i = 0; i < imu.t_us_size(); ++i) {
      out.push_back({imu.t_us(i), imu.ax_mps2(i), imu.ay_mps2(i),
                     imu.az_mps2(i), imu.gx_radps(i), imu.gy_radps(i),
                     imu.gz_radps(i)});
    }
  }
  return out;
}

std::vector<ForceSample> ForceSamplesOf(const v1::SampleBatch& batch,
                                        uint32_t sensor_id) {
  std::vector<ForceSample> out;
  for (const v1::ForceSamples& force : batch.force()) {
    if (force.sensor_id() != sensor_id) continue;
    out.reserve(force.t_us_size());
    for (int i = 0; i < force.t_us_size(); ++i) {
      out.push_back(
          {force.t_us(i), force.fz_n(i), force.cop_x_mm(i), force.cop_y_mm(i)});
    }
  }
  return out;
}

}  // namespace stephub::ingest
