#pragma once
/// Snapshots: a cache of an aggregate's state at a version, so a load can start
/// there instead of at the first event. A snapshot is never the truth: dropping
/// any or all of them loses nothing, loads just replay more events.
///
/// Thread safety: every member may be called concurrently on one object.

#include <cstdint>
#include <optional>
#include <string>

#include "annals/core/clock.hpp"
#include "annals/store/event_store.hpp"

namespace annals {

struct Snapshot {
  std::string stream_id;
  std::int64_t version = 0;  ///< the stream version the state reflects (>= 1)
  int schema_version = 1;    ///< version of the state's layout, chosen by the aggregate
  std::string state;         ///< JSON text (any JSON value)
  Timestamp recorded_at{};   ///< set by the store when saved
};

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;

  /// Saves `snapshot`, replacing one at the same (stream, version).
  /// Throws: InvalidArgument (bad stream id, version < 1, schema_version < 1,
  /// state that is not JSON), StorageError.
  virtual void save_snapshot(const Snapshot& snapshot) = 0;

  /// The snapshot of `stream_id` with the highest version <= `max_version`, if any.
  virtual std::optional<Snapshot> load_snapshot(const std::string& stream_id,
                                                std::int64_t max_version = kStreamEnd) const = 0;

  /// Drops every snapshot of `stream_id`; of every stream when it is empty.
  virtual void delete_snapshots(const std::string& stream_id = {}) = 0;
};

}  // namespace annals
