// stephub-loadgen's engine: N simulated stations in one process, each on
// its own StationLink stream (the station daemon's HubStream, over its own
// connection), replaying one pre-generated set of full-rate samples (force
// plate 1000 Hz, four IMUs 200 Hz) in real time, with sets started and
// ended on the hub on a schedule; it measures what the hub acknowledges and
// how soon repetitions reach a live subscriber.
#ifndef STEPHUB_BENCH_LOAD_LOAD_FLEET_H_
#define STEPHUB_BENCH_LOAD_LOAD_FLEET_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::bench {

// One simulated patient's set, batched as a station batches it, with times
// from 0. Generated once; every station replays it from its own phase.
struct PregeneratedSet {
  std::vector<v1::SensorInfo> sensors;
  std::vector<v1::SampleBatch> batches;  // seq unset
  absl::Duration batch_period;
  size_t set_start_batch = 0;  // the patient starts moving (set started)
  size_t set_end_batch = 0;    // the last repetition is over (set ended)
  int64_t samples = 0;
};

// `profile` as in common/simulator.h (level, moderate, trendelenburg...).
absl::StatusOr<PregeneratedSet> PregenerateSet(const std::string& profile,
                                               uint64_t seed,
                                               absl::Duration batch_period);

struct FleetOptions {
  std::string hub_address;
  // The staff tools' channels (and the stations', unless given below).
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  // A station's own channel credentials (its client certificate), by id.
  std::function<std::shared_ptr<grpc::ChannelCredentials>(const std::string&)>
      station_credentials;
  int stations = 10;
  absl::Duration duration = absl::Minutes(5);
  std::string station_prefix = "load-";
  // Start and end a set on each station as its replay reaches the patient's
  // movement (Clinic.StartSet/EndSet with these staff tokens, round-robin;
  // a live WatchClinic subscriber with the first measures repetition
  // latency). Empty: stream only.
  std::vector<std::string> staff_tokens;
  // A batch acknowledged later than this after it was sent counts as late.
  absl::Duration late_after = absl::Seconds(1);
  // After `duration`, how long to wait for the last acknowledgements.
  absl::Duration drain = absl::Seconds(10);
  int io_threads = 2;
};

// Milliseconds at the given share of a distribution.
struct Percentiles {
  int64_t count = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

struct FleetResult {
  int stations = 0;
  absl::Duration ran;
  int64_t batches_sent = 0;
  int64_t batches_acked = 0;
  int64_t samples_sent = 0;
  int64_t batches_lost = 0;  // sent, never acknowledged
  int64_t batches_late = 0;  // acknowledged after late_after
  Percentiles ack_lag;
  int64_t streams_ended = 0;  // streams the hub ended while running
  int64_t sets_started = 0, sets_ended = 0, set_errors = 0;
  Percentiles set_call;  // a StartSet/EndSet from sending to its answer
  int64_t repetitions = 0;
  Percentiles repetition_latency;  // rep end (data time) -> subscriber
  // The part of it before the hub published the event (scoring, and the
  // hub's backlog of batches), the rest being delivery to the subscriber.
  Percentiles repetition_published;
  // How late each tick's batches all left the generator: its own delay,
  // included in repetition_latency (data time runs on the schedule).
  Percentiles send_lag;
  std::string first_error;
};

// Runs the fleet for options.duration; an error only when it cannot start
// (a bad address, no patients); what the hub refuses is in the result.
absl::StatusOr<FleetResult> RunFleet(const PregeneratedSet& set,
                                     const FleetOptions& options);

std::string ResultJson(const FleetResult& result);

}  // namespace stephub::bench

#endif  // STEPHUB_BENCH_LOAD_LOAD_FLEET_H_
