#pragma once
// ProjectionRunner::Impl, shared by the runner's two units: control
// (projection_runner.cpp: start, stop, rebuild, status, parked events) and
// the worker (runner_worker.cpp: following, stepping, retries, failures).
// Private to the projections module.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "annals/core/error.hpp"
#include "annals/core/thread_annotations.hpp"
#include "annals/projections/check_request.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/store/commit_watcher.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "projection_metrics.hpp"
#include "projection_tables.hpp"
#include "retry_attempts.hpp"
#include "shadow_model.hpp"
#include "sql_connection.hpp"

namespace annals {

namespace detail {

enum class Outcome {
  progressed,   // the checkpoint moved (or was adopted from another runner)
  caught_up,    // nothing new
  retry_later,  // a failed attempt; wait `backoff`, then step again
  failed,       // gave up: failure_ is set
};

struct StepResult {
  Outcome outcome = Outcome::caught_up;
  bool at_head = false;  // the read ran out: nothing newer was stored
  std::chrono::milliseconds backoff{0};
};

}  // namespace detail

class ProjectionRunner::Impl : public std::enable_shared_from_this<Impl> {
 public:
  using Outcome = detail::Outcome;
  using StepResult = detail::StepResult;

  Impl(EventStore& store, ReadModel& read_model, Projection projection,
       ProjectionRunnerOptions options)
      : store_(store),
        read_model_(read_model),
        projection_(std::move(projection)),
        options_(std::move(options)) {
    if (projection_.name.empty()) throw InvalidArgument("a projection needs a name");
    if (!projection_.apply) {
      throw InvalidArgument("projection '" + projection_.name + "' has no apply function");
    }
    if (options_.batch_size == 0) {
      throw InvalidArgument("projection '" + projection_.name + "': batch_size must be >= 1");
    }
    if (options_.poll_interval < std::chrono::milliseconds(1)) {
      throw InvalidArgument("projection '" + projection_.name +
                            "': poll_interval must be at least 1 ms");
    }
    if (options_.max_attempts < 1) {
      throw InvalidArgument("projection '" + projection_.name + "': max_attempts must be >= 1");
    }
    read_model_.write([&](SqlTransaction& tx) {
      if (projection_.setup) projection_.setup(tx);
      detail::ensure_checkpoint(tx, projection_.name, now());
    });
    const auto record = read_model_.checkpoint_record(projection_.name);
    if (record) {
      checkpoint_ = record->position;
      failure_ = record->failure;
    }
    if (metrics_) metrics_->checkpoint.set(static_cast<double>(checkpoint_));
  }

  ~Impl() { stop(); }

  // ---- control -------------------------------------------------------------

  void start() {
    detail::MutexLock control(control_mu_);
    start_locked();
  }

  void stop() noexcept {
    try {
      detail::MutexLock control(control_mu_);
      stop_locked();
    } catch (...) {  // mutex errors only: nothing sensible is left to do
    }
  }

  bool running() const {
    detail::MutexLock lock(mu_);
    return running_;
  }

  std::int64_t catch_up() {
    detail::MutexLock control(control_mu_);
    if (running()) {
      throw InvalidArgument("projection '" + projection_.name +
                            "': catch_up() while the runner is started");
    }
    stop_locked();  // joins a worker that stopped on its own; clears the stop request
    clear_failure_locked();
    return catch_up_locked();
  }

  void rebuild();

  // The read model's clock stamps its bookkeeping (SqliteReadModelOptions::clock).
  Timestamp now() const { return read_model_.clock().now(); }

  bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) const
      ANNALS_EXCLUDES(mu_) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    detail::MutexLock lock(mu_);
    while (checkpoint_ < position && running_ &&
           lock.wait_until(cv_, deadline) == std::cv_status::no_timeout) {
    }
    return checkpoint_ >= position;
  }

  ProjectionStatus status() const;

  std::vector<ParkedEvent> parked() const { return read_model_.parked_events(projection_.name); }

  EventStore& store() const { return store_; }
  const ReadModel& read_model() const { return read_model_; }
  const Projection& projection() const { return projection_; }

  bool retry_parked(std::int64_t position);

  std::size_t retry_parked();

 private:

  void start_locked() ANNALS_REQUIRES(control_mu_);

  // Blue/green: replays the store into a shadow read model (a runner of its
  // own, with the same retries and poison policy) while the live tables keep
  // serving, then, in one transaction of the live model, replaces the
  // projection's tables by the shadow's and takes over its checkpoint, failure
  // and parked events; readers see the old model or the new one, never a part.
  // Throws: what the replay throws (then the live model is untouched).
  void rebuild_into_shadow_and_swap();

  // Forgets a recorded failure, so the failed event gets a fresh set of
  // attempts, and reloads the checkpoint (another runner may have moved it).
  void clear_failure_locked() ANNALS_REQUIRES(control_mu_);

  void stop_locked() noexcept ANNALS_REQUIRES(control_mu_);

  void wake() {
    {
      detail::MutexLock lock(mu_);
      wake_ = true;
    }
    cv_.notify_all();
  }

  // Commits of other processes wake the runner through the store's
  // CommitWatcher (EventStore::watch_commits) on a thread of its own. A store
  // without one, a watcher that cannot be set up (the directory went away,
  // the server is unreachable), or watch_commits off: the runner polls.
  template <class Wake>
  void start_watching(const Wake& wake) {
    stop_watching();  // the watcher of a worker that stopped on a failure
    if (!options_.watch_commits) return;
    try {
      watcher_ = store_.watch_commits();
    } catch (const std::exception&) {
      return;
    }
    if (!watcher_) return;
    if (!watcher_->pushes()) {
      watcher_.reset();  // polling is what the worker already does
      return;
    }
    watching_ = true;
    watcher_thread_ = std::thread([this, wake] {
      while (watching_.load()) {
        if (watcher_->wait(options_.poll_interval) && watching_.load()) wake();
      }
    });
  }

  void stop_watching() noexcept {
    if (!watcher_) return;
    watching_ = false;
    watcher_->interrupt();
    if (watcher_thread_.joinable()) watcher_thread_.join();
    watcher_.reset();
  }

  // The worker thread.
  void run() noexcept;

  // Stores the state "stopped" in the read model's table (what `annals
  // projections` shows). Best effort: the state column is informative only.
  void record_stopped() noexcept;

  void follow();

  // Sleeps until this process commits, the poll interval shows a newer head,
  // or stop is requested (then returns false).
  bool wait_for_news();

  // Waits `d` unless stop is requested (then returns false).
  bool sleep(std::chrono::milliseconds d) ANNALS_EXCLUDES(mu_) {
    const auto deadline = std::chrono::steady_clock::now() + d;
    detail::MutexLock lock(mu_);
    while (!stop_requested_ && lock.wait_until(cv_, deadline) == std::cv_status::no_timeout) {
    }
    return !stop_requested_;
  }

  // Throws: IntegrityError when the checkpoint is beyond the store's head
  // (recorded as the projection's failure first).
  std::int64_t catch_up_locked() ANNALS_REQUIRES(control_mu_);

  // Throws: IntegrityError when the checkpoint is beyond the store's head and
  // no rebuild is requested.
  StepResult step();

  // Counts a failed attempt at `position`; true when attempts are left.
  int count_attempt(std::int64_t position, bool infrastructure) {
    return attempts_.fail(position, infrastructure);
  }

  std::chrono::milliseconds backoff_for(int attempt) const {
    return detail::retry_backoff(options_, attempt);
  }

  StepResult event_failure(const RecordedEvent& event, const std::exception_ptr& error);

  StepResult infrastructure_failure(std::int64_t position, const std::exception_ptr& error);

  // Records a failure that stops the projection (in memory, and in the
  // checkpoint table if the read model lets us).
  void fail(ProjectionFailure failure) noexcept;

  void report(std::int64_t position, const std::string& message, int attempt) const noexcept {
    if (metrics_) metrics_->failures.add();
    if (!options_.on_error) return;
    try {
      options_.on_error(ProjectionAttemptError{projection_.name, position, message, attempt});
    } catch (...) {
    }
  }

  std::int64_t checkpoint() const {
    detail::MutexLock lock(mu_);
    return checkpoint_;
  }

  // A check request (check_request.hpp) pending?
  bool check_pending() const {
    return read_model_
               .query_int(
                   "SELECT count(*) FROM projection_checks WHERE name = $1 AND checked_at IS NULL",
                   {projection_.name})
               .value_or(0) > 0;
  }

  // Runs a pending check request between two batches (the live model does not
  // move meanwhile) and records its report, or the error that stopped it.
  // Best effort: a read model that fails here fails the step that follows.
  void serve_check_request() noexcept;

  // Is a rebuild request pending that this runner can honour? (One indexed
  // read of the read model.)
  bool rebuild_pending() const {
    if (!projection_.reset) return false;
    bool pending = false;
    read_model_.read(
        [&](SqlTransaction& tx) { pending = detail::rebuild_requested(tx, projection_.name); });
    return pending;
  }

  void set_checkpoint(std::int64_t position) {
    {
      detail::MutexLock lock(mu_);
      if (metrics_) metrics_->advanced(checkpoint_, position);
      checkpoint_ = position;
    }
    cv_.notify_all();
  }

  void set_state(ProjectionState state) {
    detail::MutexLock lock(mu_);
    state_ = state;
  }

  bool stop_requested() const {
    detail::MutexLock lock(mu_);
    return stop_requested_;
  }

  EventStore& store_;
  ReadModel& read_model_;
  const Projection projection_;
  const ProjectionRunnerOptions options_;
  const std::unique_ptr<detail::ProjectionMetrics> metrics_ =
      detail::make_projection_metrics(options_.metrics, projection_.name);

  detail::Mutex control_mu_;  // start, stop, catch_up, rebuild: one at a time

  mutable detail::Mutex mu_;
  mutable std::condition_variable cv_;  // wakes the worker; signals progress
  std::int64_t checkpoint_ ANNALS_GUARDED_BY(mu_) = 0;
  std::optional<ProjectionFailure> failure_ ANNALS_GUARDED_BY(mu_);
  ProjectionState state_ ANNALS_GUARDED_BY(mu_) = ProjectionState::stopped;
  bool running_ ANNALS_GUARDED_BY(mu_) = false;
  bool stop_requested_ ANNALS_GUARDED_BY(mu_) = false;
  bool wake_ ANNALS_GUARDED_BY(mu_) = false;

  // Used only by the thread that steps (the worker, or catch_up's caller while
  // no worker runs).
  detail::RetryAttempts attempts_;

  std::thread worker_;
  CommitListenerHandle wake_listener_;
  Subscription wake_subscription_;
  // Set up by start_locked(), torn down by stop_locked() (start/stop are
  // serialized by control_mu_): the watcher and the thread that waits on it.
  std::unique_ptr<CommitWatcher> watcher_;
  std::thread watcher_thread_;
  std::atomic<bool> watching_{false};
};

}  // namespace annals
