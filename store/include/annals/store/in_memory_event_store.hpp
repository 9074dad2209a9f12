#pragma once
/// InMemoryEventStore: the EventStore contract without a file, for fast unit
/// tests. It passes the same conformance suite as the SQLite store, hash chain
/// included; nothing survives the object.
///
/// Thread safety: one object may be used from many threads; appends are
/// serialized, reads copy one page at a time under a shared lock.

#include <functional>
#include <memory>
#include <span>

#include "annals/core/clock.hpp"
#include "annals/store/event_store.hpp"
#include "annals/store/snapshot_store.hpp"

namespace annals {

/// Called inside every append to an InMemoryEventStore, after the append's
/// checks and before its events become visible, with the events it writes
/// (every stream of a multi-stream append, final positions; none for an
/// idempotent retry, which calls no hook). Throwing rejects the append: its
/// events are removed and append() throws what the hook threw. Hooks run in
/// the order they were added; when one throws, what earlier hooks did to their
/// own state for that append is theirs to undo (there is no SQL transaction
/// here). A hook runs under the store's write lock: it must not call the store
/// (append() from inside a hook throws InvalidArgument).
using InMemoryTransactionHook = std::function<void(std::span<const RecordedEvent> events)>;

/// Keeps a transaction hook registered; unregisters it when destroyed or on
/// reset() (once reset() returns the hook is not running, unless called from
/// inside it).
using TransactionHookHandle = CommitListenerHandle;

class InMemoryEventStore final : public EventStore, public SnapshotStore {
 public:
  /// `clock` supplies recorded_at; the system clock when null.
  explicit InMemoryEventStore(std::shared_ptr<const Clock> clock = nullptr);
  ~InMemoryEventStore() override;

  InMemoryEventStore(const InMemoryEventStore&) = delete;
  InMemoryEventStore& operator=(const InMemoryEventStore&) = delete;

  using EventStore::append;
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

  /// Registers a hook run inside every append (see InMemoryTransactionHook).
  /// Throws: InvalidArgument if `hook` is empty.
  /// Thread safety: may be called from any thread, also from inside a hook.
  TransactionHookHandle add_transaction_hook(InMemoryTransactionHook hook);

  void save_snapshot(const Snapshot& snapshot) override;
  std::optional<Snapshot> load_snapshot(const std::string& stream_id,
                                        std::int64_t max_version = kStreamEnd) const override;
  void delete_snapshots(const std::string& stream_id = {}) override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals
