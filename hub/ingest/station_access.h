// Which certificate may stream as which station: a station's identity is
// the stephub:station: name in its client certificate, a stream may only
// carry that station's data, and a revoked station's certificates issued
// up to its revocation are refused, at every stream start and by cutting
// the streams already open.
#ifndef STEPHUB_HUB_INGEST_STATION_ACCESS_H_
#define STEPHUB_HUB_INGEST_STATION_ACCESS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/pki.h"
#include "hub/store/store.h"

namespace stephub::ingest {

// Whether `cert` (the peer's verified client certificate, if any) may
// stream as `station_id`, given the station's revocation time if revoked:
// UNAUTHENTICATED without a certificate naming a station,
// PERMISSION_DENIED for another station's certificate or a revoked one.
absl::Status CheckStationCertificate(const std::optional<pki::CertInfo>& cert,
                                     const std::string& station_id,
                                     std::optional<absl::Time> revoked_at);

class StationAccess {
 public:
  // Without `require_certificates` (the hub's insecure_dev mode) streams
  // are admitted as whatever station they say they are.
  StationAccess(store::ClinicStore& store, bool require_certificates)
      : store_(store), require_certificates_(require_certificates) {}

  // Loads the recorded revocations (at hub start).
  absl::Status Load();

  // At a stream's hello: whether `cert` may stream as `station_id`
  // (CheckStationCertificate, unless certificates are not required). If so
  // the stream is registered with `cut`, which ends it, in the same step as
  // the check, so that a revocation either refuses it or cuts it; returns
  // a token for Closed. `cut` may be called from any thread and must not
  // block.
  absl::StatusOr<uint64_t> Admit(const std::optional<pki::CertInfo>& cert,
                                 const std::string& station_id,
                                 std::function<void(const absl::Status&)> cut);
  void Closed(uint64_t token);

  struct Revoked {
    absl::Time revoked_at;
    int streams_cut = 0;
  };
  // Records the revocation durably, then cuts the station's open streams
  // whose certificates it covers.
  absl::StatusOr<Revoked> Revoke(const std::string& station_id, absl::Time now);

  // Every revoked station and when, by id.
  std::map<std::string, absl::Time> Revocations() const;

 private:
  struct OpenStream {
    std::string station_id;
    std::optional<absl::Time> cert_not_before;
    std::function<void(const absl::Status&)> cut;
  };

  store::ClinicStore& store_;
  const bool require_certificates_;
  mutable std::mutex mu_;
  std::map<std::string, absl::Time> revoked_;
  std::map<uint64_t, OpenStream> open_;
  uint64_t next_token_ = 1;
};

}  // namespace stephub::ingest

#endif  // STEPHUB_HUB_INGEST_STATION_ACCESS_H_
