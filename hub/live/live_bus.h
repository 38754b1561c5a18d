// In-process publish/subscribe of live clinic events. Publishing never
// blocks: each subscriber has a bounded queue, and a subscriber that falls
// behind loses its backlog and is told how many events it missed.
#ifndef STEPHUB_HUB_LIVE_LIVE_BUS_H_
#define STEPHUB_HUB_LIVE_LIVE_BUS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "stephub/v1/dashboard.pb.h"

namespace stephub::live {

class LiveBus;

// One subscriber's queue. Thread-safe.
class Subscription {
 public:
  // What Next() hands back.
  struct Item {
    // > 0: events were dropped before this point; the subscriber should
    // fetch a fresh snapshot. `event` is then empty.
    uint64_t missed = 0;
    v1::ClinicEvent event;
  };

  // Takes the next item without waiting; false if the queue is empty.
  bool Next(Item* item);
  size_t queued() const;
  // Stops delivery; the bus forgets the subscription on its next publish.
  void Close();

 private:
  friend class LiveBus;
  Subscription(size_t capacity, std::function<void()> on_ready)
      : capacity_(capacity), on_ready_(std::move(on_ready)) {}
  // Returns false once closed; sets *dropped when the backlog overflowed.
  bool Offer(const std::shared_ptr<const v1::ClinicEvent>& event,
             bool* dropped);

  const size_t capacity_;
  const std::function<void()> on_ready_;
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<const v1::ClinicEvent>> queue_;
  uint64_t missed_ = 0;
  bool closed_ = false;
};

class LiveBus {
 public:
  // `on_ready` runs (on the publisher's thread, so it must not block) each
  // time an event or a miss is queued for this subscriber.
  std::shared_ptr<Subscription> Subscribe(size_t capacity,
                                          std::function<void()> on_ready);
  void Publish(v1::ClinicEvent event);
  size_t subscriber_count() const;

  // What the subscribers hold: the bound on the bus's memory.
  struct Stats {
    size_t subscribers = 0;
    size_t queued_events = 0;       // over all subscribers
    size_t most_queued = 0;         // by one subscriber
    uint64_t backlogs_dropped = 0;  // overflows since the start
  };
  Stats stats() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Subscription>> subscribers_;
  std::atomic<uint64_t> backlogs_dropped_{0};
};

}  // namespace stephub::live

#endif  // STEPHUB_HUB_LIVE_LIVE_BUS_H_
