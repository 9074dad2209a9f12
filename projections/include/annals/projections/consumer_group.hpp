#pragma once
/// ConsumerGroupWorker: one worker of a durable projection whose work is shared
/// by a group of workers (threads or processes on one host).
///
///   annals::SqliteEventStore store("bank.db");
///   annals::SqliteReadModel views("bank-views.db");
///   annals::ConsumerGroupWorker worker(store, views, make_ledger_projection());
///   worker.start();   // run as many as wanted, in this process or others
///
/// Partitions: the events are split into `partitions` partitions (default 16)
/// by partition_of(stream id): every event of one stream is in one partition,
/// and a partition is handled by one worker at a time, so the events of a
/// stream are applied in position order. The count is recorded in the read
/// model when the group first starts (projection_groups) and cannot change
/// afterwards; rebuild into a new projection name to change it.
///
/// Leases: a worker owns a partition through a lease kept in the read model's
/// database (projection_partitions: owner, lease_expires_at, fencing_token).
/// Every `renew_interval` a worker renews its leases and its membership
/// (projection_group_members), and counts the live members: it takes free or
/// expired partitions up to ceil(partitions / live members), and releases
/// those it holds beyond that, so workers that join get a fair share. The
/// partitions of a worker that died (SIGKILL, a lost machine) are taken once
/// its lease expires, after `lease_duration`. Each time a partition changes
/// hands its fencing token grows by one, and the change is recorded in
/// projection_partition_leases.
///
/// Exactly once: a worker reads read_all from the lowest checkpoint of its
/// partitions (each worker reads every event and skips those of partitions it
/// does not own: fine for a handful of workers on one host), applies a batch
/// in one read-model transaction and, in that same transaction, first checks
/// that each partition is still its own (owner, fencing token, lease not
/// expired) and then writes the projection's rows and the partitions' new
/// checkpoints. A worker that lost a partition while paused (a stopped
/// process, a long GC-like stall) writes nothing for it: the check fails
/// under the same write lock as the rows, so its successor's work is safe.
///
/// Handlers: apply() runs inside the write transaction, and SQLite lets one
/// connection write at a time, so only work done outside it runs in parallel
/// across workers. Give such CPU work (parsing, computing) to
/// ConsumerGroupOptions::prepare; its result reaches apply_prepared().
///
/// Failures follow ProjectionRunnerOptions: an event whose apply throws is
/// retried (the events before it are kept), then stops this worker (stop) or
/// is parked in projection_parked_events (park). A stopped worker's leases
/// expire and another worker meets the same event. Rebuild: `annals rebuild
/// NAME` (request_rebuild) is honoured by the first worker to see it: reset(),
/// every partition back to 0 and re-fenced (each token grows, owners cleared),
/// parked events dropped, in one transaction; the group then replays in place.
///
/// The group also keeps a row in projection_checkpoints under its name whose
/// position is its lowest partition checkpoint (what `annals projections`
/// and rebuild requests use). Do not run a ProjectionRunner of the same name.
///
/// Thread safety: every member may be called from any thread, except from
/// inside the projection's own functions. The store and read model must
/// outlive the worker.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "annals/core/clock.hpp"
#include "annals/core/event.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/projections/projection_status.hpp"
#include "annals/projections/sqlite_read_model.hpp"

namespace annals {

/// The partition of `stream_id` among `partitions`: FNV-1a (64 bit) of the
/// stream id's bytes, modulo `partitions`. Stable across runs, processes,
/// machines and versions (it is part of the read model's format).
/// Throws: InvalidArgument when partitions < 1.
int partition_of(std::string_view stream_id, int partitions);

struct ConsumerGroupOptions {
  /// Batching, retries, poison policy, poll interval, watch_commits and
  /// on_error as for a ProjectionRunner (its dispatcher and metrics are not
  /// used by a group worker).
  ProjectionRunnerOptions runner;
  /// Partitions of the group; fixed when the group is first started.
  /// Between 1 and 4096. Default: 16.
  int partitions = 16;
  /// This worker's name, unique in the group. Default: "host:pid:n" with a
  /// number per worker in the process.
  std::string worker_id;
  /// How long a lease lasts without renewal: how soon a dead worker's
  /// partitions move. Leases are renewed between batches, and a batch whose
  /// lease expired before its commit is fenced off (written by nobody, its
  /// partitions taken again at the next renewal): keep it well above the time
  /// one batch takes. Default: 5 s.
  std::chrono::milliseconds lease_duration{5'000};
  /// How often leases are renewed and shares rebalanced; must be shorter
  /// than lease_duration. Default: 1 s.
  std::chrono::milliseconds renew_interval{1'000};
  /// The time leases are measured with; every worker of a group must see
  /// the same time (true of processes on one host). Default: the read
  /// model's clock.
  std::shared_ptr<const Clock> clock;
  /// Records each batch (partition, fencing token, worker, checkpoint before
  /// and after) in projection_partition_writes, in the batch's transaction:
  /// an audit trail of who wrote for which partition. Grows by one row per
  /// partition per batch. Default: false.
  bool record_writes = false;
  /// Optional CPU work per event, run outside the write transaction (in
  /// parallel across workers); its result is given to apply_prepared, which
  /// then replaces Projection::apply. Must not touch the read model.
  std::function<Json(const RecordedEvent&)> prepare;
  /// Required with prepare: applies one event and what prepare returned.
  std::function<void(SqlTransaction&, const RecordedEvent&, const Json&)> apply_prepared;
};

class ConsumerGroupWorker {
 public:
  /// Prepares the group in `read_model`: runs setup(), records the partition
  /// count (or checks it), creates the partitions' rows. Does not start.
  /// Throws: InvalidArgument (no name, no apply, bad options, or a group
  /// recorded with another partition count, naming both counts); StorageError.
  ConsumerGroupWorker(EventStore& store, ReadModel& read_model, Projection projection,
                      ConsumerGroupOptions options = {});
  /// Stops the worker and releases its leases (best effort). Never throws.
  ~ConsumerGroupWorker();
  ConsumerGroupWorker(const ConsumerGroupWorker&) = delete;
  ConsumerGroupWorker& operator=(const ConsumerGroupWorker&) = delete;

  /// Starts working on a thread of its own; does nothing if running. A
  /// failure recorded earlier is cleared.
  void start();
  /// Stops after the current batch, releases this worker's leases and its
  /// membership (so others take over at once). Never throws.
  void stop() noexcept;
  /// True from start() until stop() or a failure.
  bool running() const;

  /// One round on the calling thread: renews and rebalances leases if due
  /// (always on the first call), then applies one batch of the partitions it
  /// holds; returns how many events were applied. For tests and tools.
  /// Retries are not waited for here: a failed event is counted and its
  /// batch rolled back to it; the poison policy applies at max_attempts.
  /// Throws: InvalidArgument while started; StorageError.
  std::size_t poll();

  /// The partitions this worker holds, as it last saw them.
  std::vector<int> owned_partitions() const;
  const std::string& worker_id() const noexcept;
  /// Why it stopped on its own, if it did.
  std::optional<ProjectionFailure> failure() const;

  /// Waits until every partition's checkpoint reaches `position` (read from
  /// the read model), the worker stops, or `timeout` passes.
  bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) const;

  /// The group as the read model records it, with lag against the store's
  /// head. Throws: StorageError.
  ConsumerGroupStatus status() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals
