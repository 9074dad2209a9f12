// The dispatcher: filters, executors, per-subscriber order under concurrency,
// failing handlers, and (un)subscribing from inside handlers.

#include "annals/projections/dispatcher.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <span>
#include <stdexcept>
#include <thread>

#include "store/store_fixtures.hpp"

namespace annals {
namespace {

using namespace std::chrono_literals;

RecordedEvent recorded(std::int64_t position, std::string stream, std::string type) {
  RecordedEvent e;
  e.position = position;
  e.version = position;
  e.stream_id = std::move(stream);
  e.type = std::move(type);
  e.payload = e.metadata = "{}";
  return e;
}

EventData event(const std::string& type = "test.Happened") {
  EventData e;
  e.type = type;
  return e;
}

// Waits (bounded) until `done` holds; for asynchronous delivery.
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(Dispatcher, SubscribersGetWhatTheirFilterPassesAndManualExecutionWaitsForRunPending) {
  auto manual = std::make_shared<ManualExecutor>();
  Dispatcher dispatcher(manual);
  std::vector<std::int64_t> all, deposits, accounts;
  auto s1 = dispatcher.subscribe("all", [&](const RecordedEvent& e) { all.push_back(e.position); });
  auto s2 = dispatcher.subscribe("deposits", EventFilter::for_types({"bank.Deposited"}),
                                 [&](const RecordedEvent& e) { deposits.push_back(e.position); });
  auto s3 = dispatcher.subscribe("accounts", EventFilter::for_category("account"),
                                 [&](const RecordedEvent& e) { accounts.push_back(e.position); });
  const std::vector<RecordedEvent> batch{
      recorded(1, "account-1", "bank.Opened"), recorded(2, "account-1", "bank.Deposited"),
      recorded(3, "user-1", "bank.Deposited"), recorded(4, "accounting-1", "x.Y")};
  dispatcher.publish(batch);
  EXPECT_TRUE(all.empty());  // nothing runs before the executor is driven
  EXPECT_EQ(manual->run_pending(), 3u);
  EXPECT_EQ(all, (std::vector<std::int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(deposits, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(accounts, (std::vector<std::int64_t>{1, 2}));
}

TEST(Dispatcher, WiredToEitherStoreItPublishesEachCommitAfterItIsVisible) {
  testing::TempDir dir;
  InMemoryEventStore memory;
  SqliteEventStore sqlite(dir / "store.db");
  for (EventStore* store : std::vector<EventStore*>{&memory, &sqlite}) {
    Dispatcher dispatcher;  // inline
    std::vector<std::int64_t> seen;
    std::int64_t visible = 0;
    auto wiring = dispatcher.connect(*store);
    auto sub = dispatcher.subscribe("probe", [&](const RecordedEvent& e) {
      seen.push_back(e.position);
      visible = store->head_position();
    });
    store->append("a-1", ExpectedVersion::any(), {event(), event()});
    store->append("b-1", ExpectedVersion::any(), {event()});
    EXPECT_EQ(seen, (std::vector<std::int64_t>{1, 2, 3}));
    EXPECT_EQ(visible, 3);
    wiring.reset();
    store->append("a-1", ExpectedVersion::any(), {event()});
    EXPECT_EQ(seen.size(), 3u);
  }
}

TEST(Dispatcher, ThreadPoolKeepsEachSubscribersOrderWithEightPublishingThreads) {
  testing::TempDir dir;
  SqliteStoreOptions options;
  options.synchronous = Synchronous::normal;
  SqliteEventStore store(dir / "store.db", options);
  auto pool = std::make_shared<ThreadPoolExecutor>(4);
  std::atomic<int> errors{0};
  Dispatcher dispatcher(pool, [&](const DeliveryError&) { ++errors; });
  auto wiring = dispatcher.connect(store);

  constexpr int kSubscribers = 4, kThreads = 8, kAppends = 150;
  struct Probe {
    std::vector<std::int64_t> positions;
    std::atomic<int> inside{0};
    std::atomic<bool> overlapped{false};
    std::atomic<std::size_t> count{0};
  };
  std::vector<Probe> probes(kSubscribers);
  std::vector<Subscription> subs;
  for (int s = 0; s < kSubscribers; ++s) {
    subs.push_back(
        dispatcher.subscribe("probe-" + std::to_string(s), [&, s](const RecordedEvent& e) {
          Probe& p = probes[s];
          if (p.inside.fetch_add(1) != 0) p.overlapped = true;
          p.positions.push_back(e.position);
          if (e.position % 7 == 0) std::this_thread::yield();
          p.inside.fetch_sub(1);
          p.count.fetch_add(1);
        }));
  }
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&, t] {
      for (int i = 0; i < kAppends; ++i) {
        store.append("s-" + std::to_string(t), ExpectedVersion::any(), {event(), event()});
      }
    });
  }
  for (auto& th : publishers) th.join();
  const std::size_t total = kThreads * kAppends * 2;
  for (auto& p : probes) {
    ASSERT_TRUE(eventually([&] { return p.count.load() == total; })) << p.count.load();
    EXPECT_FALSE(p.overlapped.load()) << "a subscriber ran two handler calls at once";
    for (std::size_t i = 0; i < p.positions.size(); ++i) {
      ASSERT_EQ(p.positions[i], static_cast<std::int64_t>(i) + 1);
    }
  }
  EXPECT_EQ(errors.load(), 0);
  subs.clear();
}

TEST(Dispatcher, AThrowingHandlerIsReportedAndDoesNotStopDelivery) {
  std::vector<DeliveryError> errors;
  Dispatcher dispatcher(nullptr, [&](const DeliveryError& e) { errors.push_back(e); });
  std::vector<std::int64_t> good, bad;
  auto s1 = dispatcher.subscribe("fragile", [&](const RecordedEvent& e) {
    bad.push_back(e.position);
    if (e.position == 2) throw std::runtime_error("cannot handle position 2");
  });
  auto s2 =
      dispatcher.subscribe("sturdy", [&](const RecordedEvent& e) { good.push_back(e.position); });
  dispatcher.publish(std::vector<RecordedEvent>{recorded(1, "a-1", "t"), recorded(2, "a-1", "t"),
                                                recorded(3, "a-1", "t")});
  EXPECT_EQ(good, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(bad, (std::vector<std::int64_t>{1, 2, 3}));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].subscriber, "fragile");
  EXPECT_EQ(errors[0].position, 2);
  EXPECT_EQ(errors[0].message, "cannot handle position 2");
}

TEST(Dispatcher, ErrorCallbackReportsEachFailureUnderTheThreadPoolAndOthersGetEverything) {
  auto pool = std::make_shared<ThreadPoolExecutor>(3);
  std::mutex mu;
  std::vector<DeliveryError> errors;
  Dispatcher dispatcher(pool, [&](const DeliveryError& e) {
    std::lock_guard lock(mu);
    errors.push_back(e);
  });
  std::atomic<int> sturdy{0}, fragile{0};
  auto s1 = dispatcher.subscribe("fragile", [&](const RecordedEvent& e) {
    ++fragile;
    if (e.position % 10 == 0) throw std::runtime_error("bad " + std::to_string(e.position));
  });
  auto s2 = dispatcher.subscribe("sturdy", [&](const RecordedEvent&) { ++sturdy; });
  for (int b = 0; b < 10; ++b) {
    std::vector<RecordedEvent> batch;
    for (int i = 1; i <= 10; ++i) batch.push_back(recorded(b * 10 + i, "a-1", "t"));
    dispatcher.publish(batch);
  }
  ASSERT_TRUE(eventually([&] { return sturdy.load() == 100 && fragile.load() == 100; }));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return errors.size() == 10u;
  }));
  std::lock_guard lock(mu);
  for (std::size_t i = 0; i < errors.size(); ++i) {
    EXPECT_EQ(errors[i].subscriber, "fragile");
    EXPECT_EQ(errors[i].position, static_cast<std::int64_t>(i + 1) * 10);  // in order, too
    EXPECT_EQ(errors[i].message, "bad " + std::to_string((i + 1) * 10));
  }
}

TEST(Dispatcher, SubscribingAndUnsubscribingFromHandlersOnThePoolDoesNotDeadlock) {
  auto pool = std::make_shared<ThreadPoolExecutor>(2);
  Dispatcher dispatcher(pool);
  std::mutex mu;
  std::vector<Subscription> spawned;
  std::atomic<int> spawned_calls{0}, calls{0};
  Subscription self;
  self = dispatcher.subscribe("spawner", [&](const RecordedEvent& e) {
    ++calls;
    auto sub = dispatcher.subscribe("child", [&](const RecordedEvent&) { ++spawned_calls; });
    std::lock_guard lock(mu);
    spawned.push_back(std::move(sub));
    if (e.position == 5) self.reset();  // from inside itself, on a pool thread
    if (spawned.size() > 2) spawned.erase(spawned.begin());  // and another's, from here
  });
  for (int p = 1; p <= 20; ++p) {
    dispatcher.publish(std::vector<RecordedEvent>{recorded(p, "a-1", "t")});
  }
  ASSERT_TRUE(eventually([&] { return calls.load() == 5; }));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(calls.load(), 5);
  std::lock_guard lock(mu);
  spawned.clear();
}

TEST(Dispatcher, UnsubscribeDuringDeliveryWaitsForTheRunningCallAndStopsTheRest) {
  auto pool = std::make_shared<ThreadPoolExecutor>(2);
  Dispatcher dispatcher(pool);
  std::atomic<bool> in_handler{false}, release{false};
  std::atomic<int> calls{0};
  auto sub = dispatcher.subscribe("slow", [&](const RecordedEvent&) {
    ++calls;
    in_handler = true;
    while (!release) std::this_thread::sleep_for(1ms);
    in_handler = false;
  });
  std::vector<RecordedEvent> batch;
  for (int p = 1; p <= 10; ++p) batch.push_back(recorded(p, "a-1", "t"));
  dispatcher.publish(batch);
  ASSERT_TRUE(eventually([&] { return in_handler.load(); }));
  std::thread releaser([&] {
    std::this_thread::sleep_for(50ms);
    release = true;
  });
  sub.reset();  // must wait for the running call
  EXPECT_FALSE(in_handler.load());
  releaser.join();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_FALSE(sub.active());
}

TEST(Dispatcher, HandlersMaySubscribeUnsubscribeAndAppendWithoutDeadlock) {
  InMemoryEventStore store;
  Dispatcher dispatcher;  // inline: everything happens on the appending thread
  auto wiring = dispatcher.connect(store);
  std::vector<std::string> log;
  Subscription late, self;
  self = dispatcher.subscribe(
      "reactor", EventFilter::for_category("order"), [&](const RecordedEvent& e) {
        log.push_back("reactor:" + e.stream_id);
        // A process manager: react by appending elsewhere, from inside the handler.
        store.append("invoice-1", ExpectedVersion::any(), {event("billing.Invoiced")});
        late = dispatcher.subscribe(
            "late", [&](const RecordedEvent& x) { log.push_back("late:" + x.stream_id); });
        self.reset();  // unsubscribing itself must not deadlock
      });
  store.append("order-1", ExpectedVersion::any(), {event("shop.Ordered")});
  store.append("order-2", ExpectedVersion::any(), {event("shop.Ordered")});
  // The invoice batch is published after the reactor returns, by which time
  // "late" has subscribed: it sees it, and the reactor (gone) does not see order-2.
  EXPECT_EQ(log, (std::vector<std::string>{"reactor:order-1", "late:invoice-1", "late:order-2"}));
  EXPECT_EQ(store.head_position(), 3);
}

TEST(Dispatcher, WithMetricsItReportsQueueDepthDeliveriesFailuresAndDropsPerSubscriber) {
  auto manual = std::make_shared<ManualExecutor>();
  auto metrics = std::make_shared<MetricsRegistry>();
  Dispatcher dispatcher(manual, {}, metrics);
  auto deposits = dispatcher.subscribe("deposits", EventFilter::for_types({"bank.Deposited"}),
                                       [](const RecordedEvent& e) {
                                         if (e.position == 3) throw std::runtime_error("bad deposit");
                                       });
  auto gone = dispatcher.subscribe("gone", [](const RecordedEvent&) {});
  const MetricLabels d{{"subscriber", "deposits"}}, g{{"subscriber", "gone"}};
  const auto depth = [&](const MetricLabels& l) {
    return metrics->gauge("annals_dispatcher_queue_depth", "", l).value();
  };
  const auto count = [&](const char* name, const MetricLabels& l) {
    return metrics->counter(name, "", l).value();
  };
  const std::vector<RecordedEvent> batch{recorded(1, "account-1", "bank.Opened"),
                                         recorded(2, "account-1", "bank.Deposited"),
                                         recorded(3, "account-1", "bank.Deposited")};
  dispatcher.publish(batch);
  dispatcher.publish(std::span(batch).first(2));
  EXPECT_EQ(depth(d), 3.0);  // only the events its filter passes
  EXPECT_EQ(depth(g), 5.0);
  gone.reset();  // five events queued for it will never be handed over
  EXPECT_EQ(count("annals_dispatcher_dropped_total", g), 5u);
  EXPECT_EQ(depth(g), 0.0);
  manual->run_pending();
  EXPECT_EQ(depth(d), 0.0);
  EXPECT_EQ(count("annals_dispatcher_delivered_total", d), 2u);
  EXPECT_EQ(count("annals_dispatcher_handler_failures_total", d), 1u);
  EXPECT_EQ(count("annals_dispatcher_dropped_total", d), 0u);
  EXPECT_EQ(count("annals_dispatcher_delivered_total", g), 0u);
  const std::string text = metrics->prometheus_text();
  for (const char* line : {"annals_dispatcher_queue_depth{subscriber=\"deposits\"} 0\n",
                           "annals_dispatcher_delivered_total{subscriber=\"deposits\"} 2\n",
                           "annals_dispatcher_handler_failures_total{subscriber=\"deposits\"} 1\n",
                           "annals_dispatcher_dropped_total{subscriber=\"gone\"} 5\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\nin:\n" << text;
  }
}

TEST(Dispatcher, ASubscriptionEndingInsideItsHandlerCountsTheRestOfTheBatchAsDropped) {
  auto metrics = std::make_shared<MetricsRegistry>();
  Dispatcher dispatcher(nullptr, {}, metrics);
  Subscription self;
  int calls = 0;
  self = dispatcher.subscribe("once", [&](const RecordedEvent&) {
    ++calls;
    self.reset();
  });
  const std::vector<RecordedEvent> batch{recorded(1, "a-1", "x.Y"), recorded(2, "a-1", "x.Y"),
                                         recorded(3, "a-1", "x.Y")};
  dispatcher.publish(batch);
  EXPECT_EQ(calls, 1);
  const MetricLabels once{{"subscriber", "once"}};
  EXPECT_EQ(metrics->counter("annals_dispatcher_delivered_total", "", once).value(), 1u);
  EXPECT_EQ(metrics->counter("annals_dispatcher_dropped_total", "", once).value(), 2u);
  EXPECT_EQ(metrics->gauge("annals_dispatcher_queue_depth", "", once).value(), 0.0);
}

TEST(Dispatcher, HandlersReadTheCorrelationAndCausationIdsOfTheCommand) {
  InMemoryEventStore store;
  Dispatcher dispatcher;
  auto wiring = dispatcher.connect(store);
  std::vector<std::string> seen;
  auto sub = dispatcher.subscribe("log", [&](const RecordedEvent& e) {
    seen.push_back(e.correlation_id() + "/" + e.causation_id());
  });
  EventData deposited = event("bank.Deposited");
  deposited.metadata = R"({"actor":"ada","correlation_id":"transfer-7","causation_id":"cmd-3"})";
  store.append("account-1", ExpectedVersion::any(), {deposited, event("bank.Noted")});
  EXPECT_EQ(seen, (std::vector<std::string>{"transfer-7/cmd-3", "/"}));
}

}  // namespace
}  // namespace annals
