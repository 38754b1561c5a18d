// The station's configuration file (protobuf text format, schema in
// proto/stephub/v1/station_config.proto): parsing with line:column errors,
// defaults, and validation whose errors name the field.
#ifndef STEPHUB_STATION_CONFIG_H_
#define STEPHUB_STATION_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/pki.h"
#include "stephub/v1/station_config.pb.h"

namespace stephub::station {

// Parses text; `origin` (usually the file name) prefixes every error as
// "origin:line:column: ...".
absl::StatusOr<v1::StationConfig> ParseStationConfig(absl::string_view text,
                                                     absl::string_view origin);
absl::StatusOr<v1::StationConfig> LoadStationConfig(const std::string& path);

// Fills every zero field that has a documented default.
void ApplyStationDefaults(v1::StationConfig* config);

// Checks a config with defaults applied; errors read
// "sensors[2].serial_force_plate.baud: ...".
absl::Status ValidateStationConfig(const v1::StationConfig& config);

// The link's TLS files, read and checked: the key is the certificate's, the
// certificate names this station and comes from the CA and is valid at
// `now`. Empty with link.insecure_dev.
struct StationTls {
  std::string ca_cert_pem;
  pki::KeyAndCert identity;
};
absl::StatusOr<StationTls> LoadStationTls(const v1::StationConfig& config,
                                          absl::Time now);

}  // namespace stephub::station

#endif  // STEPHUB_STATION_CONFIG_H_
