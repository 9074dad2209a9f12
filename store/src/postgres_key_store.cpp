// PostgresKeyStore and scrub_postgres_table: keys in a PostgreSQL schema, and
// the rewrite that takes a destroyed key's bytes out of the table's files.

#include "annals/store/postgres_key_store.hpp"

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
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
  return "CREATE SCHEMA IF NOT EXISTS " + q +
         ";\n"
         "CREATE TABLE IF NOT EXISTS " +
         q +
         ".annals_key_meta (\n"
         "  key text PRIMARY KEY, value text NOT NULL);\n"
         "INSERT INTO " +
         q + ".annals_key_meta VALUES ('layout', '" + kLayout +
         "')\n"
         "  ON CONFLICT DO NOTHING;\n"
         "CREATE TABLE IF NOT EXISTS " +
         q +
         ".subject_keys (\n"
         "  subject text COLLATE \"C\" PRIMARY KEY,\n"
         "  key_id text NOT NULL UNIQUE,\n"
         "  key bytea NOT NULL CHECK (octet_length(key) = 32),\n"
         "  created_at bigint NOT NULL);\n"
         "CREATE TABLE IF NOT EXISTS " +
         q +
         ".forgotten_keys (\n"
         "  key_id text PRIMARY KEY,\n"
         "  forgotten_at bigint NOT NULL);\n";
}

}  // namespace

class PostgresKeyStore::Impl {
 public:
  Impl(std::string connection, PostgresKeyStoreOptions options)
      : connection_(std::move(connection)), options_(std::move(options)) {
    check_schema_name(options_.schema, "PostgresKeyStoreOptions::schema");
    table_ = quoted(options_.schema) + ".subject_keys";
    forgotten_ = quoted(options_.schema) + ".forgotten_keys";
  }

  std::string description() const {
    return "key store (PostgreSQL schema \"" + options_.schema + "\")";
  }

  DataKey key_for(std::string_view subject) {
    validate_stream_id(subject);
    detail::MutexLock lock(mu_);
    PGconn* c = conn(true);
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
  }

  KeyLookup find(std::string_view key_id) {
    detail::MutexLock lock(mu_);
    PGconn* c = conn(false);
    Result r = run(c, "SELECT key FROM " + table_ + " WHERE key_id = $1", Params().text(key_id));
    check(c, r.get(), "read");
    if (PQntuples(r.get()) > 0) {
      return KeyLookup{KeyState::present, key_from(r.get(), std::string(key_id))};
    }
    Result f = run(c, "SELECT 1 FROM " + forgotten_ + " WHERE key_id = $1", Params().text(key_id));
    check(c, f.get(), "read");
    if (PQntuples(f.get()) > 0) return KeyLookup{KeyState::forgotten, std::nullopt};
    return KeyLookup{KeyState::unknown, std::nullopt};
  }

  bool forget(std::string_view subject) {
    validate_stream_id(subject);
    detail::MutexLock lock(mu_);
    if (options_.read_only) {
      throw KeyStoreError(description() + " is open read-only: cannot forget a subject");
    }
    PGconn* c = conn(false);
    if (options_.scrub) require_may_scrub(c);
    // One transaction: the tombstone and the delete commit together.
    exec(c, "BEGIN", "forget a subject in");
    bool had_key = false;
    try {
      Result r = run(c, "DELETE FROM " + table_ + " WHERE subject = $1 RETURNING key_id",
                     Params().text(subject));
      check(c, r.get(), "forget a subject in");
      had_key = PQntuples(r.get()) > 0;
      if (had_key) {
        Result t = run(c, "INSERT INTO " + forgotten_ + " VALUES ($1, $2) ON CONFLICT DO NOTHING",
                       Params().text(get_bytes(r.get(), 0, 0)).i8(now_micros()));
        check(c, t.get(), "forget a subject in");
      }
      exec(c, "COMMIT", "forget a subject in");
    } catch (...) {
      Result rollback(PQexec(c, "ROLLBACK"));
      throw;
    }
    // Even when the key was already gone: a forget() interrupted before its
    // rewrite is finished by the next one.
    if (options_.scrub) {
      try {
        scrub_postgres_table(connection_, options_.schema, "subject_keys");
      } catch (const StorageError& e) {
        throw KeyStoreError(description() +
                            ": the subject's key is destroyed, but the table "
                            "was not rewritten, so its bytes may remain in the table's files "
                            "(call forget() again to finish): " +
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
    if (conn_ && (PQconsumeInput(conn_.get()) != 1 || PQstatus(conn_.get()) != CONNECTION_OK)) {
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
    exec(c,
         "BEGIN; SELECT pg_advisory_xact_lock(hashtext('annals_keys." + options_.schema + "'));\n" +
             create_sql(options_.schema) + "COMMIT;",
         "create");
  }

  void require_may_scrub(PGconn* c) {
    Result r = run(c,
                   "SELECT pg_has_role(t.relowner, 'USAGE') OR pg_has_role(d.datdba, 'USAGE'), "
                   "current_user::text FROM pg_class t, pg_database d "
                   "WHERE t.oid = to_regclass($1) AND d.datname = current_database()",
                   Params().text(table_));
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

  // Server messages may quote a statement's parameters, never a key: keys
  // are sent as binary parameters, which PostgreSQL does not echo.
  void check(PGconn* c, const PGresult* r, const char* what) const {
    if (ok(r)) return;
    const std::string msg = error_text(c, r);
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

void scrub_postgres_table(const std::string& connection, const std::string& schema,
                          const std::string& table) {
  check_schema_name(schema, "scrub_postgres_table: schema");
  check_schema_name(table, "scrub_postgres_table: table");
  const std::string name = quoted(schema) + "." + quoted(table);
  const std::string what = "cannot scrub table " + name + ": ";
  std::string error;
  Conn c = connect(connection, error);
  if (!c) throw StorageError("PostgreSQL: " + what + error);
  // VACUUM by a role that may not vacuum the table only warns and skips it,
  // so the rights are checked first, and any warning is taken as a failure.
  Result rights = run(c.get(),
                      "SELECT pg_has_role(t.relowner, 'USAGE') OR pg_has_role(d.datdba, 'USAGE'), "
                      "current_user::text FROM pg_class t, pg_database d "
                      "WHERE t.oid = to_regclass($1) AND d.datname = current_database()",
                      Params().text(name));
  if (!ok(rights.get()))
    throw StorageError("PostgreSQL: " + what + error_text(c.get(), rights.get()));
  if (PQntuples(rights.get()) == 0) throw StorageError("PostgreSQL: " + what + "no such table");
  if (PQgetvalue(rights.get(), 0, 0)[0] == 0) {
    throw StorageError("PostgreSQL: " + what + "role '" + get_bytes(rights.get(), 0, 1) +
                       "' is neither its owner nor the database's, so it may not rewrite it");
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
  if (!ok(r.get())) throw StorageError("PostgreSQL: " + what + error_text(c.get(), r.get()));
  if (!warnings.empty()) throw StorageError("PostgreSQL: " + what + warnings);
}

}  // namespace annals
