#pragma once
// SQLite plumbing shared by the store and the projections module: files,
// errors, statement reset, and SqlValue binding. Private to the Annals build
// (target annals::store_internal, which projections links at build time only);
// never installed, so SQLiteCpp stays out of the public headers.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/store/sqlite_event_store.hpp"

namespace annals::detail {

/// A StorageError carrying SQLite's codes: "SQLite error while <doing>: <what>".
StorageError storage_error(const SQLite::Exception& e, const std::string& doing);

/// Whether `path` exists. `what` names the file in errors ("store file").
/// Throws: StorageError naming the path when the file system cannot tell
/// (name too long, a symlink loop, no permission on a parent, ...).
bool file_exists(const std::filesystem::path& path, std::string_view what);

/// Creates `path` empty with mode 0600 unless it exists (another process may
/// create it at the same moment: that is not an error).
/// Throws: StorageError naming the path and the reason.
void create_private_file(const std::filesystem::path& path, std::string_view what);

// The URI that opens `path` in SQLite's immutable mode (no locks, no -shm):
// how a read-only open reads a WAL file in a directory it may not write, when
// the file has no write-ahead log to replay. Every byte but unreserved ones
// and '/' is percent-encoded, so '?', '#' and '%' in a name stay part of it.
// Open it with SQLITE_OPEN_URI.
std::string immutable_uri(const std::filesystem::path& path);

// True when `path` has no -wal file, or an empty one.
bool no_pending_log(const std::filesystem::path& path);

/// Resets a statement when leaving scope, so a read never keeps its snapshot
/// (and with it the WAL) pinned after it is done.
class ResetOnExit {
 public:
  explicit ResetOnExit(SQLite::Statement& st) : st_(st) {}
  ~ResetOnExit() { st_.tryReset(); }  // reports the last step's error: already handled
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  SQLite::Statement& st_;
};

/// Finalizes a statement prepared on the C API.
struct StatementFinalizer {
  void operator()(sqlite3_stmt* st) const noexcept { sqlite3_finalize(st); }
};
/// A statement prepared on the C API. The read hot path uses these: SQLiteCpp's
/// getColumn() builds a Column holding a shared_ptr per value read, too costly
/// per value there (ADR 0004).
using RawStatement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

/// ResetOnExit for a RawStatement.
class RawResetOnExit {
 public:
  explicit RawResetOnExit(sqlite3_stmt* st) noexcept : st_(st) {}
  ~RawResetOnExit() { sqlite3_reset(st_); }  // reports the last step's error: already handled
  RawResetOnExit(const RawResetOnExit&) = delete;
  RawResetOnExit& operator=(const RawResetOnExit&) = delete;

 private:
  sqlite3_stmt* st_;
};

/// Throws the SQLite::Exception that SQLiteCpp would for result code `rc` of a
/// call on `st`, unless it is SQLITE_OK, so callers translate both alike.
void check_rc(sqlite3_stmt* st, int rc);

/// Binds text that outlives the statement's next step (SQLITE_STATIC: no copy).
/// Throws: SQLite::Exception.
void bind_static_text(sqlite3_stmt* st, int index, std::string_view text);

/// Runs `fn` until it does not fail with SQLITE_BUSY, or until `timeout` has
/// passed (then rethrows). For the statements SQLite answers BUSY without
/// calling the busy handler: BEGIN IMMEDIATE while another connection holds
/// a read snapshot it must not wait on, and the switch to WAL on a new file.
template <class Fn>
decltype(auto) retry_while_busy(std::chrono::milliseconds timeout, Fn&& fn) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    try {
      return fn();
    } catch (const SQLite::Exception& e) {
      if ((e.getErrorCode() & 0xFF) != SQLITE_BUSY ||
          std::chrono::steady_clock::now() >= deadline) {
        throw;
      }
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

/// Puts `db` (the file `path`, named `what` in errors: "store file") in WAL
/// mode, retrying the SQLITE_BUSY of a new file's switch within
/// `busy_timeout`, and sets its synchronous mode. The one place a writable
/// store or read model connection is configured.
/// Throws: StorageError when the file cannot use WAL; SQLite::Exception for
/// other SQLite errors (callers translate it, naming what they open).
void use_wal(SQLite::Database& db, const std::filesystem::path& path, std::string_view what,
             Synchronous synchronous, std::chrono::milliseconds busy_timeout);

/// Binds params[i] to ?i+1.
void bind_values(SQLite::Statement& st, const std::vector<SqlValue>& params);

/// Column `column` of the current row (blobs as their bytes, as text).
SqlValue column_value(SQLite::Statement& st, int column);

/// Every remaining row of `st`, a value per column.
std::vector<SqlRow> fetch_rows(SQLite::Statement& st);

/// One SQLite connection with its prepared statements cached, usable as an
/// SqlTransaction inside a transaction its owner opened. Used by one thread at
/// a time. SQL errors from exec/query/exec_script are StorageErrors naming the
/// SQL and the file.
class SqlConnection final : public SqlTransaction {
 public:
  /// Opens `path` with SQLite `flags`; `vfs` empty for the default VFS.
  /// Throws: SQLite::Exception (callers translate it, naming what they open).
  SqlConnection(const std::filesystem::path& path, int flags,
                std::chrono::milliseconds busy_timeout, const std::string& vfs = {});

  SQLite::Database& db() { return db_; }

  std::int64_t exec(std::string_view sql, const std::vector<SqlValue>& params = {}) override;
  std::vector<SqlRow> query(std::string_view sql,
                            const std::vector<SqlValue>& params = {}) override;
  void exec_script(std::string_view sql) override;

  // BEGIN IMMEDIATE, retrying the SQLITE_BUSY that SQLite returns without
  // calling the busy handler, within the busy timeout.
  void begin_immediate();
  void begin_deferred();
  void commit();
  void rollback_quietly() noexcept;

  /// A cached statement, reset and unbound. The reference stays valid until a
  /// later call prepares SQL the cache has not seen while the cache is full.
  SQLite::Statement& statement(std::string_view sql);

  /// The same cache on the C API, for the read hot path: a prepared statement,
  /// reset and unbound, owned by the connection.
  /// Throws: SQLite::Exception when `sql` does not prepare.
  sqlite3_stmt* raw_statement(std::string_view sql);

 private:
  std::filesystem::path path_;
  std::chrono::milliseconds busy_timeout_;
  // Looked up by string_view without building a std::string: an append
  // looks up five statements, and a key would cost an allocation each.
  struct SqlHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view sql) const noexcept {
      return std::hash<std::string_view>{}(sql);
    }
  };
  template <class T>
  using Cache = std::unordered_map<std::string, T, SqlHash, std::equal_to<>>;

  SQLite::Database db_;
  Cache<std::unique_ptr<SQLite::Statement>> cache_;
  Cache<RawStatement> raw_cache_;
};

/// A transaction on an SqlConnection, the way SQLiteCpp's Transaction works:
/// it begins in the constructor and rolls back in the destructor unless
/// commit() was called. The destructor never throws.
/// Throws (constructor, commit): StorageError naming the connection's file.
/// Thread safety: as its connection, one thread at a time.
class SqliteTransaction {
 public:
  enum class Mode {
    deferred,   ///< BEGIN: a read, or a write that may wait for the lock later
    immediate,  ///< BEGIN IMMEDIATE, retrying SQLITE_BUSY within the busy timeout
  };
  SqliteTransaction(SqlConnection& conn, Mode mode) : conn_(conn) {
    if (mode == Mode::immediate) {
      conn_.begin_immediate();
    } else {
      conn_.begin_deferred();
    }
  }
  ~SqliteTransaction() {
    if (!committed_) conn_.rollback_quietly();
  }
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  void commit() {
    conn_.commit();
    committed_ = true;
  }

 private:
  SqlConnection& conn_;
  bool committed_ = false;
};

}  // namespace annals::detail
