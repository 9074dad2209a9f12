#pragma once
/// InMemoryEventStore: the EventStore contract without a file, for fast unit
/// tests. It passes the same conformance suite as the SQLite store, hash chain
/// included; nothing survives the object.
///
/// Thread safety: one object may be used from many threads; appends are
/// serialized, reads copy one page at a time under a shared lock.

#include <memory>

#include "annals/core/clock.hpp"
#include "annals/store/event_store.hpp"
#include "annals/store/snapshot_store.hpp"

namespace annals {

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

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals
