// The hub: opens the store, serves StationLink, Clinic, Dashboard and
// Reports on one gRPC port, with server reflection and the health service.
#ifndef STEPHUB_HUB_API_HUB_SERVER_H_
#define STEPHUB_HUB_API_HUB_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "hub/auth/staff_accounts.h"
#include "hub/live/live_bus.h"
#include "hub/scoring/scoring.h"

namespace stephub::api {

struct HubOptions {
  std::string listen_address = "127.0.0.1:50051";  // port 0 picks one
  std::string data_dir = "stephub-data";           // holds stephub.db
  int max_receive_message_bytes = 1 << 20;         // a batch is ~10-40 KiB
  // Stations the hub keeps a bay for (StationLinkOptions::max_stations).
  size_t max_stations = 1000;
  // The hub's time for placing sets on stations' clocks (tests replace it).
  std::function<absl::Time()> clock = &absl::Now;
  // The clinic's time zone, for the days and weeks of progress: an IANA
  // name ("Europe/Berlin") or "localtime".
  std::string time_zone = "localtime";
  // Thresholds and switches of the scoring (scoring_config.h overrides).
  scoring::ScoringConfig scoring;
  // Batches stay raw this long after arrival, then are folded into
  // compressed sample blocks (ClinicStore::CompactSamples), a minute of a
  // station's at a time; absl::InfiniteDuration() keeps them raw.
  absl::Duration fold_samples_after = absl::Minutes(5);
  // Sample batches wait up to this for company before their commit
  // (store::SqliteStoreOptions::stream_commit_delay), 0 to 1 s.
  absl::Duration stream_commit_delay = absl::Milliseconds(100);
  // The web dashboard's "HOST:PORT" (port 0 picks one); empty: none.
  std::string web_listen_address;
  // Staff sign-in: session lifetime, lockout, request limits.
  auth::StaffAuthOptions staff_auth;
  // Transport security: TLS on gRPC and HTTPS on the dashboard with the
  // clinic CA's certificate and the hub's certificate and key (`stephub
  // certs` writes them; empty: <data_dir>/tls/ca.crt, hub.crt, hub.key).
  // Stations must present a certificate of the clinic CA naming them.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Plaintext gRPC and HTTP, no station identity: for development only.
  bool insecure_dev = false;
};

// Adds a staff account to the clinic database under `data_dir` directly,
// without a running hub: how the first admin is made (stephub-hub
// --add_staff), since Auth.AddUser needs an admin already.
absl::Status AddStaffAccount(const std::string& data_dir,
                             const std::string& username,
                             const std::string& display_name,
                             auth::RoleSet roles, const std::string& password);

class HubServer {
 public:
  static absl::StatusOr<std::unique_ptr<HubServer>> Start(
      const HubOptions& options);
  ~HubServer();  // shuts down if still running

  int port() const;
  // The web dashboard's port; 0 without one.
  int web_port() const;
  // Whether gRPC and the dashboard are served over TLS (not insecure_dev).
  bool tls() const;
  // What live subscribers (WatchClinic calls) hold in the hub.
  live::LiveBus::Stats live_stats() const;
  std::string database_path() const;
  // Ends every call (live watchers included) and stops serving.
  void Shutdown();
  // Blocks until Shutdown.
  void Wait();

 private:
  struct Parts;
  explicit HubServer(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace stephub::api

#endif  // STEPHUB_HUB_API_HUB_SERVER_H_
