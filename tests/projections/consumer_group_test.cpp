// Consumer groups: partitioning, fair shares and rebalancing, fencing of a
// worker that lost its lease, per-stream order, rebuild, status. Leases are
// expired with ManualClocks (one per simulated process), never by sleeping.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "annals/projections/consumer_group.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/projections/rebuild_request.hpp"
#include "projection_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

std::shared_ptr<ManualClock> manual_clock() {
  return std::make_shared<ManualClock>(parse_timestamp("2026-03-01T12:00:00Z"));
}

ConsumerGroupOptions group_options(const std::string& id, std::shared_ptr<const Clock> clock) {
  ConsumerGroupOptions o;
  o.worker_id = id;
  o.clock = std::move(clock);
  o.lease_duration = std::chrono::milliseconds(5'000);
  o.renew_interval = std::chrono::milliseconds(1'000);
  o.record_writes = true;
  o.runner.retry_backoff = std::chrono::milliseconds(1);
  o.runner.poll_interval = std::chrono::milliseconds(5);
  return o;
}

// Streams s-0 .. s-(n-1), `per_stream` events each, interleaved.
void fill_streams(EventStore& store, int streams, int per_stream) {
  for (int round = 0; round < per_stream; ++round) {
    for (int s = 0; s < streams; ++s) {
      store.append("s-" + std::to_string(s), ExpectedVersion::any(), events(1));
    }
  }
}

std::int64_t rows(const SqliteReadModel& views) {
  return views.query_int("SELECT count(*) FROM ledger_rows").value_or(0);
}

TEST(ConsumerGroup, PartitionOfIsStableAndCoversEveryPartition) {
  // Pinned: the partition of a stream is part of the read model's format.
  EXPECT_EQ(partition_of("", 16), static_cast<int>(14695981039346656037ull % 16));
  EXPECT_EQ(partition_of("account-42", 16), partition_of(std::string("account-") + "42", 16));
  std::set<int> seen;
  for (int i = 0; i < 10'000; ++i) {
    const int p = partition_of("stream-" + std::to_string(i), 16);
    ASSERT_GE(p, 0);
    ASSERT_LT(p, 16);
    seen.insert(p);
  }
  EXPECT_EQ(seen.size(), 16u);
  EXPECT_EQ(partition_of("anything", 1), 0);
  EXPECT_THROW(partition_of("x", 0), InvalidArgument);
}

TEST(ConsumerGroup, PartitionOfMatchesFnv1aOfTheStreamIdBytes) {
  // FNV-1a 64 computed here step by step for "ab": the documented hash.
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : std::string("ab")) {
    h ^= c;
    h *= 1099511628211ull;
  }
  EXPECT_EQ(partition_of("ab", 7), static_cast<int>(h % 7));
}

TEST(ConsumerGroup, TwoWorkersSplitSixteenPartitionsFairlyAndAThirdJoiningRebalances) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel views(dir / "views.db");
  fill_streams(store, 50, 4);
  auto clock = manual_clock();
  ConsumerGroupWorker a(store, views, ledger_projection(), group_options("a", clock));
  ConsumerGroupWorker b(store, views, ledger_projection(), group_options("b", clock));
  a.poll();  // alone: takes all
  EXPECT_EQ(a.owned_partitions().size(), 16u);
  b.poll();  // joins: nothing free yet
  EXPECT_TRUE(b.owned_partitions().empty());
  const auto round = [&](std::initializer_list<ConsumerGroupWorker*> workers) {
    clock->advance(std::chrono::seconds(1));
    for (auto* w : workers) w->poll();
  };
  round({&a, &b});  // a gives back 8, b takes them
  EXPECT_EQ(a.owned_partitions().size(), 8u);
  EXPECT_EQ(b.owned_partitions().size(), 8u);
  ConsumerGroupWorker c(store, views, ledger_projection(), group_options("c", clock));
  c.poll();
  round({&a, &b, &c});
  round({&a, &b, &c});
  std::set<int> all;
  for (auto* w : {&a, &b, &c}) {
    EXPECT_LE(w->owned_partitions().size(), 6u) << w->worker_id();  // ceil(16 / 3)
    EXPECT_GE(w->owned_partitions().size(), 4u) << w->worker_id();
    for (int p : w->owned_partitions()) EXPECT_TRUE(all.insert(p).second) << "partition " << p;
  }
  EXPECT_EQ(all.size(), 16u);
  for (int i = 0; i < 5; ++i) round({&a, &b, &c});
  EXPECT_EQ(rows(views), store.head_position());
  const auto status = a.status();
  ASSERT_EQ(status.partition_status.size(), 16u);
  for (const auto& p : status.partition_status) {
    EXPECT_EQ(p.checkpoint, store.head_position());
    EXPECT_EQ(p.lag, 0);
    ASSERT_TRUE(p.owner.has_value());
  }
  EXPECT_EQ(status.live_workers, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(ConsumerGroup, DeadWorkersPartitionsAreTakenOverOnlyAfterItsLeaseExpires) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel views(dir / "views.db");
  fill_streams(store, 20, 2);
  auto clock = manual_clock();
  auto dead = std::make_unique<ConsumerGroupWorker>(store, views, ledger_projection(),
                                                    group_options("dead", clock));
  dead->poll();
  ConsumerGroupWorker b(store, views, ledger_projection(), group_options("b", clock));
  clock->advance(std::chrono::seconds(4));  // lease still current
  b.poll();
  EXPECT_TRUE(b.owned_partitions().empty());
  clock->advance(std::chrono::seconds(2));  // 6 s: expired
  b.poll();
  EXPECT_EQ(b.owned_partitions().size(), 16u);
  for (const auto& p : b.status().partition_status) EXPECT_EQ(p.fencing_token, 2);
}

TEST(ConsumerGroup, StaleWorkerWhoseLeaseWasTakenOverWritesNothing) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel views(dir / "views.db");
  fill_streams(store, 20, 2);
  // The paused worker's clock stands still (it believes its lease current);
  // its successor's moves past the lease.
  auto paused_clock = manual_clock();
  auto clock = manual_clock();
  ConsumerGroupWorker paused(store, views, ledger_projection(), group_options("paused", paused_clock));
  EXPECT_EQ(paused.poll(), 40u);
  ASSERT_EQ(paused.owned_partitions().size(), 16u);
  clock->advance(std::chrono::seconds(6));
  ConsumerGroupWorker successor(store, views, ledger_projection(), group_options("next", clock));
  successor.poll();  // takes every partition over, tokens + 1; nothing new to apply
  ASSERT_EQ(successor.owned_partitions().size(), 16u);
  fill_streams(store, 20, 1);
  const auto before = dump(views, "SELECT * FROM ledger_rows ORDER BY position");
  const auto checkpoints =
      dump(views, "SELECT partition, position FROM projection_partitions ORDER BY partition");
  EXPECT_EQ(paused.poll(), 0u);  // fenced: every partition lost, nothing written
  EXPECT_TRUE(paused.owned_partitions().empty());
  EXPECT_EQ(dump(views, "SELECT * FROM ledger_rows ORDER BY position"), before);
  EXPECT_EQ(dump(views, "SELECT partition, position FROM projection_partitions ORDER BY partition"),
            checkpoints);
  EXPECT_EQ(views.query_int("SELECT count(*) FROM projection_partition_writes WHERE worker = "
                            "'paused' AND fencing_token > 1"),
            0);
  EXPECT_EQ(successor.poll(), 20u);
  EXPECT_EQ(rows(views), store.head_position());
}

TEST(ConsumerGroup, EventsOfOneStreamAreAppliedInOrderByThreeWorkers) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel views(dir / "views.db");
  Projection p;
  p.name = "order";
  p.setup = [](SqlTransaction& tx) {
    tx.exec_script("CREATE TABLE IF NOT EXISTS last_seen (stream_id TEXT PRIMARY KEY, "
                   "version INTEGER NOT NULL, out_of_order INTEGER NOT NULL DEFAULT 0)");
  };
  p.apply = [](SqlTransaction& tx, const RecordedEvent& e) {
    const auto last =
        tx.query_int("SELECT version FROM last_seen WHERE stream_id = ?1", {e.stream_id})
            .value_or(0);
    tx.exec("INSERT INTO last_seen (stream_id, version, out_of_order) VALUES (?1, ?2, ?3) "
            "ON CONFLICT(stream_id) DO UPDATE SET version = excluded.version, "
            "out_of_order = out_of_order + excluded.out_of_order",
            {e.stream_id, e.version, e.version == last + 1 ? 0 : 1});
  };
  std::vector<std::unique_ptr<ConsumerGroupWorker>> workers;
  for (int i = 0; i < 3; ++i) {
    auto o = group_options("w" + std::to_string(i), nullptr);  // the system clock
    o.lease_duration = std::chrono::milliseconds(400);
    o.renew_interval = std::chrono::milliseconds(50);
    o.runner.batch_size = 17;
    workers.push_back(std::make_unique<ConsumerGroupWorker>(store, views, p, o));
    workers.back()->start();
  }
  for (int round = 0; round < 30; ++round) {
    for (int s = 0; s < 40; ++s) store.append("s-" + std::to_string(s), ExpectedVersion::any(), events(3));
  }
  ASSERT_TRUE(workers[0]->wait_for(store.head_position(), 60s));
  for (auto& w : workers) w->stop();
  EXPECT_EQ(views.query_int("SELECT count(*) FROM last_seen"), 40);
  EXPECT_EQ(views.query_int("SELECT sum(out_of_order) FROM last_seen"), 0);
  EXPECT_EQ(views.query_int("SELECT min(version) FROM last_seen"), 90);
}

TEST(ConsumerGroup, AnotherPartitionCountForTheSameGroupIsRefused) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel views(dir / "views.db");
  ConsumerGroupWorker first(store, views, ledger_projection(), group_options("a", manual_clock()));
  auto o = group_options("b", manual_clock());
  o.partitions = 8;
  try {
    ConsumerGroupWorker second(store, views, ledger_projection(), o);
    FAIL() << "a second partition count was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("16 partitions"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("8"), std::string::npos) << e.what();
  }
  for (int bad : {0, -1, 4097}) {
    o.partitions = bad;
    EXPECT_THROW(ConsumerGroupWorker(store, views, ledger_projection("other"), o), InvalidArgument);
  }
  o.partitions = 16;
  o.renew_interval = o.lease_duration;
  EXPECT_THROW(ConsumerGroupWorker(store, views, ledger_projection(), o), InvalidArgument);
}

TEST(ConsumerGroup, RebuildRequestResetsEveryPartitionAndReplaysOnce) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel views(dir / "views.db");
  fill_streams(store, 30, 3);
  auto clock = manual_clock();
  ConsumerGroupWorker a(store, views, ledger_projection(), group_options("a", clock));
  ConsumerGroupWorker b(store, views, ledger_projection(), group_options("b", clock));
  for (int i = 0; i < 3; ++i) {
    clock->advance(std::chrono::seconds(1));
    a.poll();
    b.poll();
  }
  ASSERT_EQ(rows(views), 90);
  EXPECT_EQ(views.checkpoint("ledger"), 90);
  views.write([](SqlTransaction& tx) { tx.exec("UPDATE ledger_totals SET n = n + 100"); });
  request_rebuild(views, "ledger");
  const auto tokens_before = a.status().partition_status;
  for (int i = 0; i < 4; ++i) {
    clock->advance(std::chrono::seconds(1));
    a.poll();
    b.poll();
  }
  EXPECT_FALSE(rebuild_requested(views, "ledger"));
  EXPECT_EQ(rows(views), 90);
  EXPECT_EQ(views.query_int("SELECT max(n) FROM ledger_totals"), 3);
  const auto after = a.status().partition_status;
  for (std::size_t p = 0; p < after.size(); ++p) {
    EXPECT_GT(after[p].fencing_token, tokens_before[p].fencing_token) << "partition " << p;
  }
}

// The ledger projection, whose handler throws on the event at `position`.
Projection ledger_failing_at(std::int64_t position) {
  Projection p = ledger_projection();
  p.apply = [inner = p.apply, position](SqlTransaction& tx, const RecordedEvent& e) {
    if (e.position == position) throw std::runtime_error("bad event");
    inner(tx, e);
  };
  return p;
}

TEST(ConsumerGroup, PoisonEventIsParkedAndOnlyItsPartitionWaitsForIt) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel views(dir / "views.db");
  fill_streams(store, 10, 2);
  const Projection p = ledger_failing_at(5);
  auto o = group_options("a", manual_clock());
  o.runner.on_poison = PoisonPolicy::park;
  o.runner.max_attempts = 2;
  ConsumerGroupWorker w(store, views, p, o);
  for (int i = 0; i < 5; ++i) w.poll();
  ASSERT_EQ(views.parked_count("ledger"), 1);
  EXPECT_EQ(views.parked_events("ledger")[0].position, 5);
  EXPECT_EQ(rows(views), 19);
  EXPECT_EQ(views.checkpoint("ledger"), 20);
  EXPECT_FALSE(w.failure().has_value());
}

TEST(ConsumerGroup, PoisonEventUnderStopStopsTheWorkerAndRecordsThePartitionsFailure) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel views(dir / "views.db");
  fill_streams(store, 10, 2);
  const Projection p = ledger_failing_at(5);
  auto o = group_options("a", nullptr);
  o.runner.max_attempts = 2;
  ConsumerGroupWorker w(store, views, p, o);
  w.start();
  ASSERT_TRUE(eventually([&] { return !w.running(); }));
  ASSERT_TRUE(w.failure().has_value());
  EXPECT_EQ(w.failure()->position, 5);
  EXPECT_EQ(rows(views), 4);  // everything before it, in every partition
  const int bad = partition_of("s-4", 16);  // position 5: the first event of s-4
  const auto status = w.status();
  ASSERT_TRUE(status.partition_status[static_cast<std::size_t>(bad)].failure.has_value());
  EXPECT_EQ(status.partition_status[static_cast<std::size_t>(bad)].failure->message, "bad event");
  EXPECT_TRUE(status.live_workers.empty());  // it left the group
}

TEST(ConsumerGroup, StoppedWorkerGivesItsLeasesBackSoAnotherTakesOverAtOnce) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel views(dir / "views.db");
  fill_streams(store, 20, 1);
  auto clock = manual_clock();
  ConsumerGroupWorker a(store, views, ledger_projection(), group_options("a", clock));
  ConsumerGroupWorker b(store, views, ledger_projection(), group_options("b", clock));
  a.poll();
  b.poll();
  EXPECT_TRUE(b.owned_partitions().empty());
  a.stop();  // no time passes: the leases were given back, not left to expire
  EXPECT_TRUE(a.owned_partitions().empty());
  clock->advance(std::chrono::seconds(1));
  b.poll();
  EXPECT_EQ(b.owned_partitions().size(), 16u);
  EXPECT_EQ(b.status().live_workers, std::vector<std::string>{"b"});
}

TEST(ConsumerGroup, PreparedWorkRunsBeforeTheTransactionAndReachesApplyPrepared) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel views(dir / "views.db");
  fill_streams(store, 5, 2);
  Projection p;
  p.name = "doubled";
  p.setup = [](SqlTransaction& tx) {
    tx.exec_script("CREATE TABLE IF NOT EXISTS doubled (position INTEGER PRIMARY KEY, v INTEGER)");
  };
  auto o = group_options("a", manual_clock());
  o.runner.on_poison = PoisonPolicy::park;
  o.runner.max_attempts = 1;
  o.prepare = [](const RecordedEvent& e) {
    if (e.position == 3) throw std::runtime_error("cannot prepare");
    return Json(e.position * 2);
  };
  o.apply_prepared = [](SqlTransaction& tx, const RecordedEvent& e, const Json& v) {
    tx.exec("INSERT INTO doubled (position, v) VALUES (?1, ?2)", {e.position, v.get<std::int64_t>()});
  };
  ConsumerGroupWorker w(store, views, p, o);
  for (int i = 0; i < 3; ++i) w.poll();
  EXPECT_EQ(dump(views, "SELECT position, v FROM doubled ORDER BY position"),
            (std::vector<std::string>{"1|2|", "2|4|", "4|8|", "5|10|", "6|12|", "7|14|", "8|16|",
                                      "9|18|", "10|20|"}));
  ASSERT_EQ(views.parked_count("doubled"), 1);
  EXPECT_EQ(views.parked_events("doubled")[0].error, "cannot prepare");
  auto bad = o;
  bad.apply_prepared = nullptr;
  EXPECT_THROW(ConsumerGroupWorker(store, views, p, bad), InvalidArgument);
}

TEST(ConsumerGroup, ReadModelWithoutGroupsListsNone) {
  TempDir dir;
  SqliteReadModel views(dir / "views.db");
  EXPECT_TRUE(views.consumer_groups(10).empty());
}

}  // namespace
}  // namespace annals
