// `annals serve` over HTTP: the JSON API, paging and its limits, the security
// rules (loopback by default, token, Host, methods, no files), event streams,
// and that the store is never written. The page itself is tested in Chromium
// (tests/browser/).

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "annals/core/clock.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "serve.hpp"
#include "tool_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;
using tool::ServeCommand;
using tool::WebServer;

const std::string kToken = "s3cret-token-for-tests";

// A server on a free loopback port, serving on its own thread.
class Running {
 public:
  explicit Running(ServeCommand c) : server_(std::move(c)) {
    port_ = server_.bind();
    thread_ = std::thread([this] { server_.run(); });
  }
  ~Running() {
    server_.stop();
    thread_.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30);
    return c;
  }
  int port() const { return port_; }

 private:
  WebServer server_;
  int port_ = 0;
  std::thread thread_;
};

ServeCommand command(const std::filesystem::path& db, std::string token = {}) {
  ServeCommand c;
  c.db = db;
  c.port = 0;
  c.token = std::move(token);
  return c;
}

Json body_json(const httplib::Result& r) { return Json::parse(r->body); }

int refused_code(const ServeCommand& c) {
  try {
    WebServer server(c);
  } catch (const tool::ToolError& e) {
    return e.code();
  }
  return 0;
}

class Serve : public ::testing::Test {
 protected:
  void SetUp() override { fill_sample(db()); }
  std::filesystem::path db() const { return dir_ / "s.db"; }
  TempDir dir_;
};

TEST(ServeAddress, LoopbackHostsAreRecognised) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "localhost"}) {
    EXPECT_TRUE(tool::is_loopback_host(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "example.com", "", "localhost.evil"}) {
    EXPECT_FALSE(tool::is_loopback_host(host)) << host;
  }
}

TEST(ServeToken, TokensAreEqualOnlyWhenWhollyEqual) {
  EXPECT_TRUE(tool::tokens_equal(kToken, kToken));
  EXPECT_FALSE(tool::tokens_equal(kToken, kToken + "x"));
  EXPECT_FALSE(tool::tokens_equal(kToken, kToken.substr(0, kToken.size() - 1)));
  EXPECT_FALSE(tool::tokens_equal(kToken, ""));
  std::string flipped = kToken;
  flipped[0] = 'S';
  EXPECT_FALSE(tool::tokens_equal(kToken, flipped));
}

TEST_F(Serve, ANonLoopbackBindWithoutATokenIsRefused) {
  auto c = command(db());
  c.bind = "0.0.0.0";
  EXPECT_EQ(refused_code(c), tool::kExitUsage);
  c.token = "short";
  EXPECT_EQ(refused_code(c), tool::kExitUsage) << "a token shorter than 16 characters";
  c.token = kToken + " with space";
  EXPECT_EQ(refused_code(c), tool::kExitUsage);
  c.token = kToken;
  EXPECT_EQ(refused_code(c), 0);
  const auto cli = annals_run({"serve", "--db", db().string(), "--bind", "0.0.0.0"});
  EXPECT_EQ(cli.code, tool::kExitUsage);
  EXPECT_NE(cli.err.find("needs --token"), std::string::npos) << cli.err;
}

TEST_F(Serve, AMissingStoreIsRefusedAndNotCreated) {
  EXPECT_EQ(refused_code(command(dir_ / "missing.db")), tool::kExitUnusable);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "missing.db"));
}

TEST_F(Serve, WithATokenEveryRequestMustCarryIt) {
  Running server(command(db(), kToken));
  auto client = server.client();
  for (const char* path : {"/", "/app.js", "/api/info", "/api/streams", "/nothing"}) {
    const auto r = client.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 401) << path;
    EXPECT_EQ(r->body.find("account-1"), std::string::npos);
  }
  EXPECT_EQ(client.Get("/api/info", {{"Authorization", "Bearer " + kToken + "x"}})->status, 401);
  EXPECT_EQ(client.Get("/api/info", {{"Authorization", "Bearer "}})->status, 401);
  EXPECT_EQ(client.Get("/api/info", {{"Authorization", kToken}})->status, 401);
  EXPECT_EQ(client.Get("/api/info", {{"Authorization", "Bearer " + kToken}})->status, 200);
  EXPECT_EQ(client.Get("/?token=wrong-token-of-some-length")->status, 401);
  const auto login = client.Get("/?token=" + kToken);
  ASSERT_TRUE(login);
  EXPECT_EQ(login->status, 303);
  const std::string cookie = login->get_header_value("Set-Cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
  EXPECT_EQ(client.Get("/api/info", {{"Cookie", "annals_token=" + kToken}})->status, 200);
  EXPECT_EQ(client.Get("/api/info", {{"Cookie", "annals_token=" + kToken + "0"}})->status, 401);
}

TEST_F(Serve, WithoutATokenRequestsNamingAnotherHostAreRefused) {
  Running server(command(db()));
  auto client = server.client();
  EXPECT_EQ(client.Get("/api/info")->status, 200);
  EXPECT_EQ(client.Get("/api/info", {{"Host", "localhost:1"}})->status, 200);
  const auto r = client.Get("/api/info", {{"Host", "attacker.example"}});
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->body.find("account"), std::string::npos);
}

TEST_F(Serve, OnlyGetAndHeadAreServed) {
  Running server(command(db()));
  auto client = server.client();
  EXPECT_EQ(client.Post("/api/info", "x", "text/plain")->status, 405);
  EXPECT_EQ(client.Delete("/api/streams")->status, 405);
  EXPECT_EQ(client.Put("/", "x", "text/plain")->status, 405);
  EXPECT_EQ(client.Head("/api/info")->status, 200);
}

TEST_F(Serve, NoPathReachesTheFileSystem) {
  Running server(command(db()));
  auto client = server.client();
  for (const char* path : {"/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/s.db",
                           "/web/app.js", "/src/serve.cpp", "//etc/passwd", "/app.js/..%2f..%2fs.db"}) {
    const auto r = client.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_TRUE(r->status == 404 || r->status == 400) << path << " gave " << r->status;
    EXPECT_EQ(r->body.find("root:"), std::string::npos) << path;
    EXPECT_EQ(r->body.find("SQLite format"), std::string::npos) << path;
  }
}

TEST_F(Serve, ThePageAndItsAssetsComeFromTheProgramWithAStrictPolicy) {
  Running server(command(db()));
  auto client = server.client();
  const auto page = client.Get("/");
  ASSERT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<script src=\"/app.js\">"), std::string::npos);
  const std::string csp = page->get_header_value("Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");
  const auto js = client.Get("/app.js");
  ASSERT_EQ(js->status, 200);
  EXPECT_NE(js->body.find("textContent"), std::string::npos);
  EXPECT_EQ(js->body.find("innerHTML"), std::string::npos) << "the page never parses values as HTML";
  EXPECT_EQ(client.Get("/style.css")->status, 200);
}

TEST_F(Serve, StreamsAreFilteredByPrefixAndPaged) {
  Running server(command(db()));
  auto client = server.client();
  auto page = body_json(client.Get("/api/streams?limit=2"));
  ASSERT_EQ(page["streams"].size(), 2u);
  EXPECT_EQ(page["streams"][0]["id"], "account-1");
  EXPECT_EQ(page["streams"][0]["version"], 3);
  EXPECT_EQ(page["streams"][1]["id"], "account-2");
  EXPECT_EQ(page["next_after"], "account-2");
  page = body_json(client.Get("/api/streams?limit=2&after=account-2"));
  ASSERT_EQ(page["streams"].size(), 1u);
  EXPECT_EQ(page["streams"][0]["id"], "audit-1");
  EXPECT_TRUE(page["next_after"].is_null());
  page = body_json(client.Get("/api/streams?prefix=acc"));
  ASSERT_EQ(page["streams"].size(), 2u);
  EXPECT_TRUE(page["next_after"].is_null());
  page = body_json(client.Get("/api/streams?prefix=zzz"));
  EXPECT_TRUE(page["streams"].empty());
}

TEST_F(Serve, AStreamsEventsComeNewestOrOldestFirstInPages) {
  Running server(command(db()));
  auto client = server.client();
  auto page = body_json(client.Get("/api/stream?id=account-1&limit=2"));
  EXPECT_EQ(page["version"], 3);
  ASSERT_EQ(page["events"].size(), 2u);
  EXPECT_EQ(page["events"][0]["version"], 3);
  EXPECT_EQ(page["events"][0]["type"], "bank.Withdrawn");
  EXPECT_EQ(page["events"][1]["version"], 2);
  EXPECT_EQ(page["next_from"], 1);
  page = body_json(client.Get("/api/stream?id=account-1&limit=2&from=1"));
  ASSERT_EQ(page["events"].size(), 1u);
  EXPECT_EQ(page["events"][0]["version"], 1);
  EXPECT_TRUE(page["next_from"].is_null());
  page = body_json(client.Get("/api/stream?id=account-1&order=oldest&limit=2"));
  EXPECT_EQ(page["events"][0]["version"], 1);
  EXPECT_EQ(page["events"][0]["position"], 1);
  EXPECT_EQ(page["events"][1]["version"], 2);
  EXPECT_EQ(page["next_from"], 3);
  EXPECT_EQ(client.Get("/api/stream?id=nobody-1")->status, 404);
  EXPECT_EQ(client.Get("/api/stream?id=")->status, 400);
  EXPECT_EQ(client.Get("/api/stream?id=account-1&order=sideways")->status, 400);
}

TEST_F(Serve, AnEventShowsPayloadMetadataHashPositionVersionAndTime) {
  Running server(command(db()));
  auto client = server.client();
  const auto e = body_json(client.Get("/api/event?position=2"));
  SqliteEventStore store(db(), quick());
  const RecordedEvent stored = *store.read_all(2, {}, 1).next();
  EXPECT_EQ(e["position"], 2);
  EXPECT_EQ(e["stream_id"], "account-1");
  EXPECT_EQ(e["version"], 2);
  EXPECT_EQ(e["type"], "bank.Deposited");
  EXPECT_EQ(e["payload"], stored.payload);
  EXPECT_EQ(e["metadata"], stored.metadata);
  EXPECT_EQ(e["hash"], to_hex(stored.hash));
  EXPECT_EQ(e["event_id"], stored.event_id);
  EXPECT_EQ(e["recorded_at"], format_timestamp(stored.recorded_at));
  EXPECT_EQ(client.Get("/api/event?position=6")->status, 404);
  EXPECT_EQ(client.Get("/api/event")->status, 400);
}

TEST_F(Serve, BadNumbersAndOversizedPagesAreRefusedWithTheirName) {
  Running server(command(db()));
  auto client = server.client();
  for (const char* path : {"/api/streams?limit=501", "/api/streams?limit=0", "/api/streams?limit=-1",
                           "/api/streams?limit=abc", "/api/streams?limit=10x",
                           "/api/event?position=0", "/api/event?position=99999999999999999999",
                           "/api/stream?id=account-1&from=0"}) {
    const auto r = client.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 400) << path;
    const std::string name = std::string(path).find("limit") != std::string::npos ? "'limit'"
                             : std::string(path).find("from") != std::string::npos ? "'from'"
                                                                                   : "'position'";
    EXPECT_NE(body_json(r)["error"].get<std::string>().find(name), std::string::npos) << r->body;
  }
  EXPECT_EQ(client.Get("/api/streams?prefix=" + std::string(2000, 'a'))->status, 400);
  EXPECT_EQ(client.Get("/api/streams?limit=500")->status, 200);
  const auto big = client.Get("/api/info", {{"X-Filler", std::string(20'000, 'x')}});
  EXPECT_TRUE(!big || big->status >= 400) << "oversized headers are refused";
}

TEST_F(Serve, ProjectionsShowCheckpointLagStateAndParkedEvents) {
  {
    SqliteReadModel model(dir_ / "views.db");
    model.write([](SqlTransaction& tx) {
      tx.exec("INSERT INTO projection_checkpoints(name, position, state, error, error_position, "
              "attempts, updated_at) VALUES ('balances', 3, 'stopped', 'boom', 4, 3, 0)");
      tx.exec("INSERT INTO projection_parked_events(name, position, stream_id, type, error, "
              "attempts, parked_at) VALUES ('balances', 2, 'account-1', 'bank.Deposited', 'bad', 5, 0)");
    });
  }
  auto c = command(db());
  c.read_model = dir_ / "views.db";
  Running server(c);
  const auto all = body_json(server.client().Get("/api/projections"));
  ASSERT_EQ(all["projections"].size(), 1u);
  const Json p = all["projections"][0];
  EXPECT_EQ(p["name"], "balances");
  EXPECT_EQ(p["checkpoint"], 3);
  EXPECT_EQ(p["head_position"], 5);
  EXPECT_EQ(p["lag"], 2);
  EXPECT_EQ(p["state"], "stopped");
  EXPECT_EQ(p["failure"]["message"], "boom");
  EXPECT_EQ(p["failure"]["position"], 4);
  EXPECT_EQ(p["parked_count"], 1);
  ASSERT_EQ(p["parked"].size(), 1u);
  EXPECT_EQ(p["parked"][0]["position"], 2);
  EXPECT_EQ(p["parked"][0]["error"], "bad");
}

TEST_F(Serve, MetricsShowTheStoreTheProjectionsAndTheRequestsServed) {
  {
    SqliteReadModel model(db());
    model.write([](SqlTransaction& tx) {
      tx.exec("INSERT INTO projection_checkpoints(name, position, state, error, error_position, "
              "attempts, updated_at) VALUES ('balances', 3, 'live', NULL, 0, 0, 0)");
    });
  }
  Running server(command(db()));
  auto client = server.client();
  EXPECT_EQ(client.Get("/api/info")->status, 200);
  EXPECT_EQ(client.Get("/nothing/here")->status, 404);
  {
    SqliteEventStore store(db(), quick());
    store.append("late-1", ExpectedVersion::no_stream(), {tool_event("test.Late")});
  }
  const auto r = client.Get("/metrics");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = r->body;
  for (const char* line : {
           "# TYPE annals_store_head_position gauge\nannals_store_head_position 6\n",
           "annals_projection_checkpoint{projection=\"balances\"} 3\n",
           "annals_projection_lag_events{projection=\"balances\"} 3\n",
           "annals_projection_parked_events{projection=\"balances\"} 0\n",
           "annals_projection_failed{projection=\"balances\"} 0\n",
           "annals_projection_state{projection=\"balances\",state=\"live\"} 1\n",
           "annals_projection_state{projection=\"balances\",state=\"stopped\"} 0\n",
           "# TYPE annals_serve_requests_total counter\n",
           "annals_serve_requests_total{route=\"/api/info\",code=\"200\"} 1\n",
           "annals_serve_requests_total{route=\"other\",code=\"404\"} 1\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\nin:\n" << text;
  }
}

TEST_F(Serve, AStoreWithoutProjectionsListsNone) {
  Running server(command(db()));
  const auto all = body_json(server.client().Get("/api/projections"));
  EXPECT_TRUE(all["projections"].empty());
}

// The body of an event stream until `done` says it has what it wants.
std::string read_stream_until(httplib::Client& client, const std::string& path,
                              const std::function<bool(const std::string&)>& done) {
  std::string body;
  client.Get(path, [&](const char* data, std::size_t n) {
    body.append(data, n);
    return !done(body);
  });
  return body;
}

TEST_F(Serve, VerifyReportsProgressAndThenTheResult) {
  fill_many(dir_ / "many.db", 4500);
  Running server(command(dir_ / "many.db"));
  auto client = server.client();
  const std::string body = read_stream_until(client, "/api/verify", [](const std::string&) { return false; });
  EXPECT_NE(body.find("event: progress\ndata: {\"checked\":2000,\"total\":4500}"), std::string::npos) << body;
  EXPECT_NE(body.find("event: result\ndata: {\"events_checked\":4500,\"head_position\":4500,\"ok\":true}"),
            std::string::npos)
      << body;
}

TEST_F(Serve, VerifyNamesTheFirstAlteredEvent) {
  {
    SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);
    raw.exec("DROP TRIGGER events_append_only_update");
    raw.exec("UPDATE events SET payload = '{\"amount\":5000}' WHERE position = 2");
  }
  Running server(command(db()));
  auto client = server.client();
  const std::string body = read_stream_until(client, "/api/verify", [](const std::string&) { return false; });
  EXPECT_NE(body.find("\"first_bad_position\":2"), std::string::npos) << body;
  EXPECT_NE(body.find("\"ok\":false"), std::string::npos) << body;
}

TEST_F(Serve, TheLiveTailSendsEventsAnotherWriterAppends) {
  Running server(command(db()));
  std::atomic<bool> appended{false};
  std::thread writer([&] {
    SqliteEventStore store(db(), quick());
    store.append("late-1", ExpectedVersion::no_stream(), {tool_event("test.Late")});
    appended = true;
  });
  auto client = server.client();
  const std::string body = read_stream_until(client, "/api/tail?from=5", [](const std::string& b) {
    return b.find("late-1") != std::string::npos;
  });
  writer.join();
  EXPECT_NE(body.find("event: start"), std::string::npos) << body;
  EXPECT_NE(body.find("id: 5\nevent: append\ndata: {\"event_id\""), std::string::npos) << body;
  EXPECT_NE(body.find("id: 6\nevent: append"), std::string::npos) << body;
  EXPECT_NE(body.find("\"stream_id\":\"late-1\""), std::string::npos) << body;
  EXPECT_EQ(body.find("\"position\":4"), std::string::npos) << "starts at ?from";
}

TEST_F(Serve, TheLiveTailResumesAfterTheLastEventIdItWasSent) {
  Running server(command(db()));
  auto client = server.client();
  client.set_default_headers({{"Last-Event-ID", "4"}});
  const std::string body = read_stream_until(client, "/api/tail?from=1", [](const std::string& b) {
    return b.find("id: 5") != std::string::npos;
  });
  EXPECT_EQ(body.find("\"position\":4"), std::string::npos) << body;
  EXPECT_EQ(body.find("\"position\":1,"), std::string::npos) << body;
}

TEST_F(Serve, EventStreamsBeyondTheLimitAreRefused) {
  Running server(command(db()));
  std::vector<std::unique_ptr<httplib::Client>> clients;
  std::vector<std::thread> open;
  std::atomic<int> started{0};
  for (std::size_t i = 0; i < tool::kServeMaxStreams; ++i) {
    clients.push_back(std::make_unique<httplib::Client>("127.0.0.1", server.port()));
    open.emplace_back([&started, &client = *clients.back()] {
      bool counted = false;
      client.Get("/api/tail", [&](const char*, std::size_t) {
        if (!counted) {
          counted = true;
          ++started;
        }
        return true;
      });
    });
  }
  while (started.load() < static_cast<int>(tool::kServeMaxStreams)) std::this_thread::yield();
  EXPECT_EQ(server.client().Get("/api/tail")->status, 503);
  EXPECT_EQ(server.client().Get("/api/verify")->status, 503);
  EXPECT_EQ(server.client().Get("/api/info")->status, 200) << "ordinary requests still served";
  for (auto& c : clients) c->stop();
  for (auto& t : open) t.join();
}

TEST_F(Serve, TheStoreFileIsNeverWritten) {
  // A read-only file: the server must still serve it, which it can only if it
  // never tries to write.
  ::chmod(db().c_str(), 0444);
  const std::string before = file_bytes(db());
  {
    Running server(command(db()));
    auto client = server.client();
    EXPECT_EQ(client.Get("/api/streams")->status, 200);
    EXPECT_EQ(client.Get("/api/projections")->status, 200);
    read_stream_until(client, "/api/verify", [](const std::string&) { return false; });
  }
  EXPECT_EQ(file_bytes(db()), before);
  SQLite::Database raw(db().string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("SELECT count(*) FROM sqlite_schema WHERE name = 'projection_checkpoints'").getInt(), 0)
      << "no read model tables were created";
}

}  // namespace
}  // namespace annals
