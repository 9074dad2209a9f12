#include "annals/store/postgres_event_store.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <utility>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/stream_id.hpp"
#include "append_input.hpp"
#include "commit_listeners.hpp"

namespace annals {

namespace {

// Type oids of the parameters we send (pg_type.dat).
constexpr Oid kInt8 = 20;
constexpr Oid kInt4 = 23;
constexpr Oid kText = 25;
constexpr Oid kBytea = 17;

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
  Params& bytes(std::string_view v) { return add(kBytea, std::string(v)); }

  int size() const { return static_cast<int>(values_.size()); }
  const Oid* types() const { return types_.data(); }
  std::vector<const char*> values() const {
    std::vector<const char*> out;
    for (const auto& v : values_) out.push_back(v.data());
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
};

std::int64_t get_i8(const PGresult* r, int row, int col) {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  std::uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | p[i];
  return static_cast<std::int64_t>(u);
}
int get_i4(const PGresult* r, int row, int col) {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  std::uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u = (u << 8) | p[i];
  return static_cast<int>(u);
}
std::string get_bytes(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}
bool is_null(const PGresult* r, int row, int col) { return PQgetisnull(r, row, col) != 0; }


EventHash to_hash(const std::string& bytes) {
  EventHash h{};
  if (bytes.size() == h.size()) std::memcpy(h.data(), bytes.data(), h.size());
  return h;
}
std::string hash_bytes(const EventHash& h) {
  return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}

// Columns of an event row, in this order, for every read.
constexpr const char* kEventColumns =
    "position, stream_id, version, event_id, type, schema_version, payload, metadata, "
    "recorded_at, hash";

RecordedEvent event_at(const PGresult* r, int row) {
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

std::string schema_sql(const std::string& s) {
  const std::string q = "\"" + s + "\"";
  return "CREATE SCHEMA IF NOT EXISTS " + q + ";\n"
         "CREATE TABLE IF NOT EXISTS " + q + ".annals_head (\n"
         "  id int PRIMARY KEY CHECK (id = 1),\n"
         "  position bigint NOT NULL);\n"
         "INSERT INTO " + q + ".annals_head VALUES (1, 0) ON CONFLICT DO NOTHING;\n"
         "CREATE TABLE IF NOT EXISTS " + q + ".annals_meta (\n"
         "  key text PRIMARY KEY, value text NOT NULL);\n"
         "INSERT INTO " + q + ".annals_meta VALUES ('store_id', gen_random_uuid()::text)\n"
         "  ON CONFLICT DO NOTHING;\n"
         "INSERT INTO " + q + ".annals_meta VALUES ('schema_version', '1') ON CONFLICT DO NOTHING;\n"
         "CREATE TABLE IF NOT EXISTS " + q + ".events (\n"
         "  position bigint PRIMARY KEY CHECK (position >= 1),\n"
         "  stream_id text COLLATE \"C\" NOT NULL,\n"
         "  version bigint NOT NULL CHECK (version >= 1),\n"
         "  event_id text NOT NULL UNIQUE,\n"
         "  type text NOT NULL,\n"
         "  schema_version int NOT NULL,\n"
         "  payload bytea NOT NULL,\n"
         "  metadata bytea NOT NULL,\n"
         "  recorded_at bigint NOT NULL,\n"
         "  hash bytea NOT NULL,\n"
         "  UNIQUE (stream_id, version));\n"
         "CREATE TABLE IF NOT EXISTS " + q + ".streams (\n"
         "  stream_id text COLLATE \"C\" PRIMARY KEY,\n"
         "  version bigint NOT NULL);\n"
         "CREATE TABLE IF NOT EXISTS " + q + ".snapshots (\n"
         "  stream_id text COLLATE \"C\" NOT NULL,\n"
         "  version bigint NOT NULL,\n"
         "  schema_version int NOT NULL,\n"
         "  state bytea NOT NULL,\n"
         "  recorded_at bigint NOT NULL,\n"
         "  PRIMARY KEY (stream_id, version));\n"
         "CREATE OR REPLACE FUNCTION " + q + ".annals_refuse_change() RETURNS trigger\n"
         "  LANGUAGE plpgsql AS $$ BEGIN\n"
         "  RAISE EXCEPTION 'annals: the events table is append-only (% refused)', TG_OP;\n"
         "END $$;\n"
         "CREATE OR REPLACE TRIGGER annals_events_no_update BEFORE UPDATE OR DELETE ON " + q +
         ".events\n  FOR EACH ROW EXECUTE FUNCTION " + q + ".annals_refuse_change();\n"
         "CREATE OR REPLACE TRIGGER annals_events_no_truncate BEFORE TRUNCATE ON " + q +
         ".events\n  FOR EACH STATEMENT EXECUTE FUNCTION " + q + ".annals_refuse_change();\n";
}

void validate_schema_name(const std::string& s) {
  bool ok = !s.empty() && s.size() <= 63 && !(s[0] >= '0' && s[0] <= '9');
  for (char c : s) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_');
  }
  if (!ok) {
    throw InvalidArgument("PostgresStoreOptions::schema '" + s +
                          "': use ASCII letters, digits and '_', not starting with a digit, "
                          "at most 63 bytes");
  }
}

}  // namespace

class PostgresEventStore::Impl {
 public:
  Impl(std::string connection, PostgresStoreOptions options)
      : connection_(std::move(connection)), options_(std::move(options)) {
    if (!options_.clock) options_.clock = SystemClock::shared();
    validate_schema_name(options_.schema);
    if (options_.read_page_size == 0) {
      throw InvalidArgument("PostgresStoreOptions::read_page_size is 0: it must be at least 1");
    }
    search_path_ = "-c search_path=\"" + options_.schema + "\"";
  }

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

  Lease lease() const {
    {
      std::lock_guard lock(pool_mu_);
      while (!pool_.empty()) {
        Conn c = std::move(pool_.back());
        pool_.pop_back();
        // One the server closed while it idled (a restart, a terminated
        // backend) is dropped here rather than handed out to fail.
        if (PQconsumeInput(c.get()) == 1 && PQstatus(c.get()) == CONNECTION_OK) {
          return Lease(this, std::move(c));
        }
      }
    }
    const char* keys[] = {"dbname", "options", "application_name", nullptr};
    const char* values[] = {connection_.c_str(), search_path_.c_str(), "annals", nullptr};
    Conn c(PQconnectdbParams(keys, values, 1));
    if (!c) throw StorageError("PostgreSQL: cannot allocate a connection");
    if (PQstatus(c.get()) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(c.get());
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      throw StorageError("PostgreSQL: cannot connect: " + msg);
    }
    return Lease(this, std::move(c));
  }

  void give_back(Conn c) const {
    std::lock_guard lock(pool_mu_);
    if (pool_.size() < options_.max_idle_connections) pool_.push_back(std::move(c));
  }

  // Runs `sql` with `params`, binary results; throws StorageError naming `what`.
  static Result exec(PGconn* c, const char* what, const std::string& sql,
                     const Params& params = {}) {
    const auto values = params.values();
    const auto lengths = params.lengths();
    const std::vector<int> formats(static_cast<std::size_t>(params.size()), 1);
    Result r(PQexecParams(c, sql.c_str(), params.size(), params.types(), values.data(),
                          lengths.data(), formats.data(), 1));
    check(c, r.get(), what);
    return r;
  }
  // Several statements in one string, no parameters, text results.
  static void exec_script(PGconn* c, const char* what, const std::string& sql) {
    Result r(PQexec(c, sql.c_str()));
    check(c, r.get(), what);
  }
  static void check(PGconn* c, const PGresult* r, const char* what) {
    const auto status = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
    std::string msg = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(c);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (msg.empty()) msg = PQerrorMessage(c);
    throw StorageError(std::string("PostgreSQL: ") + what + ": " + msg);
  }

  // Creates the tables unless they exist; an application role that may only
  // read and append opens an existing store without needing CREATE rights.
  void create_schema() {
    auto l = lease();
    auto exists = exec(l.get(), "look for the store's tables",
                       "SELECT to_regclass('annals_meta') IS NOT NULL");
    if (PQgetvalue(exists.get(), 0, 0)[0] != 0) {
      auto version = exec(l.get(), "read the schema version",
                          "SELECT value FROM annals_meta WHERE key = 'schema_version'");
      const std::string v = PQntuples(version.get()) == 0 ? "" : get_bytes(version.get(), 0, 0);
      if (v != "1") {
        throw StorageError("PostgreSQL: schema '" + options_.schema +
                           "' holds annals tables of layout '" + v +
                           "', this library reads layout 1");
      }
      return;
    }
    exec_script(l.get(), "create the schema",
                "BEGIN; SELECT pg_advisory_xact_lock(7382761305); " +
                    schema_sql(options_.schema) + "COMMIT;");
    // A failed script leaves the transaction aborted: the lease drops it.
  }

  std::optional<AppendResult> retry_of(PGconn* c, const StreamAppend& part) const;

  std::string connection_;
  PostgresStoreOptions options_;
  std::string search_path_;
  mutable std::mutex pool_mu_;
  mutable std::vector<Conn> pool_;
  std::mutex append_mu_;  // orders this object's appends and their listener queue
  std::shared_ptr<detail::CommitListeners> listeners_ =
      std::make_shared<detail::CommitListeners>();
};

PostgresEventStore::PostgresEventStore(const std::string& connection, PostgresStoreOptions options)
    : impl_(std::make_unique<Impl>(connection, std::move(options))) {
  impl_->create_schema();
}

PostgresEventStore::~PostgresEventStore() = default;

// The first result if `part` is an idempotent retry; nullopt if its first id
// is not stored; throws DuplicateEventId if stored elsewhere or otherwise.
std::optional<AppendResult> PostgresEventStore::Impl::retry_of(PGconn* c,
                                                               const StreamAppend& part) const {
  const auto& events = part.events;
  auto first = exec(c, "look up an event id",
                    "SELECT stream_id, version, position FROM events WHERE event_id = $1",
                    Params().text(events.front().event_id));
  if (PQntuples(first.get()) == 0) return std::nullopt;
  const std::string stored_stream = get_bytes(first.get(), 0, 0);
  const std::int64_t first_version = get_i8(first.get(), 0, 1);
  const std::int64_t first_position = get_i8(first.get(), 0, 2);
  const auto n = static_cast<std::int64_t>(events.size());
  auto stored = exec(c, "read a retried append",
                     std::string("SELECT ") + kEventColumns +
                         " FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version "
                         "LIMIT $3",
                     Params().text(part.stream_id).i8(first_version).i8(n));
  bool same_place = stored_stream == part.stream_id && part.expected.matches(first_version - 1) &&
                    PQntuples(stored.get()) == static_cast<int>(n);
  for (int i = 0; same_place && i < static_cast<int>(n); ++i) {
    same_place = get_bytes(stored.get(), i, 3) == events[static_cast<std::size_t>(i)].event_id;
  }
  if (!same_place) {
    throw DuplicateEventId(events.front().event_id, part.stream_id,
                           "stored in stream '" + stored_stream + "' at version " +
                               std::to_string(first_version) +
                               ", which is not a retry of this append");
  }
  std::int64_t last_position = first_position;
  for (int i = 0; i < static_cast<int>(n); ++i) {
    const RecordedEvent kept = event_at(stored.get(), i);
    if (const char* field =
            detail::differing_field(events[static_cast<std::size_t>(i)], kept.type,
                                    kept.schema_version, kept.payload, kept.metadata)) {
      throw detail::content_differs(kept.event_id, part.stream_id, kept.version, field);
    }
    last_position = kept.position;
  }
  return AppendResult{first_version - 1 + n, first_position, last_position};
}

std::vector<AppendResult> PostgresEventStore::append(std::vector<StreamAppend> batch) {
  detail::prepare_batch(batch, nullptr, true);
  std::vector<AppendResult> results(batch.size());
  std::uint64_t ticket = 0;
  std::optional<Impl::Lease> lease;  // outlives the handler below, which asks if it broke
  try {
    std::lock_guard order(impl_->append_mu_);
    auto& l = lease.emplace(impl_->lease());
    PGconn* c = l.get();
    Impl::exec(c, "begin an append", "BEGIN");
    // Held to the commit: appends commit one at a time, in position order.
    auto head = Impl::exec(c, "lock the head row",
                           "SELECT position FROM annals_head WHERE id = 1 FOR UPDATE");
    std::int64_t position = get_i8(head.get(), 0, 0);
    EventHash previous{};
    Timestamp last_time{};
    bool have_last = false;
    if (position > 0) {
      auto last = Impl::exec(c, "read the newest event",
                             "SELECT hash, recorded_at FROM events WHERE position = $1",
                             Params().i8(position));
      if (PQntuples(last.get()) == 1) {
        previous = to_hash(get_bytes(last.get(), 0, 0));
        last_time = from_micros(get_i8(last.get(), 0, 1));
        have_last = true;
      }
    }
    std::vector<bool> is_retry(batch.size(), false);
    std::vector<std::int64_t> current(batch.size(), 0);
    for (std::size_t s = 0; s < batch.size(); ++s) {
      const auto& part = batch[s];
      if (auto retry = impl_->retry_of(c, part)) {
        results[s] = *retry;
        is_retry[s] = true;
        continue;
      }
      auto v = Impl::exec(c, "read a stream version",
                          "SELECT version FROM streams WHERE stream_id = $1",
                          Params().text(part.stream_id));
      current[s] = PQntuples(v.get()) == 0 ? 0 : get_i8(v.get(), 0, 0);
      if (!part.expected.matches(current[s])) {
        throw WrongExpectedVersion(part.stream_id, part.expected, current[s]);
      }
      for (const auto& event : part.events) {
        auto dup = Impl::exec(c, "look up an event id",
                              "SELECT stream_id, version FROM events WHERE event_id = $1",
                              Params().text(event.event_id));
        if (PQntuples(dup.get()) != 0) {
          throw DuplicateEventId(event.event_id, part.stream_id,
                                 "stored in stream '" + get_bytes(dup.get(), 0, 0) +
                                     "' at version " + std::to_string(get_i8(dup.get(), 0, 1)));
        }
      }
    }
    Timestamp now = impl_->options_.clock->now();
    if (have_last) now = std::max(now, last_time);
    const bool collect = !impl_->listeners_->empty();
    std::vector<RecordedEvent> committed;
    const std::string insert =
        "INSERT INTO events (position, stream_id, version, event_id, type, schema_version, "
        "payload, metadata, recorded_at, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    for (std::size_t s = 0; s < batch.size(); ++s) {
      if (is_retry[s]) continue;
      auto& part = batch[s];
      std::int64_t version = current[s];
      const std::int64_t first_position = position + 1;
      for (auto& data : part.events) {
        RecordedEvent e =
            detail::record(std::move(data), part.stream_id, ++version, ++position, now, previous);
        Impl::exec(c, "insert an event", insert,
                   Params()
                       .i8(e.position)
                       .text(e.stream_id)
                       .i8(e.version)
                       .text(e.event_id)
                       .text(e.type)
                       .i4(e.schema_version)
                       .bytes(e.payload)
                       .bytes(e.metadata)
                       .i8(to_micros(e.recorded_at))
                       .bytes(hash_bytes(e.hash)));
        previous = e.hash;
        if (collect) committed.push_back(std::move(e));
      }
      Impl::exec(c, "update a stream version",
                 "INSERT INTO streams (stream_id, version) VALUES ($1, $2) "
                 "ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version",
                 Params().text(part.stream_id).i8(version));
      results[s] = AppendResult{version, first_position, position};
    }
    Impl::exec(c, "move the head", "UPDATE annals_head SET position = $1 WHERE id = 1",
               Params().i8(position));
    Result commit(PQexec(c, "COMMIT"));
    if (commit == nullptr || PQresultStatus(commit.get()) != PGRES_COMMAND_OK) {
      std::string msg = commit ? PQresultErrorMessage(commit.get()) : PQerrorMessage(c);
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      throw StorageError("PostgreSQL: commit of an append failed, its outcome may be unknown "
                         "(retry with the same event ids): " + msg);
    }
    ticket = impl_->listeners_->enqueue(std::move(committed));
  } catch (const StorageError& e) {
    // A connection that failed (or never opened) during an append leaves the
    // caller not knowing whether it committed; a retry with the same ids tells.
    const std::string what = e.what();
    const bool lost = !lease || PQstatus(lease->get()) != CONNECTION_OK;
    if (!lost || what.find("outcome may be unknown") != std::string::npos) throw;
    throw StorageError("PostgreSQL: an append's connection failed, its outcome may be unknown "
                       "(retry with the same event ids): " +
                       what.substr(what.rfind("PostgreSQL: ", 0) == 0 ? 12 : 0));
  }
  impl_->listeners_->deliver(ticket);
  return results;
}

namespace {

// A page source that runs one query per page on a borrowed connection.
template <class T>
class QuerySource final : public Cursor<T>::Source {
 public:
  using Step = std::function<bool(std::vector<T>&, std::size_t)>;
  explicit QuerySource(Step step) : step_(std::move(step)) {}
  bool fetch(std::vector<T>& out, std::size_t max) override { return step_(out, max); }

 private:
  Step step_;
};

}  // namespace

Cursor<RecordedEvent> PostgresEventStore::read_stream(const std::string& stream_id,
                                                      std::int64_t from_version,
                                                      Direction direction,
                                                      std::uint64_t max_count) const {
  detail::validate_read_stream(stream_id, from_version, direction);
  const Impl* impl = impl_.get();
  auto step = [impl, stream_id, next = from_version, direction](std::vector<RecordedEvent>& out,
                                                               std::size_t max) mutable {
    if (direction == Direction::backward && next < 1) return false;
    auto l = impl->lease();
    const bool fwd = direction == Direction::forward;
    auto r = Impl::exec(l.get(), "read a stream",
                        std::string("SELECT ") + kEventColumns +
                            " FROM events WHERE stream_id = $1 AND version " +
                            (fwd ? ">= $2 ORDER BY version" : "<= $2 ORDER BY version DESC") +
                            " LIMIT $3",
                        Params().text(stream_id).i8(next).i8(static_cast<std::int64_t>(max)));
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) out.push_back(event_at(r.get(), i));
    if (n == 0) return false;
    next = fwd ? out.back().version + 1 : out.back().version - 1;
    return static_cast<std::size_t>(n) == max && (fwd || next >= 1);
  };
  return Cursor<RecordedEvent>(std::make_unique<QuerySource<RecordedEvent>>(std::move(step)),
                               impl_->options_.read_page_size, max_count);
}

Cursor<LinkedEvent> PostgresEventStore::read_stream_linked(const std::string& stream_id,
                                                           std::int64_t from_version,
                                                           std::uint64_t max_count) const {
  detail::validate_read_stream(stream_id, from_version, Direction::forward);
  const Impl* impl = impl_.get();
  auto step = [impl, stream_id, next = from_version](std::vector<LinkedEvent>& out,
                                                     std::size_t max) mutable {
    auto l = impl->lease();
    auto r = Impl::exec(l.get(), "read a stream with its links",
                        "SELECT e.position, e.stream_id, e.version, e.event_id, e.type, "
                        "e.schema_version, e.payload, e.metadata, e.recorded_at, e.hash, p.hash "
                        "FROM events e LEFT JOIN events p ON p.position = e.position - 1 "
                        "WHERE e.stream_id = $1 AND e.version >= $2 ORDER BY e.version LIMIT $3",
                        Params().text(stream_id).i8(next).i8(static_cast<std::int64_t>(max)));
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) {
      LinkedEvent linked{event_at(r.get(), i), std::nullopt};
      if (linked.event.position == 1) {
        linked.previous_hash = EventHash{};
      } else if (!is_null(r.get(), i, 10)) {
        linked.previous_hash = to_hash(get_bytes(r.get(), i, 10));
      }
      out.push_back(std::move(linked));
    }
    if (n == 0) return false;
    next = out.back().event.version + 1;
    return static_cast<std::size_t>(n) == max;
  };
  return Cursor<LinkedEvent>(std::make_unique<QuerySource<LinkedEvent>>(std::move(step)),
                             impl_->options_.read_page_size, max_count);
}

Cursor<RecordedEvent> PostgresEventStore::read_all(std::int64_t from_position,
                                                   const EventFilter& filter,
                                                   std::uint64_t max_count) const {
  if (from_position < 1) {
    throw InvalidArgument("read_all from position " + std::to_string(from_position) +
                          ": positions start at 1");
  }
  const Impl* impl = impl_.get();
  // The filter is applied here, page by page of positions: memory stays one
  // page, whatever share of the events the filter keeps.
  auto step = [impl, filter, next = from_position](std::vector<RecordedEvent>& out,
                                                   std::size_t max) mutable {
    auto l = impl->lease();
    while (out.size() < max) {
      auto r = Impl::exec(l.get(), "read all events",
                          std::string("SELECT ") + kEventColumns +
                              " FROM events WHERE position >= $1 ORDER BY position LIMIT $2",
                          Params().i8(next).i8(static_cast<std::int64_t>(max)));
      const int n = PQntuples(r.get());
      for (int i = 0; i < n; ++i) {
        RecordedEvent e = event_at(r.get(), i);
        next = e.position + 1;
        if (filter.matches(e)) out.push_back(std::move(e));
      }
      if (static_cast<std::size_t>(n) < max) return false;
    }
    return true;
  };
  return Cursor<RecordedEvent>(std::make_unique<QuerySource<RecordedEvent>>(std::move(step)),
                               impl_->options_.read_page_size, max_count);
}

std::int64_t PostgresEventStore::stream_version(const std::string& stream_id) const {
  validate_stream_id(stream_id);
  auto l = impl_->lease();
  auto r = Impl::exec(l.get(), "read a stream version",
                      "SELECT version FROM streams WHERE stream_id = $1",
                      Params().text(stream_id));
  return PQntuples(r.get()) == 0 ? 0 : get_i8(r.get(), 0, 0);
}

std::int64_t PostgresEventStore::head_position() const {
  auto l = impl_->lease();
  auto r = Impl::exec(l.get(), "read the head", "SELECT position FROM annals_head WHERE id = 1");
  return get_i8(r.get(), 0, 0);
}

Cursor<std::string> PostgresEventStore::list_streams(const std::string& prefix) const {
  const Impl* impl = impl_.get();
  auto step = [impl, prefix, last = std::string(), started = false](
                  std::vector<std::string>& out, std::size_t max) mutable {
    auto l = impl->lease();
    auto r = Impl::exec(
        l.get(), "list streams",
        std::string("SELECT stream_id FROM streams WHERE starts_with(stream_id, $1) ") +
            (started ? "AND stream_id > $2 " : "AND $2 = $2 ") + "ORDER BY stream_id LIMIT $3",
        Params().text(prefix).text(last).i8(static_cast<std::int64_t>(max)));
    started = true;
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) out.push_back(get_bytes(r.get(), i, 0));
    if (n > 0) last = out.back();
    return static_cast<std::size_t>(n) == max;
  };
  return Cursor<std::string>(std::make_unique<QuerySource<std::string>>(std::move(step)),
                             impl_->options_.read_page_size, kNoLimit);
}

std::string PostgresEventStore::store_id() const {
  auto l = impl_->lease();
  auto r = Impl::exec(l.get(), "read the store id",
                      "SELECT value FROM annals_meta WHERE key = 'store_id'");
  return PQntuples(r.get()) == 0 ? std::string() : get_bytes(r.get(), 0, 0);
}

CommitListenerHandle PostgresEventStore::add_commit_listener(CommitListener listener) {
  return impl_->listeners_->add(std::move(listener));
}

void PostgresEventStore::save_snapshot(const Snapshot& snapshot) {
  detail::validate_snapshot(snapshot);
  auto l = impl_->lease();
  Impl::exec(l.get(), "save a snapshot",
             "INSERT INTO snapshots (stream_id, version, schema_version, state, recorded_at) "
             "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_id, version) DO UPDATE SET "
             "schema_version = EXCLUDED.schema_version, state = EXCLUDED.state, "
             "recorded_at = EXCLUDED.recorded_at",
             Params()
                 .text(snapshot.stream_id)
                 .i8(snapshot.version)
                 .i4(snapshot.schema_version)
                 .bytes(snapshot.state)
                 .i8(to_micros(impl_->options_.clock->now())));
}

std::optional<Snapshot> PostgresEventStore::load_snapshot(const std::string& stream_id,
                                                          std::int64_t max_version) const {
  validate_stream_id(stream_id);
  auto l = impl_->lease();
  auto r = Impl::exec(l.get(), "load a snapshot",
                      "SELECT version, schema_version, state, recorded_at FROM snapshots "
                      "WHERE stream_id = $1 AND version <= $2 ORDER BY version DESC LIMIT 1",
                      Params().text(stream_id).i8(max_version));
  if (PQntuples(r.get()) == 0) return std::nullopt;
  Snapshot s;
  s.stream_id = stream_id;
  s.version = get_i8(r.get(), 0, 0);
  s.schema_version = get_i4(r.get(), 0, 1);
  s.state = get_bytes(r.get(), 0, 2);
  s.recorded_at = from_micros(get_i8(r.get(), 0, 3));
  return s;
}

void PostgresEventStore::delete_snapshots(const std::string& stream_id) {
  auto l = impl_->lease();
  if (stream_id.empty()) {
    Impl::exec(l.get(), "delete snapshots", "DELETE FROM snapshots");
  } else {
    Impl::exec(l.get(), "delete snapshots", "DELETE FROM snapshots WHERE stream_id = $1",
               Params().text(stream_id));
  }
}

}  // namespace annals
