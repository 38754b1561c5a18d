// Station identity and revocation; see station_access.h.
#include "hub/ingest/station_access.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace stephub::ingest {
namespace {

std::string Utc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

absl::Status RevokedError(const std::string& station_id,
                          absl::Time revoked_at) {
  return absl::PermissionDeniedError(absl::StrCat(
      "station ", station_id, " was revoked at ", Utc(revoked_at),
      ": its certificates issued until then are refused; give the bay a "
      "new one (stephub certs station ",
      station_id, ")"));
}

}  // namespace

absl::Status CheckStationCertificate(const std::optional<pki::CertInfo>& cert,
                                     const std::string& station_id,
                                     std::optional<absl::Time> revoked_at) {
  if (!cert.has_value()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "StationLink needs the station's client certificate; configure "
        "tls_cert_file and tls_key_file for ",
        station_id, " (stephub certs station ", station_id, ")"));
  }
  const std::optional<std::string> named = pki::StationIdOf(*cert);
  if (!named.has_value()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the client certificate \"", cert->common_name,
        "\" is not a station's (no stephub:station: name); make one with "
        "stephub certs station ",
        station_id));
  }
  if (*named != station_id) {
    return absl::PermissionDeniedError(
        absl::StrCat("the certificate of station ", *named,
                     " cannot stream as station ", station_id));
  }
  if (revoked_at.has_value() && cert->not_before <= *revoked_at) {
    return RevokedError(station_id, *revoked_at);
  }
  return absl::OkStatus();
}

absl::Status StationAccess::Load() {
  auto revocations = store_.StationRevocations();
  if (!revocations.ok()) return revocations.status();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : *revocations) revoked_[r.station_id] = r.revoked_at;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> StationAccess::Admit(
    const std::optional<pki::CertInfo>& cert, const std::string& station_id,
    std::function<void(const absl::Status&)> cut) {
  std::lock_guard<std::mutex> lock(mu_);
  if (require_certificates_) {
    const auto revoked = revoked_.find(station_id);
    if (auto s = CheckStationCertificate(cert, station_id,
                                         revoked == revoked_.end()
                                             ? std::nullopt
                                             : std::optional(revoked->second));
        !s.ok()) {
      return s;
    }
  }
  const uint64_t token = next_token_++;
  open_[token] = {station_id,
                  cert ? std::optional(cert->not_before) : std::nullopt,
                  std::move(cut)};
  return token;
}

void StationAccess::Closed(uint64_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  open_.erase(token);
}

absl::StatusOr<StationAccess::Revoked> StationAccess::Revoke(
    const std::string& station_id, absl::Time now) {
  if (auto s = pki::CheckStationId(station_id); !s.ok()) return s;
  // Whole seconds, as certificates count time: a certificate issued in the
  // same second as the revocation is refused, not let through.
  const absl::Time revoked_at = absl::FromUnixSeconds(absl::ToUnixSeconds(now));
  if (auto s = store_.RevokeStation(station_id, revoked_at); !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot record the revocation: ", s.message()));
  }
  std::vector<std::function<void(const absl::Status&)>> cuts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    revoked_[station_id] = revoked_at;
    for (const auto& [token, stream] : open_) {
      // Plaintext streams (insecure_dev) carry no certificate: cut them too.
      if (stream.station_id == station_id &&
          (!stream.cert_not_before || *stream.cert_not_before <= revoked_at)) {
        cuts.push_back(stream.cut);
      }
    }
  }
  const absl::Status refusal = RevokedError(station_id, revoked_at);
  for (const auto& cut : cuts) cut(refusal);
  Log(LogLevel::kWarning, "station_revoked")
      .With("station", station_id)
      .With("streams_cut", static_cast<int64_t>(cuts.size()));
  store_.AddEvent("station_revoked", station_id,
                  absl::StrCat("certificates issued until ", Utc(revoked_at),
                               " refused; ", cuts.size(), " streams cut"));
  return Revoked{revoked_at, static_cast<int>(cuts.size())};
}

std::map<std::string, absl::Time> StationAccess::Revocations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return revoked_;
}

}  // namespace stephub::ingest
