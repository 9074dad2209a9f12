// The built `annals` program on a PostgreSQL store named by a postgresql://
// (or postgres://) URL: the store commands read, follow, verify, export and
// import it; projections, rebuild and check work on a PostgreSQL read model
// (beside the store, or named by --read-model URL); seal too. serve is tested
// in postgres_serve_test.cpp. The server is a throwaway cluster
// (tests/postgres/postgres_server.hpp); each test uses a schema of its own,
// given to the program through ANNALS_PG_SCHEMA (and
// ANNALS_PG_READ_MODEL_SCHEMA).

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "annals/core/error.hpp"
#include "annals/projections/check_request.hpp"
#include "annals/projections/postgres_read_model.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/projections/rebuild_request.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "postgres/postgres_server.hpp"
#include "postgres_tool_fixtures.hpp"
#include "tool_fixtures.hpp"

namespace annals {
namespace {

[[maybe_unused]] ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new testing::PostgresEnvironment);

using namespace testing;
using namespace std::chrono_literals;

TEST_F(PostgresTool, StoreCommandsReadAStoreNamedByAPostgresqlUrl) {
  fill();
  const std::string url = server_url();
  auto r = annals({"streams", "--db", url});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "account-1\t3\naccount-2\t1\naudit-1\t1\n");
  r = annals({"read", "account-1", "--db", url, "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;
  EXPECT_NE(r.out.find(R"("amount":200)"), std::string::npos) << r.out;
  r = annals({"tail", "--db", url});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("5\taudit-1@1\t"), std::string::npos) << r.out;
  r = annals({"verify", "--db", url});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "ok: 5 events, hash chain intact\n");
  r = annals({"stats", "--db", url, "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(R"("events":5)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("head_position":5)"), std::string::npos) << r.out;
}

TEST_F(PostgresTool, ThePostgresSchemeAndTheDbBeforeTheCommandWorkToo) {
  fill();
  const auto r = annals({"--db", server_url("postgres"), "streams", "--prefix", "account-"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "account-1\t3\naccount-2\t1\n");
}

TEST_F(PostgresTool, ExportFromSqliteImportIntoPostgresAndBackIsByteIdentical) {
  fill_sample(dir_ / "a.db");
  const auto exported = annals({"export", "--db", (dir_ / "a.db").string()});
  ASSERT_EQ(exported.code, 0) << exported.err;
  write_file(dir_ / "a.jsonl", exported.out);
  const std::string url = server_url();
  const auto imported = annals({"import", "--db", url, "-"}, dir_ / "a.jsonl");
  ASSERT_EQ(imported.code, 0) << imported.err;
  EXPECT_NE(imported.err.find("imported 5 events"), std::string::npos) << imported.err;
  EXPECT_EQ(annals({"verify", "--db", url}).code, 0);
  const auto again = annals({"export", "--db", url});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, exported.out);
  // And back: PostgreSQL's export imported into a new SQLite file.
  write_file(dir_ / "b.jsonl", again.out);
  ASSERT_EQ(annals({"import", "--db", (dir_ / "b.db").string(), "-"}, dir_ / "b.jsonl").code, 0);
  EXPECT_EQ(annals({"export", "--db", (dir_ / "b.db").string()}).out, exported.out);
}

TEST_F(PostgresTool, ImportIntoANonEmptyStoreIsRefusedAndChangesNothing) {
  fill();
  const std::string url = server_url();
  const auto before = annals({"export", "--db", url});
  write_file(dir_ / "dump.jsonl", before.out);
  const auto r = annals({"import", "--db", url, "-"}, dir_ / "dump.jsonl");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not empty"), std::string::npos) << r.err;
  EXPECT_EQ(annals({"export", "--db", url}).out, before.out);
}

TEST_F(PostgresTool, AnImportWithABadHashIsRefusedWholeAndLeavesTheStoreEmpty) {
  fill_sample(dir_ / "a.db");
  std::string dump = annals({"export", "--db", (dir_ / "a.db").string()}).out;
  const auto at = dump.rfind("\"hash\":\"") + 8;  // the last event's hash
  dump[at] = dump[at] == '0' ? '1' : '0';
  write_file(dir_ / "bad.jsonl", dump);
  const std::string url = server_url();
  const auto r = annals({"import", "--db", url, "-"}, dir_ / "bad.jsonl");
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("does not match"), std::string::npos) << r.err;
  PostgresEventStore store(postgres_url(), options());
  EXPECT_EQ(store.head_position(), 0);
}

TEST_F(PostgresTool, TailFollowIsWokenByACommitWithoutWaitingForItsPollInterval) {
  fill();
  Outcome follow;
  // A poll interval of ten minutes: only LISTEN/NOTIFY can print the event
  // before the two-minute timeout.
  std::thread tail([&] {
    follow = annals({"tail", "--db", server_url(), "--follow", "--from", "6", "--max-events",
                     "1", "--poll-interval", "600000", "--timeout", "120"});
  });
  std::this_thread::sleep_for(300ms);  // let it settle into its wait (not required)
  {
    PostgresEventStore store(postgres_url(), options());
    store.append("late-1", ExpectedVersion::any(), {tool_event("test.Late")});
  }
  tail.join();
  ASSERT_EQ(follow.code, 0) << follow.err;
  EXPECT_NE(follow.out.find("6\tlate-1@1\t"), std::string::npos) << follow.out;
}

// ---- PostgreSQL read models --------------------------------------------------------

// One row per stream with its event count (BIGINT: INTEGER is 32 bits on
// PostgreSQL).
Projection counter() {
  Projection p;
  p.name = "counter";
  p.setup = [](SqlTransaction& tx) {
    tx.exec_script("CREATE TABLE IF NOT EXISTS counts (stream_id TEXT PRIMARY KEY, n BIGINT)");
  };
  p.apply = [](SqlTransaction& tx, const RecordedEvent& e) {
    tx.exec("INSERT INTO counts VALUES ($1, 1) ON CONFLICT(stream_id) DO UPDATE SET n = counts.n + 1",
            {e.stream_id});
  };
  p.reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM counts"); };
  return p;
}

// Waits (bounded) until a started runner has recorded a state other than
// "stopped", which is what the tool looks at.
bool recorded_running(const ReadModel& views) {
  for (int i = 0; i < 30'000; ++i) {
    const auto r = views.checkpoint_record("counter");
    if (r && r->state != ProjectionState::stopped) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

// Whether `schema` has a table `table` (through the catalog, so asking
// creates nothing).
bool has_table(const std::string& schema, const std::string& table) {
  PostgresReadModelOptions o;
  o.schema = "pg_catalog";
  o.read_only = true;
  const PostgresReadModel catalog(postgres_url(), o);
  return catalog
             .query_int("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
                        {schema, table})
             .value_or(0) > 0;
}

TEST_F(PostgresTool, ProjectionsOnAPostgresStoreShowTheReadModelBesideTheStore) {
  fill();
  const std::string url = server_url();
  // No read model here yet: nothing to list, and looking creates nothing.
  auto r = annals({"projections", "--db", url});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(has_table(schema_, "projection_checkpoints"));
  std::string stored_state;
  std::int64_t updated_at = 0;
  {
    PostgresEventStore store(postgres_url(), options());
    PostgresReadModel views(postgres_url(), views_options());
    ProjectionRunner runner(store, views, counter());
    EXPECT_EQ(runner.catch_up(), 5);
    store.append("late-1", ExpectedVersion::any(), {tool_event("test.Late")});
    const auto record = views.checkpoint_record("counter");
    stored_state = std::string(to_string(record->state));
    updated_at = to_micros(record->updated_at);
  }
  r = annals({"projections", "--db", url});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "counter\tcheckpoint 5\thead 6\tlag 1\t" + stored_state + "\n");
  r = annals({"projections", "--db", url, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["name"], "counter");
  EXPECT_EQ(j["checkpoint"], 5);
  EXPECT_EQ(j["head_position"], 6);
  EXPECT_EQ(j["lag"], 1);
  EXPECT_EQ(j["rebuild_requested"], false);
  // A look only: the checkpoint row is as the runner left it.
  const PostgresReadModel views(postgres_url(), views_options());
  EXPECT_EQ(to_micros(views.checkpoint_record("counter")->updated_at), updated_at);
  EXPECT_FALSE(rebuild_requested(views, "counter"));
  EXPECT_FALSE(check_record(views, "counter").has_value());
}

TEST_F(PostgresTool, RebuildOnAPostgresReadModelRecordsARequestTheRunnerCarriesOut) {
  fill();
  const std::string url = server_url();
  PostgresEventStore store(postgres_url(), options());
  PostgresReadModel views(postgres_url(), views_options());
  {
    ProjectionRunner runner(store, views, counter());
    ASSERT_EQ(runner.catch_up(), 5);
  }
  views.write([](SqlTransaction& tx) { tx.exec("UPDATE counts SET n = 99"); });
  auto r = annals({"rebuild", "counter", "--db", url});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("rebuild of 'counter' requested in schema \"" + schema_ + "\" of '"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(rebuild_requested(views, "counter"));
  r = annals({"projections", "--db", url});
  EXPECT_NE(r.out.find("\trebuild requested"), std::string::npos) << r.out;
  // Its state is "stopped": --wait says no runner runs it, and does not wait.
  r = annals({"rebuild", "counter", "--db", url, "--wait", "--poll-interval", "10"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no runner of 'counter' is running"), std::string::npos) << r.err;
  {
    ProjectionRunner runner(store, views, counter());
    EXPECT_EQ(runner.catch_up(), 5);  // reset, then every event again
  }
  EXPECT_FALSE(rebuild_requested(views, "counter"));
  EXPECT_EQ(views.query_int("SELECT max(n) FROM counts"), 3);
}

TEST_F(PostgresTool, CheckOnAPostgresReadModelIsServedByItsRunningRunner) {
  fill();
  const std::string url = server_url();
  PostgresEventStore store(postgres_url(), options());
  PostgresReadModel views(postgres_url(), views_options());
  ProjectionRunnerOptions options;
  options.poll_interval = 5ms;
  ProjectionRunner runner(store, views, counter(), options);
  runner.catch_up();
  views.write([](SqlTransaction& tx) {
    tx.exec("UPDATE counts SET n = 7 WHERE stream_id = 'account-1'");
  });
  runner.start();
  // A runner started at the head records its state with its next batch.
  store.append("audit-2", ExpectedVersion::no_stream(), {tool_event("audit.Checked")});
  ASSERT_TRUE(recorded_running(views));
  auto r = annals({"check", "counter", "--db", url, "--timeout", "60", "--poll-interval", "5"});
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("check of 'counter' requested in schema \"" + schema_ + "\" of '"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("check of 'counter' at position 6: DIFFERS (4 live rows, 4 replayed; 0 "
                       "only in live, 0 only in replay, 1 differing)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("counts differing: stream_id=account-1 n=7 (replay: 3)"), std::string::npos)
      << r.out;
  runner.stop();
  EXPECT_EQ(views.query_int("SELECT n FROM counts WHERE stream_id = 'account-1'"), 7)
      << "the check changes nothing";
  r = annals({"check", "counter", "--db", url, "--last", "--json"});
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_EQ(Json::parse(r.out).at("differing"), 1);
}

TEST_F(PostgresTool, CheckOfAStoppedProjectionRecordsTheRequestAndDoesNotWait) {
  fill();
  const std::string url = server_url();
  PostgresEventStore store(postgres_url(), options());
  PostgresReadModel views(postgres_url(), views_options());
  ProjectionRunner runner(store, views, counter());
  runner.catch_up();
  auto r = annals({"check", "counter", "--db", url, "--last"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no check of 'counter' has been recorded yet"), std::string::npos) << r.err;
  EXPECT_FALSE(check_record(views, "counter").has_value()) << "--last requests nothing";
  r = annals({"check", "counter", "--db", url});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not waiting: no runner of 'counter' is running"), std::string::npos)
      << r.err;
  const auto pending = check_record(views, "counter");
  ASSERT_TRUE(pending.has_value());
  EXPECT_FALSE(pending->checked_at.has_value());
  runner.catch_up();  // serves the pending request
  r = annals({"check", "counter", "--db", url, "--last"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("check of 'counter' at position 5: ok"), std::string::npos) << r.out;
}

TEST_F(PostgresTool, AnUnknownProjectionInAPostgresReadModelIsRefusedAndNothingIsRecorded) {
  fill();
  const std::string url = server_url();
  PostgresEventStore store(postgres_url(), options());
  PostgresReadModel views(postgres_url(), views_options());
  ProjectionRunner runner(store, views, counter());
  runner.catch_up();
  for (const auto& command : {"rebuild", "check"}) {
    const auto r = annals({command, "countr", "--db", url});
    EXPECT_EQ(r.code, 1) << command << ": " << r.err;
    EXPECT_NE(r.err.find(std::string("annals ") + command + ": no projection named 'countr' in "
                                                          "schema \"" + schema_ + "\" of '"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("(it has: counter)"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(rebuild_requested(views, "counter"));
  EXPECT_FALSE(check_record(views, "countr").has_value());
  EXPECT_FALSE(check_record(views, "counter").has_value());
}

TEST_F(PostgresTool, AReadModelUrlWithItsOwnSchemaServesPostgresAndSqliteStores) {
  fill();
  const std::string url = server_url();
  const std::string views_schema = schema_ + "_views";
  PostgresReadModelOptions o;
  o.schema = views_schema;
  {
    PostgresEventStore store(postgres_url(), options());
    PostgresReadModel views(postgres_url(), o);
    ProjectionRunner runner(store, views, counter());
    ASSERT_EQ(runner.catch_up(), 5);
  }
  // Given by --read-model (the postgres:// form here), beside a PostgreSQL
  // store in another schema.
  auto r = annals_views_in(views_schema, {"projections", "--db", url, "--read-model",
                                          server_url("postgres")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("counter\tcheckpoint 5\thead 5\tlag 0"), std::string::npos) << r.out;
  // Without ANNALS_PG_READ_MODEL_SCHEMA the read model is in the store's
  // schema, which has none; with it, no --read-model is needed.
  r = annals({"projections", "--db", url});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  r = annals_views_in(views_schema, {"rebuild", "counter", "--db", url});
  EXPECT_EQ(r.code, 0) << r.err;
  const PostgresReadModel views(postgres_url(), o);
  EXPECT_TRUE(rebuild_requested(views, "counter"));
  // A PostgreSQL read model fed by an SQLite store.
  fill_sample(dir_ / "a.db");
  const std::string sqlite_views = schema_ + "_sqlite_views";
  {
    SqliteEventStore store(dir_ / "a.db");
    PostgresReadModelOptions so;
    so.schema = sqlite_views;
    PostgresReadModel from_sqlite(postgres_url(), so);
    ProjectionRunner runner(store, from_sqlite, counter());
    ASSERT_EQ(runner.catch_up(), 5);
  }
  r = annals_views_in(sqlite_views, {"check", "counter", "--db", (dir_ / "a.db").string(),
                                     "--read-model", url});
  EXPECT_EQ(r.code, 1) << r.err;  // stopped: recorded, not waited for
  EXPECT_NE(r.err.find("check of 'counter' requested in schema \"" + sqlite_views + "\""),
            std::string::npos)
      << r.err;
  r = annals_views_in(sqlite_views, {"projections", "--db", (dir_ / "a.db").string(),
                                     "--read-model", url});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("counter\tcheckpoint 5\thead 5\tlag 0"), std::string::npos) << r.out;
}

TEST_F(PostgresTool, AMissingReadModelSchemaIsUnusableAndIsNotCreated) {
  fill();
  const std::string url = server_url();
  const std::string missing = schema_ + "_none";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"projections", "--db", url},
           {"rebuild", "counter", "--db", url},
           {"check", "counter", "--db", url},
           {"projections", "--db", url, "--read-model", url}}) {
    const auto r = annals_views_in(missing, args);
    EXPECT_EQ(r.code, 3) << args.front() << ": " << r.err;
    EXPECT_EQ(r.err.rfind("annals " + args.front() + ": cannot open the read model in '", 0), 0u)
        << r.err;
    EXPECT_NE(r.err.find("\"" + missing + "\""), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << args.front();
  }
  PostgresReadModelOptions o;
  o.schema = missing;
  o.read_only = true;
  EXPECT_THROW({ PostgresReadModel views(postgres_url(), o); }, StorageError);
  const auto bad = annals_views_in("no-dashes", {"projections", "--db", url});
  EXPECT_EQ(bad.code, 2) << bad.err;
  EXPECT_NE(bad.err.find("ANNALS_PG_READ_MODEL_SCHEMA"), std::string::npos) << bad.err;
}

TEST_F(PostgresTool, AnUnreachableReadModelServerIsUnusableAndThePasswordIsNotPrinted) {
  fill_sample(dir_ / "a.db");
  const auto r = annals({"projections", "--db", (dir_ / "a.db").string(), "--read-model",
                         "postgresql://ann:s3cret@/nodb?host=/nonexistent-annals-dir&port=1"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("ann:***@"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("s3cret"), std::string::npos) << r.err;
}

TEST_F(PostgresTool, ProjectionsOfAPostgresStoreAreShownFromTheReadModelFileGiven) {
  fill();
  {
    PostgresEventStore store(postgres_url(), options());
    SqliteReadModel views(dir_ / "views.db");
    ProjectionRunner runner(store, views,
                            Projection{.name = "count",
                                       .filter = {},
                                       .setup = [](SqlTransaction&) {},
                                       .apply = [](SqlTransaction&, const RecordedEvent&) {},
                                       .reset = {}});
    EXPECT_EQ(runner.catch_up(), 5);
    store.append("late-1", ExpectedVersion::any(), {tool_event("test.Late")});
  }
  const auto r = annals(
      {"projections", "--db", server_url(), "--read-model", (dir_ / "views.db").string()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("count\tcheckpoint 5\thead 6\tlag 1"), std::string::npos) << r.out;
}

TEST_F(PostgresTool, AStoreThatDoesNotExistIsUnusableAndNothingIsCreated) {
  const std::string url = server_url();
  const auto r = annals({"streams", "--db", url});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find(schema_), std::string::npos) << r.err;
  PostgresStoreOptions only_open = options();
  only_open.create_if_missing = false;
  EXPECT_THROW({ PostgresEventStore store(postgres_url(), only_open); }, StorageError);
  const auto exists = annals({"import", "--db", url, "-"});  // empty input: creates the store
  EXPECT_EQ(exists.code, 0) << exists.err;
  EXPECT_EQ(annals({"streams", "--db", url}).code, 0);
}

TEST_F(PostgresTool, AnUnreachableServerIsUnusableAndThePasswordIsNotPrinted) {
  const auto r = annals({"streams", "--db",
                         "postgresql://ann:s3cret@/nodb?host=/nonexistent-annals-dir&port=1"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("PostgreSQL"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("s3cret"), std::string::npos) << r.err;
}

}  // namespace
TEST_F(PostgresTool, SealAndVerifySealWorkOnAPostgresqlUrl) {
  fill();
  const std::string url = server_url();
  ASSERT_EQ(annals({"keygen", "--key", (dir_ / "k.pem").string(), "--public",
                    (dir_ / "k.pub").string()})
                .code,
            0);
  const auto sealed = annals({"seal", "--db", url, "--key", (dir_ / "k.pem").string()});
  ASSERT_EQ(sealed.code, 0) << sealed.err;
  EXPECT_NE(sealed.err.find("sealed"), std::string::npos) << sealed.err;
  std::ofstream(dir_ / "seal.json") << sealed.out;
  const auto checked = annals({"verify", "--db", url, "--seal", (dir_ / "seal.json").string(),
                               "--key", (dir_ / "k.pub").string()});
  EXPECT_EQ(checked.code, 0) << checked.out << checked.err;
  EXPECT_NE(checked.out.find("holds"), std::string::npos) << checked.out;
  EXPECT_NE(checked.out.find("trusted key"), std::string::npos) << checked.out;
}

}  // namespace annals
