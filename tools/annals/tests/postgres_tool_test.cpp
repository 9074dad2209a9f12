// The built `annals` program on a PostgreSQL store named by a postgresql://
// (or postgres://) URL: the store commands read, follow, verify, export and
// import it; the commands that need an SQLite read model say so. The server
// is a throwaway cluster (tests/postgres/postgres_server.hpp); each test uses
// a schema of its own, given to the program through ANNALS_PG_SCHEMA.

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "annals/core/error.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "postgres/postgres_server.hpp"
#include "tool_fixtures.hpp"

namespace annals {
namespace {

[[maybe_unused]] ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new testing::PostgresEnvironment);

using namespace testing;
using namespace std::chrono_literals;

// The server as a URL: ANNALS_TEST_PG_URL when it is one, else built from the
// keyword string of the throwaway cluster (host=<socket dir> port=... ...).
std::string server_url(const std::string& scheme = "postgresql") {
  const std::string conn = postgres_url();
  if (conn.starts_with("postgresql://")) return scheme + conn.substr(10);
  if (conn.starts_with("postgres://")) return scheme + conn.substr(8);
  std::map<std::string, std::string> kv;
  std::istringstream words(conn);
  for (std::string word; words >> word;) {
    const auto eq = word.find('=');
    if (eq != std::string::npos) kv[word.substr(0, eq)] = word.substr(eq + 1);
  }
  std::string url = scheme + "://";
  if (kv.count("user") != 0) url += kv["user"] + "@";
  url += "/" + (kv.count("dbname") != 0 ? kv["dbname"] : std::string("postgres")) + "?";
  if (kv.count("host") != 0) url += "host=" + kv["host"] + "&";
  if (kv.count("port") != 0) url += "port=" + kv["port"] + "&";
  url.pop_back();
  return url;
}

class PostgresTool : public ::testing::Test {
 protected:
  PostgresTool() : schema_(fresh_schema()) {}

  PostgresStoreOptions options() const {
    PostgresStoreOptions o;
    o.schema = schema_;
    return o;
  }
  // account-1 (3 events), account-2 (1), audit-1 (1): positions 1..5.
  void fill() {
    PostgresEventStore store(postgres_url(), options());
    store.append("account-1", ExpectedVersion::no_stream(),
                 {tool_event("bank.Opened", R"({"owner":"Ada"})"),
                  tool_event("bank.Deposited", R"({"amount":500})"),
                  tool_event("bank.Withdrawn", R"({"amount":200})")});
    store.append("account-2", ExpectedVersion::no_stream(),
                 {tool_event("bank.Opened", R"({"owner":"Bob"})")});
    store.append("audit-1", ExpectedVersion::no_stream(), {tool_event("audit.Checked")});
  }
  Outcome annals(const std::vector<std::string>& args,
                 const std::filesystem::path& stdin_file = "/dev/null") {
    return annals_exec(dir_.path(), args, stdin_file, {"env", "ANNALS_PG_SCHEMA=" + schema_});
  }

  std::string schema_;
  TempDir dir_;
};

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

TEST_F(PostgresTool, ReadModelCommandsOnAPostgresUrlSayTheyNeedAnSqliteReadModel) {
  fill();
  const std::string url = server_url();
  const std::vector<std::vector<std::string>> commands{{"projections", "--db", url},
                                                       {"rebuild", "balances", "--db", url},
                                                       {"check", "balances", "--db", url},
                                                       {"serve", "--db", url}};
  for (const auto& args : commands) {
    const auto r = annals(args);
    EXPECT_EQ(r.code, 2) << args.front() << ": " << r.err;
    EXPECT_NE(r.err.find("SQLite"), std::string::npos) << args.front() << ": " << r.err;
    EXPECT_NE(r.err.find("PostgreSQL"), std::string::npos) << args.front() << ": " << r.err;
  }
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
