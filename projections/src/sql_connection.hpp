#pragma once
// One SQLite connection of the projections module, usable as an SqlTransaction
// (statements cached per connection). Private: SQLiteCpp stays out of the
// public headers.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>

#include "annals/core/error.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "sqlite_support.hpp"

namespace annals::detail {

class SqlConnection final : public SqlTransaction {
 public:
  SqlConnection(const std::filesystem::path& path, int flags,
                std::chrono::milliseconds busy_timeout);

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

 private:
  SQLite::Statement& statement(std::string_view sql);

  std::filesystem::path path_;
  std::chrono::milliseconds busy_timeout_;
  SQLite::Database db_;
  std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> cache_;
};

// Runs `fn` inside a savepoint of the open transaction `tx`; returns the
// exception it threw (after rolling the savepoint back), or null.
// Throws: StorageError when the savepoint itself fails (the transaction is then
// in doubt and must be rolled back by its owner).
template <class Fn>
std::exception_ptr in_savepoint(SqlTransaction& tx, Fn&& fn) {
  tx.exec("SAVEPOINT annals_projection_event");
  try {
    fn();
  } catch (...) {
    auto error = std::current_exception();
    tx.exec("ROLLBACK TO annals_projection_event");
    tx.exec("RELEASE annals_projection_event");
    return error;
  }
  tx.exec("RELEASE annals_projection_event");
  return nullptr;
}

// The message of an exception_ptr's exception.
std::string message_of(const std::exception_ptr& error);

// Microseconds since the epoch, now.
std::int64_t now_micros();

}  // namespace annals::detail
