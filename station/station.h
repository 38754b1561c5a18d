// The station daemon's core. Every batch period it polls the bay's sensors,
// appends the batch to the on-disk spool (before anything is sent), streams
// spooled batches to the hub, releases spool space when the hub acknowledges
// a durable commit, and resumes after a lost connection from the hub's last
// durable sequence number. It also keeps the hub told of its sensors' health
// and of its clock's offset.
//
// Threads: everything runs on one boost::asio::io_context (timers, sensor
// reads, signal handling); gRPC's callback threads only hand messages over
// to it.
#ifndef STEPHUB_STATION_STATION_H_
#define STEPHUB_STATION_STATION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/pki.h"
#include "station/sensors/sensor_source.h"
#include "station/spool/spool.h"
#include "stephub/v1/station_link.pb.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace stephub::station {

struct StationOptions {
  std::string hub_address = "127.0.0.1:50051";
  std::string station_id;
  // TLS to the hub: trust only the clinic CA, present this station's
  // certificate (config.h LoadStationTls); plaintext with insecure_dev.
  std::string tls_ca_cert_pem;
  pki::KeyAndCert tls_identity;
  bool insecure_dev = false;
  absl::Duration batch_period = absl::Milliseconds(25);
  SpoolOptions spool;
  Env* env = nullptr;  // nullptr: Env::Default()
  // Stop once the source has played its set and the hub holds all of it.
  bool exit_after_set = false;
  // false: run on a virtual clock as fast as the hub acknowledges (tests,
  // bulk replay), keeping at most max_in_flight batches unacknowledged.
  bool real_time = true;
  // Batches sent but not yet acknowledged; below the hub's own limit (256)
  // so that the hub never has to pause reading the stream.
  int max_in_flight = 200;
  absl::Duration max_backoff = absl::Seconds(5);
  absl::Duration keepalive_time = absl::Seconds(10);
  absl::Duration keepalive_timeout = absl::Seconds(5);
  absl::Duration clock_ping_interval = absl::Seconds(2);
  // On Stop, how long to wait for the hub to acknowledge what is spooled
  // before closing anyway (the rest stays in the spool for the next start).
  absl::Duration shutdown_grace = absl::Seconds(2);
  // Where the station notes the running set's start on its clock, so that a
  // simulated or replayed patient resumes mid-set after a restart. Empty:
  // not kept.
  std::string current_set_file;
  // Sets begin with the prompted calibration movement (StationHello);
  // nullopt: as the source says, else true.
  std::optional<bool> calibration_movement;
  // Called on the io_context for every feedback from the hub.
  std::function<void(const v1::StationFeedback&)> on_feedback;
};

class Station {
 public:
  // The source must run on the same io_context.
  Station(boost::asio::io_context& io, StationOptions options,
          std::unique_ptr<SensorSource> source);
  ~Station();

  // Opens the spool (cutting a torn tail), then runs the io_context until
  // Stop(), or with exit_after_set until the set is stored at the hub.
  absl::Status Run();
  // Safe from any thread: stop sampling, spool what was sampled, sync the
  // spool, give the hub shutdown_grace to acknowledge, close the stream.
  void Stop();

  // After Run: what happened (for tests and the exit message).
  uint64_t acked_seq() const;
  uint64_t last_seq() const;
  std::string boot_id() const;
  uint64_t dropped_samples() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stephub::station

#endif  // STEPHUB_STATION_STATION_H_
