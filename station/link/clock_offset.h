// NTP-style estimate of a station's clock against the hub's, from ping/pong
// exchanges inside the station's stream. Each exchange gives an offset whose
// error is bounded by half its round trip; Wi-Fi delays are lopsided and
// bursty, so the estimate is the exchange with the smallest round trip among
// the recent ones (the least-delayed exchange bounds the offset tightest).
#ifndef STEPHUB_STATION_LINK_CLOCK_OFFSET_H_
#define STEPHUB_STATION_LINK_CLOCK_OFFSET_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

namespace stephub::station {

struct ClockExchange {
  int64_t station_send_us;     // t0, station clock
  int64_t hub_receive_us;      // t1, hub clock
  int64_t hub_send_us;         // t2, hub clock
  int64_t station_receive_us;  // t3, station clock
};

struct ClockEstimate {
  int64_t offset_us;       // hub time = station time + offset
  int64_t uncertainty_us;  // half the round trip of the exchange used
  int64_t round_trip_us;
};

// The offset and round trip of one exchange; nullopt when its times are
// inconsistent (negative round trip: a clock stepped mid-exchange).
std::optional<ClockEstimate> EstimateFromExchange(const ClockExchange& x);

class ClockOffsetEstimator {
 public:
  explicit ClockOffsetEstimator(size_t window = 8) : window_(window) {}

  // Returns false when the exchange was rejected.
  bool Add(const ClockExchange& exchange);
  std::optional<ClockEstimate> Best() const;
  void Clear() { recent_.clear(); }

 private:
  size_t window_;
  std::deque<ClockEstimate> recent_;
};

}  // namespace stephub::station

#endif  // STEPHUB_STATION_LINK_CLOCK_OFFSET_H_
