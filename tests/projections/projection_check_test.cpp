// Read models you can check (check_projection, ProjectionRunner::check) and
// blue/green rebuilds (ProjectionRunner::rebuild builds into shadow tables and
// swaps them in one transaction).

#include "annals/projections/projection_check.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <utility>

#include "annals/core/error.hpp"
#include "annals/projections/check_request.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/projections/rebuild_request.hpp"
#include "projection_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

constexpr const char* kRows = "SELECT position, stream_id, type FROM ledger_rows ORDER BY position";
constexpr const char* kTotals = "SELECT stream_id, n FROM ledger_totals ORDER BY stream_id";

// A store of `n` events and a ledger read model caught up with it.
struct Checked {
  explicit Checked(int n = 30) {
    fill(store, n, 5, 3);
    runner.catch_up();
  }
  TempDir dir;
  SqliteEventStore store{dir / "store.db", fast_store()};
  SqliteReadModel model{dir / "views.db"};
  ProjectionRunner runner{store, model, ledger_projection()};
};

std::size_t entries_in(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(Check, AModelEqualToItsHistoryPasses) {
  Checked c;
  const CheckReport r = c.runner.check();
  EXPECT_TRUE(r.equal());
  EXPECT_EQ(r.projection, "ledger");
  EXPECT_EQ(r.checkpoint, 30);
  EXPECT_EQ(r.tables, (std::vector<std::string>{"ledger_rows", "ledger_totals"}));
  EXPECT_EQ(r.live_rows, 33);
  EXPECT_EQ(r.replay_rows, 33);
  EXPECT_TRUE(r.samples.empty());
  EXPECT_TRUE(r.replay_failures.empty());
}

TEST(Check, ARowAlteredByHandIsReportedWithBothVersionsAndCounted) {
  Checked c;
  c.model.write([](SqlTransaction& tx) {
    tx.exec("UPDATE ledger_rows SET type = 'forged' WHERE position = 7");
  });
  const CheckReport r = check_projection(c.store, c.model, ledger_projection());
  EXPECT_FALSE(r.equal());
  EXPECT_EQ(r.differing, 1);
  EXPECT_EQ(r.only_in_live, 0);
  EXPECT_EQ(r.only_in_replay, 0);
  ASSERT_EQ(r.samples.size(), 1u);
  const RowDifference& d = r.samples[0];
  EXPECT_EQ(d.table, "ledger_rows");
  EXPECT_EQ(d.kind, RowDifference::Kind::differing);
  EXPECT_EQ(d.columns, (std::vector<std::string>{"position", "stream_id", "type"}));
  EXPECT_EQ(d.live.at(0), SqlValue(7));
  EXPECT_EQ(d.live.at(2), SqlValue("forged"));
  EXPECT_EQ(d.replay.at(2), SqlValue("test.Happened"));
}

TEST(Check, RowsDeletedAndAddedByHandAreReportedOnTheirSideAndCounted) {
  Checked c;
  c.model.write([](SqlTransaction& tx) {
    tx.exec("DELETE FROM ledger_rows WHERE position IN (3, 4)");
    tx.exec("INSERT INTO ledger_totals VALUES ('s-invented', 9)");
  });
  CheckOptions options;
  options.max_samples = 2;
  const CheckReport r = c.runner.check(options);
  EXPECT_FALSE(r.equal());
  EXPECT_EQ(r.only_in_replay, 2);
  EXPECT_EQ(r.only_in_live, 1);
  EXPECT_EQ(r.differing, 0);
  ASSERT_EQ(r.samples.size(), 2u);  // max_samples caps the samples, not the counts
  EXPECT_EQ(r.samples[0].kind, RowDifference::Kind::only_in_replay);
  EXPECT_EQ(r.samples[0].replay.at(0), SqlValue(3));
  EXPECT_TRUE(r.samples[0].live.empty());
  EXPECT_EQ(r.samples[1].kind, RowDifference::Kind::only_in_replay);
  // Without the cap, the invented row is shown too.
  const CheckReport all = c.runner.check();
  ASSERT_EQ(all.samples.size(), 3u);
  EXPECT_EQ(all.samples[2].table, "ledger_totals");
  EXPECT_EQ(all.samples[2].kind, RowDifference::Kind::only_in_live);
  EXPECT_EQ(all.samples[2].live.at(0), SqlValue("s-invented"));
}

TEST(Check, DoesNotChangeTheLiveModelAndLeavesNoShadowFileBehind) {
  Checked c;
  c.model.write([](SqlTransaction& tx) { tx.exec("DELETE FROM ledger_rows WHERE position = 1"); });
  const auto rows = dump(c.model, kRows);
  const auto totals = dump(c.model, kTotals);
  const auto files = entries_in(c.dir.path());
  const auto record = c.model.checkpoint_record("ledger");
  EXPECT_FALSE(c.runner.check().equal());
  EXPECT_EQ(dump(c.model, kRows), rows);
  EXPECT_EQ(dump(c.model, kTotals), totals);
  EXPECT_EQ(c.model.checkpoint_record("ledger")->position, record->position);
  EXPECT_EQ(c.model.checkpoint_record("ledger")->updated_at, record->updated_at);
  EXPECT_EQ(entries_in(c.dir.path()), files);
}

TEST(Check, ComparesAtTheLiveCheckpointNotAtTheStoresHead) {
  Checked c;
  fill(c.store, 20, 5, 3);  // appended after the catch-up: not in the live model yet
  const CheckReport r = c.runner.check();
  EXPECT_TRUE(r.equal());
  EXPECT_EQ(r.checkpoint, 30);
  EXPECT_EQ(r.replay_rows, r.live_rows);
}

TEST(Check, ATableWithoutPrimaryKeyIsComparedAsAMultisetOfRows) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel model(dir / "views.db");
  Projection p;
  p.name = "types";
  p.setup = [](SqlTransaction& tx) { tx.exec_script("CREATE TABLE IF NOT EXISTS seen (type TEXT)"); };
  p.apply = [](SqlTransaction& tx, const RecordedEvent& e) {
    tx.exec("INSERT INTO seen VALUES (?1)", {e.type});
  };
  p.reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM seen"); };
  fill(store, 4, 2, 2);
  ProjectionRunner runner(store, model, p);
  runner.catch_up();
  EXPECT_TRUE(runner.check().equal());
  // One more copy of a row the model already holds four times.
  model.write([](SqlTransaction& tx) { tx.exec("INSERT INTO seen VALUES ('test.Happened')"); });
  const CheckReport r = runner.check();
  EXPECT_EQ(r.only_in_live, 1);
  EXPECT_EQ(r.only_in_replay, 0);
  ASSERT_EQ(r.samples.size(), 1u);
  EXPECT_EQ(r.samples[0].live, (SqlRow{SqlValue("test.Happened")}));
}

TEST(Check, AMissingTableIsAReportedDifference) {
  Checked c;
  c.model.write([](SqlTransaction& tx) { tx.exec("DROP TABLE ledger_totals"); });
  const CheckReport r = c.runner.check();
  EXPECT_FALSE(r.equal());
  ASSERT_EQ(r.schema_differences.size(), 1u);
  EXPECT_NE(r.schema_differences[0].find("ledger_totals"), std::string::npos);
}

TEST(Check, AnEventTheReplayCannotApplyIsLeftOutAndListed) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel model(dir / "views.db");
  fill(store, 10, 5, 2);
  Projection p = ledger_projection();
  ProjectionRunner runner(store, model, p);
  runner.catch_up();
  model.write([](SqlTransaction& tx) {
    tx.exec("DELETE FROM ledger_rows WHERE position = 4");
    tx.exec("UPDATE ledger_totals SET n = n - 1 WHERE stream_id = 's-0'");
  });
  const auto apply = p.apply;
  p.apply = [apply](SqlTransaction& tx, const RecordedEvent& e) {
    if (e.position == 4) throw std::runtime_error("poison at 4");
    apply(tx, e);
  };
  const CheckReport r = check_projection(store, model, p);
  EXPECT_TRUE(r.equal());
  ASSERT_EQ(r.replay_failures.size(), 1u);
  EXPECT_EQ(r.replay_failures[0].position, 4);
  EXPECT_EQ(r.replay_failures[0].message, "poison at 4");
}

TEST(Check, AProjectionTheReadModelDoesNotHoldIsRefused) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel model(dir / "views.db");
  EXPECT_THROW(check_projection(store, model, ledger_projection("never-ran")), InvalidArgument);
  Projection nameless = ledger_projection();
  nameless.name.clear();
  EXPECT_THROW(check_projection(store, model, nameless), InvalidArgument);
}

TEST(CheckRequest, ARunnerServesAPendingRequestAndRecordsTheReport) {
  Checked c;
  c.model.write([](SqlTransaction& tx) { tx.exec("DELETE FROM ledger_rows WHERE position = 2"); });
  const std::int64_t at = request_check(c.model, "ledger");
  auto record = check_record(c.model, "ledger");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->requested_at, at);
  EXPECT_FALSE(record->checked_at);
  c.runner.catch_up();
  record = check_record(c.model, "ledger");
  ASSERT_TRUE(record->checked_at);
  EXPECT_EQ(record->result.at("equal"), false);
  EXPECT_EQ(record->result.at("only_in_replay"), 1);
  EXPECT_EQ(record->result.at("samples").at(0).at("replay").at(0), 2);
  EXPECT_GT(request_check(c.model, "ledger"), at);  // a new request, pending again
  EXPECT_FALSE(check_record(c.model, "ledger")->checked_at);
  EXPECT_THROW(request_check(c.model, "nobody"), InvalidArgument);
}

TEST(BlueGreenRebuild, AReaderDuringARebuildOf100000EventsSeesTheOldModelOrTheNewNeverAPart) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 100'000, 1000, 10);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunnerOptions options;
  options.batch_size = 2000;
  ProjectionRunner runner(store, model, ledger_projection(), options);
  runner.catch_up();
  // The old model differs from what the rebuild makes: one invented row.
  model.write([](SqlTransaction& tx) { tx.exec("INSERT INTO ledger_totals VALUES ('s-x', 5)"); });
  const std::pair<std::int64_t, std::int64_t> old_model{11, 100'005}, new_model{10, 100'000};

  std::atomic<bool> done{false};
  std::set<std::pair<std::int64_t, std::int64_t>> seen;
  std::size_t reads = 0;
  std::thread reader([&] {
    SqliteReadModel other(dir / "views.db");  // another connection, as another process
    do {
      const auto rows = other.query("SELECT count(*), coalesce(sum(n), 0) FROM ledger_totals");
      seen.insert({rows[0][0].as_int(), rows[0][1].as_int()});
      ++reads;
    } while (!done.load());
  });
  try {
    runner.rebuild();
  } catch (...) {
    done = true;
    reader.join();
    throw;
  }
  done = true;
  reader.join();
  for (const auto& s : seen) {
    EXPECT_TRUE(s == old_model || s == new_model)
        << "a reader saw " << s.first << " rows summing to " << s.second;
  }
  EXPECT_GE(reads, 1u);
  EXPECT_EQ(model.query_int("SELECT count(*) FROM ledger_rows"), 100'000);
  EXPECT_EQ(model.checkpoint("ledger"), 100'000);
  EXPECT_TRUE(runner.check().equal());
}

TEST(BlueGreenRebuild, ReplacesATableWhoseDefinitionChangedAndKeepsItsIndexes) {
  Checked c;
  // An older shape of the table, as a previous version of the projection made it.
  c.model.write([](SqlTransaction& tx) {
    tx.exec("DROP TABLE ledger_rows");
    tx.exec("CREATE TABLE ledger_rows (position INTEGER PRIMARY KEY, stream_id TEXT)");
  });
  EXPECT_FALSE(c.runner.check().equal());
  c.runner.rebuild();
  EXPECT_TRUE(c.runner.check().equal());
  EXPECT_EQ(c.model.query_int("SELECT count(*) FROM pragma_table_info('ledger_rows')"), 3);
  EXPECT_EQ(c.model.query_int("SELECT count(*) FROM ledger_rows"), 30);
}

TEST(BlueGreenRebuild, ARebuildRequestIsServedIntoShadowTablesToo) {
  Checked c;
  c.model.write([](SqlTransaction& tx) {
    tx.exec("DROP TABLE ledger_rows");
    tx.exec("CREATE TABLE ledger_rows (position INTEGER PRIMARY KEY, stream_id TEXT)");
  });
  request_rebuild(c.model, "ledger");
  c.runner.catch_up();  // a rebuild in place would keep the old two-column table
  EXPECT_FALSE(rebuild_requested(c.model, "ledger"));
  EXPECT_EQ(c.model.query_int("SELECT count(*) FROM pragma_table_info('ledger_rows')"), 3);
  EXPECT_TRUE(c.runner.check().equal());
}

TEST(BlueGreenRebuild, AFailedReplayLeavesTheLiveModelAsItWas) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  SqliteReadModel model(dir / "views.db");
  fill(store, 30, 5, 3);
  auto fail = std::make_shared<std::atomic<bool>>(false);
  Projection p = ledger_projection();
  const auto setup = p.setup;
  p.setup = [setup, fail](SqlTransaction& tx) {
    if (*fail) throw StorageError("disk on fire");
    setup(tx);
  };
  ProjectionRunner runner(store, model, p);
  runner.catch_up();
  model.write([](SqlTransaction& tx) { tx.exec("UPDATE ledger_totals SET n = 0"); });
  const auto rows = dump(model, kRows);
  const auto totals = dump(model, kTotals);
  *fail = true;  // the replay's setup fails
  EXPECT_THROW(runner.rebuild(), StorageError);
  EXPECT_EQ(dump(model, kRows), rows);
  EXPECT_EQ(dump(model, kTotals), totals);
  EXPECT_EQ(model.checkpoint("ledger"), 30);
  EXPECT_EQ(entries_in(dir.path()), 6u) << "the shadow directory is removed";
}

}  // namespace
}  // namespace annals
