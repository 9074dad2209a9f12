#pragma once
/// PostgresReadModel: a read model in a PostgreSQL schema, so projections'
/// rows and checkpoints commit in one PostgreSQL transaction (exactly-once
/// effects), for services whose read side runs on several machines.
///
///   annals::PostgresEventStore store("host=db dbname=bank");
///   annals::PostgresReadModel views("host=db dbname=bank", {.schema = "bank_views"});
///   annals::ProjectionRunner balances(store, views, make_balances_projection());
///
/// Everything ProjectionRunner, check_projection, request_rebuild and
/// request_check do on a SqliteReadModel they do here: poison policies,
/// parked events, status, blue/green rebuild and check (read_model.hpp). Any
/// EventStore feeds it (a SQLite store too). Projections reach it through
/// SqlTransaction; statements written with $1, $2, ... and
/// `INSERT ... ON CONFLICT ... DO UPDATE` run unchanged on both kinds, and
/// SqlTransaction::dialect() tells which one runs (for column types: INTEGER
/// is 32 bits on PostgreSQL, use BIGINT).
///
/// Where things live: the projections' tables and the bookkeeping tables
/// (read_model.hpp) in `schema`, first on the connections' search_path, so
/// projections name their tables unqualified. The role needs CREATE on the
/// schema (projections create their tables; rebuild and check create a
/// temporary schema "annals_shadow_<random>" in the database, dropped
/// afterwards, so also CREATE on the database for those two).
///
/// Transactions: write() runs at READ COMMITTED and first takes a
/// transaction-level advisory lock of the schema, so write transactions of one
/// read model are serialized across every process and machine, as SQLite's
/// single writer does; that is what lets two runners of one projection drop
/// what the other already applied. read() runs at REPEATABLE READ, READ ONLY:
/// one snapshot for everything inside it.
///
/// Rebuild swap: in one transaction the live tables are dropped and the
/// shadow's moved in (ALTER TABLE ... SET SCHEMA: indexes, constraints,
/// triggers and owned sequences move with them), and each gets the live
/// table's GRANTs. setup() should create tables (with their indexes,
/// triggers, serial or identity columns) and nothing else: a type, function
/// or standalone sequence it creates would be the shadow's, and a rebuild
/// whose tables need one fails naming it (create such objects once, in the
/// schema, outside setup()). A view of your own on a projection's table
/// blocks the drop. A failed rebuild leaves the live model as it was. The
/// swap waits for readers of those tables to finish; a REPEATABLE READ
/// reader that began before it and reads a swapped table afterwards sees it
/// empty (PostgreSQL's catalog is not versioned like rows).
///
/// Connections: one for writes, one for reads, opened at construction and
/// opened again at the next call after the server dropped them (that call's
/// transaction fails with StorageError; the runner retries it).
///
/// Thread safety: one object may be used from many threads. write() calls are
/// serialized; read() calls are serialized on the reader connection; a read()
/// nested in a read() on the same thread joins it, a write() nested in a
/// write() throws.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "annals/core/clock.hpp"
#include "annals/projections/read_model.hpp"

namespace annals {

struct PostgresReadModelOptions {
  /// The schema holding the tables, created if missing. ASCII letters,
  /// digits and '_', not starting with a digit, at most 63 bytes.
  /// Default: "public".
  std::string schema = "public";
  /// Schemas searched after `schema` for types and functions that
  /// projections use but do not create (an extension's, installed in
  /// public). Same rules as `schema`. Default: {"public"}.
  std::vector<std::string> search_path{"public"};
  /// What stamps the bookkeeping (checkpoint updated_at, parked_at, rebuild
  /// requests). Default: the system clock.
  std::shared_ptr<const Clock> clock{};
  /// Only look: the schema must exist; nothing is created (a schema without
  /// the bookkeeping tables reads as having no projections) and write()
  /// throws InvalidArgument. For tools and pages that show a read model, and
  /// roles that may only SELECT. Default: false.
  bool read_only = false;
  /// How long a write() waits for a lock before failing with StorageError
  /// (nothing written): the schema's write lock, which another writer of the
  /// schema in any process holds for its transaction (or a second object of
  /// the same schema used inside this thread's own write(), which would
  /// otherwise wait forever), and the tables' locks a rebuild's swap takes
  /// while readers use them. At least 1 ms. Default: 30 s, as
  /// SqliteReadModelOptions::busy_timeout.
  std::chrono::milliseconds lock_timeout{30'000};
};

class PostgresReadModel final : public ReadModel {
 public:
  /// Connects to the server `connection` names (a libpq connection string or
  /// postgresql:// URL), creates the schema and the bookkeeping tables if
  /// missing.
  /// Throws: InvalidArgument (bad schema name); StorageError when it cannot
  /// connect or create them, or, read-only, when the schema does not exist.
  explicit PostgresReadModel(const std::string& connection, PostgresReadModelOptions options = {});
  ~PostgresReadModel() override;

  /// The schema of PostgresReadModelOptions::schema.
  const std::string& schema() const noexcept;

  /// See ReadModel::write (above for the locking). Throws: what `fn` throws;
  /// StorageError when PostgreSQL fails (the message carries its SQLSTATE);
  /// InvalidArgument when nested in a write() on the same thread, or on a
  /// read-only model.
  void write(const std::function<void(SqlTransaction&)>& fn) override;
  /// See ReadModel::read. Throws: what `fn` throws; StorageError.
  void read(const std::function<void(SqlTransaction&)>& fn) const override;
  const Clock& clock() const noexcept override;
  /// "PostgreSQL read model (schema \"<schema>\")".
  std::string describe() const override;

 private:
  std::unique_ptr<detail::ShadowModel> open_shadow() const override;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals
