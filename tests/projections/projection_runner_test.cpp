// Durable projections: checkpoints, catch-up, live follow (this process and
// other processes), rebuild, status, and several runners of one projection.

#include "annals/projections/projection_runner.hpp"

#include <gtest/gtest.h>

#include <atomic>

#include "annals/core/error.hpp"
#include "projection_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

constexpr const char* kRows = "SELECT position, stream_id, type FROM ledger_rows ORDER BY position";
constexpr const char* kTotals = "SELECT stream_id, n FROM ledger_totals ORDER BY stream_id";

// The read model holds exactly one row per event up to the checkpoint.
void expect_exact(const SqliteReadModel& model, std::int64_t checkpoint) {
  EXPECT_EQ(model.query_int("SELECT count(*) FROM ledger_rows"), checkpoint);
  EXPECT_EQ(model.query_int("SELECT coalesce(max(position), 0) FROM ledger_rows"), checkpoint);
  EXPECT_EQ(model.query_int("SELECT coalesce(sum(n), 0) FROM ledger_totals"), checkpoint);
}

TEST(Checkpoint, CatchUpOf100000EventsThenLiveFollow) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 100'000, 1000);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunnerOptions options;
  options.batch_size = 2000;
  ProjectionRunner runner(store, model, ledger_projection(), options);
  auto before = runner.status();
  EXPECT_EQ(before.state, ProjectionState::stopped);
  EXPECT_EQ(before.checkpoint, 0);
  EXPECT_EQ(before.lag, 100'000);

  const auto started = std::chrono::steady_clock::now();
  runner.start();
  ASSERT_TRUE(runner.wait_for(100'000, 120s));
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(eventually([&] { return runner.status().state == ProjectionState::live; }));
  auto caught_up = runner.status();
  EXPECT_EQ(caught_up.checkpoint, 100'000);
  EXPECT_EQ(caught_up.lag, 0);
  EXPECT_FALSE(caught_up.failure);
  expect_exact(model, 100'000);
  RecordProperty("catch_up_ms",
                 static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));

  // Live: an append in this process wakes the runner at once (the poll interval
  // is 500 ms; this must not wait for it).
  for (int i = 0; i < 20; ++i) {
    const auto r = store.append("live-1", ExpectedVersion::any(), events(5));
    ASSERT_TRUE(runner.wait_for(r.last_position, 5s));
  }
  EXPECT_EQ(runner.status().lag, 0);
  expect_exact(model, 100'100);
  runner.stop();
  EXPECT_EQ(runner.status().state, ProjectionState::stopped);
  EXPECT_EQ(model.checkpoint_record("ledger")->state, ProjectionState::stopped);
}

TEST(Checkpoint, ResumesFromItsCheckpointWithoutApplyingAnythingTwice) {
  TempDir dir;
  InMemoryEventStore store;
  fill(store, 1000, 100);
  SqliteReadModel model(dir / "views.db");
  {
    ProjectionRunnerOptions options;
    options.batch_size = 64;
    ProjectionRunner runner(store, model, ledger_projection(), options);
    EXPECT_EQ(runner.catch_up(), 1000);
  }
  fill(store, 500, 50);
  ProjectionRunner again(store, model, ledger_projection());
  EXPECT_EQ(again.status().checkpoint, 1000);
  EXPECT_EQ(again.status().lag, 500);
  EXPECT_EQ(again.catch_up(), 1500);
  expect_exact(model, 1500);  // a second application would break the primary key or the sums
}

TEST(Checkpoint, SeesEventsASecondProcessAppendsByPolling) {
  TempDir dir;
  { SqliteEventStore create(dir / "store.db"); }
  // Fork before this process opens anything or starts a thread; the child
  // waits for a byte on the pipe, then opens its own store and appends.
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  const pid_t child = spawn_child([&] {
    ::close(go[1]);
    char byte = 0;
    if (::read(go[0], &byte, 1) != 1) return 2;
    SqliteEventStore store(dir / "store.db", fast_store());
    for (int i = 0; i < 10; ++i) store.append("remote-1", ExpectedVersion::any(), events(30));
    return 0;
  });
  ::close(go[0]);

  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 200, 50);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunnerOptions options;
  options.poll_interval = 50ms;
  ProjectionRunner runner(store, model, ledger_projection(), options);
  runner.start();
  ASSERT_TRUE(runner.wait_for(200, 10s));
  ASSERT_EQ(::write(go[1], "x", 1), 1);
  ::close(go[1]);
  ASSERT_EQ(wait_for_exit(child), 0);
  // Nothing in this process committed those events: only polling can see them.
  ASSERT_TRUE(runner.wait_for(500, 10s)) << runner.status().checkpoint;
  expect_exact(model, 500);
  EXPECT_EQ(model.query_int("SELECT n FROM ledger_totals WHERE stream_id = 'remote-1'"), 300);
  EXPECT_TRUE(eventually([&] { return runner.status().state == ProjectionState::live; }));
}

TEST(Checkpoint, FilteredProjectionMovesItsCheckpointPastEventsItDoesNotWant) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 300, 30, 3);
  store.append("account-1", ExpectedVersion::any(), events(4, "bank.Deposited"));
  fill(store, 300, 30, 3);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunnerOptions options;
  options.batch_size = 3;
  ProjectionRunner runner(store, model,
                          ledger_projection("accounts", EventFilter::for_category("account")),
                          options);
  EXPECT_EQ(runner.catch_up(), 604);
  EXPECT_EQ(model.query_int("SELECT count(*) FROM accounts_rows"), 4);
  EXPECT_EQ(runner.status().lag, 0);
  fill(store, 10, 10);  // nothing for it, yet the checkpoint follows the head
  EXPECT_EQ(runner.catch_up(), 614);
}

TEST(Checkpoint, ReadModelMayLiveInTheStoresOwnFile) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 3000, 300);
  SqliteReadModel model(store.path());
  ProjectionRunner runner(store, model, ledger_projection());
  runner.start();
  // Appends keep working while the runner writes to the same file.
  std::thread writer([&] { fill(store, 2000, 20); });
  writer.join();
  ASSERT_TRUE(runner.wait_for(5000, 30s));
  expect_exact(model, 5000);
  EXPECT_TRUE(store.verify().ok);
}

TEST(Checkpoint, WokenThroughADispatcherWhenOneIsGiven) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  Dispatcher dispatcher(std::make_shared<ThreadPoolExecutor>(2));
  auto wiring = dispatcher.connect(store);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunnerOptions options;
  options.dispatcher = &dispatcher;
  options.poll_interval = 60s;  // so only the dispatcher can wake it in time
  ProjectionRunner runner(store, model, ledger_projection(), options);
  runner.start();
  ASSERT_TRUE(eventually([&] { return runner.status().state == ProjectionState::live; }));
  const auto r = store.append("a-1", ExpectedVersion::any(), events(3));
  EXPECT_TRUE(runner.wait_for(r.last_position, 10s));
  runner.stop();
}

TEST(Checkpoint, StopReturnsAfterTheCurrentBatchAndTheDestructorStopsCleanly) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 2000, 500);
  SqliteReadModel model(dir / "views.db");
  std::atomic<int> applied{0};
  Projection slow = ledger_projection();
  auto apply = slow.apply;
  slow.apply = [&, apply](SqlTransaction& tx, const RecordedEvent& e) {
    apply(tx, e);
    ++applied;
    std::this_thread::sleep_for(200us);
  };
  ProjectionRunnerOptions options;
  options.batch_size = 50;
  {
    ProjectionRunner runner(store, model, slow, options);
    runner.start();
    ASSERT_TRUE(eventually([&] { return applied.load() >= 120; }));
    runner.stop();
    EXPECT_FALSE(runner.running());
    const auto checkpoint = model.checkpoint("ledger");
    EXPECT_EQ(checkpoint % 50, 0) << "stopped inside a batch";
    EXPECT_LT(checkpoint, 2000);
    EXPECT_EQ(applied.load(), checkpoint);  // nothing applied past the committed batch
    expect_exact(model, checkpoint);
    runner.start();  // and it starts again where it stopped
    ASSERT_TRUE(eventually([&] { return applied.load() >= checkpoint + 100; }));
  }  // destroyed while running
  const auto checkpoint = model.checkpoint("ledger");
  EXPECT_EQ(applied.load(), checkpoint);
  expect_exact(model, checkpoint);
}

TEST(Checkpoint, TwoRunnersOfOneProjectionNeverApplyAnEventTwice) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 5000, 250);
  SqliteReadModel model_a(dir / "views.db");
  SqliteReadModel model_b(dir / "views.db");  // another connection, as another process has
  ProjectionRunnerOptions options;
  options.batch_size = 37;
  ProjectionRunner a(store, model_a, ledger_projection(), options);
  ProjectionRunner b(store, model_b, ledger_projection(), options);
  a.start();
  b.start();
  std::thread writer([&] { fill(store, 1000, 10); });
  writer.join();
  ASSERT_TRUE(a.wait_for(6000, 60s));
  ASSERT_TRUE(b.wait_for(6000, 60s));
  expect_exact(model_a, 6000);
}

TEST(Rebuild, GivesTheSameReadModelAsLiveProcessing) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel model(dir / "views.db");
  ProjectionRunnerOptions options;
  options.batch_size = 100;
  ProjectionRunner runner(store, model, ledger_projection(), options);
  runner.start();
  // Live processing: many small appends from several threads while it follows.
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        store.append("w" + std::to_string(t) + "-" + std::to_string(i % 7), ExpectedVersion::any(),
                     events(1 + i % 3));
      }
    });
  }
  for (auto& w : writers) w.join();
  const auto head = store.head_position();
  ASSERT_TRUE(runner.wait_for(head, 30s));
  const auto live_rows = dump(model, kRows);
  const auto live_totals = dump(model, kTotals);
  ASSERT_EQ(live_rows.size(), static_cast<std::size_t>(head));

  model.write([](SqlTransaction& tx) { tx.exec("UPDATE ledger_totals SET n = 0"); });  // damage
  runner.rebuild();
  EXPECT_TRUE(runner.running());  // it was running: it goes on following
  EXPECT_EQ(runner.status().checkpoint, head);
  EXPECT_EQ(dump(model, kRows), live_rows);
  EXPECT_EQ(dump(model, kTotals), live_totals);

  // And after the rebuild it keeps following.
  const auto r = store.append("w0-0", ExpectedVersion::any(), events(2));
  EXPECT_TRUE(runner.wait_for(r.last_position, 10s));
  expect_exact(model, r.last_position);
}

TEST(Rebuild, NeedsAResetFunction) {
  TempDir dir;
  InMemoryEventStore store;
  SqliteReadModel model(dir / "views.db");
  Projection p = ledger_projection();
  p.reset = nullptr;
  ProjectionRunner runner(store, model, p);
  EXPECT_THROW(runner.rebuild(), InvalidArgument);
  Projection nameless = ledger_projection("");
  EXPECT_THROW(ProjectionRunner(store, model, nameless), InvalidArgument);
}

}  // namespace
}  // namespace annals
