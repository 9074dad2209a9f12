// PostgresEventStore: the schema, connections and their pool, identity and
// listeners. Appends are postgres_store_write.cpp, reads
// postgres_store_read.cpp; the Impl they share is postgres_store_impl.hpp.

#include <libpq-events.h>

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "annals/core/error.hpp"
#include "postgres_store_impl.hpp"

namespace annals {

using namespace detail::pg;

namespace {

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

// The statements prepared on one connection, by SQL text and parameter types,
// kept as the connection's instance data (libpq's event system frees it with
// the connection and empties it when the connection is reset, since a new
// session has none).
struct PreparedStatements {
  std::unordered_map<std::string, std::string> names;  // key -> statement name
  std::size_t next = 0;
};

// Statement texts are fixed strings of this file and its neighbours, so a
// connection prepares a few dozen at most; past this many (a caller building
// texts from data, which would be a bug) new ones run unprepared rather than
// grow the server's memory.
constexpr std::size_t kMaxPrepared = 128;

int prepared_statements_event(PGEventId id, void* info, void*) {
  if (id == PGEVT_CONNDESTROY) {
    auto* e = static_cast<PGEventConnDestroy*>(info);
    delete static_cast<PreparedStatements*>(PQinstanceData(e->conn, prepared_statements_event));
  } else if (id == PGEVT_CONNRESET) {
    auto* e = static_cast<PGEventConnReset*>(info);
    if (auto* p =
            static_cast<PreparedStatements*>(PQinstanceData(e->conn, prepared_statements_event))) {
      p->names.clear();
    }
  }
  return 1;
}

// Gives `c` a statement cache; false when libpq refuses (the connection then
// runs every statement unprepared).
bool keep_prepared_statements(PGconn* c) {
  if (PQregisterEventProc(c, prepared_statements_event, "annals prepared statements", nullptr) !=
      1) {
    return false;
  }
  auto cache = std::make_unique<PreparedStatements>();
  if (PQsetInstanceData(c, prepared_statements_event, cache.get()) != 1) return false;
  cache.release();  // owned by the connection now: freed at PGEVT_CONNDESTROY
  return true;
}

// The key of a statement: its text and its parameters' types, which a
// prepared statement fixes.
std::string statement_key(const std::string& sql, const Params& params) {
  std::string key = sql;
  key.push_back('\0');
  key.append(reinterpret_cast<const char*>(params.types()),
             static_cast<std::size_t>(params.size()) * sizeof(Oid));
  return key;
}

}  // namespace

PostgresEventStore::Impl::Impl(std::string connection, PostgresStoreOptions options)
    : connection_(std::move(connection)), options_(std::move(options)) {
  if (!options_.clock) options_.clock = SystemClock::shared();
  check_schema_name(options_.schema, "PostgresStoreOptions::schema");
  if (options_.read_page_size == 0) {
    throw InvalidArgument("PostgresStoreOptions::read_page_size is 0: it must be at least 1");
  }
  // Appended to the user's own `options` (statement_timeout, ...), which a
  // second "options" keyword would replace.
  const std::string user_options = conninfo_value(connection_, "options");
  search_path_ = (user_options.empty() ? "" : user_options + " ") + "-c search_path=\"" +
                 options_.schema + "\"";
  channel_ = notify_channel(options_.schema);
}

PostgresEventStore::Impl::Lease PostgresEventStore::Impl::lease() const {
  {
    detail::MutexLock lock(pool_mu_);
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
  if (const std::string why = conninfo_error(connection_); !why.empty()) {
    throw StorageError("PostgreSQL: cannot connect: " + why);
  }
  const char* keys[] = {"dbname", "options", "application_name", nullptr};
  const char* values[] = {connection_.c_str(), search_path_.c_str(), "annals", nullptr};
  Conn c(PQconnectdbParams(keys, values, 1));
  if (!c) throw StorageError("PostgreSQL: cannot allocate a connection");
  if (PQstatus(c.get()) != CONNECTION_OK) {
    throw StorageError("PostgreSQL: cannot connect: " + error_text(c.get(), nullptr));
  }
  if (options_.prepare_statements) keep_prepared_statements(c.get());
  return Lease(this, std::move(c));
}

PostgresEventStore::Impl::Result PostgresEventStore::Impl::exec(PGconn* c, const char* what,
                                                                const std::string& sql,
                                                                const Params& params, Send send) {
  const auto values = params.values();
  const auto lengths = params.lengths();
  const std::vector<int> formats(static_cast<std::size_t>(params.size()), 1);
  // Statements with parameters run prepared when the connection keeps them
  // (PostgresStoreOptions::prepare_statements) and the caller asks for it:
  // the server parses and plans each text once per connection instead of on
  // every call. Those without (BEGIN, a script) gain nothing from it.
  auto* cache =
      params.size() == 0 || send != Send::prepared
          ? nullptr
          : static_cast<PreparedStatements*>(PQinstanceData(c, prepared_statements_event));
  if (cache != nullptr) {
    std::string key = statement_key(sql, params);
    auto it = cache->names.find(key);
    if (it == cache->names.end() && cache->names.size() < kMaxPrepared) {
      std::string name = "annals_" + std::to_string(cache->next++);
      Result prepared(PQprepare(c, name.c_str(), sql.c_str(), params.size(), params.types()));
      check(c, prepared.get(), what);  // not cached: a later call prepares again
      it = cache->names.emplace(std::move(key), std::move(name)).first;
    }
    if (it != cache->names.end()) {
      Result r(PQexecPrepared(c, it->second.c_str(), params.size(), values.data(), lengths.data(),
                              formats.data(), 1));
      check(c, r.get(), what);
      return r;
    }
  }
  Result r(PQexecParams(c, sql.c_str(), params.size(), params.types(), values.data(),
                        lengths.data(), formats.data(), 1));
  check(c, r.get(), what);
  return r;
}
void PostgresEventStore::Impl::exec_script(PGconn* c, const char* what, const std::string& sql) {
  Result r(PQexec(c, sql.c_str()));
  check(c, r.get(), what);
}
void PostgresEventStore::Impl::check(PGconn* c, const PGresult* r, const char* what) {
  const auto status = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
  throw StorageError(std::string("PostgreSQL: ") + what + ": " + error_text(c, r));
}

// Creates the tables unless they exist; an application role that may only
// read and append opens an existing store without needing CREATE rights.
void PostgresEventStore::Impl::create_schema() {
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
  if (!options_.create_if_missing) {
    throw StorageError("PostgreSQL: schema '" + options_.schema +
                       "' holds no Annals store (nothing was created)");
  }
  exec_script(l.get(), "create the schema",
              "BEGIN; SELECT pg_advisory_xact_lock(7382761305); " +
                  schema_sql(options_.schema) + kSealsSql + "COMMIT;");
  // A failed script leaves the transaction aborted: the lease drops it.
}

PostgresEventStore::PostgresEventStore(const std::string& connection, PostgresStoreOptions options)
    : impl_(std::make_unique<Impl>(connection, std::move(options))) {
  impl_->create_schema();
}

PostgresEventStore::~PostgresEventStore() = default;

std::string PostgresEventStore::store_id() const {
  auto l = impl_->lease();
  auto r = Impl::exec(l.get(), "read the store id",
                      "SELECT value FROM annals_meta WHERE key = 'store_id'");
  return PQntuples(r.get()) == 0 ? std::string() : get_bytes(r.get(), 0, 0);
}

std::unique_ptr<CommitWatcher> PostgresEventStore::watch_commits(
    CommitWatcherOptions options) const {
  return std::make_unique<CommitWatcher>(make_listen_source(
      impl_->connection_, impl_->channel_, options.push && impl_->options_.notify));
}

CommitListenerHandle PostgresEventStore::add_commit_listener(CommitListener listener) {
  return impl_->listeners_->add(std::move(listener));
}

}  // namespace annals
