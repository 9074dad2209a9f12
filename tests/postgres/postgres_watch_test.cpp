// Live following on PostgreSQL: appends NOTIFY at their commit, watchers
// LISTEN and wake at once (other objects, threads, processes), polling is the
// fallback when notifications are off, a dropped LISTEN connection is
// reconnected, and a ProjectionRunner on the store is woken through
// EventStore::watch_commits().
//
// No test measures time: the waits are far longer than any poll would take
// to notice nothing, so only a pushed wake-up lets them return true (a
// polling watcher's wait() returns false at its timeout).

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "annals/core/error.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "postgres/postgres_server.hpp"
#include "process_helpers.hpp"
#include "store/store_fixtures.hpp"

namespace annals {
namespace {

[[maybe_unused]] ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new testing::PostgresEnvironment);

using namespace std::chrono_literals;

// Far longer than a test takes: a wait of this length returns true only when
// a commit (or a reconnection) wakes it.
constexpr auto kLongPoll = 4min;

EventData event() {
  EventData e;
  e.type = "test.Happened";
  return e;
}

PostgresStoreOptions in_schema(const std::string& schema, bool notify = true) {
  PostgresStoreOptions options;
  options.schema = schema;
  options.notify = notify;
  return options;
}

// One SQL statement on a connection of its own (for pg_terminate_backend).
std::string query_one(const std::string& sql) {
  PGconn* c = PQconnectdb(testing::postgres_url().c_str());
  std::string value;
  PGresult* r = PQexec(c, sql.c_str());
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) value = PQgetvalue(r, 0, 0);
  PQclear(r);
  PQfinish(c);
  return value;
}

TEST(PostgresWatch, ACommitThroughAnotherStoreObjectInAnotherThreadWakesAWaitingWatcher) {
  const auto schema = testing::fresh_schema();
  PostgresEventStore store(testing::postgres_url(), in_schema(schema));
  const auto watcher = store.watch_commits();
  ASSERT_NE(watcher, nullptr);
  EXPECT_TRUE(watcher->pushes());
  std::thread writer([&] {
    PostgresEventStore other(testing::postgres_url(), in_schema(schema));
    std::this_thread::sleep_for(50ms);  // most likely after the wait began; either way works
    other.append("s-1", ExpectedVersion::any(), {event()});
  });
  EXPECT_TRUE(watcher->wait(kLongPoll));
  writer.join();
  EXPECT_EQ(store.head_position(), 1);
}

TEST(PostgresWatch, ACommitOfAnotherProcessWakesIt) {
  const auto schema = testing::fresh_schema();
  PostgresEventStore store(testing::postgres_url(), in_schema(schema));
  const auto watcher = store.watch_commits();
  const pid_t child = testing::spawn_child([&] {
    PostgresEventStore other(testing::postgres_url(), in_schema(schema));
    other.append("s-1", ExpectedVersion::any(), {event(), event()});
    return 0;
  });
  EXPECT_TRUE(watcher->wait(kLongPoll));
  EXPECT_EQ(testing::wait_for_exit(child), 0);
  EXPECT_EQ(store.head_position(), 2);
}

TEST(PostgresWatch, ACommitBeforeTheWaitIsNotLost) {
  const auto schema = testing::fresh_schema();
  PostgresEventStore store(testing::postgres_url(), in_schema(schema));
  const auto watcher = store.watch_commits();
  PostgresEventStore other(testing::postgres_url(), in_schema(schema));
  other.append("s-1", ExpectedVersion::any(), {event()});  // after watching, before waiting
  EXPECT_TRUE(watcher->wait(kLongPoll));
}

TEST(PostgresWatch, ARolledBackAppendSendsNothing) {
  const auto schema = testing::fresh_schema();
  PostgresEventStore store(testing::postgres_url(), in_schema(schema));
  store.append("s-1", ExpectedVersion::any(), {event()});
  const auto watcher = store.watch_commits();
  EXPECT_THROW(store.append("s-1", ExpectedVersion::no_stream(), {event()}), WrongExpectedVersion);
  EXPECT_FALSE(watcher->wait(300ms));
  store.append("s-1", ExpectedVersion::exactly(1), {event()});
  EXPECT_TRUE(watcher->wait(kLongPoll));
}

TEST(PostgresWatch, StoresInOtherSchemasDoNotWakeIt) {
  PostgresEventStore store(testing::postgres_url(), in_schema(testing::fresh_schema()));
  PostgresEventStore elsewhere(testing::postgres_url(), in_schema(testing::fresh_schema()));
  const auto watcher = store.watch_commits();
  elsewhere.append("s-1", ExpectedVersion::any(), {event()});
  EXPECT_FALSE(watcher->wait(300ms));
}

TEST(PostgresWatch, WithNotifyOffAppendsSendNoNotifyAndItsWatchersPoll) {
  const auto schema = testing::fresh_schema();
  PostgresEventStore quiet(testing::postgres_url(), in_schema(schema, false));
  PostgresEventStore listening(testing::postgres_url(), in_schema(schema));
  const auto pushing = listening.watch_commits();
  const auto polling = quiet.watch_commits();
  ASSERT_TRUE(pushing->pushes());
  EXPECT_FALSE(polling->pushes());
  quiet.append("s-1", ExpectedVersion::any(), {event()});
  EXPECT_FALSE(pushing->wait(300ms));  // no NOTIFY was sent
  // The polling watcher sleeps for its timeout; the follower then reads the head.
  EXPECT_FALSE(polling->wait(20ms));
  EXPECT_EQ(quiet.head_position(), 1);
}

TEST(PostgresWatch, PushOffGivesAPollingWatcherThatInterruptCutsShort) {
  PostgresEventStore store(testing::postgres_url(), in_schema(testing::fresh_schema()));
  const auto watcher = store.watch_commits({.push = false});
  EXPECT_FALSE(watcher->pushes());
  store.append("s-1", ExpectedVersion::any(), {event()});
  EXPECT_FALSE(watcher->wait(20ms));
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    watcher->interrupt();
  });
  EXPECT_FALSE(watcher->wait(kLongPoll));  // returns at the interrupt, not after minutes
  stopper.join();
}

TEST(PostgresWatch, InterruptCutsAPushingWaitShort) {
  PostgresEventStore store(testing::postgres_url(), in_schema(testing::fresh_schema()));
  const auto watcher = store.watch_commits();
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    watcher->interrupt();
  });
  EXPECT_FALSE(watcher->wait(kLongPoll));
  stopper.join();
}

TEST(PostgresWatch, AWatcherWhoseConnectionIsDroppedReconnectsAndIsWokenAgain) {
  const auto schema = testing::fresh_schema();
  PostgresEventStore store(testing::postgres_url(), in_schema(schema));
  const auto watcher = store.watch_commits();
  const std::string terminated = query_one(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
      "'annals-listen' AND query = 'LISTEN \"annals." + schema + "\"'");
  ASSERT_EQ(terminated, "t");
  // The wait notices the end of the connection, reconnects and says "look":
  // what was committed meanwhile would have been missed.
  EXPECT_TRUE(watcher->wait(kLongPoll));
  EXPECT_TRUE(watcher->pushes());
  // LISTEN is in place again: a commit wakes the next wait.
  PostgresEventStore other(testing::postgres_url(), in_schema(schema));
  other.append("s-1", ExpectedVersion::any(), {event()});
  EXPECT_TRUE(watcher->wait(kLongPoll));
}

Projection counting() {
  return Projection{
      .name = "count",
      .filter = {},
      .setup = [](SqlTransaction& tx) {
        tx.exec_script("CREATE TABLE IF NOT EXISTS seen (n INTEGER)");
      },
      .apply = [](SqlTransaction& tx, const RecordedEvent& e) {
        tx.exec("INSERT INTO seen VALUES ($1)", {e.position});
      },
      .reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM seen"); },
  };
}

TEST(PostgresWatch, ARunnerOnPostgresIsWokenByAnotherObjectsCommitBeforeItsPollInterval) {
  const auto schema = testing::fresh_schema();
  PostgresEventStore store(testing::postgres_url(), in_schema(schema));
  testing::TempDir dir;
  SqliteReadModel views(dir / "views.db");
  ProjectionRunnerOptions options;
  options.poll_interval = 10min;  // only a pushed wake-up can pass the waits below
  ProjectionRunner runner(store, views, counting(), options);
  runner.start();
  PostgresEventStore other(testing::postgres_url(), in_schema(schema));
  other.append("s-1", ExpectedVersion::any(), {event(), event()});
  EXPECT_TRUE(runner.wait_for(2, 120s));
  other.append("s-1", ExpectedVersion::any(), {event()});
  EXPECT_TRUE(runner.wait_for(3, 120s));
  runner.stop();
  EXPECT_EQ(views.query_int("SELECT count(*) FROM seen"), 3);
}

TEST(PostgresWatch, ARunnerOnAStoreWithNotifyOffCatchesUpByPolling) {
  const auto schema = testing::fresh_schema();
  PostgresEventStore store(testing::postgres_url(), in_schema(schema, false));
  testing::TempDir dir;
  SqliteReadModel views(dir / "views.db");
  ProjectionRunnerOptions options;
  options.poll_interval = 20ms;
  ProjectionRunner runner(store, views, counting(), options);
  runner.start();
  PostgresEventStore other(testing::postgres_url(), in_schema(schema, false));
  other.append("s-1", ExpectedVersion::any(), {event(), event()});
  EXPECT_TRUE(runner.wait_for(2, 120s));
  runner.stop();
}

}  // namespace
}  // namespace annals
