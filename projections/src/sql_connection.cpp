#include "sql_connection.hpp"

#include <sqlite3.h>

#include <thread>

namespace annals::detail {

namespace {

constexpr std::size_t kMaxCachedStatements = 256;

}  // namespace

SqlConnection::SqlConnection(const std::filesystem::path& path, int flags,
                             std::chrono::milliseconds busy_timeout)
    : path_(path),
      busy_timeout_(busy_timeout),
      db_(path.string(), flags, static_cast<int>(busy_timeout.count())) {}

SQLite::Statement& SqlConnection::statement(std::string_view sql) {
  std::string key(sql);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    // SQL built with values inside it would grow the cache without end; no
    // statement is in use between calls, so starting over is safe.
    if (cache_.size() >= kMaxCachedStatements) cache_.clear();
    it = cache_.emplace(key, std::make_unique<SQLite::Statement>(db_, key)).first;
  } else {
    it->second->tryReset();
    it->second->clearBindings();
  }
  return *it->second;
}

std::int64_t SqlConnection::exec(std::string_view sql, const std::vector<SqlValue>& params) {
  try {
    auto& st = statement(sql);
    ResetOnExit reset(st);
    bind_values(st, params);
    return st.exec();
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "running '" + std::string(sql) + "' on '" + path_.string() + "'");
  }
}

std::vector<SqlRow> SqlConnection::query(std::string_view sql,
                                         const std::vector<SqlValue>& params) {
  try {
    auto& st = statement(sql);
    ResetOnExit reset(st);
    bind_values(st, params);
    return fetch_rows(st);
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "running '" + std::string(sql) + "' on '" + path_.string() + "'");
  }
}

void SqlConnection::exec_script(std::string_view sql) {
  try {
    db_.exec(std::string(sql));
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "running a script on '" + path_.string() + "'");
  }
}

void SqlConnection::begin_immediate() {
  try {
    retry_while_busy(busy_timeout_, [&] { statement("BEGIN IMMEDIATE").exec(); });
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "beginning a transaction on '" + path_.string() + "'");
  }
}

void SqlConnection::begin_deferred() { exec("BEGIN"); }

void SqlConnection::commit() { exec("COMMIT"); }

void SqlConnection::rollback_quietly() noexcept {
  try {
    for (auto& [sql, st] : cache_) st->tryReset();
    if (sqlite3_get_autocommit(db_.getHandle()) == 0) db_.exec("ROLLBACK");
  } catch (...) {
  }
}

std::string message_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

std::int64_t now_micros() { return to_micros(SystemClock().now()); }

}  // namespace annals::detail
