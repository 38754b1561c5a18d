// Tests of the station config file: parse errors with line and column,
// defaults, and validation errors that name the field.
#include "station/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/match.h"

namespace stephub::station {
namespace {

using ::testing::HasSubstr;

constexpr char kHardwareStation[] = R"pb(
  station_id: "bay-2"
  hub_address: "hub.clinic.lan:50051"
  spool { dir: "/var/lib/stephub-station/spool" max_bytes: 536870912 }
  sensors {
    placement: PLACEMENT_SACRUM
    iio_imu { accel_device: "lsm6dsox_accel" gyro_device: "lsm6dsox_gyro" }
  }
  sensors {
    serial_force_plate {
      device: "/dev/serial/by-id/usb-StepHub_plate-if00"
      cells { x_mm: -200 y_mm: -120 zero_counts: 1200 newtons_per_count: 0.01 }
      cells { x_mm: 200 y_mm: -120 zero_counts: 1180 newtons_per_count: 0.01 }
      cells { x_mm: 200 y_mm: 120 zero_counts: 1210 newtons_per_count: 0.01 }
      cells { x_mm: -200 y_mm: 120 zero_counts: 1190 newtons_per_count: 0.01 }
    }
  }
)pb";

v1::StationConfig Parsed(const std::string& text) {
  auto config = ParseStationConfig(text, "station.textproto");
  EXPECT_TRUE(config.ok()) << config.status();
  ApplyStationDefaults(&*config);
  return *config;
}

TEST(StationConfig, HardwareStationParsesWithDefaults) {
  v1::StationConfig config = Parsed(kHardwareStation);
  ASSERT_TRUE(ValidateStationConfig(config).ok())
      << ValidateStationConfig(config);
  EXPECT_EQ(config.batch_period_ms(), 25u);
  EXPECT_EQ(config.spool().max_bytes(), 536870912u);
  EXPECT_EQ(config.spool().segment_bytes(), 8u << 20);
  EXPECT_EQ(config.spool().sync_interval_ms(), 200u);
  EXPECT_EQ(config.link().keepalive_time_ms(), 10000u);
  EXPECT_EQ(config.sensors(0).iio_imu().sampling_frequency_hz(), 208);
  EXPECT_EQ(config.sensors(1).serial_force_plate().baud(), 921600u);
  EXPECT_EQ(config.sensors(1).placement(), v1::PLACEMENT_STANCE_FOOT);
}

TEST(StationConfig, SyntaxErrorNamesFileLineAndColumn) {
  auto config = ParseStationConfig(
      "station_id: \"bay-1\"\nspool { max_bytes: "
      "lots }\n",
      "/etc/stephub/station.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("/etc/stephub/station.textproto:2:"));
}

TEST(StationConfig, UnknownFieldIsAnError) {
  auto config = ParseStationConfig("station_id: \"bay-1\"\nhub_adress: \"x\"\n",
                                   "s.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("s.textproto:2:"));
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("hub_adress"));
}

TEST(StationConfig, ValidationNamesTheField) {
  struct Case {
    std::string text;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"sensors { sim {} }", "station_id"},
      {"station_id: \"Bay 1\" sensors { sim {} }", "station_id"},
      {"station_id: \"bay-1\" hub_address: \"hub\" sensors { sim {} }",
       "hub_address"},
      {"station_id: \"bay-1\"", "sensors"},
      {"station_id: \"bay-1\" sensors {}", "sensors[0]"},
      {"station_id: \"bay-1\" sensors { sim {} } sensors { sim {} }",
       "sensors[0]"},
      {"station_id: \"bay-1\" sensors { iio_imu { accel_device: \"x\" } }",
       "sensors[0].placement"},
      {"station_id: \"bay-1\" sensors { placement: PLACEMENT_SACRUM "
       "iio_imu {} }",
       "sensors[0].iio_imu.accel_device"},
      {"station_id: \"bay-1\" sensors { serial_force_plate { device: "
       "\"/dev/x\" "
       "expected_rate_hz: 80 } }",
       "sensors[0].serial_force_plate.expected_rate_hz"},
      {"station_id: \"bay-1\" sensors { serial_force_plate { device: "
       "\"/dev/x\" "
       "cells {newtons_per_count: 1} } }",
       "sensors[0].serial_force_plate.cells"},
      {"station_id: \"bay-1\" spool { max_bytes: 1000 } sensors { sim {} }",
       "spool.max_bytes"},
      {"station_id: \"bay-1\" link { keepalive_time_ms: 1000 } sensors { sim "
       "{} "
       "}",
       "link.keepalive_time_ms"},
      {"station_id: \"bay-1\" log_level: \"loud\" sensors { sim {} }",
       "log_level"},
      {"station_id: \"bay-1\" batch_period_ms: 1000 sensors { sim {} }",
       "batch_period_ms"},
  };
  for (const Case& c : cases) {
    v1::StationConfig config = Parsed(c.text);
    absl::Status s = ValidateStationConfig(config);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(s.message(), c.field + ":"))
        << c.text << " -> " << s.message();
  }
}

TEST(StationConfig, CheckedInExampleIsValid) {
  auto config = LoadStationConfig(std::string(STEPHUB_SOURCE_DIR) +
                                  "/deploy/station.textproto");
  ASSERT_TRUE(config.ok()) << config.status();
  ApplyStationDefaults(&*config);
  EXPECT_TRUE(ValidateStationConfig(*config).ok())
      << ValidateStationConfig(*config);
}

TEST(StationConfig, MissingFileSaysWhich) {
  auto config = LoadStationConfig("/nonexistent/station.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("/nonexistent/station.textproto"));
}

}  // namespace
}  // namespace stephub::station
