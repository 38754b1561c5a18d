// Reconnect delays for the station's link to the hub: exponential with full
// jitter, capped low (seconds) so that a station is back within moments of
// clinic Wi-Fi returning, and so that a restarted hub is not stampeded by
// every bay at once.
#ifndef STEPHUB_STATION_LINK_BACKOFF_H_
#define STEPHUB_STATION_LINK_BACKOFF_H_

#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace stephub::station {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed);

  // The delay before the next attempt: uniformly in [base/2, base], where
  // base = initial * 2^failures, capped at max.
  absl::Duration Next();
  // A connection succeeded: start again from `initial`.
  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  const absl::Duration initial_;
  const absl::Duration max_;
  int failures_ = 0;
  std::mt19937_64 random_;
};

}  // namespace stephub::station

#endif  // STEPHUB_STATION_LINK_BACKOFF_H_
