// Tests of the station config file: parse errors with line and column,
// defaults, and validation errors that name the field.
#include "station/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/pki.h"

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

TEST(StationConfig, TlsFilesDefaultUnderEtcByStationId) {
  v1::StationConfig config = Parsed(kHardwareStation);
  EXPECT_EQ(config.link().tls_ca_file(), "/etc/stephub/tls/ca.crt");
  EXPECT_EQ(config.link().tls_cert_file(), "/etc/stephub/tls/bay-2.crt");
  EXPECT_EQ(config.link().tls_key_file(), "/etc/stephub/tls/bay-2.key");
  v1::StationConfig insecure =
      Parsed(std::string(kHardwareStation) + "link { insecure_dev: true }");
  EXPECT_EQ(insecure.link().tls_cert_file(), "");
  auto tls = LoadStationTls(insecure, absl::Now());
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(tls->identity.cert_pem, "");
}

// --check_config's certificate checks: present, the key's, this station's,
// from the CA and valid now; each refusal names the field and the fix.
TEST(StationConfig, TlsFilesAreCheckedAgainstTheStationAndTheCa) {
  const std::string dir = ::testing::TempDir() + "/station_tls";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const absl::Time now = absl::Now();
  const pki::KeyAndCert ca = *pki::MakeCa("Test", pki::CaValidity(now));
  const pki::KeyAndCert other_ca = *pki::MakeCa("Other", pki::CaValidity(now));
  const auto write = [&](const std::string& name, const pki::KeyAndCert& kc) {
    ASSERT_TRUE(
        pki::WriteFile(dir + "/" + name + ".crt", kc.cert_pem, 0644, true)
            .ok());
    ASSERT_TRUE(
        pki::WriteFile(dir + "/" + name + ".key", kc.key_pem, 0600, true).ok());
  };
  write("ca", ca);
  write("bay-2", *pki::MakeStationCert(ca, "bay-2", pki::StationValidity(now)));
  write("bay-3", *pki::MakeStationCert(ca, "bay-3", pki::StationValidity(now)));
  write("foreign",
        *pki::MakeStationCert(other_ca, "bay-2", pki::StationValidity(now)));
  write("expired",
        *pki::MakeStationCert(ca, "bay-2",
                              {now - absl::Hours(48), now - absl::Hours(1)}));
  const auto config_with = [&](const std::string& cert,
                               const std::string& key) {
    v1::StationConfig config = Parsed(kHardwareStation);
    config.mutable_link()->set_tls_ca_file(dir + "/ca.crt");
    config.mutable_link()->set_tls_cert_file(dir + "/" + cert + ".crt");
    config.mutable_link()->set_tls_key_file(dir + "/" + key + ".key");
    return config;
  };
  auto good = LoadStationTls(config_with("bay-2", "bay-2"), now);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->ca_cert_pem, ca.cert_pem);

  const struct {
    std::string cert, key, field, says;
  } cases[] = {
      {"missing", "bay-2", "link.tls_cert_file", "stephub certs station bay-2"},
      {"bay-2", "bay-3", "link.tls_key_file", "does not belong"},
      {"bay-3", "bay-3", "link.tls_cert_file", "of station bay-3, not of"},
      {"foreign", "foreign", "link.tls_cert_file", "not accepted by the CA"},
      {"expired", "expired", "link.tls_cert_file", "expired"},
  };
  for (const auto& c : cases) {
    auto tls = LoadStationTls(config_with(c.cert, c.key), now);
    ASSERT_FALSE(tls.ok()) << c.cert;
    EXPECT_TRUE(absl::StartsWith(tls.status().message(), c.field + ":"))
        << tls.status();
    EXPECT_THAT(std::string(tls.status().message()), HasSubstr(c.says));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stephub::station
