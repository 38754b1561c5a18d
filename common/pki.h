// The clinic's small public-key infrastructure on OpenSSL's libcrypto: a
// clinic CA, the hub's server certificate and one client certificate per
// station (EC P-256, SHA-256), and reading a certificate back. Everything is
// PEM text in and out; files are the caller's business (WritePrivateFile).
#ifndef STEPHUB_COMMON_PKI_H_
#define STEPHUB_COMMON_PKI_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stephub::pki {

// Sensible lifetimes: the CA outlives many hub and station certificates.
inline constexpr absl::Duration kCaLifetime = absl::Hours(24 * 3653);
inline constexpr absl::Duration kLeafLifetime = absl::Hours(24 * 731);

struct KeyAndCert {
  std::string key_pem;  // PKCS#8, unencrypted: keep it 0600
  std::string cert_pem;
};

struct Validity {
  absl::Time not_before;
  absl::Time not_after;
};

// The usual validity from `now`. The hub's certificate starts an hour early
// so that a station whose clock is a little behind still accepts it; a
// station's starts at `now`, because revocation refuses certificates issued
// up to the moment of revoking (docs/SECURITY.md).
Validity CaValidity(absl::Time now);
Validity HubValidity(absl::Time now);
Validity StationValidity(absl::Time now);

// A self-signed CA named "<clinic> StepHub CA".
absl::StatusOr<KeyAndCert> MakeCa(const std::string& clinic_name,
                                  const Validity& validity);

// The hub's server certificate, signed by `ca`. Each name is a DNS name or
// an IP address (IPv4 or IPv6), all put in the subjectAltName; the first is
// also the common name.
absl::StatusOr<KeyAndCert> MakeHubCert(const KeyAndCert& ca,
                                       const std::vector<std::string>& names,
                                       const Validity& validity);

// A station's client certificate: CN = station id and the URI SAN
// stephub:station:<id>, which is what the hub takes as its identity.
absl::StatusOr<KeyAndCert> MakeStationCert(const KeyAndCert& ca,
                                           const std::string& station_id,
                                           const Validity& validity);

// What a certificate says, as far as StepHub cares.
struct CertInfo {
  std::string common_name;
  std::string issuer_common_name;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::vector<std::string> uris;
  absl::Time not_before;
  absl::Time not_after;
  std::string serial_hex;
  std::string sha256_hex;  // of the DER: the certificate's fingerprint
  bool is_ca = false;
};
absl::StatusOr<CertInfo> ParseCert(const std::string& cert_pem);

// The station a certificate names: its stephub:station: URI, else none (a
// hub or CA certificate, or one from elsewhere).
std::optional<std::string> StationIdOf(const CertInfo& cert);
std::string StationUri(const std::string& station_id);

// Station ids as station_config.proto has them: [a-z0-9-_.], 1-64.
absl::Status CheckStationId(const std::string& station_id);

// OK if `cert_pem` is signed by `ca_cert_pem` and valid at `at`.
absl::Status VerifyCert(const std::string& cert_pem,
                        const std::string& ca_cert_pem, absl::Time at);
// OK if `key_pem` is the private key of `cert_pem`.
absl::Status CheckKeyMatches(const std::string& key_pem,
                             const std::string& cert_pem);

// Reads a whole file; the error names the file.
absl::StatusOr<std::string> ReadFile(const std::string& path);
// Writes `contents` to `path` with mode `mode` (0600 for keys, 0644 for
// certificates), through a temporary file renamed into place. Refuses to
// replace an existing file unless `overwrite`.
absl::Status WriteFile(const std::string& path, const std::string& contents,
                       int mode, bool overwrite);

}  // namespace stephub::pki

#endif  // STEPHUB_COMMON_PKI_H_
