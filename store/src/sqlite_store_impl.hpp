#pragma once
// SqliteEventStore::Impl, shared by the units of the SQLite store:
//   sqlite_event_store.cpp  opening a file, guards, identity, listeners and hooks
//   sqlite_store_write.cpp  the SQL write path of a group commit (append)
//   sqlite_store_read.cpp   the reader pool and paged queries
//   sqlite_snapshots.cpp    snapshots, on a connection of their own
// Group commit itself (queueing, leaders, rounds) is group_commit.cpp; the
// schema is described in sqlite_schema.cpp.

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "annals/core/event_hash.hpp"
#include "annals/core/thread_annotations.hpp"
#include "annals/store/internal/group_commit.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "commit_listeners.hpp"
#include "sqlite_schema.hpp"
#include "annals/store/internal/sqlite_support.hpp"
#include "store_metrics.hpp"
#include "transaction_hooks.hpp"

namespace annals {

class SqliteEventStore::Impl final : public detail::GroupWriter {
 public:
  using Connection = detail::SqlConnection;
  using Hooks = detail::TransactionHooks<TransactionHook>;

  Impl(const std::filesystem::path& path, SqliteStoreOptions options);
  ~Impl();

  void require_writable(const char* operation) const;

  // ---- writing (sqlite_store_write.cpp) -------------------------------------

  // Validates `batch`, queues it for a group commit and returns its results.
  std::vector<AppendResult> append(std::vector<StreamAppend>& batch);

  void write_group(detail::CommitGroup& group) noexcept override;

  // ---- reading (sqlite_store_read.cpp) ---------------------------------------

  // A reader connection from the pool, returned to it on destruction.
  class Lease {
   public:
    Lease(const Impl& impl, std::unique_ptr<Connection> conn)
        : impl_(impl), conn_(std::move(conn)) {}
    ~Lease() { impl_.release_reader(std::move(conn_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection* operator->() { return conn_.get(); }
    Connection& operator*() { return *conn_; }

   private:
    const Impl& impl_;
    std::unique_ptr<Connection> conn_;
  };

  // Throws: StorageError when a new reader cannot be opened.
  Lease reader() const ANNALS_EXCLUDES(readers_mu_);
  void release_reader(std::unique_ptr<Connection> conn) const ANNALS_EXCLUDES(readers_mu_);

  // The version of `stream_id` on `conn`; 0 when it has no events.
  // Throws: SQLite::Exception.
  static std::int64_t version_on(Connection& conn, const std::string& stream_id);

  // ---- snapshots (sqlite_snapshots.cpp) --------------------------------------

  // Snapshots are written on a connection of their own: they are a cache
  // outside the event transactions and must not wait in the group-commit queue.
  template <class Fn>
  auto with_snapshot_writer(Fn&& fn) ANNALS_EXCLUDES(snapshot_mu_) {
    detail::MutexLock lock(snapshot_mu_);
    if (!snapshot_writer_) {
      snapshot_writer_.emplace(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                               options_.busy_timeout, options_.vfs);
    }
    return fn(*snapshot_writer_);
  }

  const std::filesystem::path path_;
  SqliteStoreOptions options_;
  const std::unique_ptr<detail::StoreMetrics> metrics_ =
      detail::make_store_metrics(options_.metrics);
  // Guards found missing or altered by the open (restored unless read-only);
  // set in the constructor, read-only after.
  std::vector<detail::GuardProblem> guards_at_open_;
  // Read-only stores only: the file is read as immutable (open_read_only).
  bool immutable_ = false;
  std::shared_ptr<detail::CommitListeners> listeners_ = std::make_shared<detail::CommitListeners>();
  std::shared_ptr<Hooks> hooks_ = std::make_shared<Hooks>();

 private:
  // The newest event, as the write path chains the next one to it.
  struct Head {
    std::int64_t position = 0;
    EventHash hash{};
    Timestamp recorded_at{};
  };

  // Opening (sqlite_event_store.cpp).
  void open_read_only(bool exists);
  std::filesystem::path reader_target() const;
  int reader_flags() const;

  // The write path (sqlite_store_write.cpp); the writer's members are used by
  // the group-commit leader only.
  void exec(const char* sql) { writer_->statement(sql).exec(); }
  void begin_immediate();
  void rollback_quietly() noexcept;
  void load_head();
  void raise_high_water();
  void fail_group(const std::vector<detail::CommitRequest*>& group,
                  std::exception_ptr error) noexcept;
  std::vector<AppendResult> apply(std::vector<StreamAppend>& batch,
                                  const std::vector<bool>& generated_first_ids,
                                  std::vector<RecordedEvent>* committed);
  std::optional<DuplicateEventId> duplicate_of(const std::string& event_id,
                                               const std::string& stream_id);
  std::optional<AppendResult> retry_of(const StreamAppend& part);

  std::optional<Connection> writer_;  // guarded by being the group leader
  Head head_;                         // guarded by being the group leader
  std::int64_t high_water_ = 0;       // guarded by being the group leader
  detail::CommitScheduler scheduler_{*this, options_.max_group_size};

  mutable detail::Mutex readers_mu_;
  mutable std::vector<std::unique_ptr<Connection>> idle_readers_ ANNALS_GUARDED_BY(readers_mu_);

  detail::Mutex snapshot_mu_;
  std::optional<Connection> snapshot_writer_ ANNALS_GUARDED_BY(snapshot_mu_);
};

}  // namespace annals
