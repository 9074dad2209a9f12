#pragma once
/// ProjectionRunner: keeps one durable projection up to date with a store.
///
///   annals::SqliteEventStore store("bank.db");
///   annals::SqliteReadModel views("bank-views.db");
///   annals::ProjectionRunner balances(store, views, make_balances_projection());
///   balances.start();        // catches up from its checkpoint, then follows
///   ...
///   auto s = balances.status();   // checkpoint, head, lag, state, failure
///
/// How it works: the runner reads the store from checkpoint + 1 in batches of
/// `batch_size` events (read_all with the projection's filter), applies a batch
/// in one read-model transaction, each event inside a savepoint, and writes the
/// new checkpoint in that same transaction; so the read model's rows always
/// match exactly the events up to the checkpoint, even if the process is killed
/// at any moment. Once a read finds nothing newer it is live: it sleeps until
/// this process commits to the store (a commit listener, or the dispatcher
/// given in the options, wakes it) or until `poll_interval` passes, when it
/// compares the store's head position with its checkpoint to see what other
/// processes appended (one indexed query when nothing changed).
///
/// Failures: an event whose apply() throws is rolled back (the events before
/// it in the batch are kept) and tried again after a backoff, up to
/// `max_attempts` times in all. Then the poison policy applies: `stop` (the
/// default) stops the runner with status().failure naming the position and the
/// message; `park` records the event in projection_parked_events and goes on
/// with the next. A failing store or read model is retried the same way and
/// then stops the runner whatever the policy (no event is to blame).
///
/// A checkpoint beyond the store's head: the store lost its newest events
/// (rows deleted behind its triggers) or the read model belongs to another
/// store. Going on would skip the events later appended at the positions in
/// between, so the runner never does: catch_up() and status() throw an
/// IntegrityError naming both positions, and a started runner stops with a
/// failure carrying that message (also recorded in the checkpoint table).
/// Check the store (`annals verify`), then rebuild(), or request a rebuild,
/// which starts again from position 1; nothing else moves it on.
///
/// Rebuild requests: another process (the `annals rebuild NAME` tool) may ask
/// for a rebuild through the read model (annals/projections/rebuild_request.hpp).
/// The runner honours it at its next batch, at its next poll when idle, or in
/// start() / catch_up(): reset(), parked events dropped and checkpoint 0 in one
/// transaction, then the replay from position 1. Needs the projection's reset().
///
/// Several runners may share one SqliteReadModel. Two runners of the same
/// projection name (in one process or several) never apply an event twice to
/// the read model: each batch re-reads the checkpoint inside its transaction
/// and drops what another runner already handled.
///
/// Thread safety: every member may be called from any thread, except from
/// inside the projection's own functions (which run on the runner's thread or
/// the caller of catch_up(), rebuild() or retry_parked()). The store and the
/// read model (and the dispatcher, if given) must outlive the runner.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "annals/core/metrics.hpp"
#include "annals/projections/dispatcher.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_check.hpp"
#include "annals/projections/projection_status.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/event_store.hpp"

namespace annals {

/// What the runner does with an event that still fails after max_attempts.
enum class PoisonPolicy {
  stop,  ///< stop the runner; status() says which position and why (default)
  park,  ///< record it in projection_parked_events and go on with the next event
};

/// One failed attempt, reported to ProjectionRunnerOptions::on_error.
struct ProjectionAttemptError {
  std::string projection;
  std::int64_t position = 0;  ///< the event's position (see ProjectionFailure::position)
  std::string message;
  int attempt = 0;  ///< 1 for the first try
};

struct ProjectionRunnerOptions {
  /// Events read and applied per read-model transaction. Default: 256.
  std::size_t batch_size = 256;
  /// How often an idle runner looks for events appended by other processes.
  /// Default: 500 ms.
  std::chrono::milliseconds poll_interval{500};
  /// Tries per event (the first included) before the poison policy. Default: 3.
  int max_attempts = 3;
  /// Wait before the second try; doubles for each further one, up to
  /// max_retry_backoff. Default: 50 ms, at most 5 s.
  std::chrono::milliseconds retry_backoff{50};
  std::chrono::milliseconds max_retry_backoff{5'000};
  /// Default: PoisonPolicy::stop.
  PoisonPolicy on_poison = PoisonPolicy::stop;
  /// The store's CommitWatcher (EventStore::watch_commits: inotify on an
  /// SqliteEventStore, LISTEN/NOTIFY on a PostgresEventStore) wakes the
  /// runner within milliseconds of a commit by any process, so
  /// poll_interval is only the fallback (and the pace at which rebuild and
  /// check requests in a separate read-model file are noticed). false: poll
  /// for other processes' commits. Default: true.
  bool watch_commits = true;
  /// When set, the runner is woken by a subscription to this dispatcher (for
  /// the projection's filter) instead of a commit listener of its own on the
  /// store. The dispatcher must be connected to the store and outlive the
  /// runner. Default: none.
  Dispatcher* dispatcher = nullptr;
  /// Told about every failed attempt, on the thread that made it (logging).
  /// Must not throw or call the runner. Default: none.
  std::function<void(const ProjectionAttemptError&)> on_error;
  /// Where the runner reports events handled, failed attempts, parked events
  /// and its checkpoint, labelled projection="name" (docs/operations.md).
  /// Default: none (nothing is counted).
  std::shared_ptr<MetricsRegistry> metrics;
};

class ProjectionRunner {
 public:
  /// Prepares `projection` in `read_model`: runs its setup() and creates its
  /// checkpoint row (position 0) if it has none. Does not start it.
  /// Throws: InvalidArgument (no name, no apply, batch_size or max_attempts
  /// of 0, poll_interval under 1 ms); StorageError, or what setup() throws.
  ProjectionRunner(EventStore& store, ReadModel& read_model, Projection projection,
                   ProjectionRunnerOptions options = {});
  /// Stops the runner (see stop()). Never throws.
  ~ProjectionRunner();
  ProjectionRunner(const ProjectionRunner&) = delete;
  ProjectionRunner& operator=(const ProjectionRunner&) = delete;

  /// Starts catching up and following on a thread of its own; does nothing if
  /// it is running. A failure recorded earlier is cleared: the failed event is
  /// tried again (after fixing its cause, start() is how to resume). A
  /// checkpoint beyond the store's head stops the runner at once, with a
  /// failure whose message is the IntegrityError's (see above).
  /// Throws: StorageError when the checkpoint cannot be read or written.
  void start();

  /// Stops following and returns once the runner's thread has finished its
  /// current batch (committed, so nothing is half applied) and exited. A
  /// backoff in progress is cut short. Does nothing if it is not running.
  /// Never throws.
  void stop() noexcept;

  /// True from start() until stop() or a failure stops it.
  bool running() const;

  /// Applies, on the calling thread, every event up to the store's head as of
  /// the call (retrying and applying the poison policy as the runner would),
  /// then returns the checkpoint. For tools, tests and one-shot jobs. A retry
  /// waits its backoff, also after an earlier start() and stop().
  /// Throws: InvalidArgument while the runner is started; IntegrityError,
  /// naming the checkpoint and the head, when the checkpoint is beyond the
  /// store's head (nothing is applied; the failure is recorded as well).
  std::int64_t catch_up();

  /// Waits until the checkpoint reaches `position`, the runner stops, or
  /// `timeout` passes; returns whether the checkpoint reached it.
  bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) const;

  /// Where the projection is. Reads the store's head position.
  /// Throws: StorageError; IntegrityError, naming both positions, when the
  /// stored checkpoint is beyond the store's head (there is no lag to show).
  ProjectionStatus status() const;

  /// Rebuilds the read model blue/green: replays the store from position 1
  /// into shadow tables (a temporary SQLite file beside the read model; see
  /// projection_check.hpp for which tables are the projection's) while the
  /// live tables keep serving readers, then in one transaction of the read
  /// model replaces each of the projection's tables (definition, rows,
  /// indexes, triggers) by its shadow, and takes over the replay's checkpoint,
  /// failure and parked events; a pending rebuild request is cleared with it.
  /// Readers see the old model or the new one, never a part of either. The
  /// events appended during the replay are then applied as catch_up() does.
  /// The replay retries and applies the poison policy as the runner does; a
  /// replay stopped by a poison event is swapped in too (checkpoint before
  /// that event, the failure recorded), as a rebuild in place would leave it.
  /// A runner that was running is stopped first and started again after
  /// (unless the replay failed). This is also the way on from a checkpoint
  /// beyond the store's head. Needs the disk space of a second copy of the
  /// projection's tables meanwhile.
  /// Throws: InvalidArgument if the projection has no reset() (the contract
  /// of a rebuildable projection); StorageError, or what setup() throws
  /// during the replay (then the live model is unchanged); IntegrityError if
  /// the store's head falls below the replay while it runs.
  void rebuild();

  /// Replays the history into shadow tables up to the live checkpoint and
  /// compares them row by row with the live read model (check_projection in
  /// projection_check.hpp) on the calling thread. Changes nothing; may run
  /// while the runner runs (see check_projection about projections with state).
  /// Throws: as check_projection.
  CheckReport check(const CheckOptions& options = {}) const;

  /// The events this projection parked, in position order. Throws: StorageError.
  std::vector<ParkedEvent> parked() const;

  /// Tries the parked event at `position` again (once, no backoff): on success
  /// its effect and its removal from the parked table commit together and it
  /// returns true; on failure it stays parked with the new error and one more
  /// attempt, and it returns false. Parked events are applied out of order,
  /// after events that came later: a projection that parks must tolerate that.
  /// Throws: InvalidArgument if no event is parked at `position` for this
  /// projection; StorageError.
  bool retry_parked(std::int64_t position);

  /// Tries every parked event once, in position order; returns how many were
  /// applied. Throws: StorageError.
  std::size_t retry_parked();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace annals
