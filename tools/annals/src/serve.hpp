#pragma once
// `annals serve`: a read-only web page on one store, an SQLite file or a
// PostgreSQL schema (the same handlers serve both, through EventStore and
// ReadModel), served with cpp-httplib (docs/adr/0007-http-library.md). The
// page (web/*, compiled into the program) asks a small JSON API and two
// server-sent event streams:
//
//   GET /                      the page; /app.js and /style.css its assets
//   GET /api/info              backend, store (a URL without its password), head position, version
//   GET /api/streams           ?prefix=P&after=ID&limit=N   stream ids and versions, paged
//   GET /api/stream            ?id=S&order=newest|oldest&from=V&limit=N   one stream's events,
//   paged GET /api/event             ?position=N   one event in full GET /api/projections
//   checkpoints, lag, state, failures and parked events GET /api/verify            server-sent
//   events: progress, then the result GET /api/tail              ?from=POSITION   server-sent
//   events: every new event, by any process GET /metrics               Prometheus text exposition
//   (docs/operations.md)
//
// When the store or the read model cannot be read (a PostgreSQL server that
// went away, a locked file), a request gets 503 with the reason, and the
// server keeps running: requests work again once the database answers. A
// live tail stays open meanwhile and says so (events `unavailable`, then
// `available`); a verify that cannot finish ends with `failure`.
//
// Security: the store and the read model are opened read-only; nothing is
// read from the file system but them (no directory traversal is possible:
// assets live in the program). The server binds to loopback unless given a
// token; with a token every request must carry it (Authorization: Bearer, or
// the cookie set by opening /?token=T once), compared in constant time.
// Without a token a request must name a loopback host (Host header), which
// stops DNS-rebinding pages from reading the store. Every response forbids
// framing and scripts from elsewhere (Content-Security-Policy); the page
// builds its DOM with textContent, so stored text is never parsed as HTML.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "commands.hpp"

namespace annals::tool {

struct ServeCommand {
  std::filesystem::path db;  ///< an SQLite file or a postgresql:// URL
  /// An SQLite file or a postgresql:// URL (schema: ANNALS_PG_READ_MODEL_SCHEMA,
  /// else ANNALS_PG_SCHEMA, else "public"). Empty: the store's own file, or
  /// the store's server.
  std::filesystem::path read_model;
  std::string bind = "127.0.0.1";    ///< any non-loopback address requires a token
  int port = 8080;                   ///< 0: a free port, printed at start
  std::string token;                 ///< empty: no token (loopback only)
};

/// Limits applied to every request.
inline constexpr std::size_t kServeDefaultPage = 50;    ///< items per page when not asked
inline constexpr std::size_t kServeMaxPage = 500;       ///< most items per page
inline constexpr std::size_t kServeMaxParked = 100;     ///< parked events listed per projection
inline constexpr std::size_t kServeMaxStreams = 8;      ///< concurrent tail and verify streams
inline constexpr std::size_t kServeMaxBody = 1024;      ///< request body bytes (GET needs none)
inline constexpr std::size_t kServeMinTokenLength = 16;
inline constexpr std::size_t kServeMaxTokenLength = 256;

/// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(std::string_view host) noexcept;

/// Compares two tokens in time independent of where they differ (SHA-256 of
/// each, then CRYPTO_memcmp), so a caller learns nothing from timing.
bool tokens_equal(std::string_view a, std::string_view b) noexcept;

/// The web server of `annals serve`.
/// Thread safety: stop() may be called from any thread while run() runs;
/// other members from one thread.
class WebServer {
 public:
  /// Checks the options and opens the store (and a PostgreSQL read model)
  /// read-only: nothing is created, migrated or written. An SQLite read model
  /// is opened at each request, if it exists by then.
  /// Throws: ToolError(kExitUsage) for a non-loopback bind without a token, a
  /// token shorter than kServeMinTokenLength, longer than kServeMaxTokenLength
  /// or with characters outside [A-Za-z0-9._~+/=-], or a port outside 0..65535,
  /// or an invalid schema name; ToolError(kExitUnusable) when the store or a
  /// PostgreSQL read model cannot be opened (a missing file, schema or store,
  /// an unreachable server, a build without PostgreSQL support).
  explicit WebServer(ServeCommand options);
  /// Stops serving. Never throws.
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  /// Binds the address; returns the port (the chosen one for port 0).
  /// Throws: ToolError(kExitFailure) naming the address when it cannot be bound.
  int bind();
  /// Serves requests until stop(). Requires: bind() returned.
  void run();
  /// Makes run() return and ends open event streams. Never throws.
  void stop() noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

/// Serves until SIGINT or SIGTERM; prints the address on io.out first.
int run_serve(const ServeCommand& c, Io& io);

}  // namespace annals::tool
