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
/// version check and its own result or error (a failing append is rolled back
/// to its savepoint and does not affect the others).
///
/// Append-only is enforced by the database: triggers reject UPDATE and DELETE
/// on the events table, whoever connects. The schema and the hash chain are
/// described at the top of store/src/sqlite_schema.cpp.
///
/// Thread safety: one object may be used from many threads; reads use a pool of
/// reader connections and never block on the writer.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "annals/core/clock.hpp"
#include "annals/store/event_store.hpp"
#include "annals/store/snapshot_store.hpp"

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
  bool create_if_missing = true;
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
};

class SqliteEventStore final : public EventStore, public SnapshotStore {
 public:
  /// Opens (or creates) the store at `path`.
  /// Throws: StorageError when the file cannot be opened or created, is not an
  /// SQLite database, is an SQLite database of another application, or holds a
  /// newer Annals schema than this build understands. In each of those cases the
  /// file is left as it was.
  explicit SqliteEventStore(const std::filesystem::path& path, SqliteStoreOptions options = {});
  ~SqliteEventStore() override;

  SqliteEventStore(const SqliteEventStore&) = delete;
  SqliteEventStore& operator=(const SqliteEventStore&) = delete;

  using EventStore::append;
  std::vector<AppendResult> append(std::vector<StreamAppend> batch) override;
  Cursor<RecordedEvent> read_stream(const std::string& stream_id, std::int64_t from_version = 1,
                                    Direction direction = Direction::forward,
                                    std::uint64_t max_count = kNoLimit) const override;
  Cursor<RecordedEvent> read_all(std::int64_t from_position = 1, const EventFilter& filter = {},
                                 std::uint64_t max_count = kNoLimit) const override;
  std::int64_t stream_version(const std::string& stream_id) const override;
  std::int64_t head_position() const override;
  Cursor<std::string> list_streams(const std::string& prefix = {}) const override;
  CommitListenerHandle add_commit_listener(CommitListener listener) override;

  void save_snapshot(const Snapshot& snapshot) override;
  std::optional<Snapshot> load_snapshot(const std::string& stream_id,
                                        std::int64_t max_version = kStreamEnd) const override;
  void delete_snapshots(const std::string& stream_id = {}) override;

  /// The file this store was opened on.
  const std::filesystem::path& path() const noexcept;

  /// The schema version this build writes (PRAGMA user_version).
  static constexpr int kSchemaVersion = 1;
  /// PRAGMA application_id of Annals stores: "ANLS".
  static constexpr int kApplicationId = 0x414E4C53;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals
