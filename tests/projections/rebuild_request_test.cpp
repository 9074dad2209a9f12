// Rebuild requests (annals/projections/rebuild_request.hpp): recorded in the
// read model by a process without the projection's code, honoured by the
// ProjectionRunner that runs it.

#include "annals/projections/rebuild_request.hpp"

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include "annals/core/error.hpp"
#include "annals/projections/projection_runner.hpp"
#include "projection_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

// The ledger holds exactly one row per event up to `checkpoint`, nothing else.
void expect_exact(const SqliteReadModel& model, std::int64_t checkpoint) {
  EXPECT_EQ(model.query_int("SELECT count(*) FROM ledger_rows"), checkpoint);
  EXPECT_EQ(model.query_int("SELECT coalesce(max(position), 0) FROM ledger_rows"), checkpoint);
  EXPECT_EQ(model.query_int("SELECT coalesce(sum(n), 0) FROM ledger_totals"), checkpoint);
}

// A row no event produced: only reset() removes it, so its absence after a
// replay proves that a rebuild (not a plain catch-up) ran.
void plant_stray_row(SqliteReadModel& model) {
  model.write([](SqlTransaction& tx) {
    tx.exec("INSERT INTO ledger_rows (position, stream_id, type) VALUES (999999, 'x', 'stray')");
  });
}

TEST(RebuildRequest, CatchUpHonoursAPendingRequestWithResetAndReplay) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 300, 50);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunner runner(store, model, ledger_projection());
  ASSERT_EQ(runner.catch_up(), 300);
  plant_stray_row(model);

  SqliteReadModel other(dir / "views.db");  // as another process would
  request_rebuild(other, "ledger");
  EXPECT_TRUE(rebuild_requested(model, "ledger"));

  EXPECT_EQ(runner.catch_up(), 300);
  EXPECT_FALSE(rebuild_requested(model, "ledger"));
  expect_exact(model, 300);
}

TEST(RebuildRequest, ALiveRunnerHonoursARequestAtItsNextPollWithoutNewEvents) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 200, 50);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunnerOptions options;
  options.poll_interval = 20ms;
  ProjectionRunner runner(store, model, ledger_projection(), options);
  runner.start();
  ASSERT_TRUE(runner.wait_for(200, 10s));
  ASSERT_TRUE(eventually([&] { return runner.status().state == ProjectionState::live; }));
  plant_stray_row(model);

  SqliteReadModel other(dir / "views.db");
  request_rebuild(other, "ledger");
  ASSERT_TRUE(eventually([&] { return !rebuild_requested(other, "ledger"); }));
  ASSERT_TRUE(runner.wait_for(200, 10s));
  ASSERT_TRUE(eventually([&] { return runner.status().state == ProjectionState::live; }));
  EXPECT_TRUE(runner.running());
  expect_exact(model, 200);
  // And it keeps following afterwards.
  const auto r = store.append("after-1", ExpectedVersion::any(), events(3));
  ASSERT_TRUE(runner.wait_for(r.last_position, 10s));
  expect_exact(model, 203);
}

TEST(RebuildRequest, StartHonoursARequestMadeWhileTheRunnerWasStopped) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 100, 25);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunner runner(store, model, ledger_projection());
  ASSERT_EQ(runner.catch_up(), 100);
  plant_stray_row(model);
  request_rebuild(model, "ledger");
  runner.start();
  ASSERT_TRUE(eventually([&] { return !rebuild_requested(model, "ledger"); }));
  ASSERT_TRUE(runner.wait_for(100, 10s));
  runner.stop();
  expect_exact(model, 100);
}

// What `annals projections` shows after a one-shot catch_up() (or a rebuild
// by request through it): the runner is not running, so the stored state
// must not say live.
TEST(RebuildRequest, CatchUpLeavesTheStoredStateStopped) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 40, 20);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunner runner(store, model, ledger_projection());
  ASSERT_EQ(runner.catch_up(), 40);
  EXPECT_EQ(model.checkpoint_record("ledger")->state, ProjectionState::stopped);
  request_rebuild(model, "ledger");
  ASSERT_EQ(runner.catch_up(), 40);
  EXPECT_EQ(model.checkpoint_record("ledger")->state, ProjectionState::stopped);
}

TEST(RebuildRequest, AnUnknownProjectionIsRefusedNamingIt) {
  TempDir dir;
  SqliteReadModel model(dir / "views.db");
  try {
    request_rebuild(model, "nope");
    ADD_FAILURE() << "requested a rebuild of an unknown projection";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(rebuild_requested(model, "nope"));
}

TEST(RebuildRequest, ARunnerWithoutResetLeavesTheRequestPending) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 50, 25);
  SqliteReadModel model(dir / "views.db");
  Projection p = ledger_projection();
  p.reset = nullptr;
  ProjectionRunner runner(store, model, p);
  ASSERT_EQ(runner.catch_up(), 50);
  request_rebuild(model, "ledger");
  EXPECT_EQ(runner.catch_up(), 50);
  EXPECT_TRUE(rebuild_requested(model, "ledger"));
  expect_exact(model, 50);
}

TEST(RebuildRequest, InProcessRebuildClearsAPendingRequest) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 50, 25);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunner runner(store, model, ledger_projection());
  ASSERT_EQ(runner.catch_up(), 50);
  request_rebuild(model, "ledger");
  runner.rebuild();
  EXPECT_FALSE(rebuild_requested(model, "ledger"));
  expect_exact(model, 50);
}

TEST(RebuildRequest, AReadModelMadeBeforeRequestsExistedGetsTheColumnAndKeepsItsRows) {
  TempDir dir;
  {
    SQLite::Database raw((dir / "views.db").string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec(
        "CREATE TABLE projection_checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL, "
        "state TEXT NOT NULL, error TEXT, error_position INTEGER, attempts INTEGER, "
        "updated_at INTEGER NOT NULL)");
    raw.exec("INSERT INTO projection_checkpoints VALUES ('old', 42, 'stopped', NULL, NULL, NULL, 0)");
  }
  SqliteReadModel model(dir / "views.db");
  EXPECT_EQ(model.checkpoint("old"), 42);
  EXPECT_FALSE(rebuild_requested(model, "old"));
  request_rebuild(model, "old");
  EXPECT_TRUE(rebuild_requested(model, "old"));
  // Opening again does not add the column twice.
  SqliteReadModel again(dir / "views.db");
  EXPECT_TRUE(rebuild_requested(again, "old"));
}

}  // namespace
}  // namespace annals
