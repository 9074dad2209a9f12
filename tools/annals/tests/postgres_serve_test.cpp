// `annals serve --db postgresql://...`, the built program in a process of its
// own, over HTTP: the JSON API, the projections of a PostgreSQL read model,
// verify, the live tail woken by another process's commit, /metrics, the same
// errors as on SQLite, nothing written, and a server that goes away and comes
// back. Part of annals_postgres_tool_tests (one throwaway cluster).

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "annals/core/clock.hpp"
#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/projections/postgres_read_model.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "postgres_tool_fixtures.hpp"

extern char** environ;

namespace annals {
namespace {

using namespace testing;
using namespace std::chrono_literals;

// Generous bounds for a loaded machine: they end a test that would hang, and
// are never what a test checks.
constexpr auto kPatience = 60s;

// `annals serve ... --port 0` run as a process, with `env` (NAME=value) added
// to its environment; stopped with SIGTERM when destroyed.
class ServeProcess {
 public:
  ServeProcess(const std::filesystem::path& dir, const std::vector<std::string>& env,
               const std::vector<std::string>& args)
      : out_(dir / ("serve-out-" + std::to_string(++count_))),
        err_(dir / ("serve-err-" + std::to_string(count_))) {
    std::vector<std::string> argv{"env"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back(ANNALS_TOOL_BINARY);
    argv.push_back("serve");
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--port");
    argv.push_back("0");
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&files, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&files, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int failed = ::posix_spawnp(&pid_, "env", &files, nullptr, raw.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    if (failed != 0) throw std::runtime_error("cannot start annals serve");
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    // The address line, found with a plain search: std::regex trips GCC 12's
    // -Wmaybe-uninitialized under the ASan preset's -O1.
    const std::string address = "http://127.0.0.1:";
    while (std::chrono::steady_clock::now() < deadline && running()) {
      const std::string out = file_bytes(out_);
      if (const auto at = out.find(address); at != std::string::npos) {
        const auto digits = at + address.size();
        const auto end = out.find_first_not_of("0123456789", digits);
        if (end != std::string::npos && end > digits && out[end] == '/') {
          port_ = std::stoi(out.substr(digits, end - digits));
          return;
        }
      }
      std::this_thread::sleep_for(20ms);
    }
  }
  ~ServeProcess() { stop(); }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // 0 when it printed no address (it exited: see code() and err()).
  int port() const { return port_; }
  bool running() {
    if (code_) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return true;
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
    return false;
  }
  // Stops it (SIGTERM) and returns its exit code.
  int stop() {
    if (running()) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
    }
    return *code_;
  }
  std::string out() const { return file_bytes(out_); }
  std::string err() const { return file_bytes(err_); }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(kPatience).count());
    return c;
  }

 private:
  static inline int count_ = 0;
  std::filesystem::path out_;
  std::filesystem::path err_;
  pid_t pid_ = 0;
  int port_ = 0;
  std::optional<int> code_;
};

Json body_json(const httplib::Result& r) {
  if (!r) return Json{{"no_response", httplib::to_string(r.error())}};
  return Json::parse(r->body);
}

// The body of an event stream until `done` says it has what it wants, or the
// server ends it, or kPatience passes (checked at each chunk; the tail sends
// one at least every 15 s).
std::string read_stream_until(httplib::Client& client, const std::string& path,
                              const std::function<bool(const std::string&)>& done) {
  std::string body;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  client.Get(path, [&](const char* data, std::size_t n) {
    body.append(data, n);
    return !done(body) && std::chrono::steady_clock::now() < deadline;
  });
  return body;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// What a schema holds: its relations and functions, and the rows of the
// store's tables (-1: no such table), through the catalog and a read-only look.
std::string schema_contents(const std::string& schema) {
  PostgresReadModelOptions o;
  o.schema = "pg_catalog";
  o.read_only = true;
  const PostgresReadModel catalog(postgres_url(), o);
  std::string out;
  for (const SqlRow& row : catalog.query(
           "SELECT c.relname::text || ':' || c.relkind::text FROM pg_class c JOIN pg_namespace n "
           "ON n.oid = c.relnamespace WHERE n.nspname = $1 "
           "UNION ALL SELECT p.proname::text || ':f' FROM pg_proc p JOIN pg_namespace n "
           "ON n.oid = p.pronamespace WHERE n.nspname = $1 ORDER BY 1",
           {schema})) {
    out += row.at(0).as_text() + "\n";
  }
  for (const char* table : {"events", "streams", "annals_meta", "annals_head", "snapshots"}) {
    std::int64_t rows = -1;
    try {
      rows = catalog.query_int("SELECT count(*) FROM \"" + schema + "\"." + table).value_or(-1);
    } catch (const StorageError&) {  // no such table
    }
    out += std::string(table) + " rows: " + std::to_string(rows) + "\n";
  }
  return out;
}

class PostgresServe : public PostgresTool {
 protected:
  // The store of fill() and one more event (late-1 at position 6); a
  // projection "counter" at checkpoint 5 in the read model beside the store;
  // a stopped projection "failing" with a parked event.
  void fill_with_projections() {
    fill();
    PostgresEventStore store(postgres_url(), options());
    PostgresReadModel views(postgres_url(), views_options());
    {
      ProjectionRunner runner(store, views, counter_projection());
      ASSERT_EQ(runner.catch_up(), 5);
    }
    store.append("late-1", ExpectedVersion::no_stream(), {tool_event("test.Late")});
    views.write([](SqlTransaction& tx) {
      tx.exec(
          "INSERT INTO projection_checkpoints(name, position, state, error, error_position, "
          "attempts, updated_at) VALUES ('failing', 3, 'stopped', 'boom', 4, 3, 0)");
      tx.exec(
          "INSERT INTO projection_parked_events(name, position, stream_id, type, error, "
          "attempts, parked_at) VALUES ('failing', 2, 'account-1', 'bank.Deposited', 'bad', "
          "5, 0)");
    });
  }

  static Projection counter_projection() {
    Projection p;
    p.name = "counter";
    p.setup = [](SqlTransaction& tx) {
      tx.exec_script("CREATE TABLE IF NOT EXISTS counts (stream_id TEXT PRIMARY KEY, n BIGINT)");
    };
    p.apply = [](SqlTransaction& tx, const RecordedEvent& e) {
      tx.exec(
          "INSERT INTO counts VALUES ($1, 1) ON CONFLICT(stream_id) DO UPDATE SET n = "
          "counts.n + 1",
          {e.stream_id});
    };
    p.reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM counts"); };
    return p;
  }

  std::unique_ptr<ServeProcess> serve(const std::vector<std::string>& args,
                                      std::vector<std::string> env = {}) {
    env.push_back("ANNALS_PG_SCHEMA=" + schema_);
    auto p = std::make_unique<ServeProcess>(dir_.path(), env, args);
    EXPECT_NE(p->port(), 0) << "annals serve did not start: " << p->err();
    return p;
  }
};

TEST_F(PostgresServe, InfoNamesTheStoreWithoutItsPassword) {
  fill();
  const std::string url = server_url();
  auto server = serve({"--db", url});
  ASSERT_NE(server->port(), 0);
  const Json info = body_json(server->client().Get("/api/info"));
  EXPECT_EQ(info["backend"], "postgresql") << info;
  EXPECT_EQ(info["store"], url) << info;
  EXPECT_EQ(info["schema"], schema_) << info;
  EXPECT_EQ(info["head_position"], 5) << info;
  EXPECT_EQ(info["read_only"], true) << info;
  EXPECT_FALSE(info.contains("file")) << info;
  EXPECT_TRUE(contains(server->out(), url)) << server->out();

  // A password in the URL is shown nowhere (the throwaway cluster trusts
  // local connections, so it does not matter whether the password is right).
  if (!postgres_server()->owns_server() || !contains(url, "@")) {
    GTEST_SKIP() << "the server given by ANNALS_TEST_PG_URL may check passwords";
  }
  std::string with_password = url;
  with_password.insert(with_password.find('@'), ":s3cret-pw");
  auto secret = serve({"--db", with_password});
  ASSERT_NE(secret->port(), 0);
  const auto r = secret->client().Get("/api/info");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(contains(r->body, "s3cret")) << r->body;
  EXPECT_TRUE(contains(r->body, ":***@")) << r->body;
  const auto projections = secret->client().Get("/api/projections");
  ASSERT_TRUE(projections);
  EXPECT_FALSE(contains(projections->body, "s3cret")) << projections->body;
  EXPECT_FALSE(contains(secret->out(), "s3cret")) << secret->out();
  EXPECT_FALSE(contains(secret->err(), "s3cret")) << secret->err();
}

TEST_F(PostgresServe, AnUnreachableServerStopsServeAtTheStartWithoutShowingThePassword) {
  ServeProcess server(
      dir_.path(), {"ANNALS_PG_SCHEMA=" + schema_},
      {"--db", "postgresql://ann:s3cret@/nodb?host=/nonexistent-annals-dir&port=1"});
  EXPECT_EQ(server.port(), 0);
  EXPECT_EQ(server.stop(), 3) << server.err();
  EXPECT_TRUE(contains(server.err(), "cannot open the store 'postgresql://ann:***@"))
      << server.err();
  EXPECT_FALSE(contains(server.err() + server.out(), "s3cret"));
}

TEST_F(PostgresServe, StreamsStreamAndEventAreServedInPages) {
  fill_with_projections();
  auto server = serve({"--db", server_url()});
  ASSERT_NE(server->port(), 0);
  auto client = server->client();
  auto page = body_json(client.Get("/api/streams?limit=2"));
  ASSERT_EQ(page["streams"].size(), 2u) << page;
  EXPECT_EQ(page["streams"][0]["id"], "account-1");
  EXPECT_EQ(page["streams"][0]["version"], 3);
  EXPECT_EQ(page["streams"][1]["id"], "account-2");
  EXPECT_EQ(page["next_after"], "account-2");
  page = body_json(client.Get("/api/streams?limit=2&after=account-2"));
  ASSERT_EQ(page["streams"].size(), 2u) << page;
  EXPECT_EQ(page["streams"][0]["id"], "audit-1");
  EXPECT_EQ(page["streams"][1]["id"], "late-1");
  EXPECT_TRUE(page["next_after"].is_null()) << page;
  page = body_json(client.Get("/api/streams?prefix=acc"));
  EXPECT_EQ(page["streams"].size(), 2u) << page;

  page = body_json(client.Get("/api/stream?id=account-1&limit=2"));
  EXPECT_EQ(page["version"], 3) << page;
  ASSERT_EQ(page["events"].size(), 2u) << page;
  EXPECT_EQ(page["events"][0]["version"], 3);
  EXPECT_EQ(page["events"][0]["type"], "bank.Withdrawn");
  EXPECT_EQ(page["next_from"], 1);
  page = body_json(client.Get("/api/stream?id=account-1&order=oldest&limit=2&from=2"));
  ASSERT_EQ(page["events"].size(), 2u) << page;
  EXPECT_EQ(page["events"][0]["version"], 2);
  EXPECT_EQ(page["events"][1]["version"], 3);
  EXPECT_TRUE(page["next_from"].is_null()) << page;

  const Json e = body_json(client.Get("/api/event?position=2"));
  PostgresEventStore store(postgres_url(), options());
  const RecordedEvent stored = *store.read_all(2, {}, 1).next();
  EXPECT_EQ(e["position"], 2) << e;
  EXPECT_EQ(e["stream_id"], "account-1");
  EXPECT_EQ(e["type"], "bank.Deposited");
  EXPECT_EQ(e["payload"], stored.payload);
  EXPECT_EQ(e["metadata"], stored.metadata);
  EXPECT_EQ(e["hash"], to_hex(stored.hash));
  EXPECT_EQ(e["event_id"], stored.event_id);
  EXPECT_EQ(e["recorded_at"], format_timestamp(stored.recorded_at));
  EXPECT_EQ(client.Get("/api/event?position=7")->status, 404);
}

TEST_F(PostgresServe, ProjectionsShowCheckpointsLagStateAndParkedEventsOfThePostgresReadModel) {
  fill_with_projections();
  auto server = serve({"--db", server_url()});
  ASSERT_NE(server->port(), 0);
  const Json all = body_json(server->client().Get("/api/projections"));
  EXPECT_EQ(all["head_position"], 6) << all;
  EXPECT_TRUE(contains(all["read_model"].get<std::string>(), "schema \"" + schema_ + "\"")) << all;
  ASSERT_EQ(all["projections"].size(), 2u) << all;
  const Json counter = all["projections"][0];
  EXPECT_EQ(counter["name"], "counter");
  EXPECT_EQ(counter["checkpoint"], 5);
  EXPECT_EQ(counter["lag"], 1);
  EXPECT_TRUE(counter["failure"].is_null()) << counter;
  const Json failing = all["projections"][1];
  EXPECT_EQ(failing["name"], "failing");
  EXPECT_EQ(failing["checkpoint"], 3);
  EXPECT_EQ(failing["lag"], 3);
  EXPECT_EQ(failing["state"], "stopped");
  EXPECT_EQ(failing["failure"]["message"], "boom");
  EXPECT_EQ(failing["parked_count"], 1);
  ASSERT_EQ(failing["parked"].size(), 1u) << failing;
  EXPECT_EQ(failing["parked"][0]["position"], 2);
  EXPECT_EQ(failing["parked"][0]["error"], "bad");
}

TEST_F(PostgresServe, AReadModelUrlWithItsOwnSchemaIsShown) {
  fill();
  const std::string views_schema = schema_ + "_views";
  PostgresReadModelOptions o;
  o.schema = views_schema;
  {
    PostgresEventStore store(postgres_url(), options());
    PostgresReadModel views(postgres_url(), o);
    ProjectionRunner runner(store, views, counter_projection());
    ASSERT_EQ(runner.catch_up(), 5);
  }
  auto server = serve({"--db", server_url(), "--read-model", server_url("postgres")},
                      {"ANNALS_PG_READ_MODEL_SCHEMA=" + views_schema});
  ASSERT_NE(server->port(), 0);
  const Json all = body_json(server->client().Get("/api/projections"));
  ASSERT_EQ(all["projections"].size(), 1u) << all;
  EXPECT_EQ(all["projections"][0]["checkpoint"], 5);
  EXPECT_EQ(all["projections"][0]["lag"], 0);
  // A schema that does not exist is refused at the start, and not created.
  auto missing = std::make_unique<ServeProcess>(
      dir_.path(),
      std::vector<std::string>{"ANNALS_PG_SCHEMA=" + schema_,
                               "ANNALS_PG_READ_MODEL_SCHEMA=" + schema_ + "_none"},
      std::vector<std::string>{"--db", server_url()});
  EXPECT_EQ(missing->port(), 0);
  EXPECT_EQ(missing->stop(), 3) << missing->err();
  EXPECT_TRUE(contains(missing->err(), "cannot open the read model")) << missing->err();
  EXPECT_EQ(schema_contents(schema_ + "_none"),
            "events rows: -1\nstreams rows: -1\nannals_meta rows: -1\nannals_head rows: -1\n"
            "snapshots rows: -1\n");
}

TEST_F(PostgresServe, AnSqliteStoreIsServedWithAPostgresReadModel) {
  fill_sample(dir_ / "a.db");
  const std::string views_schema = schema_ + "_sqlite_views";
  {
    SqliteEventStore store(dir_ / "a.db", quick());
    PostgresReadModelOptions o;
    o.schema = views_schema;
    PostgresReadModel views(postgres_url(), o);
    ProjectionRunner runner(store, views, counter_projection());
    ASSERT_EQ(runner.catch_up(), 5);
    store.append("late-1", ExpectedVersion::no_stream(), {tool_event("test.Late")});
  }
  auto server = serve({"--db", (dir_ / "a.db").string(), "--read-model", server_url()},
                      {"ANNALS_PG_READ_MODEL_SCHEMA=" + views_schema});
  ASSERT_NE(server->port(), 0);
  const Json all = body_json(server->client().Get("/api/projections"));
  ASSERT_EQ(all["projections"].size(), 1u) << all;
  EXPECT_EQ(all["projections"][0]["checkpoint"], 5);
  EXPECT_EQ(all["projections"][0]["lag"], 1);
  EXPECT_EQ(body_json(server->client().Get("/api/info"))["backend"], "sqlite");
}

TEST_F(PostgresServe, VerifyReportsProgressAndThenTheResult) {
  {
    PostgresEventStore store(postgres_url(), options());
    for (int done = 0; done < 4500; done += 500) {
      std::vector<EventData> batch;
      for (int k = 0; k < 500; ++k) {
        batch.push_back(tool_event("test.Counted", "{\"i\":" + std::to_string(done + k) + "}"));
      }
      store.append("bulk-" + std::to_string(done / 500 % 3), ExpectedVersion::any(),
                   std::move(batch));
    }
  }
  auto server = serve({"--db", server_url()});
  ASSERT_NE(server->port(), 0);
  auto client = server->client();
  const std::string body =
      read_stream_until(client, "/api/verify", [](const std::string&) { return false; });
  EXPECT_TRUE(contains(body, "event: progress\ndata: {\"checked\":2000,\"total\":4500}")) << body;
  EXPECT_TRUE(contains(body,
                       "event: result\ndata: {\"events_checked\":4500,\"head_position\":"
                       "4500,\"ok\":true}"))
      << body;
}

TEST_F(PostgresServe, TheLiveTailSendsAnEventAnotherProcessAppendsAfterItConnected) {
  fill();
  auto server = serve({"--db", server_url()});
  ASSERT_NE(server->port(), 0);
  std::atomic<bool> connected{false};
  std::string body;
  std::thread reader([&] {
    auto client = server->client();
    body = read_stream_until(client, "/api/tail?from=6", [&](const std::string& b) {
      if (contains(b, "event: start")) connected = true;
      return contains(b, "late-2");
    });
    connected = true;  // ended without it: let the test go on and fail
  });
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!connected && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  {
    // This test's process, not the server's: the server learns of the
    // commit only from PostgreSQL.
    PostgresEventStore store(postgres_url(), options());
    store.append("late-2", ExpectedVersion::no_stream(), {tool_event("test.Late")});
  }
  reader.join();
  EXPECT_TRUE(contains(body, "event: start\ndata: {\"from\":6,\"head_position\":5}")) << body;
  EXPECT_TRUE(contains(body, "id: 6\nevent: append\ndata: {\"event_id\"")) << body;
  EXPECT_TRUE(contains(body, "\"stream_id\":\"late-2\"")) << body;
  EXPECT_FALSE(contains(body, "\"position\":5")) << "starts at ?from: " << body;
}

TEST_F(PostgresServe, MetricsShowTheStoreTheProjectionsAndTheRequestsServed) {
  fill_with_projections();
  auto server = serve({"--db", server_url()});
  ASSERT_NE(server->port(), 0);
  auto client = server->client();
  EXPECT_EQ(client.Get("/api/info")->status, 200);
  EXPECT_EQ(client.Get("/nothing/here")->status, 404);
  const auto r = client.Get("/metrics");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string& text = r->body;
  for (const char* line :
       {"# TYPE annals_store_head_position gauge\nannals_store_head_position 6\n",
        "annals_projection_checkpoint{projection=\"counter\"} 5\n",
        "annals_projection_lag_events{projection=\"counter\"} 1\n",
        "annals_projection_parked_events{projection=\"failing\"} 1\n",
        "annals_projection_failed{projection=\"failing\"} 1\n",
        "annals_projection_failed{projection=\"counter\"} 0\n",
        "annals_projection_state{projection=\"failing\",state=\"stopped\"} 1\n",
        "annals_serve_requests_total{route=\"/api/info\",code=\"200\"} 1\n",
        "annals_serve_requests_total{route=\"other\",code=\"404\"} 1\n"}) {
    EXPECT_TRUE(contains(text, line)) << line << "\nin:\n" << text;
  }
  EXPECT_FALSE(contains(text, "annals_store_file_bytes")) << "a PostgreSQL store has no file";
}

TEST_F(PostgresServe, BadStreamIdsAndParametersGetTheSameErrorsAsOnSqlite) {
  fill();
  fill_sample(dir_ / "same.db");  // the same streams and events as fill()
  auto postgres = serve({"--db", server_url()});
  auto sqlite = serve({"--db", (dir_ / "same.db").string()});
  ASSERT_NE(postgres->port(), 0);
  ASSERT_NE(sqlite->port(), 0);
  auto on_postgres = postgres->client();
  auto on_sqlite = sqlite->client();
  for (const std::string& path : std::vector<std::string>{
           "/api/stream?id=", "/api/stream?id=nobody-1", "/api/stream?id=%01bad",
           "/api/stream?id=" + std::string(300, 'x'), "/api/stream?id=account-1&order=sideways",
           "/api/stream?id=account-1&from=0", "/api/streams?limit=501", "/api/streams?limit=abc",
           "/api/streams?prefix=" + std::string(2000, 'a'), "/api/event", "/api/event?position=0",
           "/api/event?position=6", "/api/event?position=99999999999999999999", "/api/tail?from=0",
           "/api/tail?from=x"}) {
    const auto p = on_postgres.Get(path);
    const auto s = on_sqlite.Get(path);
    ASSERT_TRUE(p && s) << path;
    EXPECT_GE(p->status, 400) << path;
    EXPECT_EQ(p->status, s->status) << path;
    EXPECT_EQ(p->body, s->body) << path;
  }
}

TEST_F(PostgresServe, NothingIsWrittenOrCreated) {
  fill();
  const std::string before = schema_contents(schema_);
  ASSERT_TRUE(contains(before, "events:r\n") && contains(before, "events rows: 5\n")) << before;
  {
    auto server = serve({"--db", server_url()});
    ASSERT_NE(server->port(), 0);
    auto client = server->client();
    for (const char* path : {"/", "/api/info", "/api/streams", "/api/stream?id=account-1",
                             "/api/event?position=1", "/api/projections", "/metrics"}) {
      EXPECT_EQ(client.Get(path)->status, 200) << path;
    }
    EXPECT_EQ(client.Post("/api/info", "x", "text/plain")->status, 405);
    read_stream_until(client, "/api/verify", [](const std::string&) { return false; });
    read_stream_until(client, "/api/tail?from=1",
                      [](const std::string& b) { return contains(b, "id: 5\n"); });
  }
  EXPECT_EQ(schema_contents(schema_), before) << "no read model tables, no rows, nothing else";

  // A schema without a store is refused, and left as it was.
  const std::string empty = schema_ + "_empty";
  auto none = std::make_unique<ServeProcess>(dir_.path(),
                                             std::vector<std::string>{"ANNALS_PG_SCHEMA=" + empty},
                                             std::vector<std::string>{"--db", server_url()});
  EXPECT_EQ(none->port(), 0);
  EXPECT_EQ(none->stop(), 3) << none->err();
  EXPECT_TRUE(contains(none->err(), empty)) << none->err();
  EXPECT_EQ(schema_contents(empty),
            "events rows: -1\nstreams rows: -1\nannals_meta rows: -1\n"
            "annals_head rows: -1\nsnapshots rows: -1\n");
}

TEST_F(PostgresServe, ARoleThatMayOnlySelectIsEnough) {
  if (!postgres_server()->owns_server()) {
    GTEST_SKIP() << "roles are the server's: not made on one given by ANNALS_TEST_PG_URL";
  }
  fill_with_projections();
  const std::string reader = "annals_reader_" + schema_;
  {
    PostgresReadModel owner(postgres_url(), views_options());
    owner.write([&](SqlTransaction& tx) {
      tx.exec_script("CREATE ROLE " + reader + " LOGIN; GRANT USAGE ON SCHEMA " + schema_ + " TO " +
                     reader + "; GRANT SELECT ON ALL TABLES IN SCHEMA " + schema_ + " TO " +
                     reader);
    });
  }
  std::string url = server_url();
  const auto begin = url.find("://") + 3;
  const auto at = url.find('@', begin);
  if (at != std::string::npos && at < url.find('/', begin)) url.erase(begin, at + 1 - begin);
  url.insert(begin, reader + "@");
  auto server = serve({"--db", url});
  ASSERT_NE(server->port(), 0);
  auto client = server->client();
  for (const char* path : {"/api/info", "/api/streams", "/api/stream?id=account-1",
                           "/api/event?position=6", "/api/projections", "/metrics"}) {
    const auto r = client.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
  }
  EXPECT_EQ(body_json(client.Get("/api/info"))["store"], url);
  EXPECT_EQ(body_json(client.Get("/api/projections"))["projections"].size(), 2u);
  const std::string verified =
      read_stream_until(client, "/api/verify", [](const std::string&) { return false; });
  EXPECT_TRUE(contains(verified, "\"events_checked\":6,\"head_position\":6,\"ok\":true"))
      << verified;
  const std::string tail = read_stream_until(
      client, "/api/tail?from=6", [](const std::string& b) { return contains(b, "id: 6\n"); });
  EXPECT_TRUE(contains(tail, "\"stream_id\":\"late-1\"")) << tail;
}

TEST_F(PostgresServe, AServerThatGoesAwayGives503AndServingResumesWhenItIsBack) {
  if (!postgres_server()->owns_server()) {
    GTEST_SKIP() << "the server given by ANNALS_TEST_PG_URL is not ours to stop";
  }
  fill_with_projections();
  auto server = serve({"--db", server_url()});
  ASSERT_NE(server->port(), 0);
  auto client = server->client();
  ASSERT_EQ(client.Get("/api/projections")->status, 200);
  std::atomic<int> phase{0};  // 1: tail started, 2: it saw the outage
  std::string body;
  std::thread reader([&] {
    auto tail = server->client();
    body = read_stream_until(tail, "/api/tail?from=7", [&](const std::string& b) {
      if (contains(b, "event: start")) phase = std::max(phase.load(), 1);
      if (contains(b, "event: unavailable")) phase = 2;
      return contains(b, "after-1");
    });
    phase = 3;  // ended: let the test go on
  });
  const auto wait_for = [&](int at_least) {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (phase < at_least && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
  };
  wait_for(1);

  postgres_server()->kill();
  for (const char* path :
       {"/api/info", "/api/streams", "/api/stream?id=account-1", "/api/event?position=1",
        "/api/projections", "/metrics", "/api/verify", "/api/tail"}) {
    const auto r = client.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 503) << path << ": " << r->body;
    EXPECT_TRUE(contains(r->body, "cannot be read now")) << path << ": " << r->body;
  }
  wait_for(2);
  EXPECT_TRUE(server->running()) << server->err();

  postgres_server()->restart();
  for (const char* path : {"/api/info", "/api/streams", "/api/stream?id=account-1",
                           "/api/event?position=1", "/api/projections", "/metrics"}) {
    const auto r = client.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
  }
  {
    PostgresEventStore store(postgres_url(), options());
    store.append("after-1", ExpectedVersion::no_stream(), {tool_event("test.After")});
  }
  reader.join();
  EXPECT_TRUE(contains(body, "event: unavailable\ndata: {\"error\":\"the store '")) << body;
  EXPECT_TRUE(contains(body, "event: available")) << body;
  EXPECT_TRUE(contains(body, "id: 7\nevent: append")) << body;
  EXPECT_TRUE(contains(body, "\"stream_id\":\"after-1\"")) << body;
  const std::string verified =
      read_stream_until(client, "/api/verify", [](const std::string&) { return false; });
  EXPECT_TRUE(contains(verified, "\"ok\":true")) << verified;
}

}  // namespace
}  // namespace annals
