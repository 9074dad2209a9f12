#pragma once
/// SqliteEventStore: the embedded event store, one SQLite file.
///
/// Durability: WAL journal; synchronous=FULL by default, so an append that has
/// returned survives power loss; Synchronous::normal trades that last commit
/// for speed (the file still never corrupts). Writes use BEGIN IMMEDIATE and a
/// busy timeout, so several threads and several processes can append to one
/// file: each append either succeeds or throws WrongExpectedVersion.
///
/// Group commit: concurrent appends from threads of one store object are
/// written in one transaction with one fsync; each keeps its own expected
/// version check and its own result or error (a failing append is undone alone
/// and does not affect the others). Only an error of the transaction itself
/// (StorageError) or running out of memory after an append's row was written
/// (std::bad_alloc) fails every append of the group; nothing of it is written
/// then, and each may be retried with the same event ids.
///
/// Append-only is enforced by the database: triggers reject UPDATE and DELETE
/// on the events table, whoever connects. A writable open restores any of
/// those triggers that was dropped or altered, and verify() reports it.
/// Positions are never handed out twice: a high-water mark kept beside the
/// events survives a DELETE of the newest events, after which append()
/// throws IntegrityError (naming the head and the mark) and verify() fails.
/// The schema and the hash chain are described at the top of
/// store/src/sqlite_schema.cpp.
///
/// Thread safety: one object may be used from many threads; reads use a pool of
/// reader connections and never block on the writer.

#include <chrono>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "annals/core/clock.hpp"
#include "annals/core/metrics.hpp"
#include "annals/store/event_store.hpp"
#include "annals/store/snapshot_store.hpp"
#include "annals/store/sql_transaction.hpp"

namespace annals {

enum class Synchronous {
  full,    ///< fsync on every commit (default): no acknowledged append is lost
  normal,  ///< fsync at checkpoints: the last commits may be lost on power loss
};

struct SqliteStoreOptions {
  /// Durability of commits. Default: Synchronous::full.
  Synchronous synchronous = Synchronous::full;
  /// How long a write waits for another process's write lock before failing
  /// with StorageError (SQLITE_BUSY). Default: 30 s.
  std::chrono::milliseconds busy_timeout{30'000};
  /// Create the file (mode 0600) if it does not exist. Default: true.
  /// Ignored when read_only is set (a read-only store is never created).
  bool create_if_missing = true;
  /// Open for reading only: every connection is SQLITE_OPEN_READONLY, the
  /// schema is checked but never created or migrated (a store of an older
  /// schema version is read as it is), and append(), save_snapshot() and
  /// delete_snapshots() throw StorageError. The file's bytes are never
  /// changed, so this also opens a file the process may not write (mode
  /// 0444); SQLite may still create the -wal and -shm files beside a WAL
  /// database when the directory is writable. When the -shm file can be
  /// neither opened nor created (a directory the process may not write) and
  /// there is no -wal file, the file is read as immutable: no locks are
  /// taken, so appends another process makes while it is open are not seen.
  /// For inspection tools.
  /// Default: false.
  bool read_only = false;
  /// Source of recorded_at. Default: the system clock.
  std::shared_ptr<const Clock> clock;
  /// Rows fetched per page by reads. Default: 512.
  std::size_t read_page_size = 512;
  /// Idle reader connections kept open. Default: 4.
  std::size_t max_idle_readers = 4;
  /// Appends written in one group-commit transaction at most. Default: 256.
  std::size_t max_group_size = 256;
  /// SQLite VFS name to open the file with; empty for the default. Used by the
  /// fault-injection tests.
  std::string vfs;
  /// Where the store reports appends, appended events, conflicts, failures,
  /// append latency and events per group commit (docs/operations.md). Null
  /// (the default): nothing is measured, at the cost of one pointer test per
  /// append. Stores sharing a registry add up into the same metrics.
  std::shared_ptr<MetricsRegistry> metrics;
};

/// Called inside the transaction of every append to a SqliteEventStore, after
/// that append's events were written and before the commit, on the writer
/// connection: what the hook writes through `tx` commits or rolls back with
/// the events. `events` are the events the append wrote (every stream of a
/// multi-stream append, with their final positions; an idempotent retry wrote
/// none and calls no hook). Hooks run in the order they were added.
///
/// Throwing rejects the append: it is rolled back (its events and everything
/// hooks wrote for it) and append() throws what the hook threw. Other appends
/// committed in the same group commit are unaffected.
///
/// A hook runs while the store holds its write lock, on the appending thread
/// that leads the group commit: keep it short. It may read the store (it sees
/// committed events only, not the ones being appended) but must not append to
/// it: that would wait for itself, so append() called from inside a hook of
/// the same store object throws InvalidArgument (which, unless the hook
/// catches it, rejects the append being written). Used by inline projections.
using TransactionHook =
    std::function<void(SqlTransaction& tx, std::span<const RecordedEvent> events)>;

/// Keeps a transaction hook registered; unregisters it when destroyed or on
/// reset(). Once reset() returns the hook is not running and will not run
/// again (unless reset() is called from inside the hook itself).
using TransactionHookHandle = CommitListenerHandle;

class SqliteEventStore final : public EventStore, public SnapshotStore {
 public:
  /// Opens (or creates) the store at `path`.
  /// Throws: StorageError when the file cannot be opened or created, is not an
  /// SQLite database, is an SQLite database of another application, or holds a
  /// newer Annals schema than this build understands; with options.read_only
  /// also when it is missing or holds no Annals schema yet. In each of those
  /// cases the file is left as it was.
  explicit SqliteEventStore(const std::filesystem::path& path, SqliteStoreOptions options = {});
  ~SqliteEventStore() override;

  SqliteEventStore(const SqliteEventStore&) = delete;
  SqliteEventStore& operator=(const SqliteEventStore&) = delete;

  using EventStore::append;
  /// See EventStore::append. Also throws InvalidArgument when called from
  /// inside one of this store's transaction hooks (see TransactionHook).
  std::vector<AppendResult> append(std::vector<StreamAppend> batch) override;
  Cursor<RecordedEvent> read_stream(const std::string& stream_id, std::int64_t from_version = 1,
                                    Direction direction = Direction::forward,
                                    std::uint64_t max_count = kNoLimit) const override;
  Cursor<LinkedEvent> read_stream_linked(const std::string& stream_id,
                                         std::int64_t from_version = 1,
                                         std::uint64_t max_count = kNoLimit) const override;
  Cursor<RecordedEvent> read_all(std::int64_t from_position = 1, const EventFilter& filter = {},
                                 std::uint64_t max_count = kNoLimit) const override;
  std::int64_t stream_version(const std::string& stream_id) const override;
  std::int64_t head_position() const override;
  Cursor<std::string> list_streams(const std::string& prefix = {}) const override;
  CommitListenerHandle add_commit_listener(CommitListener listener) override;
  /// A CommitWatcher on this store's file (inotify; see commit_watcher.hpp).
  /// Throws: StorageError when the file's directory is gone.
  std::unique_ptr<CommitWatcher> watch_commits(CommitWatcherOptions options = {}) const override;

  /// Registers a hook run inside every append transaction (see TransactionHook).
  /// Hooks added while an append is being written apply from the next one.
  /// Throws: InvalidArgument if `hook` is empty.
  /// Thread safety: may be called from any thread, also from inside a hook.
  TransactionHookHandle add_transaction_hook(TransactionHook hook);

  void save_snapshot(const Snapshot& snapshot) override;
  std::optional<Snapshot> load_snapshot(const std::string& stream_id,
                                        std::int64_t max_version = kStreamEnd) const override;
  void delete_snapshots(const std::string& stream_id = {}) override;

  /// The store id kept in the file (see EventStore::store_id). A store of an
  /// older schema gets one on its first writable open; read-only, it has none
  /// yet and this returns "".
  std::string store_id() const override;

  /// Walks the hash chain as EventStore::verify() does, then adds the checks
  /// of verify_guards(): the result is ok only when both are. When both find
  /// something, first_bad_position is the chain's and the reason names all.
  /// Throws: StorageError.
  VerifyResult verify(const VerifyProgress& progress = {}) const override;

  /// What the hash chain cannot show, without walking it:
  /// - the head is at the high-water mark: a head below it means the newest
  ///   events were deleted (first_bad_position = head + 1; the reason names
  ///   the head and the mark);
  /// - every append-only guard (the triggers of the schema and the row of the
  ///   high-water mark) is in place now, and was when this object opened the
  ///   file: guards a writable open had to restore are reported as a failure
  ///   too, since while they were gone anyone could change the table
  ///   (first_bad_position = 0).
  /// events_checked is 0. A store of schema version 2 or older (read-only
  /// open) has no high-water mark; only its guards are checked.
  /// Throws: StorageError.
  VerifyResult verify_guards() const;

  /// The append-only guards this object found missing or altered when it
  /// opened the file, as "name (missing)" or "name (altered)"; empty when all
  /// were in place. A writable open restored each of them before returning
  /// (and, should the row of the high-water mark be gone, restarted the mark
  /// at the head); a read-only open left the file as it was.
  /// Thread safety: may be called from any thread.
  std::vector<std::string> guards_missing_at_open() const;

  /// The file this store was opened on.
  const std::filesystem::path& path() const noexcept;

  /// The schema version this build writes (PRAGMA user_version).
  static constexpr int kSchemaVersion = 4;
  /// PRAGMA application_id of Annals stores: "ANLS".
  static constexpr int kApplicationId = 0x414E4C53;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals
