// PostgresReadModel: one writer and one reader connection (libpq), the
// bookkeeping tables of projection_tables.cpp in the model's schema, and
// shadows in temporary schemas of the same database. See the header for the
// locking.

#include "annals/projections/postgres_read_model.hpp"

#include <libpq-fe.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>

#include "annals/core/error.hpp"
#include "annals/core/thread_annotations.hpp"
#include "postgres_store_impl.hpp"
#include "projection_tables.hpp"
#include "shadow_model.hpp"
#include "thread_inside.hpp"

namespace annals {

namespace {

using detail::pg::Conn;
using detail::pg::Result;

// Type oids of values read back (pg_type.dat).
constexpr Oid kBool = 16, kInt8 = 20, kInt2 = 21, kInt4 = 23, kOid = 26, kFloat4 = 700,
              kFloat8 = 701, kNumeric = 1700;

// A real in PostgreSQL's text form, whatever the process's locale:
// "Infinity", "-Infinity" and "NaN" included.
double real_of(const char* text, std::size_t size) {
  const std::string_view t(text, size);
  if (t == "Infinity") return std::numeric_limits<double>::infinity();
  if (t == "-Infinity") return -std::numeric_limits<double>::infinity();
  if (t == "NaN") return std::numeric_limits<double>::quiet_NaN();
  double v = 0;
  std::from_chars(text, text + size, v);
  return v;
}

// A value of a result in text form, typed by its column's type.
SqlValue value_of(const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col) != 0) return SqlValue();
  const char* text = PQgetvalue(r, row, col);
  const std::size_t size = static_cast<std::size_t>(PQgetlength(r, row, col));
  switch (PQftype(r, col)) {
    case kBool:
      return SqlValue(std::int64_t{text[0] == 't' ? 1 : 0});
    case kInt2:
    case kInt4:
    case kInt8:
    case kOid: {
      std::int64_t v = 0;
      std::from_chars(text, text + size, v);
      return SqlValue(v);
    }
    case kNumeric: {
      // sum() and avg() of integers give numeric: whole ones that fit come
      // back as integers, as SQLite's would.
      std::int64_t v = 0;
      const auto [end, ec] = std::from_chars(text, text + size, v);
      if (ec == std::errc() && end == text + size) return SqlValue(v);
      return SqlValue(real_of(text, size));
    }
    case kFloat4:
    case kFloat8:
      return SqlValue(real_of(text, size));
    default:
      return SqlValue(std::string(text, size));
  }
}

// SqlTransaction on one libpq connection inside a transaction its owner
// opened. Integers and reals are sent typed (bigint, double precision), text
// untyped so that the server gives it the type the statement needs.
class PgTransaction final : public SqlTransaction {
 public:
  PgTransaction(PGconn* c, const std::string& owner) : c_(c), owner_(owner) {}

  std::int64_t exec(std::string_view sql, const std::vector<SqlValue>& params) override {
    const Result r = run(sql, params);
    std::int64_t n = 0;
    const char* tuples = PQcmdTuples(r.get());
    std::from_chars(tuples, tuples + std::strlen(tuples), n);
    return n;
  }

  std::vector<SqlRow> query(std::string_view sql, const std::vector<SqlValue>& params) override {
    const Result r = run(sql, params);
    std::vector<SqlRow> rows;
    const int n = PQntuples(r.get()), columns = PQnfields(r.get());
    rows.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      SqlRow row;
      row.reserve(static_cast<std::size_t>(columns));
      for (int j = 0; j < columns; ++j) row.push_back(value_of(r.get(), i, j));
      rows.push_back(std::move(row));
    }
    return rows;
  }

  void exec_script(std::string_view sql) override {
    const Result r(PQexec(c_, std::string(sql).c_str()));
    check(r.get());
  }

  SqlDialect dialect() const noexcept override { return SqlDialect::postgresql; }

 private:
  Result run(std::string_view sql, const std::vector<SqlValue>& params) {
    std::vector<std::string> text(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    std::vector<Oid> types(params.size(), 0);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const SqlValue& p = params[i];
      if (p.is_null()) continue;
      if (p.is_int()) {
        text[i] = std::to_string(p.as_int());
        types[i] = kInt8;
      } else if (p.is_real()) {
        char buffer[32];
        const auto end = std::to_chars(buffer, buffer + sizeof buffer, p.as_real()).ptr;
        text[i].assign(buffer, end);  // shortest text that reads back the same
        types[i] = kFloat8;
      } else {
        text[i] = p.as_text();
        if (text[i].find('\0') != std::string::npos) {
          throw InvalidArgument(owner_ + ": parameter $" + std::to_string(i + 1) +
                                " is text with a NUL byte, which PostgreSQL cannot store");
        }
      }
      values[i] = text[i].c_str();
    }
    Result r(PQexecParams(c_, std::string(sql).c_str(), static_cast<int>(params.size()),
                          types.data(), values.data(), nullptr, nullptr, 0));
    check(r.get());
    return r;
  }

  void check(const PGresult* r) const {
    const auto status = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
    const std::string msg = detail::pg::error_text(c_, r);
    const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    throw StorageError(owner_ + ": " + msg +
                       (state != nullptr ? std::string(" (SQLSTATE ") + state + ")" : ""));
  }

  PGconn* c_;
  const std::string& owner_;
};

}  // namespace

class PostgresReadModel::Impl {
 public:
  Impl(std::string connection, PostgresReadModelOptions options)
      : connection_(std::move(connection)),
        options_(std::move(options)),
        clock_(options_.clock ? options_.clock : SystemClock::shared()),
        owner_("PostgreSQL read model (schema \"" + options_.schema + "\")"),
        lock_key_("annals_read_model." + options_.schema) {
    if (options_.read_only) {
      // Connect now, so that a wrong server or a missing schema fails here.
      std::int64_t found = 0;
      read([&](SqlTransaction& tx) {
        found = tx.query_int("SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1",
                             {options_.schema})
                    .value_or(0);
      });
      if (found == 0) throw StorageError(owner_ + ": the schema does not exist");
      return;
    }
    detail::MutexLock lock(write_mu_);
    // The schema and the bookkeeping tables, under the write lock so that
    // processes opening a new model at once do not race to create them.
    in_transaction(
        writer_, "BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE", [&](PgTransaction& tx) {
          take_write_lock(tx);
          const bool exists =
              tx.query_int("SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1",
                           {options_.schema})
                  .value_or(0) > 0;
          if (!exists) tx.exec_script("CREATE SCHEMA \"" + options_.schema + "\"");
          // CREATE TABLE IF NOT EXISTS checks the right to create before it
          // looks: a role without CREATE on the schema (a tool asking for a
          // rebuild) opens a model whose tables are already there.
          const bool made = tx.query_int(
                                  "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = $1 "
                                  "AND tablename IN ('projection_checkpoints', "
                                  "'projection_parked_events', 'projection_checks')",
                                  {options_.schema})
                                .value_or(0) == 3;
          if (!made) detail::create_projection_tables(tx);
        });
  }

  void write(const std::function<void(SqlTransaction&)>& fn) {
    if (options_.read_only) throw InvalidArgument(owner_ + " was opened read-only");
    if (detail::ThreadInside::is_current(writing_thread_)) {
      throw InvalidArgument(owner_ + ": write() called inside write(); transactions do not nest");
    }
    detail::MutexLock lock(write_mu_);
    const detail::ThreadInside inside(writing_thread_);
    // READ COMMITTED whatever the server's default: each statement after the
    // lock sees what the writer before committed (the runner re-reads its
    // checkpoint there).
    in_transaction(writer_, "BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE",
                   [&](PgTransaction& tx) {
                     take_write_lock(tx);
                     fn(tx);
                   });
  }

  // The schema's advisory lock, waited for at most lock_timeout, which then
  // also bounds every other lock wait of the transaction (a swap's).
  void take_write_lock(PgTransaction& tx) const {
    tx.exec_script("SET LOCAL lock_timeout = " + std::to_string(options_.lock_timeout.count()));
    try {
      tx.exec("SELECT pg_advisory_xact_lock(hashtext($1))", {lock_key_});
    } catch (const StorageError& e) {
      if (std::string_view(e.what()).find("SQLSTATE 55P03") == std::string_view::npos) throw;
      throw StorageError(owner_ + ": waited " + std::to_string(options_.lock_timeout.count()) +
                         " ms for the schema's write lock, held by another writer (or by a "
                         "write() of a second object of this schema further up this thread); "
                         "nothing was written");
    }
  }

  void read(const std::function<void(SqlTransaction&)>& fn) {
    if (detail::ThreadInside::is_current(reading_thread_)) {
      read_mu_.assert_held();  // by this thread, further up its stack
      PgTransaction tx(reader_.get(), owner_);
      fn(tx);
      return;
    }
    detail::MutexLock lock(read_mu_);
    const detail::ThreadInside inside(reading_thread_);
    in_transaction(reader_, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                   [&](PgTransaction& tx) { fn(tx); });
  }

  const std::string connection_;
  const PostgresReadModelOptions options_;
  const std::shared_ptr<const Clock> clock_;
  const std::string owner_;

 private:
  // A connection whose search_path is the model's schema, then
  // PostgresReadModelOptions::search_path. Set after connecting, so options
  // in the user's connection string (statement_timeout, ...) stay in force.
  // Floats are sent with every digit (extra_float_digits), so they read back
  // as stored; NOTICEs ("relation already exists, skipping") are not printed.
  Conn connect() const {
    // application_name first: a name in the user's string wins.
    if (const std::string why = detail::pg::conninfo_error(connection_); !why.empty()) {
      throw StorageError(owner_ + ": cannot connect: " + why);
    }
    const char* keys[] = {"application_name", "dbname", nullptr};
    const char* values[] = {"annals", connection_.c_str(), nullptr};
    Conn c(PQconnectdbParams(keys, values, 1));
    if (!c) throw StorageError(owner_ + ": cannot allocate a connection");
    if (PQstatus(c.get()) != CONNECTION_OK) {
      throw StorageError(owner_ + ": cannot connect: " + detail::pg::error_text(c.get(), nullptr));
    }
    std::string path = detail::quote_identifier(options_.schema);
    for (const auto& extra : options_.search_path) path += ", " + detail::quote_identifier(extra);
    PgTransaction(c.get(), owner_)
        .exec_script("SET search_path TO " + path +
                     "; SET extra_float_digits = 3; SET client_min_messages = warning");
    return c;
  }

  // BEGIN (`begin`) on `conn`, fn, COMMIT; ROLLBACK when anything throws. A
  // COMMIT the server turns into a ROLLBACK (a statement failed and `fn`
  // swallowed the error) is reported: nothing was stored. A connection the
  // server closed while it idled (a restart, pg_terminate_backend) is found
  // out at BEGIN, before anything ran, and replaced once.
  template <class Fn>
  void in_transaction(Conn& conn, const char* begin, Fn&& fn) const {
    if (!conn) conn = connect();
    try {
      PgTransaction(conn.get(), owner_).exec_script(begin);
    } catch (const StorageError&) {
      if (PQstatus(conn.get()) == CONNECTION_OK) throw;
      conn = connect();
      PgTransaction(conn.get(), owner_).exec_script(begin);
    }
    PGconn* c = conn.get();
    PgTransaction tx(c, owner_);
    try {
      fn(tx);
      const Result r(PQexec(c, "COMMIT"));
      const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
      if (status != PGRES_COMMAND_OK) {
        throw StorageError(owner_ + ": commit failed: " + detail::pg::error_text(c, r.get()));
      }
      if (std::strcmp(PQcmdStatus(r.get()), "COMMIT") != 0) {
        throw StorageError(owner_ +
                           ": the transaction was rolled back: a statement in it failed and "
                           "its error was caught without a savepoint");
      }
    } catch (...) {
      if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
        const Result ignored(PQexec(c, "ROLLBACK"));
      }
      throw;
    }
  }

  const std::string lock_key_;  // the advisory lock of write transactions
  detail::Mutex write_mu_;
  std::atomic<std::thread::id> writing_thread_{};
  Conn writer_ ANNALS_GUARDED_BY(write_mu_);
  detail::Mutex read_mu_;
  std::atomic<std::thread::id> reading_thread_{};  // inside read(), holding read_mu_
  Conn reader_ ANNALS_GUARDED_BY(read_mu_);
};

namespace {

// A shadow in a schema of its own, "annals_shadow_<16 hex digits>", in the
// live model's database, dropped with everything in it when destroyed. A
// process killed meanwhile leaves the schema behind: safe to drop. Its
// search_path goes on with the live schema's, so setup() finds the types and
// functions the live model has.
class PostgresShadow final : public detail::ShadowModel {
 public:
  PostgresShadow(PostgresReadModel& live, const std::string& connection,
                 const PostgresReadModelOptions& live_options, std::shared_ptr<const Clock> clock)
      : live_(live), name_(random_name()) {
    PostgresReadModelOptions options;
    options.schema = name_;
    options.search_path = {live_options.schema};
    options.search_path.insert(options.search_path.end(), live_options.search_path.begin(),
                               live_options.search_path.end());
    options.clock = std::move(clock);
    model_ = std::make_unique<PostgresReadModel>(connection, options);
  }

  ~PostgresShadow() override {
    // Through the shadow's own connection: the live model may be read-only.
    try {
      model_->write([&](SqlTransaction& tx) {
        tx.exec_script("DROP SCHEMA IF EXISTS " + detail::quote_identifier(name_) + " CASCADE");
      });
    } catch (...) {
      // Left behind, as after a killed process (see above); never thrown
      // from a destructor.
    }
  }

  ReadModel& model() override { return *model_; }
  std::string live_schema() const override { return live_.schema(); }
  std::string shadow_schema() const override { return name_; }

  void with_live(bool write, const std::function<void(SqlTransaction&)>& fn) override {
    if (write) {
      live_.write(fn);
    } else {
      live_.read(fn);
    }
  }

  // The live tables dropped in one statement (so tables that reference each
  // other go together), the shadow's moved into the live schema with their
  // indexes, constraints, triggers and owned sequences, the live tables'
  // GRANTs given to them; then a check that nothing moved still needs an
  // object of the shadow's, which the shadow's drop would take along.
  void replace_tables(SqlTransaction& tx, const std::vector<std::string>& tables) override {
    if (tables.empty()) return;
    const std::string live = detail::quote_identifier(live_.schema());
    const std::string shadow = detail::quote_identifier(name_);
    std::string live_list, names;
    for (const auto& table : tables) {
      live_list += (live_list.empty() ? "" : ", ") + live + "." + detail::quote_identifier(table);
      names += (names.empty() ? "" : ", ") + literal(table);
    }
    // privilege, grantee ("" for PUBLIC), table, of each live table
    const auto grants = tx.query(
        "SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN '' ELSE "
        "pg_get_userbyid(a.grantee)::text END, c.relname::text FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, "
        "aclexplode(c.relacl) AS a WHERE n.nspname = $1 AND c.relname IN (" +
            names + ") AND a.grantee <> c.relowner",
        {live_.schema()});
    tx.exec("DROP TABLE IF EXISTS " + live_list);
    for (const auto& table : tables) {
      tx.exec("ALTER TABLE " + shadow + "." + detail::quote_identifier(table) + " SET SCHEMA " +
              live);
    }
    for (const auto& g : grants) {
      const std::string& grantee = g[1].as_text();
      tx.exec("GRANT " + g[0].as_text() + " ON " + live + "." +
              detail::quote_identifier(g[2].as_text()) + " TO " +
              (grantee.empty() ? std::string("PUBLIC") : detail::quote_identifier(grantee)));
    }
    const auto needs = tx.query(
        "WITH moved AS (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname IN (" + names + ")), "
        "theirs AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $2) "
        "SELECT DISTINCT pg_describe_object(d.refclassid, d.refobjid, 0) FROM pg_catalog.pg_depend d "
        "WHERE ((d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM moved)) "
        "OR (d.classid = 'pg_attrdef'::regclass AND d.objid IN (SELECT oid FROM pg_attrdef "
        "WHERE adrelid IN (SELECT oid FROM moved))) "
        "OR (d.classid = 'pg_trigger'::regclass AND d.objid IN (SELECT oid FROM pg_trigger "
        "WHERE tgrelid IN (SELECT oid FROM moved))) "
        "OR (d.classid = 'pg_constraint'::regclass AND d.objid IN (SELECT oid FROM pg_constraint "
        "WHERE conrelid IN (SELECT oid FROM moved)))) "
        "AND ((d.refclassid = 'pg_type'::regclass AND d.refobjid IN (SELECT oid FROM pg_type "
        "WHERE typnamespace IN (SELECT oid FROM theirs))) "
        "OR (d.refclassid = 'pg_proc'::regclass AND d.refobjid IN (SELECT oid FROM pg_proc "
        "WHERE pronamespace IN (SELECT oid FROM theirs))) "
        "OR (d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT oid FROM pg_class "
        "WHERE relnamespace IN (SELECT oid FROM theirs)))) ORDER BY 1",
        {live_.schema(), name_});
    if (!needs.empty()) {
      std::string list;
      for (const auto& row : needs) list += (list.empty() ? "" : ", ") + row[0].as_text();
      throw StorageError(
          live_.describe() + ": rebuild refused: the projection's tables need " + list +
          ", which its setup() created in the replay's temporary schema; create such types, "
          "functions and sequences once in the read model's schema, outside setup(), and "
          "let setup() create tables only (the live model is unchanged)");
    }
  }

 private:
  static std::string literal(const std::string& text) {
    std::string out = "'";
    for (const char c : text) {
      out += c;
      if (c == '\'') out += '\'';
    }
    return out + "'";
  }

  static std::string random_name() {
    std::random_device device;
    std::string name = "annals_shadow_";
    constexpr char kHex[] = "0123456789abcdef";
    for (int i = 0; i < 16; ++i) name.push_back(kHex[device() % 16]);
    return name;
  }

  PostgresReadModel& live_;
  std::string name_;
  std::unique_ptr<PostgresReadModel> model_;
};

}  // namespace

PostgresReadModel::PostgresReadModel(const std::string& connection,
                                     PostgresReadModelOptions options) {
  detail::pg::check_schema_name(options.schema, "PostgresReadModelOptions::schema");
  if (options.lock_timeout < std::chrono::milliseconds(1) ||
      options.lock_timeout > std::chrono::milliseconds(std::numeric_limits<int>::max())) {
    throw InvalidArgument("PostgresReadModelOptions::lock_timeout is " +
                          std::to_string(options.lock_timeout.count()) +
                          " ms: it must be at least 1 ms and at most 2^31 - 1 ms");
  }
  for (const auto& extra : options.search_path) {
    detail::pg::check_schema_name(extra, "PostgresReadModelOptions::search_path");
  }
  impl_ = std::make_unique<Impl>(connection, std::move(options));
}

PostgresReadModel::~PostgresReadModel() = default;

const std::string& PostgresReadModel::schema() const noexcept { return impl_->options_.schema; }

void PostgresReadModel::write(const std::function<void(SqlTransaction&)>& fn) { impl_->write(fn); }

void PostgresReadModel::read(const std::function<void(SqlTransaction&)>& fn) const {
  impl_->read(fn);
}

const Clock& PostgresReadModel::clock() const noexcept { return *impl_->clock_; }

std::string PostgresReadModel::describe() const { return impl_->owner_; }

std::unique_ptr<detail::ShadowModel> PostgresReadModel::open_shadow() const {
  // The shadow writes through the live model's transactions (the swap), which
  // are non-const operations of this object.
  return std::make_unique<PostgresShadow>(const_cast<PostgresReadModel&>(*this),
                                          impl_->connection_, impl_->options_, impl_->clock_);
}

}  // namespace annals
