// Poison events: retried a bounded number of times with backoff, then the
// policy: stop (status says where and why) or park (listed, skipped, and
// retried later once the cause is fixed).

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "annals/core/error.hpp"
#include "annals/projections/projection_runner.hpp"
#include "projection_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

// A ledger projection that fails on events of type "test.Poison" while
// `broken` is set, counting its attempts.
struct Fragile {
  std::atomic<bool> broken{true};
  std::atomic<int> failures{0};

  Projection projection(std::string name = "ledger") {
    Projection p = ledger_projection(std::move(name));
    auto apply = p.apply;
    p.apply = [this, apply](SqlTransaction& tx, const RecordedEvent& e) {
      apply(tx, e);  // written first: a failure must roll this back too
      if (e.type == "test.Poison" && broken.load()) {
        ++failures;
        throw std::runtime_error("cannot digest event " + std::to_string(e.position));
      }
    };
    return p;
  }
};

ProjectionRunnerOptions quick_retries(PoisonPolicy policy) {
  ProjectionRunnerOptions options;
  options.on_poison = policy;
  options.max_attempts = 3;
  options.retry_backoff = 5ms;
  options.batch_size = 16;
  return options;
}

void append_with_poison_at_50(EventStore& store) {
  fill(store, 49, 7);
  store.append("p-1", ExpectedVersion::any(), {event("test.Poison")});  // position 50
  fill(store, 50, 10);                                                  // 51..100
}

TEST(Poison, UnderTheStopPolicyTheRunnerStopsAndSaysWhereAndWhy) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  append_with_poison_at_50(store);
  SqliteReadModel model(dir / "views.db");
  Fragile fragile;
  std::vector<ProjectionAttemptError> attempts;
  std::mutex attempts_mu;
  auto options = quick_retries(PoisonPolicy::stop);
  options.on_error = [&](const ProjectionAttemptError& e) {
    std::lock_guard lock(attempts_mu);
    attempts.push_back(e);
  };
  ProjectionRunner runner(store, model, fragile.projection(), options);
  runner.start();
  ASSERT_TRUE(eventually([&] { return !runner.running(); }));

  const auto status = runner.status();
  EXPECT_EQ(status.state, ProjectionState::stopped);
  EXPECT_EQ(status.checkpoint, 49);
  EXPECT_EQ(status.lag, 51);
  ASSERT_TRUE(status.failure);
  EXPECT_EQ(status.failure->position, 50);
  EXPECT_EQ(status.failure->message, "cannot digest event 50");
  EXPECT_EQ(status.failure->attempts, 3);
  EXPECT_EQ(fragile.failures.load(), 3);
  {
    std::lock_guard lock(attempts_mu);
    ASSERT_EQ(attempts.size(), 3u);
    EXPECT_EQ(attempts[2].attempt, 3);
    EXPECT_EQ(attempts[2].position, 50);
  }
  // Rows match the checkpoint: the failing event's own writes were rolled back.
  EXPECT_EQ(model.query_int("SELECT count(*) FROM ledger_rows"), 49);
  // The failure is stored, so a tool (or another process) can see why.
  const auto record = SqliteReadModel(dir / "views.db").checkpoint_record("ledger");
  ASSERT_TRUE(record && record->failure);
  EXPECT_EQ(record->failure->position, 50);
  EXPECT_EQ(record->state, ProjectionState::stopped);
  // A new runner object over the same read model reports it too.
  {
    ProjectionRunner observer(store, model, fragile.projection(), options);
    ASSERT_TRUE(observer.status().failure);
    EXPECT_EQ(observer.status().failure->message, "cannot digest event 50");
  }

  // Fixed and started again, it goes on from the poison event.
  fragile.broken = false;
  runner.start();
  ASSERT_TRUE(runner.wait_for(100, 10s));
  EXPECT_FALSE(runner.status().failure);
  EXPECT_EQ(model.query_int("SELECT count(*) FROM ledger_rows"), 100);
  EXPECT_FALSE(model.checkpoint_record("ledger")->failure);
}

TEST(Poison, UnderTheParkPolicyTheEventIsParkedLaterOnesApplyAndRetryWorksOnceFixed) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  append_with_poison_at_50(store);
  SqliteReadModel model(dir / "views.db");
  Fragile fragile;
  ProjectionRunner runner(store, model, fragile.projection(), quick_retries(PoisonPolicy::park));
  runner.start();
  ASSERT_TRUE(runner.wait_for(100, 10s));
  EXPECT_TRUE(runner.running());
  EXPECT_EQ(fragile.failures.load(), 3);

  auto parked = runner.parked();
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].projection, "ledger");
  EXPECT_EQ(parked[0].position, 50);
  EXPECT_EQ(parked[0].stream_id, "p-1");
  EXPECT_EQ(parked[0].type, "test.Poison");
  EXPECT_EQ(parked[0].error, "cannot digest event 50");
  EXPECT_EQ(parked[0].attempts, 3);
  const auto status = runner.status();
  EXPECT_EQ(status.parked_events, 1u);
  EXPECT_FALSE(status.failure);
  EXPECT_EQ(status.lag, 0);
  // Every event but the parked one is applied, later ones included.
  EXPECT_EQ(model.query_int("SELECT count(*) FROM ledger_rows"), 99);
  EXPECT_EQ(model.query_int("SELECT count(*) FROM ledger_rows WHERE position = 50"), 0);

  // Still broken: the retry fails, the event stays parked with one more attempt.
  EXPECT_FALSE(runner.retry_parked(50));
  parked = runner.parked();
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].attempts, 4);
  EXPECT_EQ(model.query_int("SELECT count(*) FROM ledger_rows"), 99);

  fragile.broken = false;
  EXPECT_TRUE(runner.retry_parked(50));
  EXPECT_TRUE(runner.parked().empty());
  EXPECT_EQ(model.query_int("SELECT count(*) FROM ledger_rows"), 100);
  EXPECT_EQ(model.query_int("SELECT count(*) FROM ledger_rows WHERE position = 50"), 1);
  EXPECT_THROW(runner.retry_parked(50), InvalidArgument);  // not parked any more

  // And it kept following all along.
  const auto r = store.append("p-2", ExpectedVersion::any(), events(2));
  EXPECT_TRUE(runner.wait_for(r.last_position, 10s));
}

TEST(Poison, RetryAllParkedAppliesThoseThatNowSucceed) {
  TempDir dir;
  InMemoryEventStore store;
  fill(store, 5, 5);
  store.append("p-1", ExpectedVersion::any(), {event("test.Poison"), event("test.Poison")});
  fill(store, 5, 5);
  SqliteReadModel model(dir / "views.db");
  Fragile fragile;
  auto options = quick_retries(PoisonPolicy::park);
  options.max_attempts = 1;
  ProjectionRunner runner(store, model, fragile.projection(), options);
  EXPECT_EQ(runner.catch_up(), 12);
  EXPECT_EQ(runner.parked().size(), 2u);
  EXPECT_EQ(runner.retry_parked(), 0u);
  fragile.broken = false;
  EXPECT_EQ(runner.retry_parked(), 2u);
  EXPECT_TRUE(runner.parked().empty());
  EXPECT_EQ(model.query_int("SELECT count(*) FROM ledger_rows"), 12);
}

TEST(Poison, AFailureThatClearsWithinTheRetriesIsNeitherParkedNorFatal) {
  TempDir dir;
  InMemoryEventStore store;
  append_with_poison_at_50(store);
  SqliteReadModel model(dir / "views.db");
  std::atomic<int> calls{0};
  Projection p = ledger_projection();
  auto apply = p.apply;
  p.apply = [&, apply](SqlTransaction& tx, const RecordedEvent& e) {
    if (e.type == "test.Poison" && ++calls < 3) throw std::runtime_error("transient");
    apply(tx, e);
  };
  auto options = quick_retries(PoisonPolicy::stop);
  options.retry_backoff = 20ms;
  ProjectionRunner runner(store, model, p, options);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(runner.catch_up(), 100);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 60ms);  // backoff: 20 ms, then 40 ms
  EXPECT_EQ(calls.load(), 3);
  EXPECT_FALSE(runner.status().failure);
  EXPECT_TRUE(runner.parked().empty());
  EXPECT_EQ(model.query_int("SELECT count(*) FROM ledger_rows"), 100);
}

TEST(Poison, StopDuringABackoffReturnsPromptly) {
  TempDir dir;
  InMemoryEventStore store;
  append_with_poison_at_50(store);
  SqliteReadModel model(dir / "views.db");
  Fragile fragile;
  auto options = quick_retries(PoisonPolicy::stop);
  options.max_attempts = 100;
  options.retry_backoff = 10s;
  options.max_retry_backoff = 10s;
  ProjectionRunner runner(store, model, fragile.projection(), options);
  runner.start();
  ASSERT_TRUE(eventually([&] { return fragile.failures.load() >= 1; }));
  const auto started = std::chrono::steady_clock::now();
  runner.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_EQ(runner.status().checkpoint, 49);
}

TEST(Poison, ARunnerWithMetricsCountsHandledEventsFailedAttemptsAndParkedOnes) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  append_with_poison_at_50(store);
  SqliteReadModel model(dir / "views.db");
  Fragile fragile;
  auto options = quick_retries(PoisonPolicy::park);
  options.metrics = std::make_shared<MetricsRegistry>();
  ProjectionRunner runner(store, model, fragile.projection(), options);
  runner.start();
  ASSERT_TRUE(runner.wait_for(100, 10s));
  runner.stop();
  const MetricLabels ledger{{"projection", "ledger"}};
  auto& m = *options.metrics;
  EXPECT_EQ(m.counter("annals_projection_events_handled_total", "", ledger).value(), 100u);
  EXPECT_EQ(m.counter("annals_projection_attempt_failures_total", "", ledger).value(), 3u);
  EXPECT_EQ(m.counter("annals_projection_parked_total", "", ledger).value(), 1u);
  EXPECT_EQ(m.gauge("annals_projection_checkpoint_position", "", ledger).value(), 100.0);
  EXPECT_NE(m.prometheus_text().find("annals_projection_parked_total{projection=\"ledger\"} 1\n"),
            std::string::npos);
}

}  // namespace
}  // namespace annals
