#pragma once
/// The read-model transaction interface: SQL run inside a transaction its
/// owner opened, with values that are NULL, integers, reals or text. A
/// projection's setup, apply and reset are written against it, without
/// naming the database underneath (the SQLite store's append transaction, a
/// SQLite read model, later a PostgreSQL one). How placeholders are written
/// so that one statement text serves every backend: ADR 0010.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace annals {

/// A value bound to an SQL parameter or read from a column: NULL, an integer,
/// a real or text. Integers (and bool), doubles, strings and nullptr convert
/// implicitly, so parameters read as `{event.position, event.stream_id}`.
/// Thread safety: a plain value type.
class SqlValue {
 public:
  SqlValue() = default;  ///< NULL
  SqlValue(std::nullptr_t) {}
  template <std::integral T>
  SqlValue(T v) : value_(static_cast<std::int64_t>(v)) {}
  SqlValue(double v) : value_(v) {}
  SqlValue(std::string v) : value_(std::move(v)) {}
  SqlValue(std::string_view v) : value_(std::string(v)) {}
  SqlValue(const char* v) : value_(std::string(v)) {}

  bool is_null() const noexcept { return std::holds_alternative<std::monostate>(value_); }
  bool is_int() const noexcept { return std::holds_alternative<std::int64_t>(value_); }
  bool is_real() const noexcept { return std::holds_alternative<double>(value_); }
  bool is_text() const noexcept { return std::holds_alternative<std::string>(value_); }
  /// Throws: InvalidArgument if the value is not an integer.
  std::int64_t as_int() const;
  /// An integer or a real as double. Throws: InvalidArgument otherwise.
  double as_real() const;
  /// Throws: InvalidArgument if the value is not text.
  const std::string& as_text() const;

  friend bool operator==(const SqlValue&, const SqlValue&) = default;

 private:
  std::variant<std::monostate, std::int64_t, double, std::string> value_;
};

/// One result row, a value per column.
using SqlRow = std::vector<SqlValue>;

/// The database an SqlTransaction runs on, for the few statements that cannot
/// be written once for both (column types wider than SQLite needs, catalog
/// queries): `if (tx.dialect() == annals::SqlDialect::postgresql) ...`.
enum class SqlDialect {
  sqlite,
  postgresql,
};

/// Runs SQL inside a write transaction that its owner opened and will commit
/// or roll back: the append transaction of a SqliteEventStore (handed to a
/// TransactionHook) or a read model's transaction (annals::projections).
/// Parameters are written $1, $2, ... in the statement text and bind in order:
/// params[0] to $1, whatever order the placeholders appear in (one text
/// serves SQLite and PostgreSQL, ADR 0010); SQLite's ?1, ?2, ... also work
/// on SQLite. Statements are prepared once and cached per connection, so pass
/// values as parameters, not in the SQL text.
/// Throws (every member): StorageError carrying the database's codes when it
/// rejects a statement (on SQLite, SQLITE_CONSTRAINT_UNIQUE for a UNIQUE
/// violation, for instance; on PostgreSQL the message carries the SQLSTATE);
/// the owner of the transaction decides what that does to it. On PostgreSQL
/// a failed statement aborts the transaction up to the last savepoint.
/// Values read back: integers (bigint, integer, smallint, boolean as 0/1, and
/// numeric without a fraction), reals (double, real, other numeric) and
/// text (every other type, in PostgreSQL's text form).
/// Never end the owner's transaction (COMMIT, ROLLBACK, BEGIN): the owner
/// does; use savepoints of your own for partial rollbacks.
/// Thread safety: use it only on the thread it was handed to, only during the
/// call it was handed to.
class SqlTransaction {
 public:
  virtual ~SqlTransaction() = default;
  /// Runs one statement; returns the number of rows it inserted, updated or deleted.
  virtual std::int64_t exec(std::string_view sql, const std::vector<SqlValue>& params = {}) = 0;
  /// Runs one query; returns every row.
  virtual std::vector<SqlRow> query(std::string_view sql,
                                    const std::vector<SqlValue>& params = {}) = 0;
  /// Runs a script of statements separated by ';', without parameters (schemas).
  virtual void exec_script(std::string_view sql) = 0;
  /// The database underneath. Never throws.
  virtual SqlDialect dialect() const noexcept { return SqlDialect::sqlite; }
  /// The first column of the first row as an integer; nullopt when there is
  /// no row or the value is NULL.
  std::optional<std::int64_t> query_int(std::string_view sql,
                                        const std::vector<SqlValue>& params = {});
  /// The first column of the first row as text; nullopt when there is no row
  /// or the value is NULL.
  std::optional<std::string> query_text(std::string_view sql,
                                        const std::vector<SqlValue>& params = {});
};

}  // namespace annals
