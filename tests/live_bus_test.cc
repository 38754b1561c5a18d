// The live bus: fan-out to every subscriber, bounded queues, and a slow
// subscriber told what it missed without slowing the publisher.
#include "hub/live/live_bus.h"

#include <gtest/gtest.h>

#include <atomic>

namespace stephub::live {
namespace {

v1::ClinicEvent Rep(uint32_t number) {
  v1::ClinicEvent e;
  e.mutable_repetition()->set_number(number);
  return e;
}

TEST(LiveBus, EverySubscriberGetsEveryEventInOrder) {
  LiveBus bus;
  std::atomic<int> notified{0};
  auto a = bus.Subscribe(16, [&] { ++notified; });
  auto b = bus.Subscribe(16, nullptr);
  for (uint32_t i = 1; i <= 5; ++i) bus.Publish(Rep(i));
  EXPECT_EQ(notified.load(), 5);
  for (auto* sub : {a.get(), b.get()}) {
    Subscription::Item item;
    for (uint32_t i = 1; i <= 5; ++i) {
      ASSERT_TRUE(sub->Next(&item));
      EXPECT_EQ(item.missed, 0u);
      EXPECT_EQ(item.event.repetition().number(), i);
    }
    EXPECT_FALSE(sub->Next(&item));
  }
}

TEST(LiveBus, OverflowDropsBacklogAndReportsTheCount) {
  LiveBus bus;
  auto slow = bus.Subscribe(4, nullptr);
  for (uint32_t i = 1; i <= 10; ++i) bus.Publish(Rep(i));
  // 4 queued, the 5th overflowed (5 lost), then 6..9 queued, the 10th
  // overflowed again (5 more lost).
  Subscription::Item item;
  ASSERT_TRUE(slow->Next(&item));
  EXPECT_EQ(item.missed, 10u);
  EXPECT_FALSE(slow->Next(&item));
  EXPECT_LE(slow->queued(), 4u);
}

TEST(LiveBus, StalledSubscribersStayBounded) {
  LiveBus bus;
  std::vector<std::shared_ptr<Subscription>> stalled;
  for (int i = 0; i < 100; ++i) stalled.push_back(bus.Subscribe(64, nullptr));
  for (uint32_t i = 0; i < 10000; ++i) bus.Publish(Rep(i));
  for (const auto& s : stalled) EXPECT_LE(s->queued(), 64u);
}

TEST(LiveBus, ClosedSubscriptionIsForgotten) {
  LiveBus bus;
  auto sub = bus.Subscribe(4, nullptr);
  EXPECT_EQ(bus.subscriber_count(), 1u);
  sub->Close();
  bus.Publish(Rep(1));
  EXPECT_EQ(bus.subscriber_count(), 0u);
}

}  // namespace
}  // namespace stephub::live
