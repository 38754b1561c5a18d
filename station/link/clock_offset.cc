// Clock offset estimate; see clock_offset.h.
#include "station/link/clock_offset.h"

namespace stephub::station {

std::optional<ClockEstimate> EstimateFromExchange(const ClockExchange& x) {
  const int64_t round_trip = (x.station_receive_us - x.station_send_us) -
                             (x.hub_send_us - x.hub_receive_us);
  if (round_trip < 0 || x.hub_send_us < x.hub_receive_us) return std::nullopt;
  // Assumes the two legs took equally long; the truth lies within half the
  // round trip of this.
  const int64_t offset = ((x.hub_receive_us - x.station_send_us) +
                          (x.hub_send_us - x.station_receive_us)) /
                         2;
  return ClockEstimate{offset, (round_trip + 1) / 2, round_trip};
}

bool ClockOffsetEstimator::Add(const ClockExchange& exchange) {
  auto estimate = EstimateFromExchange(exchange);
  if (!estimate) return false;
  recent_.push_back(*estimate);
  while (recent_.size() > window_) recent_.pop_front();
  return true;
}

std::optional<ClockEstimate> ClockOffsetEstimator::Best() const {
  std::optional<ClockEstimate> best;
  for (const auto& e : recent_) {
    if (!best || e.round_trip_us < best->round_trip_us) best = e;
  }
  return best;
}

}  // namespace stephub::station
