// The station daemon's core: polls its sensor source every batch period,
// numbers batches, streams them to the hub over StationLink, keeps every
// batch until the hub acknowledges it as durably stored, and resumes after
// a lost connection from the hub's last durable sequence number.
#ifndef STEPHUB_STATION_STATION_H_
#define STEPHUB_STATION_STATION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "station/sensors/sensor_source.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::station {

struct StationOptions {
  std::string hub_address = "127.0.0.1:50051";
  std::string station_id;
  absl::Duration batch_period = absl::Milliseconds(25);
  // Stop once the source has played its set and the hub holds all of it.
  bool exit_after_set = false;
  // false: run on a virtual clock as fast as the hub acknowledges (tests,
  // bulk replay), keeping at most max_in_flight batches unacknowledged.
  bool real_time = true;
  int max_in_flight = 200;
  // Batches kept for an unreachable hub before the oldest are dropped
  // (in memory until the on-disk spool of issue 3).
  size_t max_pending = 12000;
  absl::Duration max_backoff = absl::Seconds(5);
  // Called on the station's reader thread for every feedback from the hub.
  std::function<void(const v1::StationFeedback&)> on_feedback;
};

class Station {
 public:
  Station(StationOptions options, std::unique_ptr<SensorSource> source);
  ~Station();

  // Runs until Stop(), or with exit_after_set until the set is stored.
  absl::Status Run();
  // Safe from any thread or a signal-watching thread.
  void Stop();

  uint64_t acked_seq() const;
  uint64_t sent_seq() const;
  const std::string& boot_id() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stephub::station

#endif  // STEPHUB_STATION_STATION_H_
