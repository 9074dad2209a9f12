// Crash safety of durable projections: a child process runs a projection over
// a store and is killed with SIGKILL at random moments; after every kill the
// read model, read from a fresh connection, must hold exactly the effects of
// the events up to its checkpoint: each event's row once, and per-stream
// counts equal to the store's. Every tenth child rebuilds instead, so kills
// also land inside a rebuild. At the end, once the runner has caught up, the
// read model equals, row for row, one built from scratch by a runner that
// never crashed.
//
// ANNALS_CRASH_KILLS sets the number of kills (default 100);
// ANNALS_CRASH_SEED fixes the random moments.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>

#include "annals/projections/projection_runner.hpp"
#include "projection_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

// Checks the invariants from fresh connections; returns the checkpoint.
std::int64_t check_exactly_once(const std::filesystem::path& store_path,
                                const std::filesystem::path& views_path, int kill) {
  if (!std::filesystem::exists(views_path)) return 0;  // killed before the read model existed
  // Read-write only so that SQLite may recover the WAL the child left; nothing is written.
  SQLite::Database views(views_path.string(), SQLite::OPEN_READWRITE);
  SQLite::Database events(store_path.string(), SQLite::OPEN_READWRITE);
  if (!views.tableExists("projection_checkpoints")) return 0;
  const std::int64_t checkpoint =
      views.execAndGet("SELECT coalesce((SELECT position FROM projection_checkpoints "
                       "WHERE name = 'ledger'), 0)")
          .getInt64();
  const bool has_rows = views.tableExists("ledger_rows");
  if (!has_rows) {  // killed before setup committed
    EXPECT_EQ(checkpoint, 0) << "kill " << kill;
    return checkpoint;
  }
  EXPECT_EQ(views.execAndGet("SELECT count(*) FROM ledger_rows").getInt64(), checkpoint)
      << "kill " << kill;
  EXPECT_EQ(views.execAndGet("SELECT coalesce(max(position), 0) FROM ledger_rows").getInt64(),
            checkpoint)
      << "kill " << kill;
  // Per-stream counts, applied with UPDATE n = n + 1, equal the store's exactly.
  std::map<std::string, std::int64_t> expected, actual;
  SQLite::Statement in_store(events,
                             "SELECT stream_id, count(*) FROM events WHERE position <= ?1 "
                             "GROUP BY stream_id");
  in_store.bind(1, checkpoint);
  while (in_store.executeStep()) expected[in_store.getColumn(0).getString()] = in_store.getColumn(1).getInt64();
  SQLite::Statement in_view(views, "SELECT stream_id, n FROM ledger_totals WHERE n > 0");
  while (in_view.executeStep()) actual[in_view.getColumn(0).getString()] = in_view.getColumn(1).getInt64();
  EXPECT_EQ(actual, expected) << "kill " << kill;
  // Rows carry the right streams, too.
  SQLite::Statement rows(views, "SELECT position, stream_id FROM ledger_rows ORDER BY position");
  SQLite::Statement stored(events,
                           "SELECT position, stream_id FROM events WHERE position <= ?1 "
                           "ORDER BY position");
  stored.bind(1, checkpoint);
  while (rows.executeStep()) {
    EXPECT_TRUE(stored.executeStep()) << "kill " << kill;
    EXPECT_EQ(rows.getColumn(0).getInt64(), stored.getColumn(0).getInt64()) << "kill " << kill;
    EXPECT_EQ(rows.getColumn(1).getString(), stored.getColumn(1).getString()) << "kill " << kill;
  }
  return checkpoint;
}

TEST(ProjectionCrash, CheckpointSurvivesSigkillAtRandomMomentsAndEndsEqualToARebuild) {
  const int kills = env_int("ANNALS_CRASH_KILLS", 100);
  const auto seed = static_cast<unsigned>(env_int("ANNALS_CRASH_SEED", static_cast<int>(std::random_device{}())));
  RecordProperty("seed", static_cast<int>(seed));
  std::mt19937 rng(seed);
  TempDir dir;
  const auto store_path = dir / "store.db";
  const auto views_path = dir / "views.db";
  {
    SqliteEventStore store(store_path, fast_store());
    fill(store, 5000, 250, 13);
  }
  std::int64_t last_checkpoint = 0;
  int moved = 0;
  // The random delay before a kill adapts to the machine: a round whose kill
  // came before any work widens it, a round that moved the checkpoint narrows
  // it again, so kills keep landing mid-work on a slow (sanitized, loaded) build.
  unsigned max_delay_us = 40'000;
  for (int kill = 0; kill < kills; ++kill) {
    {  // Give the child new work each round; nothing stays open across fork().
      SqliteEventStore store(store_path, fast_store());
      fill(store, 1000, 1 + static_cast<int>(rng() % 300), 13);
    }
    const bool rebuild = kill % 10 == 9;
    const std::size_t batch = 1 + rng() % 200;
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = spawn_child([&] {
      ::close(ready[0]);
      SqliteEventStore store(store_path, fast_store());
      SqliteReadModel views(views_path);
      ProjectionRunnerOptions options;
      options.batch_size = batch;
      ProjectionRunner runner(store, views, ledger_projection(), options);
      if (::write(ready[1], "r", 1) != 1) return 3;  // about to work
      if (rebuild) {
        runner.rebuild();
      } else {
        runner.start();
      }
      for (;;) ::pause();  // until the parent kills us
      return 0;
    });
    ASSERT_GT(child, 0);
    ::close(ready[1]);
    // Most kills land a random moment after the child is ready to work (so
    // slow builds still kill it mid-work); one in four at a random moment from
    // its start, which can be during opening and setup.
    if (kill % 4 != 0) {
      pollfd p{ready[0], POLLIN, 0};
      ::poll(&p, 1, 10'000);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % max_delay_us));
    ::kill(child, SIGKILL);
    ::close(ready[0]);
    EXPECT_EQ(wait_for_exit(child), 100 + SIGKILL);
    const auto checkpoint = check_exactly_once(store_path, views_path, kill);
    if (checkpoint != last_checkpoint) {
      ++moved;
      max_delay_us = std::max(40'000u, max_delay_us * 9 / 10);
    } else {
      max_delay_us = std::min(1'000'000u, max_delay_us * 3 / 2);
    }
    last_checkpoint = checkpoint;
    if (::testing::Test::HasFailure()) break;
  }
  // The kills landed while work was being done, not only before or after it.
  RecordProperty("rounds_that_moved_the_checkpoint", moved);
  std::printf("kills: %d, rounds that moved the checkpoint: %d, last checkpoint %lld, kill delay "
              "now up to %u us\n",
              kills, moved, static_cast<long long>(last_checkpoint), max_delay_us);
  EXPECT_GT(moved, kills / 4);

  // Finally, it completes from wherever the last kill left it...
  SqliteEventStore store(store_path, fast_store());
  SqliteReadModel views(views_path);
  ProjectionRunner runner(store, views, ledger_projection());
  EXPECT_EQ(runner.catch_up(), store.head_position());
  check_exactly_once(store_path, views_path, kills);

  // ...and holds exactly what a runner that never crashed builds from zero.
  SqliteReadModel fresh(dir / "fresh.db");
  ProjectionRunner from_scratch(store, fresh, ledger_projection());
  EXPECT_EQ(from_scratch.catch_up(), store.head_position());
  bool equal = true;
  for (const char* sql : {"SELECT position, stream_id, type FROM ledger_rows ORDER BY position",
                          "SELECT stream_id, n FROM ledger_totals ORDER BY stream_id"}) {
    const auto survived = dump(views, sql);
    const auto rebuilt = dump(fresh, sql);
    equal = equal && survived == rebuilt;
    EXPECT_EQ(survived.size(), rebuilt.size()) << sql;
    EXPECT_TRUE(survived == rebuilt) << "the read model that survived the kills differs from a "
                                        "rebuild: "
                                     << sql;
  }
  std::printf("read model after %d kills: %zu rows, equal to a from-scratch rebuild: %s\n", kills,
              dump(views, "SELECT position FROM ledger_rows").size(),
              equal ? "yes" : "no");
}

}  // namespace
}  // namespace annals
