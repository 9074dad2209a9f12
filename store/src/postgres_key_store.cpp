// PostgresKeyStore and scrub_postgres_table: keys in a PostgreSQL schema, and
// the rewrite that takes a destroyed key's bytes out of the table's files.

#include "annals/store/postgres_key_store.hpp"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "annals/core/clock.hpp"
#include "annals/core/stream_id.hpp"
#include "annals/core/thread_annotations.hpp"
#include "postgres_store_impl.hpp"

namespace annals {

using namespace detail::pg;

namespace {

constexpr const char* kLayout = "1";

std::int64_t now_micros() { return to_micros(SystemClock{}.now()); }

std::string quoted(const std::string& identifier) { return "\"" + identifier + "\""; }

// A connection with NOTICEs hushed ("schema already exists, skipping"), or
// nullptr with the reason in `error`.
Conn connect(const std::string& connection, std::string& error) {
  if (const std::string why = conninfo_error(connection); !why.empty()) {
    error = "cannot connect: " + why;
    return nullptr;
  }
  const char* keys[] = {"application_name", "dbname", nullptr};
  const char* values[] = {"annals", connection.c_str(), nullptr};
  Conn c(PQconnectdbParams(keys, values, 1));
  if (!c) {
    error = "cannot allocate a connection";
    return nullptr;
  }
  if (PQstatus(c.get()) != CONNECTION_OK) {
    error = "cannot connect: " + error_text(c.get(), nullptr);
    return nullptr;
  }
  Result r(PQexec(c.get(), "SET client_min_messages = warning"));
  if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    error = error_text(c.get(), r.get());
    return nullptr;
  }
  return c;
}

// Runs `sql` with binary parameters and results; nullopt-free: the failed
// result is returned for the caller to report.
Result run(PGconn* c, const std::string& sql, const Params& params = {}) {
  const auto values = params.values();
  const auto lengths = params.lengths();
  const std::vector<int> formats(static_cast<std::size_t>(params.size()), 1);
  return Result(PQexecParams(c, sql.c_str(), params.size(), params.types(), values.data(),
                             lengths.data(), formats.data(), 1));
}

bool ok(const PGresult* r) {
  const auto status = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

std::string create_sql(const std::string& schema) {
  const std::string q = quoted(schema);
  std::string sql = "CREATE SCHEMA IF NOT EXISTS " + q + ";\n";
  sql += "CREATE TABLE IF NOT EXISTS " + q + ".annals_key_meta (\n";
  sql += "  key text PRIMARY KEY, value text NOT NULL);\n";
  sql += "INSERT INTO " + q + ".annals_key_meta VALUES ('layout', '" + kLayout + "')\n";
  sql += "  ON CONFLICT DO NOTHING;\n";
  sql += "CREATE TABLE IF NOT EXISTS " + q + ".subject_keys (\n";
  sql += "  subject text COLLATE \"C\" PRIMARY KEY,\n";
  sql += "  key_id text NOT NULL UNIQUE,\n";
  sql += "  key bytea NOT NULL CHECK (octet_length(key) = 32),\n";
  sql += "  created_at bigint NOT NULL);\n";
  // No planner statistics: ANALYZE would copy sample keys and subject ids
  // into pg_statistic, where forget() cannot reach them.
  sql += "ALTER TABLE " + q + ".subject_keys ALTER COLUMN key SET STATISTICS 0,\n";
  sql += "  ALTER COLUMN subject SET STATISTICS 0;\n";
  sql += "CREATE TABLE IF NOT EXISTS " + q + ".forgotten_keys (\n";
  sql += "  key_id text PRIMARY KEY,\n";
  sql += "  forgotten_at bigint NOT NULL);\n";
  return sql;
}

// For table $1: whether the current role may rewrite it (VACUUM FULL needs
// the table's owner or the database's, or a member of either), the role's
// name, and the first transaction id not yet assigned (modulo 2^32, as an
// xid), below which every change committed so far lies.
constexpr const char* kMayRewriteSql =
    "SELECT pg_has_role(t.relowner, 'USAGE') OR pg_has_role(d.datdba, 'USAGE'), "
    "current_user::text, (pg_snapshot_xmax(pg_current_snapshot())::text::numeric "
    "% 4294967296)::text FROM pg_class t, pg_database d "
    "WHERE t.oid = to_regclass($1) AND d.datname = current_database()";

void check_timeout(std::chrono::milliseconds timeout, const std::string& option) {
  if (timeout < std::chrono::milliseconds(1) ||
      timeout > std::chrono::milliseconds(std::numeric_limits<int>::max())) {
    throw InvalidArgument(option + " is " + std::to_string(timeout.count()) +
                          " ms: it must be at least 1 ms and at most 2^31 - 1 ms");
  }
}

// The server's primary message and SQLSTATE, without its DETAIL, which may
// quote a failing row (a key among its values); or the connection's message.
std::string primary_text(PGconn* c, const PGresult* r) {
  const char* primary = r != nullptr ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  if (primary == nullptr) return error_text(c, nullptr);
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return std::string(primary) + (state != nullptr ? std::string(" (SQLSTATE ") + state + ")" : "");
}

}  // namespace

class PostgresKeyStore::Impl {
 public:
  Impl(std::string connection, PostgresKeyStoreOptions options)
      : connection_(std::move(connection)), options_(std::move(options)) {
    check_schema_name(options_.schema, "PostgresKeyStoreOptions::schema");
    check_timeout(options_.scrub_timeout, "PostgresKeyStoreOptions::scrub_timeout");
    table_ = quoted(options_.schema) + ".subject_keys";
    forgotten_ = quoted(options_.schema) + ".forgotten_keys";
  }

  std::string description() const {
    return "key store (PostgreSQL schema \"" + options_.schema + "\")";
  }

  DataKey key_for(std::string_view subject) {
    validate_stream_id(subject);
    detail::MutexLock lock(mu_);
    return with_connection(true, [&](PGconn* c) {
      if (auto key = key_of_subject(c, subject)) return std::move(*key);
      if (options_.read_only) {
        throw KeyStoreError(description() + " is open read-only and has no key for this subject");
      }
      // Another process may add the subject's key between the read above and
      // this insert: the insert is then ignored, and the winner's key returned.
      const DataKey fresh = DataKey::generate();
      const std::string bytes(reinterpret_cast<const char*>(fresh.bytes().data()),
                              fresh.bytes().size());
      Result r = run(c,
                     "INSERT INTO " + table_ +
                         " VALUES ($1, $2, $3, $4) ON CONFLICT (subject) "
                         "DO NOTHING",
                     Params().text(subject).text(fresh.key_id()).bytes(bytes).i8(now_micros()));
      check(c, r.get(), "write a key to");
      auto key = key_of_subject(c, subject);
      if (!key) throw KeyStoreError(description() + " lost a key it just wrote");
      return std::move(*key);
    });
  }

  KeyLookup find(std::string_view key_id) {
    detail::MutexLock lock(mu_);
    return with_connection(false, [&](PGconn* c) {
      Result r = run(c, "SELECT key FROM " + table_ + " WHERE key_id = $1", Params().text(key_id));
      check(c, r.get(), "read");
      if (PQntuples(r.get()) > 0) {
        return KeyLookup{KeyState::present, key_from(r.get(), std::string(key_id))};
      }
      Result f =
          run(c, "SELECT 1 FROM " + forgotten_ + " WHERE key_id = $1", Params().text(key_id));
      check(c, f.get(), "read");
      if (PQntuples(f.get()) > 0) return KeyLookup{KeyState::forgotten, std::nullopt};
      return KeyLookup{KeyState::unknown, std::nullopt};
    });
  }

  bool forget(std::string_view subject) {
    validate_stream_id(subject);
    detail::MutexLock lock(mu_);
    if (options_.read_only) {
      throw KeyStoreError(description() + " is open read-only: cannot forget a subject");
    }
    const bool had_key = with_connection(false, [&](PGconn* c) {
      if (options_.scrub) require_may_scrub(c);
      // One transaction: the tombstone and the delete commit together.
      exec(c, "BEGIN", "forget a subject in");
      try {
        Result r = run(c, "DELETE FROM " + table_ + " WHERE subject = $1 RETURNING key_id",
                       Params().text(subject));
        check(c, r.get(), "forget a subject in");
        const bool deleted = PQntuples(r.get()) > 0;
        if (deleted) {
          Result t = run(c, "INSERT INTO " + forgotten_ + " VALUES ($1, $2) ON CONFLICT DO NOTHING",
                         Params().text(get_bytes(r.get(), 0, 0)).i8(now_micros()));
          check(c, t.get(), "forget a subject in");
        }
        exec(c, "COMMIT", "forget a subject in");
        return deleted;
      } catch (...) {
        Result rollback(PQexec(c, "ROLLBACK"));
        throw;
      }
    });
    // Even when the key was already gone: a forget() interrupted before its
    // rewrite is finished by the next one.
    if (options_.scrub) {
      try {
        scrub_postgres_table(connection_, options_.schema, "subject_keys", options_.scrub_timeout);
      } catch (const StorageError& e) {
        throw KeyScrubPending(description() +
                              ": the subject's key is destroyed, but the table was not rewritten "
                              "yet, so its bytes may remain in the table's files (call forget() "
                              "again to finish): " +
                              e.what());
      }
    }
    return had_key;
  }

 private:
  // The connection, opened or reopened when the server dropped it while it
  // idled; its first use checks (or, with `may_create` and
  // create_if_missing, creates) the key store's tables.
  PGconn* conn(bool may_create) ANNALS_REQUIRES(mu_) {
    // One left inside a transaction (a failure between BEGIN and its end
    // whose ROLLBACK did not get through) would fail every later statement.
    if (conn_ && (PQconsumeInput(conn_.get()) != 1 || PQstatus(conn_.get()) != CONNECTION_OK ||
                  PQtransactionStatus(conn_.get()) != PQTRANS_IDLE)) {
      conn_.reset();
    }
    if (!conn_) {
      std::string error;
      Conn c = connect(connection_, error);
      if (!c) throw KeyStoreError(description() + ": " + error);
      conn_ = std::move(c);
      checked_ = false;
    }
    if (!checked_) {
      check_tables(conn_.get(), may_create);
      checked_ = true;
    }
    return conn_.get();
  }

  // Runs `fn` on the connection; when it fails because the server had
  // dropped the connection (a restart, pg_terminate_backend: libpq finds out
  // only at the next statement), once more on a new one. Every operation
  // here may run twice: its reads and its ON CONFLICT insert are idempotent,
  // and forget()'s transaction either committed (the second run finds no
  // key) or did not.
  template <class Fn>
  std::invoke_result_t<Fn&, PGconn*> with_connection(bool may_create, Fn&& fn)
      ANNALS_REQUIRES(mu_) {
    PGconn* c = conn(may_create);
    try {
      return fn(c);
    } catch (const KeyStoreError&) {
      if (PQstatus(c) == CONNECTION_OK) throw;
      conn_.reset();
    }
    return fn(conn(may_create));
  }

  void check_tables(PGconn* c, bool may_create) {
    Result r = run(c, "SELECT value FROM " + quoted(options_.schema) +
                          ".annals_key_meta WHERE key = 'layout'");
    if (ok(r.get())) {
      const std::string layout = PQntuples(r.get()) == 0 ? "" : get_bytes(r.get(), 0, 0);
      if (layout != kLayout) {
        throw KeyStoreError(description() + " holds tables of layout '" + layout +
                            "', this library reads layout " + kLayout);
      }
      return;
    }
    const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    const bool missing = state != nullptr && (std::string(state) == "42P01" ||  // no table
                                              std::string(state) == "3F000");   // no schema
    if (!missing) check(c, r.get(), "read");
    if (!may_create || !options_.create_if_missing || options_.read_only) {
      throw KeyStoreError(description() +
                          " does not exist: it holds no keys (restore it from "
                          "its backup, or create it)");
    }
    // Processes creating it at once take turns: the second finds it made.
    try {
      exec(c,
           "BEGIN; SELECT pg_advisory_xact_lock(hashtext('annals_keys." + options_.schema +
               "'));\n" + create_sql(options_.schema) + "COMMIT;",
           "create");
    } catch (...) {
      // The failed script left its transaction open and aborted.
      Result rollback(PQexec(c, "ROLLBACK"));
      throw;
    }
  }

  void require_may_scrub(PGconn* c) {
    Result r = run(c, kMayRewriteSql, Params().text(table_));
    check(c, r.get(), "read");
    if (PQntuples(r.get()) == 0 || PQgetvalue(r.get(), 0, 0)[0] == 0) {
      const std::string role = PQntuples(r.get()) == 0 ? "?" : get_bytes(r.get(), 0, 1);
      throw KeyStoreError(description() + ": role '" + role +
                          "' may not rewrite table subject_keys (only its owner or the "
                          "database's may), so a forgotten key could stay in its files; "
                          "nothing was changed (PostgresKeyStoreOptions::scrub = false leaves "
                          "the rewrite to the owner)");
    }
  }

  std::optional<DataKey> key_of_subject(PGconn* c, std::string_view subject) {
    Result r =
        run(c, "SELECT key_id, key FROM " + table_ + " WHERE subject = $1", Params().text(subject));
    check(c, r.get(), "read");
    if (PQntuples(r.get()) == 0) return std::nullopt;
    return key_from(r.get(), get_bytes(r.get(), 0, 0), 1);
  }

  DataKey key_from(const PGresult* r, std::string key_id, int column = 0) const {
    const std::string bytes = get_bytes(r, 0, column);
    DataKey::Bytes key{};
    if (bytes.size() != key.size()) {
      throw KeyStoreError(description() + " holds a key of " + std::to_string(bytes.size()) +
                          " bytes for key id '" + key_id + "' (32 expected)");
    }
    std::memcpy(key.data(), bytes.data(), key.size());
    return DataKey(std::move(key_id), key);
  }

  void exec(PGconn* c, const std::string& sql, const char* what) {
    Result r(PQexec(c, sql.c_str()));
    check(c, r.get(), what);
  }

  void check(PGconn* c, const PGresult* r, const char* what) const {
    if (ok(r)) return;
    const std::string msg = primary_text(c, r);
    throw KeyStoreError("cannot " + std::string(what) + " " + description() + ": " + msg);
  }

  const std::string connection_;
  const PostgresKeyStoreOptions options_;
  std::string table_;
  std::string forgotten_;
  detail::Mutex mu_;
  Conn conn_ ANNALS_GUARDED_BY(mu_);
  bool checked_ ANNALS_GUARDED_BY(mu_) = false;
};

PostgresKeyStore::PostgresKeyStore(std::string connection, PostgresKeyStoreOptions options)
    : impl_(std::make_unique<Impl>(std::move(connection), std::move(options))) {}
PostgresKeyStore::~PostgresKeyStore() = default;
DataKey PostgresKeyStore::key_for(std::string_view subject) { return impl_->key_for(subject); }
KeyLookup PostgresKeyStore::find(std::string_view key_id) const { return impl_->find(key_id); }
bool PostgresKeyStore::forget(std::string_view subject) { return impl_->forget(subject); }
std::string PostgresKeyStore::description() const { return impl_->description(); }

namespace {

// Waits until no transaction, prepared transaction or replication slot holds
// a snapshot older than `horizon` (the first transaction id not yet assigned
// when the scrub began): until then a rewrite would copy the row versions it
// is meant to drop. Throws StorageError naming what still holds one.
void wait_for_older_snapshots(PGconn* c, const std::string& what, const std::string& horizon,
                              std::chrono::milliseconds timeout) {
  // age() counts back from one "now" per statement, so a larger age is an
  // older transaction id, wraparound included.
  const std::string sql =
      "SELECT coalesce(string_agg(who, ', '), '') FROM ("
      " SELECT 'process ' || pid AS who FROM pg_catalog.pg_stat_activity"
      "  WHERE pid <> pg_backend_pid() AND backend_xmin IS NOT NULL"
      "  AND age(backend_xmin) > age($1::xid)"
      " UNION ALL SELECT 'prepared transaction ' || gid FROM pg_catalog.pg_prepared_xacts"
      "  WHERE age(transaction) > age($1::xid)"
      " UNION ALL SELECT 'replication slot ' || slot_name FROM pg_catalog.pg_replication_slots"
      "  WHERE xmin IS NOT NULL AND age(xmin) > age($1::xid)) AS holders";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    Result r = run(c, sql, Params().text(horizon));
    if (!ok(r.get())) throw StorageError("PostgreSQL: " + what + error_text(c, r.get()));
    const std::string holders = get_bytes(r.get(), 0, 0);
    if (holders.empty()) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      throw StorageError("PostgreSQL: " + what + "waited " + std::to_string(timeout.count()) +
                         " ms for transactions older than the rewrite to end, and these still "
                         "hold snapshots that may see the old rows: " +
                         holders);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

void scrub_postgres_table(const std::string& connection, const std::string& schema,
                          const std::string& table, std::chrono::milliseconds timeout) {
  check_schema_name(schema, "scrub_postgres_table: schema");
  check_schema_name(table, "scrub_postgres_table: table");
  check_timeout(timeout, "scrub_postgres_table: timeout");
  const std::string name = quoted(schema) + "." + quoted(table);
  const std::string what = "cannot scrub table " + name + ": ";
  std::string error;
  Conn c = connect(connection, error);
  if (!c) throw StorageError("PostgreSQL: " + what + error);
  // VACUUM by a role that may not vacuum the table only warns and skips it,
  // so the rights are checked first, and any warning is taken as a failure.
  Result rights = run(c.get(), kMayRewriteSql, Params().text(name));
  if (!ok(rights.get())) {
    throw StorageError("PostgreSQL: " + what + error_text(c.get(), rights.get()));
  }
  if (PQntuples(rights.get()) == 0) throw StorageError("PostgreSQL: " + what + "no such table");
  if (PQgetvalue(rights.get(), 0, 0)[0] == 0) {
    throw StorageError("PostgreSQL: " + what + "role '" + get_bytes(rights.get(), 0, 1) +
                       "' is neither its owner nor the database's, so it may not rewrite it");
  }
  wait_for_older_snapshots(c.get(), what, get_bytes(rights.get(), 0, 2), timeout);
  Result limit(PQexec(c.get(), ("SET lock_timeout = " + std::to_string(timeout.count())).c_str()));
  if (!ok(limit.get())) {
    throw StorageError("PostgreSQL: " + what + error_text(c.get(), limit.get()));
  }
  std::string warnings;
  PQsetNoticeReceiver(
      c.get(),
      [](void* arg, const PGresult* notice) {
        const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
        if (severity != nullptr && std::string(severity) == "WARNING") {
          *static_cast<std::string*>(arg) += error_text(nullptr, notice);
        }
      },
      &warnings);
  Result r(PQexec(c.get(), ("VACUUM FULL " + name).c_str()));
  if (!ok(r.get())) {
    const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    if (state != nullptr && std::string(state) == "55P03") {
      throw StorageError("PostgreSQL: " + what + "waited " + std::to_string(timeout.count()) +
                         " ms for the table's lock, which its readers or writers hold");
    }
    throw StorageError("PostgreSQL: " + what + error_text(c.get(), r.get()));
  }
  if (!warnings.empty()) throw StorageError("PostgreSQL: " + what + warnings);
}

}  // namespace annals
