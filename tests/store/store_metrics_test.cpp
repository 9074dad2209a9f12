// SqliteStoreOptions::metrics: what the store counts and times when given a
// registry.

#include <gtest/gtest.h>

#include <thread>

#include "annals/core/error.hpp"
#include "annals/core/event_id.hpp"
#include "annals/core/metrics.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "store/store_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

EventData event(const std::string& type = "test.Happened") {
  EventData e;
  e.type = type;
  e.payload = "{}";
  return e;
}

std::uint64_t value(MetricsRegistry& m, const std::string& name) {
  return m.counter(name, "").value();
}

TEST(StoreMetrics, AppendsEventsConflictsAndLatencyAreCounted) {
  TempDir dir;
  auto metrics = std::make_shared<MetricsRegistry>();
  SqliteStoreOptions options = fast();
  options.metrics = metrics;
  SqliteEventStore store(dir / "m.db", options);
  EventData first = event();
  first.event_id = new_event_id();
  EventData second = event();
  second.event_id = new_event_id();
  store.append("a-1", ExpectedVersion::no_stream(), {first, second});
  store.append("a-1", ExpectedVersion::no_stream(), {first, second});  // an idempotent retry
  EXPECT_THROW(store.append("a-1", ExpectedVersion::exactly(7), {event()}), WrongExpectedVersion);
  EXPECT_THROW(store.append("b-1", ExpectedVersion::any(), {first}), DuplicateEventId);
  EXPECT_EQ(value(*metrics, "annals_store_appends_total"), 2u);
  EXPECT_EQ(value(*metrics, "annals_store_appended_events_total"), 4u);
  EXPECT_EQ(value(*metrics, "annals_store_conflicts_total"), 1u);
  EXPECT_EQ(value(*metrics, "annals_store_append_failures_total"), 1u);
  const auto latency = metrics->histogram("annals_store_append_seconds", "", kLatencyBuckets).snapshot();
  EXPECT_EQ(latency.count, 4u);
  const auto commits = metrics->histogram("annals_store_commit_events", "",
                                          {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096})
                           .snapshot();
  EXPECT_GE(commits.count, 1u);
  EXPECT_EQ(commits.sum, 4.0) << "each committed append's events, retries included";
  const std::string text = metrics->prometheus_text();
  EXPECT_NE(text.find("annals_store_append_seconds_count 4\n"), std::string::npos) << text;
}

TEST(StoreMetrics, IdempotentRetriesAreCountedPerStreamAndWriteNothing) {
  TempDir dir;
  auto metrics = std::make_shared<MetricsRegistry>();
  SqliteStoreOptions options = fast();
  options.metrics = metrics;
  SqliteEventStore store(dir / "s.db", options);
  EventData a = event();
  a.event_id = new_event_id();
  EventData b = event();
  b.event_id = new_event_id();
  const std::vector<StreamAppend> batch{{"s-1", ExpectedVersion::no_stream(), {a}},
                                        {"s-2", ExpectedVersion::no_stream(), {b}}};
  store.append(batch);
  EXPECT_EQ(value(*metrics, "annals_store_idempotent_retries_total"), 0u);
  store.append(batch);  // the same ids at the same place: answered, not written
  store.append("s-1", ExpectedVersion::no_stream(), {a});
  EXPECT_EQ(value(*metrics, "annals_store_idempotent_retries_total"), 3u);
  EXPECT_EQ(store.head_position(), 2);
}

TEST(StoreMetrics, GroupCommitsAddUpToEveryEventAppended) {
  TempDir dir;
  auto metrics = std::make_shared<MetricsRegistry>();
  SqliteStoreOptions options = fast();
  options.metrics = metrics;
  SqliteEventStore store(dir / "m.db", options);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 50; ++i) {
        store.append("s-" + std::to_string(t), ExpectedVersion::any(), {event(), event()});
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(value(*metrics, "annals_store_appends_total"), 200u);
  const auto commits = metrics->histogram("annals_store_commit_events", "",
                                          {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096})
                           .snapshot();
  EXPECT_EQ(commits.sum, 400.0);
  EXPECT_LE(commits.count, 200u);
}

}  // namespace
}  // namespace annals
