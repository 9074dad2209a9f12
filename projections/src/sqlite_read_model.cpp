// SqliteReadModel: one writer connection (write transactions are serialized
// by a mutex, and across processes by SQLite's write lock) and one reader
// connection with query_only set. The bookkeeping tables are described in
// projection_tables.cpp.

#include "annals/projections/sqlite_read_model.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "annals/core/thread_annotations.hpp"
#include "projection_tables.hpp"
#include "shadow_model.hpp"
#include "sql_connection.hpp"
#include "thread_inside.hpp"

namespace annals {

class SqliteReadModel::Impl {
 public:
  Impl(const std::filesystem::path& path, SqliteReadModelOptions options)
      : path_(path),
        options_(options),
        clock_(options.clock ? options.clock : SystemClock::shared()) {
    const bool exists = detail::file_exists(path_, "read model file");
    if (options_.read_only) {
      if (!exists) throw StorageError("read model file '" + path_.string() + "' does not exist");
      open_reader();  // now: a file that is not a database fails here, not at the first read
      return;
    }
    if (!exists && !options_.create_if_missing) {
      throw StorageError("read model file '" + path_.string() + "' does not exist");
    }
    if (!exists) detail::create_private_file(path_, "read model file");
    try {
      writer_.emplace(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, options_.busy_timeout);
      detail::use_wal(writer_->db(), path_, "read model file", options_.synchronous,
                      options_.busy_timeout);
    } catch (const SQLite::Exception& e) {
      const std::string doing = "opening read model '" + path_.string() + "'";
      if (e.getErrorCode() == SQLITE_NOTADB) {
        throw StorageError("'" + path_.string() + "' is not an SQLite database", e.getErrorCode(),
                           e.getExtendedErrorCode());
      }
      throw detail::storage_error(e, doing);
    }
    write([](SqlTransaction& tx) { detail::create_projection_tables(tx); });
  }

  ~Impl() {
    // Close the reader before the writer: the writer's close may checkpoint
    // the WAL, which it can do completely only when no reader remains.
    reader_.reset();
    writer_.reset();
  }

  void write(const std::function<void(SqlTransaction&)>& fn) {
    if (options_.read_only) {
      throw InvalidArgument("read model '" + path_.string() + "' was opened read-only");
    }
    if (detail::ThreadInside::is_current(writing_thread_)) {
      throw InvalidArgument("read model '" + path_.string() +
                            "': write() called inside write(); transactions do not nest");
    }
    detail::MutexLock lock(write_mu_);
    const detail::ThreadInside inside(writing_thread_);
    detail::SqliteTransaction tx(*writer_, detail::SqliteTransaction::Mode::immediate);
    fn(*writer_);
    tx.commit();
  }

  void read(const std::function<void(SqlTransaction&)>& fn) {
    // A read() inside a read() on this thread already holds read_mu_ and has
    // the reader's transaction open: it joins that transaction (the reader
    // keeps no statement running while `fn` runs, as queries return rows).
    if (detail::ThreadInside::is_current(reading_thread_)) {
      read_mu_.assert_held();  // by this thread, further up its stack
      fn(*reader_);
      return;
    }
    detail::MutexLock lock(read_mu_);
    if (!reader_) open_reader();
    const detail::ThreadInside inside(reading_thread_);
    detail::SqliteTransaction tx(*reader_, detail::SqliteTransaction::Mode::deferred);
    fn(*reader_);
    tx.commit();
  }

  const std::filesystem::path path_;
  const SqliteReadModelOptions options_;
  const std::shared_ptr<const Clock> clock_;

 private:
  // The reader connection: query_only on a writable open; on a read-only one
  // opened read-only, falling back to immutable mode where SQLite cannot
  // create the -shm file (see SqliteReadModelOptions::read_only).
  void open_reader() ANNALS_REQUIRES(read_mu_) {
    const std::string doing = "opening a reader on '" + path_.string() + "'";
    try {
      if (!options_.read_only) {
        reader_.emplace(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, options_.busy_timeout);
        reader_->db().exec("PRAGMA query_only = 1");
        return;
      }
      reader_.emplace(path_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, options_.busy_timeout);
      try {
        reader_->db().execAndGet("PRAGMA schema_version");
        return;
      } catch (const SQLite::Exception& e) {
        const int primary = e.getErrorCode() & 0xff;
        if ((primary != SQLITE_READONLY && primary != SQLITE_CANTOPEN) ||
            !detail::no_pending_log(path_)) {
          throw;
        }
      }
      reader_.reset();
      reader_.emplace(detail::immutable_uri(path_),
                      SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
                      options_.busy_timeout);
      reader_->db().execAndGet("PRAGMA schema_version");
    } catch (const SQLite::Exception& e) {
      reader_.reset();
      if (e.getErrorCode() == SQLITE_NOTADB) {
        throw StorageError("'" + path_.string() + "' is not an SQLite database", e.getErrorCode(),
                           e.getExtendedErrorCode());
      }
      throw detail::storage_error(e, doing);
    }
  }

  detail::Mutex write_mu_;
  std::atomic<std::thread::id> writing_thread_{};
  std::optional<detail::SqlConnection> writer_ ANNALS_GUARDED_BY(write_mu_);
  detail::Mutex read_mu_;
  std::atomic<std::thread::id> reading_thread_{};  // inside read(), holding read_mu_
  std::optional<detail::SqlConnection> reader_ ANNALS_GUARDED_BY(read_mu_);
};

SqliteReadModel::SqliteReadModel(const std::filesystem::path& path, SqliteReadModelOptions options)
    : impl_(std::make_unique<Impl>(path, options)) {}

SqliteReadModel::~SqliteReadModel() = default;

const std::filesystem::path& SqliteReadModel::path() const noexcept { return impl_->path_; }

const Clock& SqliteReadModel::clock() const noexcept { return *impl_->clock_; }

void SqliteReadModel::write(const std::function<void(SqlTransaction&)>& fn) { impl_->write(fn); }

void SqliteReadModel::read(const std::function<void(SqlTransaction&)>& fn) const {
  impl_->read(fn);
}

std::string SqliteReadModel::describe() const {
  return "read model '" + impl_->path_.string() + "'";
}

std::unique_ptr<detail::ShadowModel> SqliteReadModel::open_shadow() const {
  return detail::open_sqlite_shadow(impl_->path_);
}

}  // namespace annals
