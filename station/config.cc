// Station configuration; see config.h.
#include "station/config.h"

#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace stephub::station {
namespace {

// Collects the parser's complaints with their position in the file.
class ConfigErrors : public google::protobuf::io::ErrorCollector {
 public:
  explicit ConfigErrors(absl::string_view origin) : origin_(origin) {}
  void AddError(int line, int column, const std::string& message) override {
    // The parser counts from 0; editors count from 1.
    errors_.push_back(absl::StrFormat("%s:%d:%d: %s", origin_, line + 1,
                                      column + 1, message));
  }
  void AddWarning(int line, int column, const std::string& message) override {
    AddError(line, column, message);
  }
  std::string Text() const { return absl::StrJoin(errors_, "\n"); }

 private:
  std::string origin_;
  std::vector<std::string> errors_;
};

absl::Status FieldError(absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", message));
}

bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

absl::Status ValidateSensor(const v1::SensorConfig& sensor,
                            const std::string& at, int sensor_count) {
  switch (sensor.driver_case()) {
    case v1::SensorConfig::kSim:
    case v1::SensorConfig::kReplay:
      if (sensor_count != 1) {
        return FieldError(at,
                          "a simulated patient or a replayed recording "
                          "stands for the whole station: list no other "
                          "sensors beside it");
      }
      if (sensor.has_replay() && sensor.replay().dir().empty()) {
        return FieldError(at + ".replay.dir", "required");
      }
      return absl::OkStatus();
    case v1::SensorConfig::kIioImu: {
      const auto& imu = sensor.iio_imu();
      if (imu.accel_device().empty()) {
        return FieldError(at + ".iio_imu.accel_device",
                          "required (a sysfs directory or an IIO device name)");
      }
      if (sensor.placement() == v1::PLACEMENT_UNSPECIFIED ||
          sensor.placement() == v1::PLACEMENT_STANCE_FOOT) {
        return FieldError(at + ".placement",
                          "an IMU needs a body placement (PLACEMENT_SACRUM, "
                          "PLACEMENT_STERNUM, PLACEMENT_THIGH, "
                          "PLACEMENT_SHANK, PLACEMENT_WRIST)");
      }
      if (imu.sampling_frequency_hz() < 50 ||
          imu.sampling_frequency_hz() > 1000) {
        return FieldError(at + ".iio_imu.sampling_frequency_hz",
                          absl::StrFormat("%g Hz is outside 50-1000 Hz",
                                          imu.sampling_frequency_hz()));
      }
      return absl::OkStatus();
    }
    case v1::SensorConfig::kSerialForcePlate: {
      const auto& plate = sensor.serial_force_plate();
      if (plate.device().empty()) {
        return FieldError(at + ".serial_force_plate.device", "required");
      }
      if (sensor.placement() != v1::PLACEMENT_UNSPECIFIED &&
          sensor.placement() != v1::PLACEMENT_STANCE_FOOT) {
        return FieldError(at + ".placement",
                          "a force plate sits under the stance foot "
                          "(PLACEMENT_STANCE_FOOT)");
      }
      if (plate.expected_rate_hz() < 500) {
        return FieldError(
            at + ".serial_force_plate.expected_rate_hz",
            absl::StrFormat("%g Hz is too slow: a step-down's loading "
                            "transient needs at least 500 Hz",
                            plate.expected_rate_hz()));
      }
      if (plate.cells_size() != 4) {
        return FieldError(
            at + ".serial_force_plate.cells",
            absl::StrFormat("the plate has four load cells; %d are listed",
                            plate.cells_size()));
      }
      for (int i = 0; i < plate.cells_size(); ++i) {
        if (!(plate.cells(i).newtons_per_count() != 0)) {
          return FieldError(absl::StrCat(at, ".serial_force_plate.cells[", i,
                                         "].newtons_per_count"),
                            "required (calibrate with a known weight)");
        }
      }
      return absl::OkStatus();
    }
    case v1::SensorConfig::DRIVER_NOT_SET:
      break;
  }
  return FieldError(at,
                    "no driver: set one of sim, replay, iio_imu, "
                    "serial_force_plate");
}

}  // namespace

absl::StatusOr<v1::StationConfig> ParseStationConfig(absl::string_view text,
                                                     absl::string_view origin) {
  v1::StationConfig config;
  google::protobuf::TextFormat::Parser parser;
  ConfigErrors errors(origin);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(errors.Text());
  }
  return config;
}

absl::StatusOr<v1::StationConfig> LoadStationConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read station config ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseStationConfig(text.str(), path);
}

void ApplyStationDefaults(v1::StationConfig* config) {
  if (config->hub_address().empty()) config->set_hub_address("127.0.0.1:50051");
  if (config->batch_period_ms() == 0) config->set_batch_period_ms(25);
  if (config->log_level().empty()) config->set_log_level("info");
  v1::SpoolConfig* spool = config->mutable_spool();
  if (spool->dir().empty()) spool->set_dir("/var/lib/stephub-station/spool");
  if (spool->max_bytes() == 0) spool->set_max_bytes(uint64_t{1} << 30);
  if (spool->segment_bytes() == 0) spool->set_segment_bytes(uint64_t{8} << 20);
  if (spool->sync_interval_ms() == 0) spool->set_sync_interval_ms(200);
  v1::LinkConfig* link = config->mutable_link();
  if (link->max_backoff_ms() == 0) link->set_max_backoff_ms(5000);
  if (link->keepalive_time_ms() == 0) link->set_keepalive_time_ms(10000);
  if (link->keepalive_timeout_ms() == 0) link->set_keepalive_timeout_ms(5000);
  if (link->clock_ping_interval_ms() == 0) {
    link->set_clock_ping_interval_ms(2000);
  }
  if (!link->insecure_dev()) {
    const std::string dir = "/etc/stephub/tls/";
    if (link->tls_ca_file().empty()) link->set_tls_ca_file(dir + "ca.crt");
    if (link->tls_cert_file().empty()) {
      link->set_tls_cert_file(dir + config->station_id() + ".crt");
    }
    if (link->tls_key_file().empty()) {
      link->set_tls_key_file(dir + config->station_id() + ".key");
    }
  }
  for (auto& sensor : *config->mutable_sensors()) {
    if (sensor.has_sim() && sensor.sim().profile().empty()) {
      sensor.mutable_sim()->set_profile("moderate");
    }
    if (sensor.has_iio_imu()) {
      auto* imu = sensor.mutable_iio_imu();
      if (imu->sampling_frequency_hz() == 0)
        imu->set_sampling_frequency_hz(208);
      if (imu->accel_range_g() == 0) imu->set_accel_range_g(8);
      if (imu->gyro_range_dps() == 0) imu->set_gyro_range_dps(1000);
      if (imu->fifo_watermark() == 0) imu->set_fifo_watermark(16);
      if (imu->sysfs_root().empty())
        imu->set_sysfs_root("/sys/bus/iio/devices");
      if (imu->axis_map().empty()) imu->set_axis_map("x,y,z");
    }
    if (sensor.has_serial_force_plate()) {
      auto* plate = sensor.mutable_serial_force_plate();
      if (plate->baud() == 0) plate->set_baud(921600);
      if (plate->expected_rate_hz() == 0) plate->set_expected_rate_hz(1000);
      if (sensor.placement() == v1::PLACEMENT_UNSPECIFIED) {
        sensor.set_placement(v1::PLACEMENT_STANCE_FOOT);
      }
    }
  }
}

absl::Status ValidateStationConfig(const v1::StationConfig& config) {
  if (config.station_id().empty()) {
    return FieldError("station_id", "required (e.g. \"bay-1\")");
  }
  if (!ValidId(config.station_id())) {
    return FieldError("station_id",
                      absl::StrCat("\"", config.station_id(),
                                   "\" may only hold a-z, 0-9, '-', '_' and "
                                   "'.', 1 to 64 characters"));
  }
  if (config.hub_address().find(':') == std::string::npos) {
    return FieldError("hub_address", absl::StrCat("\"", config.hub_address(),
                                                  "\" is not host:port"));
  }
  if (config.batch_period_ms() < 5 || config.batch_period_ms() > 200) {
    return FieldError(
        "batch_period_ms",
        absl::StrFormat("%d ms is outside 5-200 ms", config.batch_period_ms()));
  }
  const auto& spool = config.spool();
  if (spool.segment_bytes() < (uint64_t{64} << 10)) {
    return FieldError("spool.segment_bytes", "must be at least 64 KiB");
  }
  if (spool.max_bytes() < 4 * spool.segment_bytes()) {
    return FieldError(
        "spool.max_bytes",
        absl::StrFormat("%d bytes is less than four segments "
                        "(spool.segment_bytes = %d)",
                        spool.max_bytes(), spool.segment_bytes()));
  }
  if (spool.sync_interval_ms() > 10000) {
    return FieldError("spool.sync_interval_ms",
                      "more than 10 s of samples could be lost to a power cut");
  }
  const auto& link = config.link();
  if (link.max_backoff_ms() < 100 || link.max_backoff_ms() > 60000) {
    return FieldError("link.max_backoff_ms", "must be within 100-60000 ms");
  }
  if (link.keepalive_time_ms() < 5000) {
    // The hub accepts pings no closer than 5 s (too_many_pings otherwise).
    return FieldError("link.keepalive_time_ms",
                      "must be at least 5000 ms: the hub refuses pings "
                      "closer than that");
  }
  if (link.keepalive_timeout_ms() < 1000) {
    return FieldError("link.keepalive_timeout_ms", "must be at least 1000 ms");
  }
  if (link.clock_ping_interval_ms() < 100) {
    return FieldError("link.clock_ping_interval_ms", "must be at least 100 ms");
  }
  if (!ParseLogLevel(config.log_level()).ok()) {
    return FieldError("log_level",
                      absl::StrCat("\"", config.log_level(),
                                   "\": use debug, info, warning or error"));
  }
  if (config.sensors().empty()) {
    return FieldError("sensors",
                      "no sensors: add at least one (sim, replay, iio_imu, "
                      "serial_force_plate)");
  }
  std::set<uint32_t> ids;
  for (int i = 0; i < config.sensors_size(); ++i) {
    const auto& sensor = config.sensors(i);
    const std::string at = absl::StrCat("sensors[", i, "]");
    if (auto s = ValidateSensor(sensor, at, config.sensors_size()); !s.ok()) {
      return s;
    }
    if (sensor.sensor_id() != 0 && !ids.insert(sensor.sensor_id()).second) {
      return FieldError(at + ".sensor_id",
                        absl::StrCat(sensor.sensor_id(), " is used twice"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<StationTls> LoadStationTls(const v1::StationConfig& config,
                                          absl::Time now) {
  StationTls tls;
  const v1::LinkConfig& link = config.link();
  if (link.insecure_dev()) return tls;
  const std::string make = absl::StrCat(
      "make them on the hub's machine with `stephub certs station ",
      config.station_id(), "` and copy them with ca.crt (docs/DEPLOY.md)");
  for (auto [field, path, out] :
       {std::tuple{"link.tls_ca_file", link.tls_ca_file(), &tls.ca_cert_pem},
        std::tuple{"link.tls_cert_file", link.tls_cert_file(),
                   &tls.identity.cert_pem},
        std::tuple{"link.tls_key_file", link.tls_key_file(),
                   &tls.identity.key_pem}}) {
    auto text = pki::ReadFile(path);
    if (!text.ok()) {
      return FieldError(field,
                        absl::StrCat(text.status().message(), "; ", make));
    }
    *out = *std::move(text);
  }
  if (auto s =
          pki::CheckKeyMatches(tls.identity.key_pem, tls.identity.cert_pem);
      !s.ok()) {
    return FieldError("link.tls_key_file",
                      absl::StrCat(link.tls_key_file(), ": ", s.message()));
  }
  auto cert = pki::ParseCert(tls.identity.cert_pem);
  if (!cert.ok()) {
    return FieldError("link.tls_cert_file", cert.status().message());
  }
  const std::optional<std::string> named = pki::StationIdOf(*cert);
  if (named != config.station_id()) {
    return FieldError(
        "link.tls_cert_file",
        absl::StrCat(
            link.tls_cert_file(), " is the certificate of ",
            named ? absl::StrCat("station ", *named)
                  : absl::StrCat("\"", cert->common_name, "\", not a station"),
            ", not of station ", config.station_id(), "; ", make));
  }
  if (auto s = pki::VerifyCert(tls.identity.cert_pem, tls.ca_cert_pem, now);
      !s.ok()) {
    return FieldError("link.tls_cert_file",
                      absl::StrCat(link.tls_cert_file(), " against ",
                                   link.tls_ca_file(), ": ", s.message()));
  }
  return tls;
}

}  // namespace stephub::station
