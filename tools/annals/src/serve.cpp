#include "serve.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "annals/core/clock.hpp"
#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/metrics.hpp"
#include "annals/core/stream_id.hpp"
#include "annals/projections/read_model.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/commit_watcher.hpp"
#include "annals/version.hpp"
#include "web_assets.hpp"

namespace annals::tool {

namespace {

using namespace std::chrono_literals;

// How often a live tail looks for new events when its commit watcher cannot
// push (then it polls), and when it can (a safety net, not the way events
// arrive); the steps it waits in; and how often an idle event stream sends a
// comment so that proxies and the browser keep it open.
constexpr auto kTailPoll = 250ms;
constexpr auto kTailPushedPoll = 5000ms;
constexpr auto kTailStep = 50ms;
constexpr auto kHeartbeat = 15s;
// Events a tail sends per look, and events verify checks between progress
// reports: bounds the memory and the time one step of a stream holds.
constexpr std::uint64_t kTailBatch = 200;
constexpr std::uint64_t kVerifyBatch = 2000;
constexpr std::size_t kMaxParam = 1024;
// Worker threads: each open event stream holds one, so there are more than
// kServeMaxStreams for ordinary requests to go on.
constexpr std::size_t kWorkerThreads = kServeMaxStreams + 8;
const char* const kCookieName = "annals_token";

// A request the server refuses with `status` and `message`.
struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;
};

std::string dump(const Json& j) {
  // Invalid UTF-8 in stored text is shown replaced rather than failing the page.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void send_json(httplib::Response& res, const Json& j) {
  res.set_content(dump(j), "application/json; charset=utf-8");
}

std::string param(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return {};
  std::string value = req.get_param_value(name);
  if (value.size() > kMaxParam) {
    throw HttpError(400, std::string("parameter '") + name + "' is longer than " +
                             std::to_string(kMaxParam) + " bytes");
  }
  return value;
}

// A whole-number parameter in [min, max]; `fallback` when absent or empty.
std::int64_t int_param(const httplib::Request& req, const char* name, std::int64_t fallback,
                       std::int64_t min, std::int64_t max) {
  const std::string text = param(req, name);
  if (text.empty()) return fallback;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    throw HttpError(400, std::string("parameter '") + name + "' must be a whole number from " +
                             std::to_string(min) + " to " + std::to_string(max) + ", not '" +
                             text + "'");
  }
  return value;
}

std::uint64_t page_size(const httplib::Request& req) {
  return static_cast<std::uint64_t>(int_param(req, "limit", kServeDefaultPage, 1, kServeMaxPage));
}

Json summary(const RecordedEvent& e) {
  return Json{{"position", e.position},      {"stream_id", e.stream_id}, {"version", e.version},
              {"type", e.type},              {"event_id", e.event_id},
              {"recorded_at", format_timestamp(e.recorded_at)}};
}

Json full(const RecordedEvent& e) {
  Json j = summary(e);
  j["schema_version"] = e.schema_version;
  j["payload"] = e.payload;  // the text as stored; the page pretty-prints it
  j["metadata"] = e.metadata;
  j["hash"] = to_hex(e.hash);
  return j;
}

// One server-sent event.
std::string sse(const std::string& event, const Json& data, std::int64_t id = 0) {
  std::string out;
  if (id > 0) out += "id: " + std::to_string(id) + "\n";
  out += "event: " + event + "\ndata: " + dump(data) + "\n\n";
  return out;
}

// The host part of a Host header ("[::1]:8080" -> "::1", "a:80" -> "a").
std::string host_of(std::string_view header) {
  if (!header.empty() && header.front() == '[') {
    const auto close = header.find(']');
    return std::string(header.substr(1, close == std::string_view::npos ? 0 : close - 1));
  }
  const auto colon = header.rfind(':');
  return std::string(colon == std::string_view::npos ? header : header.substr(0, colon));
}

// The store as the page and the first line name it: a file as given, a URL
// without its password.
std::string store_description(const std::filesystem::path& db) {
  const std::string quoted = store_name(db);
  return quoted.substr(1, quoted.size() - 2);
}

bool valid_token_chars(std::string_view token) {
  return std::all_of(token.begin(), token.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("._~+/=-").find(c) != std::string_view::npos;
  });
}

// The value of cookie `name` in a Cookie header, if present.
std::optional<std::string> cookie(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto end = header.find(';');
    std::string_view part = header.substr(0, end);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name &&
        part[name.size()] == '=') {
      return std::string(part.substr(name.size() + 1));
    }
    if (end == std::string_view::npos) break;
    header.remove_prefix(end + 1);
  }
  return std::nullopt;
}

// Counts open event streams; a slot is released when its response is gone.
class StreamSlot {
 public:
  explicit StreamSlot(std::atomic<std::size_t>& open) : open_(open) {}
  ~StreamSlot() { open_.fetch_sub(1); }
  StreamSlot(const StreamSlot&) = delete;
  StreamSlot& operator=(const StreamSlot&) = delete;

 private:
  std::atomic<std::size_t>& open_;
};

}  // namespace

bool is_loopback_host(std::string_view host) noexcept {
  if (host == "localhost" || host == "::1") return true;
  in_addr v4{};
  const std::string text(host);
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

bool tokens_equal(std::string_view a, std::string_view b) noexcept {
  unsigned char da[SHA256_DIGEST_LENGTH];
  unsigned char db[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da);
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db);
  return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

class WebServer::Impl {
 public:
  explicit Impl(ServeCommand options) : options_(std::move(options)) {
    if (options_.port < 0 || options_.port > 65535) {
      throw ToolError(kExitUsage, "--port " + std::to_string(options_.port) +
                                      ": ports are 0 to 65535");
    }
    if (!options_.token.empty()) {
      if (options_.token.size() < kServeMinTokenLength ||
          options_.token.size() > kServeMaxTokenLength || !valid_token_chars(options_.token)) {
        throw ToolError(kExitUsage, "--token must be " + std::to_string(kServeMinTokenLength) +
                                        " to " + std::to_string(kServeMaxTokenLength) +
                                        " characters from A-Z a-z 0-9 . _ ~ + / = -");
      }
    } else if (!is_loopback_host(options_.bind)) {
      throw ToolError(kExitUsage, "--bind " + options_.bind +
                                      " is not a loopback address: serving it needs --token");
    }
    // Held const: the compiler then lets this server call the readers only.
    // Opened read-only too: an SQLite file as open_for_reading() does, a
    // PostgreSQL schema without creating anything.
    store_ = open_store(options_.db);
    read_model_location_ = options_.read_model.empty() ? options_.db : options_.read_model;
    if (is_postgres_read_model(options_.db, options_.read_model)) {
      read_model_name_ = postgres_read_model_name(read_model_location_);
      postgres_read_model_ = open_postgres_read_model(read_model_location_, true);
    } else {
      read_model_name_ = read_model_location_.string();
    }
    routes();
  }

  ~Impl() { stop(); }

  int bind() {
    const int port = options_.port == 0 ? server_.bind_to_any_port(options_.bind)
                                        : (server_.bind_to_port(options_.bind, options_.port)
                                               ? options_.port
                                               : -1);
    if (port < 0) {
      throw ToolError(kExitFailure, "cannot listen on " + options_.bind + " port " +
                                        std::to_string(options_.port));
    }
    return port;
  }

  void run() { server_.listen_after_bind(); }

  void stop() noexcept {
    stopping_ = true;
    try {
      server_.stop();
    } catch (...) {  // stop() is called from destructors: never throw
    }
  }

 private:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  // Every handler's errors become a status and a JSON message.
  httplib::Server::Handler guarded(Handler fn) const {
    return [this, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
      try {
        fn(req, res);
      } catch (const HttpError& e) {
        res.status = e.status;
        if (e.status == 503) res.set_header("Retry-After", "5");
        send_json(res, Json{{"error", e.what()}});
      } catch (const InvalidArgument& e) {
        res.status = 400;
        send_json(res, Json{{"error", e.what()}});
      } catch (const StorageError& e) {
        // The database did not answer (a PostgreSQL server that went away, a
        // locked or failing file): a later request may well succeed.
        res.status = 503;
        res.set_header("Retry-After", "5");
        send_json(res, Json{{"error", unavailable_message(e)}});
      } catch (const std::exception& e) {
        res.status = 500;
        send_json(res, Json{{"error", e.what()}});
      }
    };
  }

  std::string unavailable_message(const StorageError& e) const {
    return "the store " + store_name(options_.db) + " cannot be read now: " + e.what();
  }

  void routes() {
    server_.new_task_queue = [] {
      // httplib takes ownership of the pool it is handed.
      return new httplib::ThreadPool(kWorkerThreads);
    };
    server_.set_payload_max_length(kServeMaxBody);
    server_.set_keep_alive_timeout(5);
    server_.set_default_headers({
        {"Content-Security-Policy",
         "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
         "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
        {"Cache-Control", "no-store"},
    });
    server_.set_pre_routing_handler(
        [this](const httplib::Request& req, httplib::Response& res) { return admit(req, res); });
    server_.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) {
        res.set_content(res.status == 404 ? "not found\n" : "error " + std::to_string(res.status) + "\n",
                        "text/plain; charset=utf-8");
      }
    });

    for (const WebAsset& asset : web_assets()) {
      server_.Get(std::string(asset.path), [&asset](const httplib::Request&, httplib::Response& res) {
        res.set_content(asset.body.data(), asset.body.size(), std::string(asset.content_type));
      });
    }
    server_.Get("/api/info", guarded([this](const auto&, auto& res) { info(res); }));
    server_.Get("/api/streams", guarded([this](const auto& req, auto& res) { streams(req, res); }));
    server_.Get("/api/stream", guarded([this](const auto& req, auto& res) { stream(req, res); }));
    server_.Get("/api/event", guarded([this](const auto& req, auto& res) { event(req, res); }));
    server_.Get("/api/projections", guarded([this](const auto&, auto& res) { projections(res); }));
    server_.Get("/api/verify", guarded([this](const auto&, auto& res) { verify(res); }));
    server_.Get("/api/tail", guarded([this](const auto& req, auto& res) { tail(req, res); }));
    server_.Get("/metrics", guarded([this](const auto&, auto& res) { metrics(res); }));
    server_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      count_request(req, res);
    });
  }

  // Method, host and token checks, before any route.
  httplib::Server::HandlerResponse admit(const httplib::Request& req, httplib::Response& res) {
    using R = httplib::Server::HandlerResponse;
    const auto refuse = [&](int status, const std::string& message) {
      res.status = status;
      res.set_content(message + "\n", "text/plain; charset=utf-8");
      return R::Handled;
    };
    if (req.method != "GET" && req.method != "HEAD") {
      res.set_header("Allow", "GET, HEAD");
      return refuse(405, "read-only: only GET and HEAD are served");
    }
    if (options_.token.empty()) {
      // A page on another site that re-points its name at 127.0.0.1 still
      // sends its own name as Host: refuse it.
      if (!is_loopback_host(host_of(req.get_header_value("Host")))) {
        return refuse(403, "this server answers only to a loopback host name");
      }
      return R::Unhandled;
    }
    const std::string auth = req.get_header_value("Authorization");
    const std::string_view bearer = "Bearer ";
    if (auth.size() > bearer.size() && auth.compare(0, bearer.size(), bearer) == 0 &&
        tokens_equal(std::string_view(auth).substr(bearer.size()), options_.token)) {
      return R::Unhandled;
    }
    if (const auto c = cookie(req.get_header_value("Cookie"), kCookieName);
        c && tokens_equal(*c, options_.token)) {
      return R::Unhandled;
    }
    // Opening /?token=T once stores the token in a cookie the browser sends
    // with every later request (EventSource cannot send headers), then drops
    // it from the address.
    if (req.path == "/" && req.has_param("token") &&
        tokens_equal(req.get_param_value("token"), options_.token)) {
      res.set_header("Set-Cookie", std::string(kCookieName) + "=" + options_.token +
                                       "; Path=/; HttpOnly; SameSite=Strict");
      res.set_redirect("/", 303);
      return R::Handled;
    }
    res.set_header("WWW-Authenticate", "Bearer realm=\"annals\"");
    return refuse(401, "a token is required: send 'Authorization: Bearer TOKEN' or open /?token=TOKEN");
  }

  void info(httplib::Response& res) {
    Json j{{"head_position", store_->head_position()},
           {"version", std::string(kVersion)},
           {"read_only", true},
           {"max_page", kServeMaxPage}};
    if (is_postgres_url(options_.db)) {
      j["backend"] = "postgresql";
      j["store"] = store_description(options_.db);
      j["schema"] = postgres_store_schema();
    } else {
      j["backend"] = "sqlite";
      j["store"] = options_.db.string();
      j["file"] = options_.db.string();
    }
    send_json(res, j);
  }

  void streams(const httplib::Request& req, httplib::Response& res) {
    const std::string prefix = param(req, "prefix");
    const std::string after = param(req, "after");
    const std::uint64_t limit = page_size(req);
    Json list = Json::array();
    bool more = false;
    // list_streams streams the ids in byte order; those up to `after` were on
    // earlier pages.
    for (const std::string& id : store_->list_streams(prefix)) {
      if (!after.empty() && id <= after) continue;
      if (list.size() == limit) {
        more = true;
        break;
      }
      list.push_back(Json{{"id", id}, {"version", store_->stream_version(id)}});
    }
    send_json(res, Json{{"prefix", prefix},
                        {"streams", list},
                        {"next_after", more ? list.back()["id"] : Json()}});
  }

  void stream(const httplib::Request& req, httplib::Response& res) {
    const std::string id = param(req, "id");
    validate_stream_id(id);
    const std::string order = req.has_param("order") ? param(req, "order") : "newest";
    if (order != "newest" && order != "oldest") {
      throw HttpError(400, "parameter 'order' must be 'newest' or 'oldest', not '" + order + "'");
    }
    const bool newest = order == "newest";
    const std::int64_t version = store_->stream_version(id);
    if (version == 0) throw HttpError(404, "stream '" + id + "' does not exist");
    const std::int64_t from =
        int_param(req, "from", newest ? version : 1, 1, std::numeric_limits<std::int64_t>::max());
    const std::uint64_t limit = page_size(req);
    Json events = Json::array();
    Json next;
    for (const RecordedEvent& e : store_->read_stream(id, from, newest ? Direction::backward
                                                                       : Direction::forward,
                                                      limit + 1)) {
      if (events.size() == limit) {
        next = e.version;
        break;
      }
      events.push_back(summary(e));
    }
    send_json(res, Json{{"stream_id", id},
                        {"version", version},
                        {"order", order},
                        {"events", events},
                        {"next_from", next}});
  }

  void event(const httplib::Request& req, httplib::Response& res) {
    if (!req.has_param("position")) throw HttpError(400, "parameter 'position' is required");
    const std::int64_t position =
        int_param(req, "position", 0, 1, std::numeric_limits<std::int64_t>::max());
    for (const RecordedEvent& e : store_->read_all(position, {}, 1)) {
      if (e.position == position) return send_json(res, full(e));
    }
    throw HttpError(404, "no event at position " + std::to_string(position));
  }

  // The read model's checkpoint and parked-event tables, opened read-only:
  // this server writes nothing.
  void projections(httplib::Response& res) {
    const std::int64_t head = store_->head_position();
    send_json(res, Json{{"read_model", read_model_name_},
                        {"head_position", head},
                        {"projections", projection_list(head)}});
  }

  // Runs `fn` on the read model; not at all when it is an SQLite file that
  // does not exist (no projection ever ran there). The file is opened per
  // call, not once, so that one created after the server started is shown.
  void with_read_model(const std::function<void(const ReadModel&)>& fn) const {
    if (postgres_read_model_) return fn(*postgres_read_model_);
    std::error_code ec;
    if (!std::filesystem::exists(read_model_location_, ec)) return;
    const SqliteReadModel read_model(read_model_location_, {.read_only = true});
    fn(read_model);
  }

  Json projection_list(std::int64_t head) const {
    Json list = Json::array();
    try {
      with_read_model(
          [&](const ReadModel& read_model) { add_projections(read_model, head, list); });
    } catch (const StorageError& e) {
      throw HttpError(503,
                      "the read model " + read_model_name_ + " cannot be read now: " + e.what());
    }
    return list;
  }

  static void add_projections(const ReadModel& read_model, std::int64_t head, Json& list) {
    for (const CheckpointRecord& record : read_model.checkpoint_records()) {
      Json p;
      p["name"] = record.name;
      p["checkpoint"] = record.position;
      p["head_position"] = head;
      p["lag"] = std::max<std::int64_t>(0, head - record.position);
      p["state"] = std::string(to_string(record.state));
      p["updated_at"] = format_timestamp(record.updated_at);
      p["failure"] = record.failure ? Json{{"message", record.failure->message},
                                           {"position", record.failure->position},
                                           {"attempts", record.failure->attempts}}
                                    : Json();
      p["parked_count"] = read_model.parked_count(record.name);
      p["parked"] = Json::array();
      for (const ParkedEvent& parked : read_model.parked_events(record.name, kServeMaxParked)) {
        p["parked"].push_back(Json{{"position", parked.position},
                                   {"stream_id", parked.stream_id},
                                   {"type", parked.type},
                                   {"error", parked.error},
                                   {"attempts", parked.attempts},
                                   {"parked_at", format_timestamp(parked.parked_at)}});
      }
      list.push_back(std::move(p));
    }
  }

  // The Prometheus exposition: what this server counted, and what the store
  // and the read model hold now (so it shows the state of every process that
  // writes them). The metrics are listed in docs/operations.md.
  void metrics(httplib::Response& res) {
    MetricsRegistry m;
    const std::int64_t head = store_->head_position();
    m.gauge("annals_store_head_position", "Position of the newest event in the store (0: empty).")
        .set(static_cast<double>(head));
    // A PostgreSQL store has no file of its own to measure (the server's
    // own metrics show its disk use).
    if (!is_postgres_url(options_.db)) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(options_.db, ec);
      m.gauge("annals_store_file_bytes", "Size of the store file.")
          .set(ec ? 0.0 : static_cast<double>(size));
      const auto wal = std::filesystem::file_size(options_.db.string() + "-wal", ec);
      m.gauge("annals_store_wal_bytes", "Size of the store's write-ahead log.")
          .set(ec ? 0.0 : static_cast<double>(wal));
    }
    for (const Json& p : projection_list(head)) {
      const MetricLabels labels{{"projection", p["name"].get<std::string>()}};
      m.gauge("annals_projection_checkpoint", "Last position the projection handled.", labels)
          .set(p["checkpoint"].get<double>());
      m.gauge("annals_projection_lag_events", "Head position minus checkpoint.", labels)
          .set(p["lag"].get<double>());
      m.gauge("annals_projection_parked_events", "Events the projection parked and did not retry yet.", labels)
          .set(p["parked_count"].get<double>());
      m.gauge("annals_projection_failed", "1 when the projection stopped on a failure, else 0.", labels)
          .set(p["failure"].is_null() ? 0 : 1);
      for (const char* state : {"stopped", "catching_up", "live"}) {
        MetricLabels with_state = labels;
        with_state.emplace_back("state", state);
        m.gauge("annals_projection_state", "1 for the state the projection last recorded, else 0.", with_state)
            .set(p["state"] == state ? 1 : 0);
      }
    }
    res.set_content(m.prometheus_text() + served_.prometheus_text(),
                    "text/plain; version=0.0.4; charset=utf-8");
  }

  // Counts a finished request under its route (unknown paths as "other", so
  // the label cannot grow without bound) and its status.
  void count_request(const httplib::Request& req, const httplib::Response& res) {
    std::string route = "other";
    for (const char* known : {"/", "/app.js", "/style.css", "/metrics", "/api/info", "/api/streams",
                              "/api/stream", "/api/event", "/api/projections", "/api/verify", "/api/tail"}) {
      if (req.path == known) route = known;
    }
    served_.counter("annals_serve_requests_total", "HTTP requests answered by annals serve.",
                    {{"route", route}, {"code", std::to_string(res.status)}})
        .add();
  }

  // A slot for one more event stream, or 503 when all are taken.
  std::shared_ptr<StreamSlot> take_stream_slot() {
    if (open_streams_.fetch_add(1) >= kServeMaxStreams) {
      open_streams_.fetch_sub(1);
      throw HttpError(503, "too many open event streams (at most " +
                               std::to_string(kServeMaxStreams) + ")");
    }
    return std::make_shared<StreamSlot>(open_streams_);
  }

  static void event_stream_headers(httplib::Response& res) {
    res.set_header("X-Accel-Buffering", "no");
  }

  // Walks the chain in batches, reporting progress after each; the last
  // message is the result, or a failure when the store could not be read to
  // the end (the chain was not checked: no result is claimed).
  void verify(httplib::Response& res) {
    struct State {
      std::shared_ptr<StreamSlot> slot;
      ChainVerifier verifier;
      std::int64_t head = 0;
      std::int64_t next = 1;
    };
    auto state = std::make_shared<State>();
    state->slot = take_stream_slot();
    state->head = store_->head_position();
    event_stream_headers(res);
    res.set_chunked_content_provider(
        "text/event-stream", [this, state](std::size_t, httplib::DataSink& sink) {
          if (stopping_) {
            sink.done();
            return true;
          }
          std::string out;
          bool finished = state->next > state->head;
          // An exception must not leave this function: httplib calls it
          // outside its handlers' protection.
          try {
            if (!finished) {
              const auto batch = static_cast<std::uint64_t>(
                  std::min<std::int64_t>(kVerifyBatch, state->head - state->next + 1));
              std::int64_t read = 0;
              for (const RecordedEvent& e : store_->read_all(state->next, {}, batch)) {
                ++read;
                if (!state->verifier.feed(e)) break;
              }
              state->next += static_cast<std::int64_t>(batch);
              // The head is the last stored position, so a batch is never empty
              // while next <= head; read == 0 only guards against looping.
              finished = !state->verifier.ok() || read == 0 || state->next > state->head;
            }
          } catch (const std::exception& e) {
            out = sse("failure", Json{{"error", failure_message(e)},
                                      {"checked", state->verifier.checked()},
                                      {"total", state->head}});
            if (sink.write(out.data(), out.size())) sink.done();
            return true;
          }
          out =
              sse("progress", Json{{"checked", state->verifier.checked()}, {"total", state->head}});
          if (finished) {
            const ChainVerifier& v = state->verifier;
            Json result{{"ok", v.ok()}, {"events_checked", v.checked()},
                        {"head_position", state->head}};
            if (!v.ok()) {
              result["first_bad_position"] = v.failed_at();
              result["reason"] = v.reason();
            }
            out += sse("result", result);
          }
          if (!sink.write(out.data(), out.size())) return false;
          if (finished) sink.done();
          return true;
        });
  }

  std::string failure_message(const std::exception& e) const {
    if (const auto* storage = dynamic_cast<const StorageError*>(&e)) {
      return unavailable_message(*storage);
    }
    return e.what();
  }

  // Sends every event from `from` (default: the last 10) as it is committed,
  // by this or any other process. It sleeps on the store's commit watcher
  // (inotify on SQLite, LISTEN/NOTIFY on PostgreSQL), so a commit wakes it at
  // once; it looks at the head every kTailPoll where the watcher cannot push,
  // and every kTailPushedPoll where it can. One indexed head lookup per look;
  // the events are read only when there are some.
  //
  // When the store cannot be read (a PostgreSQL server that went away), the
  // stream stays open: it sends `unavailable` once, keeps looking, and sends
  // `available` and the events it missed when the store answers again.
  void tail(const httplib::Request& req, httplib::Response& res) {
    struct State {
      std::shared_ptr<StreamSlot> slot;
      std::unique_ptr<CommitWatcher> watcher;
      std::int64_t next = 1;
      bool started = false;      // `start` was sent
      bool unavailable = false;  // `unavailable` was sent, `available` not yet
      std::chrono::steady_clock::time_point last_sent = std::chrono::steady_clock::now();
    };
    auto state = std::make_shared<State>();
    // The slot first: each watcher may hold a connection of its own.
    state->slot = take_stream_slot();
    // Watching before the first look at the head: a commit in between is
    // not missed.
    state->watcher = store_->watch_commits();
    const std::int64_t head = store_->head_position();
    std::int64_t from = int_param(req, "from", std::max<std::int64_t>(1, head - 9), 1,
                                  std::numeric_limits<std::int64_t>::max());
    // A reconnecting EventSource sends the id of the last event it received.
    const std::string last_id = req.get_header_value("Last-Event-ID");
    if (!last_id.empty()) {
      std::int64_t seen = 0;
      const auto [end, ec] = std::from_chars(last_id.data(), last_id.data() + last_id.size(), seen);
      if (ec == std::errc() && end == last_id.data() + last_id.size() && seen >= 1 &&
          seen < std::numeric_limits<std::int64_t>::max()) {
        from = seen + 1;
      }
    }
    state->next = from;
    event_stream_headers(res);
    res.set_chunked_content_provider(
        "text/event-stream", [this, state](std::size_t offset, httplib::DataSink& sink) {
          if (stopping_) {
            sink.done();
            return true;
          }
          std::string out = offset == 0 ? "retry: 2000\n" : "";
          // An exception must not leave this function: httplib calls it
          // outside its handlers' protection.
          try {
            const std::int64_t head = store_->head_position();
            if (!state->started) {
              out += sse("start", Json{{"from", state->next}, {"head_position", head}});
              state->started = true;
            } else if (state->unavailable) {
              out += sse("available", Json{{"head_position", head}});
            }
            state->unavailable = false;
            if (head >= state->next) {
              for (const RecordedEvent& e : store_->read_all(state->next, {}, kTailBatch)) {
                out += sse("append", summary(e), e.position);
                state->next = e.position + 1;
              }
            }
          } catch (const StorageError& e) {
            if (!state->unavailable) {
              out += sse("unavailable", Json{{"error", unavailable_message(e)}});
              state->unavailable = true;
            }
          } catch (const std::exception& e) {
            // Not an outage: end the stream; the browser reconnects from
            // the last event it received.
            out += sse("failure", Json{{"error", e.what()}});
            if (sink.write(out.data(), out.size())) sink.done();
            return true;
          }
          const auto now = std::chrono::steady_clock::now();
          if (out.empty() && now - state->last_sent >= kHeartbeat) out = ": ping\n\n";
          if (!out.empty()) {
            state->last_sent = now;
            return sink.write(out.data(), out.size());
          }
          // Nothing new: wait for a commit, in steps, so that stop() and a
          // closed connection end the stream soon.
          const auto longest =
              state->watcher->pushes() && !state->unavailable ? kTailPushedPoll : kTailPoll;
          for (auto waited = 0ms; waited < longest && !stopping_; waited += kTailStep) {
            if (!sink.is_writable()) return false;
            if (state->watcher->wait(kTailStep)) break;
          }
          return true;
        });
  }

  ServeCommand options_;
  std::unique_ptr<const EventStore> store_;
  std::filesystem::path read_model_location_;  // the file or the URL
  std::string read_model_name_;                // as the page shows it: no password
  // PostgreSQL: opened once (it reconnects by itself after an outage).
  // SQLite: null, see with_read_model().
  std::unique_ptr<const ReadModel> postgres_read_model_;
  httplib::Server server_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> open_streams_{0};
  MetricsRegistry served_;  // this server's own counters, for /metrics
};

WebServer::WebServer(ServeCommand options) : impl_(std::make_unique<Impl>(std::move(options))) {}
WebServer::~WebServer() = default;
int WebServer::bind() { return impl_->bind(); }
void WebServer::run() { impl_->run(); }
void WebServer::stop() noexcept { impl_->stop(); }

int run_serve(const ServeCommand& c, Io& io) {
  WebServer server(c);
  const int port = server.bind();
  // SIGINT and SIGTERM are taken by sigwait below, not by a handler: blocked
  // here, before the server's threads start, so every thread inherits that.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &signals, &previous);
  std::thread serving([&] { server.run(); });
  const std::string host = c.bind.find(':') != std::string::npos ? "[" + c.bind + "]" : c.bind;
  io.out << "annals serve: http://" << host << ':' << port << "/ ("
         << printable(store_description(c.db)) << ", read-only; Ctrl-C stops)" << std::endl;
  int received = 0;
  sigwait(&signals, &received);
  server.stop();
  serving.join();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return kExitOk;
}

}  // namespace annals::tool
