// ProjectionRunnerOptions::watch_commits: a runner on an SQLite store is woken
// by commits it cannot hear through its own store object (another object,
// another process) without waiting for its poll interval.

#include <gtest/gtest.h>

#include "annals/projections/projection_runner.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "store/store_fixtures.hpp"

namespace annals {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

Projection counting() {
  return Projection{
      .name = "count",
      .filter = {},
      .setup = [](SqlTransaction& tx) { tx.exec_script("CREATE TABLE IF NOT EXISTS seen (n INTEGER)"); },
      .apply = [](SqlTransaction& tx, const RecordedEvent& e) {
        tx.exec("INSERT INTO seen VALUES ($1)", {e.position});
      },
      .reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM seen"); },
  };
}

EventData event() {
  EventData e;
  e.type = "test.Happened";
  return e;
}

TEST(RunnerWatch, ACommitThroughAnotherStoreObjectWakesTheRunnerBeforeItsPollInterval) {
  TempDir dir;
  SqliteEventStore store(dir / "s.db", testing::fast());
  SqliteReadModel views(dir / "views.db");
  ProjectionRunnerOptions options;
  options.poll_interval = 10min;  // only a pushed wake-up can pass within the wait below
  ProjectionRunner runner(store, views, counting(), options);
  runner.start();
  // Another object on the same file: its commits reach the runner neither
  // through the runner's commit listener nor, for ten minutes, by polling.
  SqliteEventStore other(dir / "s.db", testing::fast());
  other.append("s-1", ExpectedVersion::any(), {event(), event()});
  EXPECT_TRUE(runner.wait_for(2, 120s));
  other.append("s-1", ExpectedVersion::any(), {event()});
  EXPECT_TRUE(runner.wait_for(3, 120s));
  runner.stop();
  EXPECT_EQ(views.query_int("SELECT count(*) FROM seen"), 3);
}

TEST(RunnerWatch, StopAndRestartLeaveNoWatcherBehindAndWatchAgain) {
  TempDir dir;
  SqliteEventStore store(dir / "s.db", testing::fast());
  SqliteReadModel views(dir / "views.db");
  ProjectionRunnerOptions options;
  options.poll_interval = 10min;
  ProjectionRunner runner(store, views, counting(), options);
  SqliteEventStore other(dir / "s.db", testing::fast());
  for (int round = 1; round <= 3; ++round) {
    runner.start();
    other.append("s-1", ExpectedVersion::any(), {event()});
    EXPECT_TRUE(runner.wait_for(round, 120s)) << "round " << round;
    runner.stop();
  }
}

}  // namespace
}  // namespace annals
