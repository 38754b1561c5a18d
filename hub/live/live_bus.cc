// Bounded fan-out of live events; see live_bus.h.
#include "hub/live/live_bus.h"

#include <algorithm>

namespace stephub::live {

bool Subscription::Next(Item* item) {
  std::lock_guard<std::mutex> lock(mu_);
  if (missed_ > 0) {
    item->missed = missed_;
    item->event.Clear();
    missed_ = 0;
    return true;
  }
  if (queue_.empty()) return false;
  item->missed = 0;
  item->event = *queue_.front();
  queue_.pop_front();
  return true;
}

size_t Subscription::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void Subscription::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  queue_.clear();
}

bool Subscription::Offer(const std::shared_ptr<const v1::ClinicEvent>& event,
                         bool* dropped) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;
    if (queue_.size() >= capacity_) {
      // Drop the whole backlog rather than the newest event: the subscriber
      // resynchronises from a snapshot, so stale events are worthless.
      missed_ += queue_.size() + 1;
      queue_.clear();
      *dropped = true;
    } else {
      queue_.push_back(event);
    }
  }
  if (on_ready_) on_ready_();
  return true;
}

std::shared_ptr<Subscription> LiveBus::Subscribe(
    size_t capacity, std::function<void()> on_ready) {
  std::shared_ptr<Subscription> sub(
      new Subscription(std::max<size_t>(capacity, 1), std::move(on_ready)));
  std::lock_guard<std::mutex> lock(mu_);
  subscribers_.push_back(sub);
  return sub;
}

void LiveBus::Publish(v1::ClinicEvent event) {
  auto shared = std::make_shared<const v1::ClinicEvent>(std::move(event));
  std::vector<std::shared_ptr<Subscription>> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    targets = subscribers_;
  }
  std::vector<const Subscription*> closed;
  for (const auto& sub : targets) {
    bool dropped = false;
    if (!sub->Offer(shared, &dropped)) closed.push_back(sub.get());
    if (dropped) backlogs_dropped_.fetch_add(1, std::memory_order_relaxed);
  }
  if (closed.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(subscribers_, [&](const std::shared_ptr<Subscription>& s) {
    return std::find(closed.begin(), closed.end(), s.get()) != closed.end();
  });
}

LiveBus::Stats LiveBus::stats() const {
  std::vector<std::shared_ptr<Subscription>> subscribers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    subscribers = subscribers_;
  }
  Stats stats;
  stats.subscribers = subscribers.size();
  for (const auto& sub : subscribers) {
    const size_t n = sub->queued();
    stats.queued_events += n;
    stats.most_queued = std::max(stats.most_queued, n);
  }
  stats.backlogs_dropped = backlogs_dropped_.load(std::memory_order_relaxed);
  return stats;
}

size_t LiveBus::subscriber_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return subscribers_.size();
}

}  // namespace stephub::live
