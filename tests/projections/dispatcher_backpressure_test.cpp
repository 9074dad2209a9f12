// The Dispatcher's bounded queues, overflow policies and rate limit: memory
// stays bounded under a slow subscriber, and each policy does what it says.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/projections/dispatcher.hpp"
#include "annals/store/in_memory_event_store.hpp"

namespace annals {
namespace {

using namespace std::chrono_literals;

RecordedEvent recorded(std::int64_t position) {
  RecordedEvent e;
  e.position = position;
  e.version = position;
  e.stream_id = "s-1";
  e.type = "test.Happened";
  e.payload = e.metadata = "{}";
  return e;
}

void publish_one(Dispatcher& dispatcher, std::int64_t position) {
  const std::vector<RecordedEvent> batch{recorded(position)};
  dispatcher.publish(batch);
}

struct Errors {
  std::mutex mu;
  std::vector<DeliveryError> seen;
  DeliveryErrorHandler handler() {
    return [this](const DeliveryError& e) {
      std::lock_guard lock(mu);
      seen.push_back(e);
    };
  }
};

TEST(DispatcherBackpressure, BlockKeepsASlowSubscribersQueueWithinItsBoundAndLosesNothing) {
  InMemoryEventStore store;
  Dispatcher dispatcher(std::make_shared<ThreadPoolExecutor>(1));
  auto wiring = dispatcher.connect(store);
  std::atomic<int> handled{0};
  auto sub = dispatcher.subscribe(
      "slow", {},
      [&](const RecordedEvent&) {
        std::this_thread::sleep_for(500us);
        ++handled;
      },
      {.max_queued = 1000, .on_overflow = Overflow::block, .block_timeout = 120s});
  constexpr int kAppends = 20'000;
  EventData e;
  e.type = "test.Happened";
  for (int i = 0; i < kAppends; ++i) store.append("s-" + std::to_string(i % 7), ExpectedVersion::any(), {e});
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (handled.load() < kAppends && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  const auto stats = dispatcher.stats("slow");
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(handled.load(), kAppends);
  EXPECT_EQ(stats->delivered, static_cast<std::uint64_t>(kAppends));
  EXPECT_EQ(stats->dropped, 0u);
  EXPECT_LE(stats->max_queued_seen, 1000u);
  EXPECT_GT(stats->blocked, 0u) << "the appender outran the handler, so it must have waited";
}

TEST(DispatcherBackpressure, DropCountsWhatDidNotFitAndReportsOncePerStreak) {
  auto manual = std::make_shared<ManualExecutor>();
  Errors errors;
  Dispatcher dispatcher(manual, errors.handler());
  std::vector<std::int64_t> got;
  auto sub = dispatcher.subscribe("d", {}, [&](const RecordedEvent& e) { got.push_back(e.position); },
                                  {.max_queued = 5, .on_overflow = Overflow::drop});
  for (int p = 1; p <= 8; ++p) publish_one(dispatcher, p);
  auto stats = dispatcher.stats("d");
  EXPECT_EQ(stats->queued, 5u);
  EXPECT_EQ(stats->dropped, 3u);
  ASSERT_EQ(errors.seen.size(), 1u);
  EXPECT_EQ(errors.seen[0].subscriber, "d");
  EXPECT_EQ(errors.seen[0].position, 6);
  EXPECT_NE(errors.seen[0].message.find("queue full (5 events waiting, limit 5)"), std::string::npos)
      << errors.seen[0].message;
  manual->run_pending();
  EXPECT_EQ(got, (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  // Room again: the next batch is queued, and a new streak of drops is reported anew.
  for (int p = 9; p <= 15; ++p) publish_one(dispatcher, p);
  manual->run_pending();
  stats = dispatcher.stats("d");
  EXPECT_EQ(stats->delivered, 10u);
  EXPECT_EQ(stats->dropped, 5u);
  EXPECT_EQ(errors.seen.size(), 2u);
}

TEST(DispatcherBackpressure, FailEndsTheSubscriptionSayingWhyAndStaysReadable) {
  auto manual = std::make_shared<ManualExecutor>();
  Errors errors;
  Dispatcher dispatcher(manual, errors.handler());
  int calls = 0;
  auto sub = dispatcher.subscribe("f", {}, [&](const RecordedEvent&) { ++calls; },
                                  {.max_queued = 2, .on_overflow = Overflow::fail});
  for (int p = 1; p <= 4; ++p) publish_one(dispatcher, p);
  manual->run_pending();
  EXPECT_EQ(calls, 0) << "a failed subscription delivers nothing more, not even what was queued";
  const auto stats = dispatcher.stats("f");
  ASSERT_TRUE(stats.has_value());
  EXPECT_TRUE(stats->failed);
  EXPECT_EQ(stats->dropped, 1u);
  ASSERT_EQ(errors.seen.size(), 1u);
  EXPECT_NE(errors.seen[0].message.find("subscription ended"), std::string::npos);
  sub.reset();
  EXPECT_FALSE(dispatcher.stats("f").has_value());
}

TEST(DispatcherBackpressure, BlockGivesUpAfterItsTimeoutAndDropsTheBatch) {
  auto manual = std::make_shared<ManualExecutor>();  // never drained: no room ever comes
  Errors errors;
  Dispatcher dispatcher(manual, errors.handler());
  auto sub = dispatcher.subscribe("b", {}, [](const RecordedEvent&) {},
                                  {.max_queued = 1, .on_overflow = Overflow::block,
                                   .block_timeout = 20ms});
  publish_one(dispatcher, 1);
  publish_one(dispatcher, 2);
  const auto stats = dispatcher.stats("b");
  EXPECT_EQ(stats->blocked, 1u);
  EXPECT_EQ(stats->dropped, 1u);
  EXPECT_EQ(stats->queued, 1u);
  EXPECT_EQ(errors.seen.size(), 1u);
  // A queued drain task holds the dispatcher (and the executor holds the
  // task): run it, so nothing is left in a reference cycle.
  manual->run_pending();
}

TEST(DispatcherBackpressure, ABlockedPublisherIsReleasedWhenTheSubscriptionEnds) {
  auto manual = std::make_shared<ManualExecutor>();
  Dispatcher dispatcher(manual);
  auto sub = dispatcher.subscribe("r", {}, [](const RecordedEvent&) {},
                                  {.max_queued = 1, .block_timeout = 120s});
  publish_one(dispatcher, 1);
  std::thread publisher([&] { publish_one(dispatcher, 2); });  // waits for room
  while (dispatcher.stats("r")->blocked == 0) std::this_thread::sleep_for(1ms);
  sub.reset();
  publisher.join();  // returns without waiting out the two minutes
  manual->run_pending();  // the queued drain task: see above
  SUCCEED();
}

TEST(DispatcherBackpressure, AHandlersOwnAppendsAreNeverBlockedOnItsOwnQueue) {
  InMemoryEventStore store;
  Dispatcher dispatcher;  // inline: the handler runs on the appending thread
  auto wiring = dispatcher.connect(store);
  int calls = 0;
  EventData e;
  e.type = "test.Happened";
  auto sub = dispatcher.subscribe(
      "echo", {},
      [&](const RecordedEvent& event) {
        ++calls;
        if (event.position < 5) store.append("s-1", ExpectedVersion::any(), {e});
      },
      {.max_queued = 1, .on_overflow = Overflow::block, .block_timeout = 120s});
  store.append("s-1", ExpectedVersion::any(), {e});
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(dispatcher.stats("echo")->blocked, 0u);
}

TEST(DispatcherBackpressure, TheRateLimitHoldsEventsBackAndDeliversThemAll) {
  Dispatcher dispatcher;
  int calls = 0;
  auto sub = dispatcher.subscribe("limited", {}, [&](const RecordedEvent&) { ++calls; },
                                  {.max_rate = 20, .burst = 1});
  std::vector<RecordedEvent> batch;
  for (int p = 1; p <= 5; ++p) batch.push_back(recorded(p));
  dispatcher.publish(batch);
  EXPECT_EQ(calls, 5);
  const auto stats = dispatcher.stats("limited");
  EXPECT_EQ(stats->delivered, 5u);
  EXPECT_GE(stats->delayed, 1u);
}

TEST(DispatcherBackpressure, OptionsOutOfRangeAreRefusedNamingTheSubscriber) {
  Dispatcher dispatcher;
  const auto handler = [](const RecordedEvent&) {};
  const auto refused = [&](SubscriptionOptions options) {
    try {
      (void)dispatcher.subscribe("x", {}, handler, options);
    } catch (const InvalidArgument&) {
      return true;
    }
    return false;
  };
  EXPECT_TRUE(refused({.max_queued = 0}));
  EXPECT_TRUE(refused({.max_rate = -1}));
  EXPECT_TRUE(refused({.max_rate = 1, .burst = 0}));
  EXPECT_TRUE(refused({.block_timeout = -1ms}));
  EXPECT_FALSE(refused({.max_queued = 1, .max_rate = 1, .burst = 1}));
  try {
    (void)dispatcher.subscribe("named", {}, handler, {.max_rate = std::numeric_limits<double>::infinity()});
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("subscriber 'named'"), std::string::npos);
  }
}

}  // namespace
}  // namespace annals
