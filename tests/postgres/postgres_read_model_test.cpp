// PostgresReadModel against a real server: the read-model transaction
// interface on PostgreSQL (values, placeholders, errors), and everything a
// ProjectionRunner does on it (catch-up and following, exactly-once rows,
// retries, parking, stop on poison, rebuild requests, blue/green rebuild,
// check), consumer groups, and two runners of one projection that must not
// apply an event twice. The projections are written once, with $N
// placeholders, and run unchanged on a SQLite read model too (the last test).

#include "annals/projections/postgres_read_model.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <thread>

#include "annals/core/error.hpp"
#include "annals/projections/check_request.hpp"
#include "annals/projections/consumer_group.hpp"
#include "annals/projections/projection_check.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/projections/rebuild_request.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "postgres/postgres_server.hpp"
#include "store/store_fixtures.hpp"

namespace annals {
namespace {

[[maybe_unused]] ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new testing::PostgresEnvironment);

using namespace std::chrono_literals;

EventData deposit(std::int64_t cents) {
  EventData e;
  e.type = "account.Deposited";
  e.payload = R"({"cents":)" + std::to_string(cents) + "}";
  return e;
}

std::int64_t cents_of(const RecordedEvent& e) {
  const auto at = e.payload.find(':');
  return std::stoll(e.payload.substr(at + 1));
}

// One row per event and a balance per stream, written once for both kinds of
// read model: a count applied twice, or an event applied out of its
// transaction, shows in the rows.
Projection balances(std::string name = "balances") {
  const std::string rows = name + "_rows", totals = name + "_totals";
  Projection p;
  p.name = std::move(name);
  p.setup = [=](SqlTransaction& tx) {
    const std::string i = tx.dialect() == SqlDialect::postgresql ? "BIGINT" : "INTEGER";
    tx.exec_script("CREATE TABLE IF NOT EXISTS " + rows + " (position " + i +
                   " PRIMARY KEY, stream_id TEXT NOT NULL, cents " + i + " NOT NULL);" +
                   "CREATE INDEX IF NOT EXISTS " + rows + "_stream ON " + rows + " (stream_id);" +
                   "CREATE TABLE IF NOT EXISTS " + totals + " (stream_id TEXT PRIMARY KEY, cents " +
                   i + " NOT NULL, n " + i + " NOT NULL)");
  };
  p.apply = [=](SqlTransaction& tx, const RecordedEvent& e) {
    tx.exec("INSERT INTO " + rows + " (position, stream_id, cents) VALUES ($1, $2, $3)",
            {e.position, e.stream_id, cents_of(e)});
    tx.exec("INSERT INTO " + totals +
                " (stream_id, cents, n) VALUES ($2, $1, 1) ON CONFLICT (stream_id) DO UPDATE SET "
                "cents = " +
                totals + ".cents + excluded.cents, n = " + totals + ".n + 1",
            {cents_of(e), e.stream_id});
  };
  p.reset = [=](SqlTransaction& tx) {
    tx.exec("DELETE FROM " + rows);
    tx.exec("DELETE FROM " + totals);
  };
  return p;
}

PostgresStoreOptions store_options(const std::string& schema) {
  PostgresStoreOptions options;
  options.schema = schema;
  return options;
}

PostgresReadModelOptions views_options(const std::string& schema) {
  PostgresReadModelOptions options;
  options.schema = schema;
  return options;
}

ProjectionRunnerOptions quick_retries(PoisonPolicy policy = PoisonPolicy::stop) {
  ProjectionRunnerOptions options;
  options.max_attempts = 2;
  options.retry_backoff = 1ms;
  options.on_poison = policy;
  options.poll_interval = 20ms;
  return options;
}

// A store and a read model in schemas of their own, with `n` deposits of
// 1..n cents over 3 streams.
struct Fixture {
  explicit Fixture(int n = 0)
      : store_schema(testing::fresh_schema()),
        store(testing::postgres_url(), store_options(store_schema)),
        views(testing::postgres_url(), views_options(testing::fresh_schema())) {
    add(n);
  }
  void add(int n) {
    for (int i = 1; i <= n; ++i) {
      store.append("acct-" + std::to_string(i % 3), ExpectedVersion::any(), {deposit(i)});
    }
  }
  std::string store_schema;
  PostgresEventStore store;
  PostgresReadModel views;
};

std::int64_t total_cents(const ReadModel& views, const std::string& name = "balances") {
  return views.query_int("SELECT sum(cents) FROM " + name + "_totals").value_or(0);
}

std::int64_t count_schemas(const std::string& like) {
  PostgresReadModel probe(testing::postgres_url());
  return probe
      .query_int("SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname LIKE $1", {like})
      .value_or(-1);
}

// ---- the transaction interface ----------------------------------------------

TEST(PostgresReadModel, ValuesRoundTripWithTheirTypes) {
  PostgresReadModel views(testing::postgres_url(), views_options(testing::fresh_schema()));
  views.write([](SqlTransaction& tx) {
    EXPECT_EQ(tx.dialect(), SqlDialect::postgresql);
    tx.exec_script(
        "CREATE TABLE t (i BIGINT, small INTEGER, r DOUBLE PRECISION, s TEXT, b BOOLEAN, "
        "j JSONB)");
    // Integers (bool included) are bigint parameters: a boolean column is
    // written with a comparison, as on SQLite, which has no booleans.
    EXPECT_EQ(
        tx.exec("INSERT INTO t VALUES ($1, $2, $3, $4, $5 <> 0, $6::jsonb)",
                {std::int64_t{9'007'199'254'740'993}, 7, 0.1, "x'y\"z é", true, R"({"a": 1})"}),
        1);
    // Integers (bool included) are bigint parameters: a boolean column is
    // written with a comparison, as on SQLite, which has no booleans.
    EXPECT_EQ(tx.exec("INSERT INTO t VALUES ($1, $2, $3, $4, $5 <> 0, $6::jsonb)",
                      {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr}),
              1);
  });
  const auto rows = views.query("SELECT i, small, r, s, b, j FROM t ORDER BY i NULLS LAST");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0], SqlValue(std::int64_t{9'007'199'254'740'993}));
  EXPECT_EQ(rows[0][1], SqlValue(7));
  EXPECT_EQ(rows[0][2], SqlValue(0.1));
  EXPECT_EQ(rows[0][3], SqlValue("x'y\"z é"));
  EXPECT_EQ(rows[0][4], SqlValue(1));
  EXPECT_EQ(rows[0][5], SqlValue(R"({"a": 1})"));
  for (const auto& v : rows[1]) EXPECT_TRUE(v.is_null());
  // sum() of integers is numeric on PostgreSQL: whole values read as integers.
  EXPECT_EQ(views.query_int("SELECT sum(small) FROM t"), 7);
  EXPECT_EQ(views.query("SELECT avg(small::numeric) / 2 FROM t")[0][0], SqlValue(3.5));
  // Placeholders bind by number wherever they appear.
  const auto swapped = views.query("SELECT $2::text, $1::text, $2::text", {"one", "two"});
  EXPECT_EQ(swapped[0], (SqlRow{"two", "one", "two"}));
}

TEST(PostgresReadModel, BadStatementsAndBadValuesAreStorageErrorsAndChangeNothing) {
  PostgresReadModel views(testing::postgres_url(), views_options(testing::fresh_schema()));
  views.write([](SqlTransaction& tx) { tx.exec_script("CREATE TABLE t (k TEXT PRIMARY KEY)"); });
  try {
    views.write([](SqlTransaction& tx) {
      tx.exec("INSERT INTO t VALUES ($1)", {"a"});
      tx.exec("INSERT INTO t VALUES ($1)", {"a"});
    });
    FAIL() << "a duplicate key was accepted";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("23505"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("PostgreSQL read model"), std::string::npos);
  }
  EXPECT_EQ(views.query_int("SELECT count(*) FROM t"), 0);  // the first insert rolled back too
  EXPECT_THROW(views.write([](SqlTransaction& tx) { tx.exec("SELEC 1"); }), StorageError);
  EXPECT_THROW(views.write([](SqlTransaction& tx) {
    tx.exec("INSERT INTO t VALUES ($1)", {std::string("a\0b", 3)});
  }),
               InvalidArgument);
  // An error caught without a savepoint leaves PostgreSQL's transaction
  // aborted: the commit is refused loudly, nothing is stored.
  EXPECT_THROW(views.write([](SqlTransaction& tx) {
    tx.exec("INSERT INTO t VALUES ($1)", {"kept?"});
    try {
      tx.exec("INSERT INTO t VALUES ($1)", {"kept?"});
    } catch (const StorageError&) {
    }
  }),
               StorageError);
  EXPECT_EQ(views.query_int("SELECT count(*) FROM t"), 0);
  // Reads cannot write; writes do not nest.
  EXPECT_THROW(views.read([](SqlTransaction& tx) { tx.exec("INSERT INTO t VALUES ('r')"); }),
               StorageError);
  EXPECT_THROW(views.write([&](SqlTransaction&) { views.write([](SqlTransaction&) {}); }),
               InvalidArgument);
  // The connection serves the next transaction after every one of those.
  views.write([](SqlTransaction& tx) { tx.exec("INSERT INTO t VALUES ($1)", {"ok"}); });
  EXPECT_EQ(views.query_int("SELECT count(*) FROM t"), 1);
}

TEST(PostgresReadModel, BadSchemaNamesAndUnreachableServersAreRefused) {
  for (const std::string& bad : std::vector<std::string>{"", "1abc", "has space", "semi;colon",
                                                         "quo\"te", std::string(64, 'a')}) {
    EXPECT_THROW(PostgresReadModel(testing::postgres_url(), views_options(bad)), InvalidArgument)
        << bad;
  }
  EXPECT_THROW(PostgresReadModel("host=/nonexistent-dir dbname=x connect_timeout=2"), StorageError);
}

TEST(PostgresReadModel, AReadOnlyModelLooksWithoutCreatingOrWriting) {
  Fixture f(3);
  ProjectionRunner runner(f.store, f.views, balances(), quick_retries());
  runner.catch_up();
  PostgresReadModelOptions look = views_options(f.views.schema());
  look.read_only = true;
  PostgresReadModel reader(testing::postgres_url(), look);
  ASSERT_EQ(reader.checkpoint_records().size(), 1u);
  EXPECT_EQ(reader.checkpoint("balances"), 3);
  EXPECT_EQ(total_cents(reader), 6);
  EXPECT_THROW(reader.write([](SqlTransaction&) {}), InvalidArgument);
  EXPECT_THROW(request_rebuild(reader, "balances"), InvalidArgument);
  EXPECT_FALSE(rebuild_requested(reader, "balances"));

  look.schema = testing::fresh_schema();  // never created
  EXPECT_THROW(PostgresReadModel(testing::postgres_url(), look), StorageError);
  EXPECT_EQ(count_schemas(look.schema), 0);
  // A schema without the bookkeeping tables has no projections.
  look.schema = f.store_schema;
  PostgresReadModel store_schema(testing::postgres_url(), look);
  EXPECT_TRUE(store_schema.checkpoint_records().empty());
  EXPECT_EQ(store_schema.parked_count("balances"), 0);
}

TEST(PostgresReadModel, ANestedReadJoinsTheOuterSnapshot) {
  PostgresReadModel views(testing::postgres_url(), views_options(testing::fresh_schema()));
  views.write([](SqlTransaction& tx) { tx.exec_script("CREATE TABLE t (k BIGINT)"); });
  views.read([&](SqlTransaction& outer) {
    EXPECT_EQ(outer.query_int("SELECT count(*) FROM t"), 0);
    views.write([](SqlTransaction& tx) { tx.exec("INSERT INTO t VALUES (1)"); });
    EXPECT_EQ(views.query_int("SELECT count(*) FROM t"), 0);  // joined: the same snapshot
  });
  EXPECT_EQ(views.query_int("SELECT count(*) FROM t"), 1);
}

TEST(PostgresReadModel, AConnectionTheServerDroppedIsReplacedAtTheNextCall) {
  PostgresReadModel views(testing::postgres_url(), views_options(testing::fresh_schema()));
  views.write([](SqlTransaction& tx) { tx.exec_script("CREATE TABLE t (k BIGINT)"); });
  EXPECT_EQ(views.query_int("SELECT count(*) FROM t"), 0);
  PostgresReadModel admin(testing::postgres_url());
  admin.write([&](SqlTransaction& tx) {
    tx.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> "
        "pg_backend_pid() AND application_name = 'annals' AND query NOT LIKE '%pg_stat%' "
        "AND datname = current_database() AND state = 'idle'");
  });
  std::this_thread::sleep_for(100ms);
  views.write([](SqlTransaction& tx) { tx.exec("INSERT INTO t VALUES (1)"); });
  EXPECT_EQ(views.query_int("SELECT count(*) FROM t"), 1);
}

// ---- runners ----------------------------------------------------------------

TEST(PostgresReadModel, ARunnerCatchesUpThenFollowsWithExactlyOneRowPerEvent) {
  Fixture f(30);
  ProjectionRunner runner(f.store, f.views, balances(), quick_retries());
  EXPECT_EQ(runner.catch_up(), 30);
  EXPECT_EQ(total_cents(f.views), 30 * 31 / 2);
  runner.start();
  f.add(10);
  ASSERT_TRUE(runner.wait_for(40, 60s));
  runner.stop();
  EXPECT_EQ(f.views.query_int("SELECT count(*) FROM balances_rows"), 40);
  EXPECT_EQ(f.views.query_int("SELECT sum(n) FROM balances_totals"), 40);
  EXPECT_EQ(f.views.checkpoint("balances"), 40);
  const auto status = runner.status();
  EXPECT_EQ(status.checkpoint, 40);
  EXPECT_EQ(status.lag, 0);
}

TEST(PostgresReadModel, AnEventThatKeepsFailingIsParkedOrStopsTheRunnerAndRollsBackAlone) {
  Fixture f(10);
  auto failing = balances();
  auto broken = std::make_shared<std::atomic<bool>>(true);
  const auto apply = failing.apply;
  failing.apply = [=](SqlTransaction& tx, const RecordedEvent& e) {
    apply(tx, e);  // its rows are rolled back with the event
    if (e.position == 4 && broken->load()) throw std::runtime_error("no account 4");
  };
  {
    ProjectionRunner runner(f.store, f.views, failing, quick_retries(PoisonPolicy::park));
    EXPECT_EQ(runner.catch_up(), 10);
    const auto parked = runner.parked();
    ASSERT_EQ(parked.size(), 1u);
    EXPECT_EQ(parked[0].position, 4);
    EXPECT_EQ(parked[0].error, "no account 4");
    EXPECT_EQ(f.views.query_int("SELECT count(*) FROM balances_rows"), 9);
    EXPECT_EQ(f.views.parked_count("balances"), 1);
    broken->store(false);
    EXPECT_TRUE(runner.retry_parked(4));
    EXPECT_TRUE(runner.parked().empty());
    EXPECT_EQ(total_cents(f.views), 55);
  }
  auto stopping = failing;
  stopping.name = "stopping";
  stopping.setup = balances("stopping").setup;
  const auto apply_stopping = balances("stopping").apply;
  stopping.apply = [=](SqlTransaction& tx, const RecordedEvent& e) {
    apply_stopping(tx, e);
    if (e.position == 7) throw std::runtime_error("no account 7");
  };
  ProjectionRunner runner(f.store, f.views, stopping, quick_retries(PoisonPolicy::stop));
  EXPECT_EQ(runner.catch_up(), 6);
  const auto status = runner.status();
  ASSERT_TRUE(status.failure.has_value());
  EXPECT_EQ(status.failure->position, 7);
  EXPECT_EQ(status.failure->message, "no account 7");
  EXPECT_EQ(f.views.query_int("SELECT count(*) FROM stopping_rows"), 6);
  EXPECT_EQ(total_cents(f.views, "stopping"), 21);
}

TEST(PostgresReadModel, TwoRunnersOfOneProjectionNeverApplyAnEventTwice) {
  Fixture f(400);
  PostgresReadModel other(testing::postgres_url(), views_options(f.views.schema()));
  ProjectionRunnerOptions options = quick_retries();
  options.batch_size = 7;
  ProjectionRunner a(f.store, f.views, balances(), options);
  ProjectionRunner b(f.store, other, balances(), options);
  std::thread ta([&] { a.catch_up(); });
  std::thread tb([&] { b.catch_up(); });
  ta.join();
  tb.join();
  EXPECT_EQ(f.views.query_int("SELECT count(*) FROM balances_rows"), 400);
  EXPECT_EQ(f.views.query_int("SELECT sum(n) FROM balances_totals"), 400);
  EXPECT_EQ(total_cents(f.views), 400 * 401 / 2);
}

TEST(PostgresReadModel, CheckFindsEveryKindOfDifferenceAndRebuildSwapsInTheReplay) {
  Fixture f(20);
  ProjectionRunner runner(f.store, f.views, balances(), quick_retries());
  runner.catch_up();
  EXPECT_TRUE(runner.check().equal());
  f.views.write([](SqlTransaction& tx) {
    tx.exec("UPDATE balances_rows SET cents = cents + 1 WHERE position = 3");
    tx.exec("DELETE FROM balances_rows WHERE position = 5");
    tx.exec("INSERT INTO balances_rows VALUES (1000, 'ghost', 1)");
  });
  const auto report = runner.check();
  EXPECT_FALSE(report.equal());
  EXPECT_EQ(report.checkpoint, 20);
  EXPECT_EQ(report.differing, 1);
  EXPECT_EQ(report.only_in_replay, 1);
  EXPECT_EQ(report.only_in_live, 1);
  EXPECT_EQ(report.tables, (std::vector<std::string>{"balances_rows", "balances_totals"}));
  ASSERT_FALSE(report.samples.empty());
  EXPECT_EQ(report.samples[0].table, "balances_rows");

  runner.rebuild();
  EXPECT_TRUE(runner.check().equal());
  EXPECT_EQ(f.views.query_int("SELECT count(*) FROM balances_rows"), 20);
  EXPECT_EQ(f.views.checkpoint("balances"), 20);
  // The index came along with its table, and no shadow schema is left.
  EXPECT_EQ(f.views.query_int("SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND "
                              "indexname = 'balances_rows_stream'",
                              {f.views.schema()}),
            1);
  EXPECT_EQ(count_schemas("annals\\_shadow\\_%"), 0);
}

TEST(PostgresReadModel, CheckComparesTablesWithoutAKeyAsMultisets) {
  Fixture f(6);
  Projection log;
  log.name = "log";
  log.setup = [](SqlTransaction& tx) {
    tx.exec_script("CREATE TABLE IF NOT EXISTS log_lines (stream_id TEXT, cents BIGINT)");
  };
  log.apply = [](SqlTransaction& tx, const RecordedEvent& e) {
    tx.exec("INSERT INTO log_lines VALUES ($1, $2)", {e.stream_id, cents_of(e) % 2});
  };
  log.reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM log_lines"); };
  ProjectionRunner runner(f.store, f.views, log, quick_retries());
  runner.catch_up();
  EXPECT_TRUE(runner.check().equal());
  f.views.write([](SqlTransaction& tx) {
    tx.exec("INSERT INTO log_lines SELECT * FROM log_lines LIMIT 1");  // one row twice
  });
  const auto report = runner.check();
  EXPECT_EQ(report.only_in_live, 1);
  EXPECT_EQ(report.only_in_replay, 0);
}

TEST(PostgresReadModel, ARebuildRequestedThroughAnotherObjectIsHonoured) {
  Fixture f(12);
  ProjectionRunner runner(f.store, f.views, balances(), quick_retries());
  runner.catch_up();
  f.views.write([](SqlTransaction& tx) { tx.exec("DELETE FROM balances_totals"); });
  PostgresReadModel tool(testing::postgres_url(), views_options(f.views.schema()));
  request_rebuild(tool, "balances");
  EXPECT_TRUE(rebuild_requested(tool, "balances"));
  EXPECT_THROW(request_rebuild(tool, "nope"), InvalidArgument);
  runner.catch_up();
  EXPECT_FALSE(rebuild_requested(tool, "balances"));
  EXPECT_EQ(total_cents(f.views), 78);
  EXPECT_EQ(f.views.checkpoint_records().size(), 1u);
}

TEST(PostgresReadModel, AConsumerGroupSharesTheWorkAndEndsEqualToOneRunner) {
  Fixture f(60);
  ConsumerGroupOptions options;
  options.partitions = 4;
  options.runner = quick_retries();
  options.lease_duration = 10s;
  options.renew_interval = 100ms;
  options.worker_id = "w1";
  ConsumerGroupWorker w1(f.store, f.views, balances("grouped"), options);
  options.worker_id = "w2";
  ConsumerGroupWorker w2(f.store, f.views, balances("grouped"), options);
  w1.start();
  w2.start();
  ASSERT_TRUE(w1.wait_for(60, 60s));
  w1.stop();
  w2.stop();
  EXPECT_EQ(f.views.query_int("SELECT count(*) FROM grouped_rows"), 60);
  EXPECT_EQ(total_cents(f.views, "grouped"), 60 * 61 / 2);
  const auto groups = f.views.consumer_groups(f.store.head_position());
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].partitions, 4);
  EXPECT_EQ(groups[0].partition_status.size(), 4u);
}

TEST(PostgresReadModel, ASqliteStoreFeedsIt) {
  testing::TempDir dir;
  SqliteEventStore store(dir.path() / "events.db");
  for (int i = 1; i <= 5; ++i) store.append("acct-1", ExpectedVersion::any(), {deposit(i)});
  PostgresReadModel views(testing::postgres_url(), views_options(testing::fresh_schema()));
  ProjectionRunner runner(store, views, balances(), quick_retries());
  EXPECT_EQ(runner.catch_up(), 5);
  EXPECT_EQ(total_cents(views), 15);
  // The same projection on a SQLite read model gives the same rows.
  SqliteReadModel lite(dir.path() / "views.db");
  ProjectionRunner lite_runner(store, lite, balances(), quick_retries());
  lite_runner.catch_up();
  EXPECT_EQ(lite.query("SELECT position, stream_id, cents FROM balances_rows ORDER BY position"),
            views.query("SELECT position, stream_id, cents FROM balances_rows ORDER BY position"));
  EXPECT_TRUE(lite_runner.check().equal());
  lite_runner.rebuild();
  EXPECT_EQ(total_cents(lite), 15);
}

// ---- what the review of the first version found ----------------------------

TEST(PostgresReadModel, FloatsReadBackExactlyWhateverTheServerSettings) {
  PostgresReadModel views(testing::postgres_url(), views_options(testing::fresh_schema()));
  views.write([](SqlTransaction& tx) { tx.exec_script("CREATE TABLE f (r DOUBLE PRECISION)"); });
  const std::vector<double> values = {1.0 / 3, 5e-324, 1e300, -0.0,
                                      std::numeric_limits<double>::infinity(),
                                      -std::numeric_limits<double>::infinity()};
  views.write([&](SqlTransaction& tx) {
    // A session that asks for fewer digits does not change what reads back.
    tx.exec("SET LOCAL extra_float_digits = 0");
    for (const double v : values) tx.exec("INSERT INTO f VALUES ($1)", {v});
  });
  const auto rows = views.query("SELECT r FROM f");
  ASSERT_EQ(rows.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(rows[i][0].as_real(), values[i]);
  EXPECT_TRUE(std::isnan(views.query("SELECT 'NaN'::float8")[0][0].as_real()));
}

TEST(PostgresReadModel, WritesStayReadCommittedWhenTheServerDefaultIsSerializable) {
  const std::string& url = testing::postgres_url();
  if (url.find("://") != std::string::npos) GTEST_SKIP() << "needs a key=value connection string";
  Fixture f(300);
  const std::string strict = url + " options='-c default_transaction_isolation=serializable'";
  PostgresReadModel a(strict, views_options(f.views.schema()));
  PostgresReadModel b(strict, views_options(f.views.schema()));
  EXPECT_EQ(a.query("SHOW default_transaction_isolation")[0][0], SqlValue("serializable"));
  ProjectionRunnerOptions options = quick_retries();
  options.batch_size = 5;
  ProjectionRunner ra(f.store, a, balances(), options);
  ProjectionRunner rb(f.store, b, balances(), options);
  std::thread ta([&] { EXPECT_EQ(ra.catch_up(), 300); });
  std::thread tb([&] { EXPECT_EQ(rb.catch_up(), 300); });
  ta.join();
  tb.join();
  EXPECT_EQ(f.views.query_int("SELECT count(*) FROM balances_rows"), 300);
  EXPECT_FALSE(ra.status().failure.has_value());
  EXPECT_FALSE(rb.status().failure.has_value());
}

TEST(PostgresReadModel, AWriteWaitsForTheSchemasLockAtMostLockTimeout) {
  PostgresReadModelOptions quick = views_options(testing::fresh_schema());
  quick.lock_timeout = 300ms;
  PostgresReadModel outer(testing::postgres_url(), quick);
  PostgresReadModel second(testing::postgres_url(), quick);
  outer.write([](SqlTransaction& tx) { tx.exec_script("CREATE TABLE t (x BIGINT)"); });
  // A second object of the same schema inside this thread's write(): the
  // lock is held further up the stack, so it could only wait forever.
  outer.write([&](SqlTransaction& tx) {
    tx.exec("INSERT INTO t VALUES (1)");
    try {
      second.write([](SqlTransaction& inner) { inner.exec("INSERT INTO t VALUES (2)"); });
      ADD_FAILURE() << "the nested write did not time out";
    } catch (const StorageError& e) {
      EXPECT_NE(std::string(e.what()).find("waited 300 ms for the schema's write lock"),
                std::string::npos)
          << e.what();
    }
  });
  EXPECT_EQ(outer.query_int("SELECT count(*) FROM t"), 1);
  second.write([](SqlTransaction& tx) { tx.exec("INSERT INTO t VALUES (3)"); });  // free again
  EXPECT_EQ(outer.query_int("SELECT sum(x) FROM t"), 4);

  PostgresReadModelOptions never = quick;
  never.lock_timeout = 0ms;
  EXPECT_THROW(PostgresReadModel(testing::postgres_url(), never), InvalidArgument);
}

TEST(PostgresReadModel, ASwapThatAReaderBlocksFailsAfterLockTimeoutAndChangesNothing) {
  Fixture f(12);
  PostgresReadModelOptions quick = views_options(f.views.schema());
  quick.lock_timeout = 300ms;
  PostgresReadModel views(testing::postgres_url(), quick);
  ProjectionRunner runner(f.store, views, balances(), quick_retries());
  runner.catch_up();
  // Another session reads a live table in an open transaction: its lock
  // keeps the swap's DROP waiting.
  PGconn* reader = PQconnectdb(testing::postgres_url().c_str());
  ASSERT_EQ(PQstatus(reader), CONNECTION_OK);
  const auto run = [&](const std::string& sql) { PQclear(PQexec(reader, sql.c_str())); };
  run("BEGIN");
  run("SELECT count(*) FROM \"" + views.schema() + "\".balances_rows");
  EXPECT_THROW(runner.rebuild(), StorageError);
  run("ROLLBACK");
  PQfinish(reader);
  EXPECT_EQ(views.query_int("SELECT count(*) FROM balances_rows"), 12);
  EXPECT_EQ(count_schemas("annals\\_shadow\\_%"), 0);
  runner.rebuild();
  EXPECT_EQ(views.query_int("SELECT count(*) FROM balances_rows"), 12);
  EXPECT_TRUE(runner.check().equal());
}

TEST(PostgresReadModel, ARoleWithoutCreateOpensAnExistingModelAndAsksForARebuild) {
  Fixture f(5);
  ProjectionRunner runner(f.store, f.views, balances(), quick_retries());
  runner.catch_up();
  const std::string role = f.views.schema() + "_ops";
  const std::string schema = "\"" + f.views.schema() + "\"";
  f.views.write([&](SqlTransaction& tx) {
    tx.exec_script("CREATE ROLE " + role + " LOGIN; GRANT USAGE ON SCHEMA " + schema + " TO " +
                   role + "; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " +
                   schema + " TO " + role);
  });
  PostgresReadModel ops(testing::postgres_url() + " user=" + role, views_options(f.views.schema()));
  request_rebuild(ops, "balances");
  EXPECT_TRUE(f.views.checkpoint_record("balances")->rebuild_requested);
}

TEST(PostgresReadModel, RebuildKeepsGrantsAndTablesThatReferenceEachOther) {
  Fixture f(9);
  const std::string role = f.views.schema() + "_reader";
  PostgresReadModel admin(testing::postgres_url());
  admin.write([&](SqlTransaction& tx) { tx.exec_script("CREATE ROLE " + role); });
  Projection linked;
  linked.name = "linked";
  linked.setup = [](SqlTransaction& tx) {
    tx.exec_script(
        "CREATE TABLE IF NOT EXISTS owners (stream_id TEXT PRIMARY KEY);"
        "CREATE TABLE IF NOT EXISTS moves (position BIGINT PRIMARY KEY, "
        "stream_id TEXT NOT NULL REFERENCES owners (stream_id), cents BIGINT NOT NULL, "
        "extra JSON)");
  };
  linked.apply = [](SqlTransaction& tx, const RecordedEvent& e) {
    tx.exec("INSERT INTO owners VALUES ($1) ON CONFLICT DO NOTHING", {e.stream_id});
    tx.exec("INSERT INTO moves VALUES ($1, $2, $3, $4)",
            {e.position, e.stream_id, cents_of(e), R"({"json": true})"});
  };
  linked.reset = [](SqlTransaction& tx) { tx.exec_script("DELETE FROM moves; DELETE FROM owners"); };
  ProjectionRunner runner(f.store, f.views, linked, quick_retries());
  runner.catch_up();
  f.views.write([&](SqlTransaction& tx) { tx.exec_script("GRANT SELECT ON moves TO " + role); });
  EXPECT_TRUE(runner.check().equal());  // a json column compares too
  runner.rebuild();
  EXPECT_EQ(f.views.query_int("SELECT count(*) FROM moves"), 9);
  EXPECT_EQ(f.views.query_int("SELECT has_table_privilege($1, $2, 'SELECT')::int",
                              {role, f.views.schema() + ".moves"}),
            1);
  EXPECT_TRUE(runner.check().equal());
}

TEST(PostgresReadModel, ARebuildWhoseTablesNeedATypeItsSetupMadeIsRefusedAndChangesNothing) {
  Fixture f(4);
  Projection typed;
  typed.name = "typed";
  typed.setup = [](SqlTransaction& tx) {
    tx.exec_script(
        "DO $$ BEGIN IF to_regtype('kind') IS NULL THEN CREATE TYPE kind AS ENUM ('in', 'out'); "
        "END IF; END $$;"
        "CREATE TABLE IF NOT EXISTS kinds (position BIGINT PRIMARY KEY, k kind)");
  };
  typed.apply = [](SqlTransaction& tx, const RecordedEvent& e) {
    tx.exec("INSERT INTO kinds VALUES ($1, 'in')", {e.position});
  };
  typed.reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM kinds"); };
  ProjectionRunner runner(f.store, f.views, typed, quick_retries());
  runner.catch_up();
  // The type exists in the live schema, and the replay's search_path finds
  // it there: the rebuild works.
  runner.rebuild();
  EXPECT_EQ(f.views.query_int("SELECT count(*) FROM kinds"), 4);

  // A setup that creates its type unconditionally makes it in the replay's
  // schema: the swap is refused, naming it, and the live model stays.
  auto eager = typed;
  eager.setup = [](SqlTransaction& tx) {
    tx.exec_script(
        "DO $$ BEGIN IF to_regtype('mood') IS NULL OR current_schema() LIKE 'annals\\_shadow\\_%' "
        "THEN CREATE TYPE mood AS ENUM ('calm'); END IF; END $$;"
        "CREATE TABLE IF NOT EXISTS kinds2 (position BIGINT PRIMARY KEY, m mood)");
  };
  eager.name = "eager";
  eager.apply = [](SqlTransaction& tx, const RecordedEvent& e) {
    tx.exec("INSERT INTO kinds2 VALUES ($1, 'calm')", {e.position});
  };
  eager.reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM kinds2"); };
  ProjectionRunner eager_runner(f.store, f.views, eager, quick_retries());
  eager_runner.catch_up();
  try {
    eager_runner.rebuild();
    FAIL() << "the swap was made";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("type"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mood"), std::string::npos) << e.what();
  }
  EXPECT_EQ(f.views.query_int("SELECT count(*) FROM kinds2"), 4);
  EXPECT_EQ(f.views.query_int("SELECT count(*) FROM information_schema.columns WHERE "
                              "table_schema = $1 AND table_name = 'kinds2'",
                              {f.views.schema()}),
            2);
  EXPECT_EQ(count_schemas("annals\\_shadow\\_%"), 0);
  f.add(1);
  EXPECT_EQ(eager_runner.catch_up(), 5);
}

TEST(PostgresReadModel, ACheckOfAReadOnlyModelLeavesNoSchemaBehind) {
  Fixture f(5);
  ProjectionRunner runner(f.store, f.views, balances(), quick_retries());
  runner.catch_up();
  PostgresReadModelOptions look = views_options(f.views.schema());
  look.read_only = true;
  const PostgresReadModel reader(testing::postgres_url(), look);
  EXPECT_TRUE(check_projection(f.store, reader, balances()).equal());
  EXPECT_EQ(count_schemas("annals\\_shadow\\_%"), 0);
}

}  // namespace
}  // namespace annals
