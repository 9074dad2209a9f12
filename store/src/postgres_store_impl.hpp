#pragma once
// PostgresEventStore::Impl and the libpq helpers shared by the units of the
// PostgreSQL store:
//   postgres_event_store.cpp  the schema, connections and their pool, identity
//   postgres_store_write.cpp  append under the head-row lock, group commit
//   postgres_store_read.cpp   paged reads and snapshots
//   postgres_commit_watcher.cpp  LISTEN/NOTIFY wake-ups
//   postgres_import.cpp       loading an export
// The schema is described where it is created (postgres_event_store.cpp).

#include <libpq-fe.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/thread_annotations.hpp"
#include "annals/store/internal/group_commit.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "commit_listeners.hpp"

namespace annals::detail::pg {

// Type oids of the parameters we send (pg_type.dat).
constexpr Oid kInt8 = 20;
constexpr Oid kInt4 = 23;
constexpr Oid kText = 25;
constexpr Oid kBytea = 17;

// Throws InvalidArgument naming `option` unless `name` is an identifier the
// store, read model and key store can put in SQL unquoted-safe: ASCII letters,
// digits and '_', not starting with a digit, at most 63 bytes (PostgreSQL's
// NAMEDATALEN). One rule for every schema option, so a name one accepts the
// others accept too.
inline void check_schema_name(const std::string& name, const std::string& option) {
  bool ok = !name.empty() && name.size() <= 63 && !(name[0] >= '0' && name[0] <= '9');
  for (const char c : name) {
    ok = ok &&
         ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
  }
  if (!ok) {
    throw InvalidArgument(option + " '" + name +
                          "': use ASCII letters, digits and '_', not starting with a digit, "
                          "at most 63 bytes");
  }
}

// The server's message for a failed `r` (or, without one, the connection's),
// without libpq's trailing newline, for error messages.
inline std::string error_text(PGconn* c, const PGresult* r) {
  const auto trim = [](std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  };
  std::string msg = trim(r != nullptr ? PQresultErrorMessage(r) : "");
  if (msg.empty() && c != nullptr) msg = trim(PQerrorMessage(c));
  return msg;
}

// Empty when libpq can parse `connection` (a URL or key=value pairs); else
// libpq's reason, with each quoted token that is not a keyword of the string
// (followed there by '=') replaced: libpq quotes the offending value, and the
// value may be a password. Callers check before connecting, since a failed
// connection's message would quote it too.
inline std::string conninfo_error(const std::string& connection) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(connection.c_str(), &error);
  std::string message = error != nullptr ? error : "";
  if (error != nullptr) PQfreemem(error);
  if (parsed != nullptr) {
    PQconninfoFree(parsed);
    return {};
  }
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  if (message.empty()) return "the connection string is malformed";
  std::string shown;
  std::size_t at = 0;
  for (;;) {
    const auto open = message.find('"', at);
    const auto close = open == std::string::npos ? open : message.find('"', open + 1);
    if (close == std::string::npos) break;
    const std::string token = message.substr(open + 1, close - open - 1);
    const bool keyword = !token.empty() && connection.find(token + "=") != std::string::npos;
    shown += message.substr(at, open - at) + "\"" + (keyword ? token : "(value not shown)") + "\"";
    at = close + 1;
  }
  return shown + message.substr(at);
}

// The value of keyword `key` in `connection` ("" when absent or malformed).
inline std::string conninfo_value(const std::string& connection, const char* key) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(connection.c_str(), &error);
  if (error != nullptr) PQfreemem(error);
  std::string value;
  for (PQconninfoOption* o = parsed; o != nullptr && o->keyword != nullptr; ++o) {
    if (std::strcmp(o->keyword, key) == 0 && o->val != nullptr) value = o->val;
  }
  if (parsed != nullptr) PQconninfoFree(parsed);
  return value;
}

struct ConnDeleter {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;

struct ResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// Parameters in binary format: integers big-endian, text and bytea as bytes.
class Params {
 public:
  Params& i8(std::int64_t v) {
    std::string b(8, '\0');
    auto u = static_cast<std::uint64_t>(v);
    for (int i = 7; i >= 0; --i) {
      b[static_cast<std::size_t>(i)] = static_cast<char>(u & 0xFF);
      u >>= 8;
    }
    return add(kInt8, std::move(b));
  }
  Params& i4(int v) {
    std::string b(4, '\0');
    auto u = static_cast<std::uint32_t>(v);
    for (int i = 3; i >= 0; --i) {
      b[static_cast<std::size_t>(i)] = static_cast<char>(u & 0xFF);
      u >>= 8;
    }
    return add(kInt4, std::move(b));
  }
  Params& text(std::string_view v) { return add(kText, std::string(v)); }
  // SQL NULL of `type`.
  Params& null(Oid type) {
    add(type, std::string());
    nulls_.resize(values_.size(), false);
    nulls_.back() = true;
    return *this;
  }
  Params& bytes(std::string_view v) { return add(kBytea, std::string(v)); }

  int size() const { return static_cast<int>(values_.size()); }
  const Oid* types() const { return types_.data(); }
  std::vector<const char*> values() const {
    std::vector<const char*> out;
    for (std::size_t i = 0; i < values_.size(); ++i) {
      out.push_back(i < nulls_.size() && nulls_[i] ? nullptr : values_[i].data());
    }
    return out;
  }
  std::vector<int> lengths() const {
    std::vector<int> out;
    for (const auto& v : values_) out.push_back(static_cast<int>(v.size()));
    return out;
  }

 private:
  Params& add(Oid type, std::string bytes) {
    types_.push_back(type);
    values_.push_back(std::move(bytes));
    return *this;
  }
  std::vector<Oid> types_;
  std::vector<std::string> values_;
  std::vector<bool> nulls_;  // by index; shorter than values_ when the rest are not NULL
};

inline std::int64_t get_i8(const PGresult* r, int row, int col) {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  std::uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | p[i];
  return static_cast<std::int64_t>(u);
}
inline int get_i4(const PGresult* r, int row, int col) {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  std::uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u = (u << 8) | p[i];
  return static_cast<int>(u);
}
inline std::string get_bytes(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}
inline bool is_null(const PGresult* r, int row, int col) {
  return PQgetisnull(r, row, col) != 0;
}

inline EventHash to_hash(const std::string& bytes) {
  EventHash h{};
  if (bytes.size() == h.size()) std::memcpy(h.data(), bytes.data(), h.size());
  return h;
}
inline std::string hash_bytes(const EventHash& h) {
  return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}

// Columns of an event row, in this order, for every read.
inline constexpr const char* kEventColumns =
    "position, stream_id, version, event_id, type, schema_version, payload, metadata, "
    "recorded_at, hash";

inline RecordedEvent event_at(const PGresult* r, int row) {
  RecordedEvent e;
  e.position = get_i8(r, row, 0);
  e.stream_id = get_bytes(r, row, 1);
  e.version = get_i8(r, row, 2);
  e.event_id = get_bytes(r, row, 3);
  e.type = get_bytes(r, row, 4);
  e.schema_version = get_i4(r, row, 5);
  e.payload = get_bytes(r, row, 6);
  e.metadata = get_bytes(r, row, 7);
  e.recorded_at = from_micros(get_i8(r, row, 8));
  e.hash = to_hash(get_bytes(r, row, 9));
  return e;
}

// The seals table and its append-only triggers, unqualified (the
// connection's search_path is the store's schema); idempotent
// (postgres_seal.cpp).
extern const char* const kSealsSql;

// The channel the store's appends NOTIFY and its watchers LISTEN on.
std::string notify_channel(const std::string& schema);

// A CommitWatcher source that LISTENs on `channel` on a connection of its own
// (polls only, connecting nothing, when `push` is false).
// Throws: StorageError when it cannot connect or LISTEN.
std::unique_ptr<CommitWatcher::Source> make_listen_source(const std::string& connection,
                                                          const std::string& channel, bool push);

}  // namespace annals::detail::pg

namespace annals {

class PostgresEventStore::Impl final : public detail::GroupWriter {
 public:
  using Conn = detail::pg::Conn;
  using Result = detail::pg::Result;
  using Params = detail::pg::Params;

  // Throws: InvalidArgument (schema name, page size).
  Impl(std::string connection, PostgresStoreOptions options);
  // Waits for the appends still queued (there should be none: the store must
  // outlive its callers).
  ~Impl() { scheduler_.shutdown(); }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // A connection borrowed from the pool; returned when destroyed, unless it
  // broke or is inside a transaction.
  class Lease {
   public:
    Lease(const Impl* impl, Conn conn) : impl_(impl), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease() {
      if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK &&
          PQtransactionStatus(conn_.get()) == PQTRANS_IDLE) {
        impl_->give_back(std::move(conn_));
      }
    }
    PGconn* get() const { return conn_.get(); }

   private:
    const Impl* impl_;
    Conn conn_;
  };

  // A pooled connection, or a new one.
  // Throws: StorageError (cannot connect).
  Lease lease() const;

  void give_back(Conn c) const {
    detail::MutexLock lock(pool_mu_);
    if (pool_.size() < options_.max_idle_connections) pool_.push_back(std::move(c));
  }

  // How exec() sends a statement with parameters.
  enum class Send {
    // Prepared once per connection when it keeps prepared statements
    // (PostgresStoreOptions::prepare_statements): the append path's short
    // lookups and inserts, where parsing and planning were most of the cost.
    prepared,
    // As text every time: the paged reads, whose cost is the rows, and whose
    // plan must fit this call's values (a prepared statement's generic plan
    // for "stream_id = $1 ... LIMIT $3" may sort every remaining row of the
    // stream for each page).
    text,
  };
  // Runs `sql` with `params`, binary results; throws StorageError naming `what`.
  static Result exec(PGconn* c, const char* what, const std::string& sql, const Params& params = {},
                     Send send = Send::prepared);
  // Several statements in one string, no parameters, text results.
  static void exec_script(PGconn* c, const char* what, const std::string& sql);
  // Throws StorageError naming `what` unless `r` succeeded.
  static void check(PGconn* c, const PGresult* r, const char* what);

  // The rows of an append and of an import (postgres_store_write.cpp): `e`
  // as recorded, position, version and hash included; a stream's version.
  static void insert_event(PGconn* c, const RecordedEvent& e);
  static void set_stream_version(PGconn* c, const std::string& stream_id, std::int64_t version);

  // Creates the tables unless they exist; an application role that may only
  // read and append opens an existing store without needing CREATE rights.
  void create_schema();

  // Sets the head row to `position`, inside the caller's transaction; when
  // `moved` (events were stored) and notify is on, also NOTIFYs the channel.
  void move_head(PGconn* c, std::int64_t position, bool moved) const;

  // The first result if `part` is an idempotent retry; otherwise nullopt, and
  // the stream's version in `version` (postgres_store_write.cpp).
  std::optional<AppendResult> retry_of(PGconn* c, const StreamAppend& part,
                                       std::int64_t& version) const;

  // Queues `batch` for the next group commit and returns its results
  // (postgres_store_write.cpp).
  std::vector<AppendResult> append(std::vector<StreamAppend>& batch);
  // The group-commit leader's transaction (postgres_store_write.cpp).
  void write_group(detail::CommitGroup& group) noexcept override;

  std::string connection_;
  PostgresStoreOptions options_;
  std::string search_path_;
  std::string channel_;  // notify_channel(options_.schema)
  mutable detail::Mutex pool_mu_;
  mutable std::vector<Conn> pool_ ANNALS_GUARDED_BY(pool_mu_);
  // Held by a group-commit leader and by an import: orders this object's
  // transactions that take the head row and their listener queue (guards no
  // member: the head row's lock in the database is what orders appends).
  detail::Mutex append_mu_;
  std::shared_ptr<detail::CommitListeners> listeners_ =
      std::make_shared<detail::CommitListeners>();
  // Last: constructed after, and shut down before, what write_group uses.
  detail::CommitScheduler scheduler_{*this, options_.max_group_size};
};

}  // namespace annals
