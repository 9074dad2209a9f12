// A consumer group of 4 worker processes, one 16-partition projection, while
// the parent appends events and SIGKILLs a random worker at random moments,
// restarting it at once. At the end:
//   - the read model equals, row for row, one built by a single runner;
//   - no event was applied twice (a row per event id, counting applications);
//   - at no instant did two workers write for the same partition: the writes
//     recorded in each batch's transaction (projection_partition_writes) form
//     one unbroken chain of checkpoints per partition, under fencing tokens
//     that never go back, each token held by the one worker whose lease
//     record (projection_partition_leases) took it.
//
// ANNALS_GROUP_EVENTS (default 100,000, the size) and
// ANNALS_GROUP_KILLS (default 60; 200 with ANNALS_SOAK=1);
// ANNALS_CRASH_SEED fixes the random moments.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <array>
#include <map>
#include <random>

#include "annals/projections/consumer_group.hpp"
#include "annals/projections/projection_runner.hpp"
#include "projection_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

constexpr int kWorkers = 4;

// The ledger (a row per position, a count per stream) and a count of
// applications per event id: a second application shows as n = 2.
Projection counted_projection() {
  Projection p = ledger_projection("grp");
  const auto setup = p.setup;
  const auto apply = p.apply;
  const auto reset = p.reset;
  p.setup = [setup](SqlTransaction& tx) {
    setup(tx);
    tx.exec_script("CREATE TABLE IF NOT EXISTS grp_applied (event_id TEXT PRIMARY KEY, "
                   "n INTEGER NOT NULL)");
  };
  p.apply = [apply](SqlTransaction& tx, const RecordedEvent& e) {
    apply(tx, e);
    tx.exec("INSERT INTO grp_applied (event_id, n) VALUES (?1, 1) "
            "ON CONFLICT(event_id) DO UPDATE SET n = n + 1",
            {e.event_id});
  };
  p.reset = [reset](SqlTransaction& tx) {
    reset(tx);
    tx.exec("DELETE FROM grp_applied");
  };
  return p;
}

pid_t start_worker(const std::filesystem::path& dir, int slot, int incarnation, std::size_t batch) {
  return spawn_child([=] {
    SqliteEventStore store(dir / "store.db", fast_store());
    SqliteReadModel views(dir / "views.db");
    ConsumerGroupOptions o;
    o.worker_id = "w" + std::to_string(slot) + "." + std::to_string(incarnation);
    o.lease_duration = std::chrono::milliseconds(400);
    o.renew_interval = std::chrono::milliseconds(50);
    o.record_writes = true;
    o.runner.batch_size = batch;
    o.runner.poll_interval = std::chrono::milliseconds(50);
    o.runner.max_attempts = 1'000'000;  // never give up on a busy database
    ConsumerGroupWorker worker(store, views, counted_projection(), o);
    worker.start();
    for (;;) ::pause();  // until the parent kills us
    return 0;
  });
}

void append_chunk(const std::filesystem::path& store_path, int count, std::mt19937& rng) {
  SqliteEventStore store(store_path, fast_store());  // closed again before the next fork
  for (int done = 0; done < count;) {
    const int n = std::min(count - done, 1 + static_cast<int>(rng() % 40));
    store.append("s-" + std::to_string(rng() % 97), ExpectedVersion::any(), events(n));
    done += n;
  }
}

std::int64_t lowest_checkpoint(const std::filesystem::path& views_path) {
  SQLite::Database views(views_path.string(), SQLite::OPEN_READONLY);
  return views.execAndGet("SELECT coalesce(min(position), 0) FROM projection_partitions "
                          "WHERE name = 'grp'")
      .getInt64();
}

// The write history: per partition an unbroken chain of checkpoints from 0
// to `head`, tokens never going back, each token taken once (a lease record)
// and written with by that lease's worker only.
void check_fencing_history(const SqliteReadModel& views, std::int64_t head) {
  std::map<std::pair<int, std::int64_t>, std::string> lease_holder;
  for (const auto& r : views.query("SELECT partition, fencing_token, worker FROM "
                                   "projection_partition_leases WHERE name = 'grp'")) {
    const auto key = std::make_pair(static_cast<int>(r[0].as_int()), r[1].as_int());
    EXPECT_TRUE(lease_holder.emplace(key, r[2].as_text()).second)
        << "partition " << key.first << ": token " << key.second << " taken twice";
  }
  std::array<std::int64_t, 16> last_to{}, last_token{};
  std::int64_t writes = 0;
  for (const auto& r : views.query("SELECT partition, fencing_token, worker, from_position, "
                                   "to_position FROM projection_partition_writes "
                                   "WHERE name = 'grp' ORDER BY id")) {
    const auto p = static_cast<std::size_t>(r[0].as_int());
    const std::int64_t token = r[1].as_int();
    ASSERT_LT(p, 16u);
    EXPECT_GE(token, last_token[p]) << "partition " << p << ": a superseded token wrote";
    EXPECT_EQ(r[3].as_int(), last_to[p]) << "partition " << p << ": checkpoint chain broken";
    EXPECT_GT(r[4].as_int(), r[3].as_int()) << "partition " << p;
    const auto holder = lease_holder.find({static_cast<int>(p), token});
    ASSERT_NE(holder, lease_holder.end()) << "partition " << p << ": token " << token << " never leased";
    EXPECT_EQ(holder->second, r[2].as_text()) << "partition " << p << ": token " << token
                                              << " written with by another worker";
    last_token[p] = token;
    last_to[p] = r[4].as_int();
    ++writes;
  }
  for (std::size_t p = 0; p < 16; ++p) EXPECT_EQ(last_to[p], head) << "partition " << p;
  std::printf("fencing history: %lld writes, %zu leases taken\n", static_cast<long long>(writes),
              lease_holder.size());
}

void run_group_under_kills(int total_events, int kills) {
  const auto seed = static_cast<unsigned>(
      env_int("ANNALS_CRASH_SEED", static_cast<int>(std::random_device{}())));
  ::testing::Test::RecordProperty("seed", static_cast<int>(seed));
  std::printf("seed %u, %d events, %d kills\n", seed, total_events, kills);
  std::mt19937 rng(seed);
  TempDir dir;
  const auto store_path = dir / "store.db";
  const auto views_path = dir / "views.db";
  append_chunk(store_path, total_events / 4, rng);
  { SqliteReadModel views(views_path); }  // the file exists before the workers race to create it
  std::array<pid_t, kWorkers> workers{};
  std::array<int, kWorkers> incarnation{};
  for (int s = 0; s < kWorkers; ++s) {
    workers[s] = start_worker(dir.path(), s, 0, 1 + rng() % 200);
    ASSERT_GT(workers[s], 0);
  }
  const int per_kill = (total_events - total_events / 4) / kills;
  for (int kill = 0; kill < kills; ++kill) {
    append_chunk(store_path, kill + 1 == kills ? total_events - total_events / 4 - per_kill * kill
                                               : per_kill,
                 rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 250));
    const auto s = static_cast<std::size_t>(rng() % kWorkers);
    ::kill(workers[s], SIGKILL);
    EXPECT_EQ(wait_for_exit(workers[s]), 100 + SIGKILL) << "worker " << s << " exited on its own";
    workers[s] = start_worker(dir.path(), static_cast<int>(s), ++incarnation[s], 1 + rng() % 200);
    ASSERT_GT(workers[s], 0);
  }
  SqliteEventStore store(store_path, fast_store());
  const std::int64_t head = store.head_position();
  ASSERT_EQ(head, total_events);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (lowest_checkpoint(views_path) < head && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (const pid_t w : workers) {
    ::kill(w, SIGKILL);
    wait_for_exit(w);
  }
  ASSERT_EQ(lowest_checkpoint(views_path), head) << "the group did not catch up";

  SqliteReadModel views(views_path);
  EXPECT_EQ(views.query_int("SELECT count(*) FROM grp_applied"), head);
  EXPECT_EQ(views.query_int("SELECT max(n) FROM grp_applied"), 1) << "an event applied twice";
  SqliteReadModel fresh(dir / "fresh.db");
  ProjectionRunner single(store, fresh, counted_projection());
  ASSERT_EQ(single.catch_up(), head);
  for (const char* sql : {"SELECT position, stream_id, type FROM grp_rows ORDER BY position",
                          "SELECT stream_id, n FROM grp_totals ORDER BY stream_id",
                          "SELECT event_id, n FROM grp_applied ORDER BY event_id"}) {
    EXPECT_TRUE(dump(views, sql) == dump(fresh, sql))
        << "the group's read model differs from a single runner's: " << sql;
  }
  check_fencing_history(views, head);
}

TEST(ConsumerGroup, FourWorkerProcessesUnderSigkillsEndEqualToASingleWorkerRebuild) {
  const bool soak = env_int("ANNALS_SOAK", 0) == 1;
  run_group_under_kills(env_int("ANNALS_GROUP_EVENTS", 100'000),
                        env_int("ANNALS_GROUP_KILLS", soak ? 200 : 60));
}

}  // namespace
}  // namespace annals
