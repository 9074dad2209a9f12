#pragma once
/// What a durable projection reports about itself: where it is, how far behind
/// the store, whether it is running, and why it stopped; and the events it
/// parked.
///
/// Thread safety: plain value types.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "annals/core/clock.hpp"

namespace annals {

enum class ProjectionState {
  stopped,      ///< not running: never started, stop() was called, or it failed (see failure)
  catching_up,  ///< running, reading events older than the store's head
  live,         ///< running, has read everything the store held at its last look
};

/// "stopped", "catching_up" or "live" (also the text stored in the checkpoint table).
std::string_view to_string(ProjectionState state) noexcept;

/// Why a projection stopped on its own.
struct ProjectionFailure {
  /// The position of the event that failed; the position the runner was about
  /// to read when the failure was not an event's (the store or the read model
  /// failing).
  std::int64_t position = 0;
  std::string message;  ///< what the last attempt threw
  int attempts = 0;     ///< how many times it was tried
};

struct ProjectionStatus {
  std::string name;
  ProjectionState state = ProjectionState::stopped;
  std::int64_t checkpoint = 0;     ///< last position handled (0: none)
  std::int64_t head_position = 0;  ///< the store's head when status() looked
  /// head_position - checkpoint, never negative: ProjectionRunner::status()
  /// throws IntegrityError instead of reporting a checkpoint beyond the head.
  std::int64_t lag = 0;
  std::optional<ProjectionFailure> failure;  ///< set when it stopped on a failure
  std::size_t parked_events = 0;             ///< events parked and not yet retried
};

/// One partition of a consumer group (consumer_group.hpp), as the read
/// model records it.
struct PartitionStatus {
  int partition = 0;
  std::int64_t checkpoint = 0;  ///< last position handled for this partition
  /// head_position - checkpoint: positions not yet looked at, an upper bound
  /// of the partition's events still to apply. Never negative.
  std::int64_t lag = 0;
  std::optional<std::string> owner;  ///< the worker holding the lease, if any
  Timestamp lease_expires_at{};      ///< meaningful with an owner
  /// Grows by one each time the partition changes hands; a write by a worker
  /// holding an older token is refused.
  std::int64_t fencing_token = 0;
  std::optional<ProjectionFailure> failure;  ///< set when its worker stopped on it
};

/// A consumer group: its partitions and the workers that hold them.
struct ConsumerGroupStatus {
  std::string name;
  int partitions = 0;              ///< 0: no group of that name in the read model
  std::int64_t head_position = 0;  ///< the store's head when status() looked
  std::vector<PartitionStatus> partition_status;  ///< one per partition, in order
  std::vector<std::string> live_workers;          ///< members whose lease is current
};

/// An event a projection gave up on under PoisonPolicy::park.
struct ParkedEvent {
  std::string projection;
  std::int64_t position = 0;
  std::string stream_id;
  std::string type;
  std::string error;  ///< what the last attempt threw
  int attempts = 0;   ///< attempts so far, retries included
  Timestamp parked_at{};
};

}  // namespace annals
