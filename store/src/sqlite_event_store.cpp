// SqliteEventStore: opening a file (writable, read-only or immutable), the
// append-only guards and the store's identity. The other parts of the store
// are listed in sqlite_store_impl.hpp.

#include "annals/store/sqlite_event_store.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <system_error>

#include "annals/core/error.hpp"
#include "sqlite_schema.hpp"
#include "sqlite_store_impl.hpp"
#include "annals/store/internal/sqlite_support.hpp"

namespace annals {

using detail::ResetOnExit;
using detail::storage_error;

SqliteEventStore::Impl::Impl(const std::filesystem::path& path, SqliteStoreOptions options)
    : path_(path), options_(std::move(options)) {
  if (!options_.clock) options_.clock = SystemClock::shared();
  if (options_.read_page_size == 0) options_.read_page_size = 1;
  if (options_.max_group_size == 0) options_.max_group_size = 1;
  const bool exists = detail::file_exists(path_, "store file");
  if (options_.read_only) {
    open_read_only(exists);
    return;
  }
  if (!exists && !options_.create_if_missing) {
    throw StorageError("store file '" + path_.string() + "' does not exist");
  }
  if (!exists) detail::create_private_file(path_, "store file");
  try {
    writer_.emplace(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, options_.busy_timeout,
                    options_.vfs);
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "opening '" + path_.string() + "'");
  }
  if (sqlite3_db_readonly(writer_->db().getHandle(), "main") == 1) {
    throw StorageError("store file '" + path_.string() +
                       "' is read-only; an event store needs write access");
  }
  detail::open_schema(writer_->db(), path_);
  try {
    detail::use_wal(writer_->db(), path_, "store file", options_.synchronous,
                    options_.busy_timeout);
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "configuring '" + path_.string() + "'");
  }
  guards_at_open_ = detail::restore_guards(writer_->db(), path_);
}

// A read-only store has no writer: one read-only connection checks the
// schema and becomes the first idle reader.
//
// A WAL database needs its -shm file even to be read. When that file can
// be neither opened nor created (a directory this process may not write)
// and there is no -wal file, no writer has the store open and nothing is
// pending in a log: the file alone is the whole store, and SQLite reads it
// as immutable (no locks, no -shm). Otherwise the open's error stands.
void SqliteEventStore::Impl::open_read_only(bool exists) {
  if (!exists) throw StorageError("store file '" + path_.string() + "' does not exist");
  std::unique_ptr<Connection> conn;
  try {
    conn = std::make_unique<Connection>(reader_target(), reader_flags(), options_.busy_timeout,
                                        options_.vfs);
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "opening '" + path_.string() + "' read-only");
  }
  bool cannot_index = false;
  try {
    conn->db().execAndGet("PRAGMA schema_version");  // reads the file, and the WAL index
  } catch (const SQLite::Exception& e) {
    // Other errors (not a database, ...) are named by check_schema_readable.
    const int primary = e.getErrorCode() & 0xff;
    cannot_index = primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN;
  }
  if (cannot_index && detail::no_pending_log(path_)) {
    immutable_ = true;
    try {
      conn = std::make_unique<Connection>(reader_target(), reader_flags(), options_.busy_timeout,
                                          options_.vfs);
    } catch (const SQLite::Exception& again) {
      throw storage_error(again, "opening '" + path_.string() + "' read-only");
    }
  }
  detail::check_schema_readable(conn->db(), path_);
  guards_at_open_ = detail::guard_problems(conn->db());
  release_reader(std::move(conn));
}

// True when the store has no -wal file, or an empty one.
// What reader connections open: the file, or an immutable URI of it.
std::filesystem::path SqliteEventStore::Impl::reader_target() const {
  if (!immutable_) return path_;
  return detail::immutable_uri(path_);
}

int SqliteEventStore::Impl::reader_flags() const {
  return (options_.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX |
         (immutable_ ? SQLITE_OPEN_URI : 0);
}

void SqliteEventStore::Impl::require_writable(const char* operation) const {
  if (options_.read_only) {
    throw StorageError("cannot " + std::string(operation) + ": store file '" + path_.string() +
                       "' was opened read-only");
  }
}

SqliteEventStore::Impl::~Impl() {
  try {
    scheduler_.shutdown();  // returns at once unless an append is still running
  } catch (...) {           // mutex errors only
  }
}

SqliteEventStore::SqliteEventStore(const std::filesystem::path& path, SqliteStoreOptions options)
    : impl_(std::make_unique<Impl>(path, std::move(options))) {}

SqliteEventStore::~SqliteEventStore() = default;

const std::filesystem::path& SqliteEventStore::path() const noexcept { return impl_->path_; }

std::vector<std::string> SqliteEventStore::guards_missing_at_open() const {
  std::vector<std::string> out;
  for (const auto& p : impl_->guards_at_open_) out.push_back(p.guard + " (" + p.what + ")");
  return out;
}

VerifyResult SqliteEventStore::verify_guards() const {
  VerifyResult result;
  std::vector<std::string> problems;
  const auto& at_open = impl_->guards_at_open_;
  auto lease = impl_->reader();
  try {
    const auto now = detail::guard_problems(lease->db());
    if (impl_->options_.read_only) {
      if (!now.empty()) {
        problems.push_back("append-only guards are missing or altered: " + detail::describe(now) +
                           " (not restored: the store was opened read-only)");
      } else if (!at_open.empty()) {
        problems.push_back(
            "append-only guards were missing or altered when the store was opened: " +
            detail::describe(at_open));
      }
    } else {
      if (!at_open.empty()) {
        problems.push_back(
            "append-only guards were missing or altered when the store was opened, and have "
            "been restored: " +
            detail::describe(at_open) +
            "; while they were gone, anyone could change or delete events");
      }
      if (!now.empty()) {
        problems.push_back("append-only guards are missing or altered now: " +
                           detail::describe(now));
      }
    }
    auto& has_mark = lease->statement(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'events_high_water'");
    bool marked = false;
    {
      ResetOnExit reset(has_mark);
      marked = has_mark.executeStep();
    }
    if (marked) {
      // One statement, so the head and the mark come from one snapshot.
      auto& st = lease->statement(
          "SELECT (SELECT coalesce(max(position), 0) FROM events), "
          "(SELECT position FROM events_high_water)");
      ResetOnExit reset(st);
      st.executeStep();
      const std::int64_t head = st.getColumn(0).getInt64();
      if (!st.getColumn(1).isNull() && st.getColumn(1).getInt64() > head) {
        const std::int64_t mark = st.getColumn(1).getInt64();
        problems.insert(problems.begin(),
                        "the newest event is at position " + std::to_string(head) +
                            ", but positions up to " + std::to_string(mark) +
                            " were handed out (high-water mark): the events at positions " +
                            std::to_string(head + 1) + " to " + std::to_string(mark) +
                            " were deleted");
        result.first_bad_position = head + 1;
      }
    }
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "checking the guards of '" + impl_->path_.string() + "'");
  }
  for (const auto& p : problems) {
    if (!result.reason.empty()) result.reason += "; ";
    result.reason += p;
  }
  result.ok = problems.empty();
  return result;
}

VerifyResult SqliteEventStore::verify(const VerifyProgress& progress) const {
  VerifyResult result = EventStore::verify(progress);
  const VerifyResult guards = verify_guards();
  if (guards.ok) return result;
  if (result.ok) {
    result.ok = false;
    result.first_bad_position = guards.first_bad_position;
    result.reason = guards.reason;
  } else {
    result.reason += "; " + guards.reason;
  }
  return result;
}

std::string SqliteEventStore::store_id() const {
  auto lease = impl_->reader();
  try {
    auto& has = lease->statement(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'store_identity'");
    {
      ResetOnExit reset(has);
      has.executeStep();
      if (has.getColumn(0).getInt() == 0) return {};
    }
    auto& st = lease->statement("SELECT store_id FROM store_identity WHERE singleton = 1");
    ResetOnExit reset(st);
    return st.executeStep() ? st.getColumn(0).getString() : std::string();
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "reading the store id of '" + impl_->path_.string() + "'");
  }
}

CommitListenerHandle SqliteEventStore::add_commit_listener(CommitListener listener) {
  return impl_->listeners_->add(std::move(listener));
}

std::unique_ptr<CommitWatcher> SqliteEventStore::watch_commits(CommitWatcherOptions options) const {
  return std::make_unique<CommitWatcher>(impl_->path_, options);
}

TransactionHookHandle SqliteEventStore::add_transaction_hook(TransactionHook hook) {
  if (!hook) throw InvalidArgument("add_transaction_hook: the hook is empty");
  return impl_->hooks_->add(std::move(hook));
}

}  // namespace annals
