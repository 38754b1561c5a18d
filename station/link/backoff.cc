// Reconnect backoff; see backoff.h.
#include "station/link/backoff.h"

#include <algorithm>

namespace stephub::station {

Backoff::Backoff(absl::Duration initial, absl::Duration max, uint64_t seed)
    : initial_(initial), max_(std::max(initial, max)), random_(seed) {}

absl::Duration Backoff::Next() {
  absl::Duration base = initial_;
  // Doubling stops once the cap is reached, so no overflow however long the
  // hub stays away.
  for (int i = 0; i < failures_ && base < max_; ++i) base *= 2;
  base = std::min(base, max_);
  ++failures_;
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return base * jitter(random_);
}

}  // namespace stephub::station
