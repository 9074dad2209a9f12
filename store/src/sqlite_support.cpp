#include "annals/store/internal/sqlite_support.hpp"

#include <cctype>

#include <SQLiteCpp/Column.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace annals::detail {

StorageError storage_error(const SQLite::Exception& e, const std::string& doing) {
  return StorageError("SQLite error while " + doing + ": " + e.what(), e.getErrorCode(),
                      e.getExtendedErrorCode());
}

bool file_exists(const std::filesystem::path& path, std::string_view what) {
  // The error_code overload: the throwing one raises std::filesystem_error,
  // which is not an annals::Error.
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (ec) {
    throw StorageError("cannot open " + std::string(what) + " '" + path.string() +
                       "': " + ec.message());
  }
  return exists;
}

void create_private_file(const std::filesystem::path& path, std::string_view what) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
  } else if (errno != EEXIST) {
    throw StorageError("cannot create " + std::string(what) + " '" + path.string() +
                       "': " + std::strerror(errno));
  }
}

void use_wal(SQLite::Database& db, const std::filesystem::path& path, std::string_view what,
             Synchronous synchronous, std::chrono::milliseconds busy_timeout) {
  const std::string mode = retry_while_busy(
      busy_timeout, [&] { return db.execAndGet("PRAGMA journal_mode = WAL").getString(); });
  if (mode != "wal") {
    throw StorageError(std::string(what) + " '" + path.string() +
                       "' cannot use write-ahead logging (journal mode is " + mode + ")");
  }
  db.exec(synchronous == Synchronous::full ? "PRAGMA synchronous = FULL"
                                           : "PRAGMA synchronous = NORMAL");
}

void bind_values(SQLite::Statement& st, const std::vector<SqlValue>& params) {
  // SQLite numbers a $N parameter by where it first appears, not by N: look
  // $N up by name, so that params[N-1] binds to it in any order (ADR 0010).
  // ?N (and a text without $N) binds by number.
  char name[24];
  for (std::size_t i = 0; i < params.size(); ++i) {
    std::snprintf(name, sizeof name, "$%zu", i + 1);
    const int named = st.getIndex(name);
    const int index = named > 0 ? named : static_cast<int>(i) + 1;
    const SqlValue& v = params[i];
    if (v.is_null()) {
      st.bind(index);
    } else if (v.is_int()) {
      st.bind(index, v.as_int());
    } else if (v.is_real()) {
      st.bind(index, v.as_real());
    } else {
      st.bind(index, v.as_text());
    }
  }
}

SqlValue column_value(SQLite::Statement& st, int column) {
  const SQLite::Column c = st.getColumn(column);
  switch (c.getType()) {
    case SQLITE_NULL:
      return SqlValue();
    case SQLITE_INTEGER:
      return SqlValue(c.getInt64());
    case SQLITE_FLOAT:
      return SqlValue(c.getDouble());
    default:  // text, and blobs as their bytes
      return SqlValue(std::string(static_cast<const char*>(c.getBlob()),
                                  static_cast<std::size_t>(c.getBytes())));
  }
}

std::vector<SqlRow> fetch_rows(SQLite::Statement& st) {
  std::vector<SqlRow> rows;
  while (st.executeStep()) {
    SqlRow row;
    row.reserve(static_cast<std::size_t>(st.getColumnCount()));
    for (int c = 0; c < st.getColumnCount(); ++c) row.push_back(column_value(st, c));
    rows.push_back(std::move(row));
  }
  return rows;
}

namespace {

constexpr std::size_t kMaxCachedStatements = 256;

}  // namespace

SqlConnection::SqlConnection(const std::filesystem::path& path, int flags,
                             std::chrono::milliseconds busy_timeout, const std::string& vfs)
    : path_(path),
      busy_timeout_(busy_timeout),
      db_(path.string(), flags, static_cast<int>(busy_timeout.count()), vfs) {}

SQLite::Statement& SqlConnection::statement(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    // SQL built with values inside it would grow the cache without end; no
    // statement is in use between calls, so starting over is safe.
    if (cache_.size() >= kMaxCachedStatements) cache_.clear();
    std::string key(sql);
    auto prepared = std::make_unique<SQLite::Statement>(db_, key);
    it = cache_.emplace(std::move(key), std::move(prepared)).first;
  } else {
    it->second->tryReset();
    it->second->clearBindings();
  }
  return *it->second;
}

sqlite3_stmt* SqlConnection::raw_statement(std::string_view sql) {
  auto it = raw_cache_.find(sql);
  if (it == raw_cache_.end()) {
    if (raw_cache_.size() >= kMaxCachedStatements) raw_cache_.clear();  // as statement()
    std::string key(sql);
    sqlite3_stmt* st = nullptr;
    const int rc = sqlite3_prepare_v3(db_.getHandle(), key.c_str(), static_cast<int>(key.size()),
                                      SQLITE_PREPARE_PERSISTENT, &st, nullptr);
    RawStatement owned(st);
    if (rc != SQLITE_OK) throw SQLite::Exception(db_.getHandle(), rc);
    it = raw_cache_.emplace(std::move(key), std::move(owned)).first;
  } else {
    sqlite3_reset(it->second.get());  // an earlier failed step was already reported
    sqlite3_clear_bindings(it->second.get());
  }
  return it->second.get();
}

void check_rc(sqlite3_stmt* st, int rc) {
  if (rc != SQLITE_OK) throw SQLite::Exception(sqlite3_db_handle(st), rc);
}

void bind_static_text(sqlite3_stmt* st, int index, std::string_view text) {
  check_rc(st, sqlite3_bind_text(st, index, text.data(), static_cast<int>(text.size()),
                                 SQLITE_STATIC));
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
    for (auto& [sql, st] : raw_cache_) sqlite3_reset(st.get());
    if (sqlite3_get_autocommit(db_.getHandle()) == 0) db_.exec("ROLLBACK");
  } catch (...) {
  }
}

std::string immutable_uri(const std::filesystem::path& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string uri = "file:";
  for (const char ch : std::filesystem::absolute(path).string()) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      uri += ch;
    } else {
      uri += '%';
      uri += kHex[c >> 4];
      uri += kHex[c & 0xf];
    }
  }
  return uri + "?immutable=1";
}

bool no_pending_log(const std::filesystem::path& path) {
  std::error_code ec;
  const std::string wal = path.string() + "-wal";
  const auto size = std::filesystem::file_size(wal, ec);
  return ec ? !std::filesystem::exists(wal, ec) : size == 0;
}

}  // namespace annals::detail
