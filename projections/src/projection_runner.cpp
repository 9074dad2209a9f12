// ProjectionRunner: one worker thread (or the caller of catch_up/rebuild)
// runs step() in a loop. A step reads one batch from the store *before*
// opening the read-model transaction (so a read model in the store's own file
// never holds the store's write lock while reading it), then applies the batch
// and moves the checkpoint in one transaction, each event in a savepoint.
//
// The transaction re-reads the stored checkpoint first: if another runner of
// the same projection (another object, another process, a rebuild) moved it,
// the batch is dropped and the step adopts the stored position. That check is
// what makes effects exactly-once even with several runners.
//
// Checkpoint after a batch: a full batch ends at its last event; a short one
// (the cursor ran out) means every matching event up to the head read before
// the batch was seen, so the checkpoint moves to that head even when the
// filter passed nothing; positions are dense and assigned in commit order, so
// nothing at or below that head can still appear.
//
// A checkpoint beyond the store's head means the store lost its tail (rows
// deleted behind the triggers) or the read model belongs to another store.
// Stepping on would skip every event appended at the positions in between, so
// the runner stops with an IntegrityError instead; only a rebuild (which
// starts again from position 1) moves it on.

#include "annals/projections/projection_runner.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "annals/core/error.hpp"
#include "annals/projections/check_request.hpp"
#include "annals/store/commit_watcher.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "projection_metrics.hpp"
#include "projection_tables.hpp"
#include "shadow_model.hpp"
#include "sql_connection.hpp"

namespace annals {

namespace {

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

}  // namespace

class ProjectionRunner::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(EventStore& store, SqliteReadModel& read_model, Projection projection,
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
    std::lock_guard control(control_mu_);
    start_locked();
  }

  void stop() noexcept {
    try {
      std::lock_guard control(control_mu_);
      stop_locked();
    } catch (...) {  // mutex errors only: nothing sensible is left to do
    }
  }

  bool running() const {
    std::lock_guard lock(mu_);
    return running_;
  }

  std::int64_t catch_up() {
    std::lock_guard control(control_mu_);
    if (running()) {
      throw InvalidArgument("projection '" + projection_.name +
                            "': catch_up() while the runner is started");
    }
    stop_locked();  // joins a worker that stopped on its own; clears the stop request
    clear_failure_locked();
    return catch_up_locked();
  }

  void rebuild() {
    std::lock_guard control(control_mu_);
    if (!projection_.reset) {
      throw InvalidArgument("projection '" + projection_.name +
                            "' has no reset function, so it cannot be rebuilt");
    }
    const bool was_running = running();
    stop_locked();
    rebuild_into_shadow_and_swap();
    attempts_ = {};
    bool failed;
    {
      std::lock_guard lock(mu_);
      failed = failure_.has_value();
    }
    if (!failed) catch_up_locked();  // the events appended during the replay
    {
      std::lock_guard lock(mu_);
      failed = failure_.has_value();
    }
    if (was_running && !failed) start_locked();
  }

  // The read model's clock stamps its bookkeeping (SqliteReadModelOptions::clock).
  Timestamp now() const { return read_model_.clock().now(); }

  bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return checkpoint_ >= position || !running_; });
    return checkpoint_ >= position;
  }

  ProjectionStatus status() const {
    ProjectionStatus s;
    s.name = projection_.name;
    bool running;
    {
      std::lock_guard lock(mu_);
      s.state = state_;
      s.checkpoint = checkpoint_;
      s.failure = failure_;
      running = running_;
    }
    std::optional<CheckpointRecord> record;
    read_model_.read([&](SqlTransaction& tx) {
      record = detail::load_checkpoint(tx, projection_.name);
      s.parked_events = static_cast<std::size_t>(detail::count_parked(tx, projection_.name));
    });
    if (record) {
      s.checkpoint = record->position;
      if (!running && !s.failure) s.failure = record->failure;
    }
    // The checkpoint is read before the head: a sane store's head only grows,
    // so a checkpoint beyond it is never a race.
    s.head_position = store_.head_position();
    if (s.checkpoint > s.head_position) {
      throw detail::checkpoint_beyond_head(projection_.name, s.checkpoint, s.head_position);
    }
    s.lag = s.head_position - s.checkpoint;
    return s;
  }

  std::vector<ParkedEvent> parked() const { return read_model_.parked_events(projection_.name); }

  EventStore& store() const { return store_; }
  const SqliteReadModel& read_model() const { return read_model_; }
  const Projection& projection() const { return projection_; }

  bool retry_parked(std::int64_t position) {
    const auto parked = read_model_.parked_events(projection_.name);
    if (std::none_of(parked.begin(), parked.end(),
                     [&](const ParkedEvent& p) { return p.position == position; })) {
      throw InvalidArgument("projection '" + projection_.name + "' has no event parked at position " +
                            std::to_string(position));
    }
    std::optional<RecordedEvent> event;
    for (auto& e : store_.read_all(position, {}, 1)) event = std::move(e);
    if (!event || event->position != position) {
      throw InvalidArgument("projection '" + projection_.name + "': the store has no event at " +
                            "parked position " + std::to_string(position));
    }
    bool applied = false;
    std::exception_ptr error;
    int attempts = 0;
    read_model_.write([&](SqlTransaction& tx) {
      const auto still = detail::load_parked(tx, projection_.name, position);
      if (!still) {  // retried by someone else meanwhile
        applied = true;
        return;
      }
      attempts = still->attempts + 1;
      error = detail::in_savepoint(tx, [&] { projection_.apply(tx, *event); });
      if (!error) {
        detail::unpark_event(tx, projection_.name, position);
        applied = true;
      } else {
        detail::update_parked(tx, projection_.name, position, detail::message_of(error));
      }
    });
    if (error) report(position, detail::message_of(error), attempts);
    return applied;
  }

  std::size_t retry_parked() {
    std::size_t applied = 0;
    for (const auto& p : read_model_.parked_events(projection_.name)) {
      if (retry_parked(p.position)) ++applied;
    }
    return applied;
  }

 private:
  struct Attempts {
    std::int64_t position = 0;
    bool infrastructure = false;
    int count = 0;
  };

  void start_locked() {
    if (running()) return;
    if (worker_.joinable()) worker_.join();  // a worker that stopped on a failure
    clear_failure_locked();
    {
      std::lock_guard lock(mu_);
      stop_requested_ = false;
      wake_ = true;
      running_ = true;
      state_ = ProjectionState::catching_up;
    }
    std::weak_ptr<Impl> weak = shared_from_this();
    auto wake = [weak] {
      if (auto self = weak.lock()) self->wake();
    };
    if (options_.dispatcher != nullptr) {
      wake_subscription_ = options_.dispatcher->subscribe(
          "projection:" + projection_.name, projection_.filter,
          [wake](const RecordedEvent&) { wake(); });
    } else {
      wake_listener_ = store_.add_commit_listener([wake](std::span<const RecordedEvent>) { wake(); });
    }
    start_watching(wake);
    try {
      worker_ = std::thread([this] { run(); });
    } catch (...) {
      stop_watching();
      std::lock_guard lock(mu_);
      running_ = false;
      state_ = ProjectionState::stopped;
      throw;
    }
  }

  // Blue/green: replays the store into a shadow read model (a runner of its
  // own, with the same retries and poison policy) while the live tables keep
  // serving, then, in one transaction of the live model, replaces the
  // projection's tables by the shadow's and takes over its checkpoint, failure
  // and parked events; readers see the old model or the new one, never a part.
  // Throws: what the replay throws (then the live model is untouched).
  void rebuild_into_shadow_and_swap() {
    detail::ShadowDir dir(read_model_.path());
    std::vector<std::string> tables;
    {
      SqliteReadModel shadow(dir.file());
      ProjectionRunnerOptions shadow_options = options_;
      shadow_options.dispatcher = nullptr;
      shadow_options.metrics = nullptr;
      ProjectionRunner replay(store_, shadow, projection_, shadow_options);
      replay.catch_up();
      shadow.read([&](SqlTransaction& tx) { tables = detail::projection_tables(tx); });
    }
    auto conn = detail::open_live_with_shadow(read_model_.path(), dir.file());
    std::optional<CheckpointRecord> record;
    conn->begin_immediate();
    try {
      detail::replace_tables(*conn, tables);
      conn->exec("DELETE FROM main.projection_parked_events WHERE name = ?1", {projection_.name});
      conn->exec(
          "INSERT INTO main.projection_parked_events (name, position, stream_id, type, error, "
          "attempts, parked_at) SELECT name, position, stream_id, type, error, attempts, parked_at "
          "FROM shadow.projection_parked_events WHERE name = ?1",
          {projection_.name});
      conn->exec(
          "UPDATE main.projection_checkpoints SET (position, state, error, error_position, "
          "attempts, updated_at, rebuild_requested) = (SELECT position, 'stopped', error, "
          "error_position, attempts, updated_at, NULL FROM shadow.projection_checkpoints "
          "WHERE name = ?1) WHERE name = ?1",
          {projection_.name});
      record = detail::load_checkpoint(*conn, projection_.name);
      conn->commit();
    } catch (...) {
      conn->rollback_quietly();
      throw;
    }
    {
      std::lock_guard lock(mu_);
      checkpoint_ = record ? record->position : 0;
      failure_ = record ? record->failure : std::nullopt;
    }
    cv_.notify_all();
  }

  // Forgets a recorded failure, so the failed event gets a fresh set of
  // attempts, and reloads the checkpoint (another runner may have moved it).
  void clear_failure_locked() {
    std::int64_t stored = 0;
    read_model_.write([&](SqlTransaction& tx) {
      stored = detail::checkpoint_position(tx, projection_.name);
      detail::clear_failure(tx, projection_.name, ProjectionState::stopped, now());
    });
    {
      std::lock_guard lock(mu_);
      checkpoint_ = stored;
      failure_.reset();
    }
    attempts_ = {};
  }

  void stop_locked() noexcept {
    {
      std::lock_guard lock(mu_);
      stop_requested_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) {
      if (worker_.get_id() == std::this_thread::get_id()) return;  // from inside apply()
      worker_.join();
    }
    wake_listener_.reset();
    wake_subscription_.reset();
    stop_watching();
    std::lock_guard lock(mu_);
    running_ = false;
    state_ = ProjectionState::stopped;
    // The worker is gone: the request has been served. Left set, it would cut
    // short the retry backoff of a later catch_up() or rebuild().
    stop_requested_ = false;
    cv_.notify_all();
  }

  void wake() {
    {
      std::lock_guard lock(mu_);
      wake_ = true;
    }
    cv_.notify_all();
  }

  // Commits of other processes to an SQLite store wake the runner through a
  // CommitWatcher on a thread of its own. A store of another kind, a watcher
  // that cannot be set up (the directory went away), or watch_commits off:
  // the runner polls, as before.
  template <class Wake>
  void start_watching(const Wake& wake) {
    stop_watching();  // the watcher of a worker that stopped on a failure
    const auto* sqlite = dynamic_cast<const SqliteEventStore*>(&store_);
    if (!options_.watch_commits || sqlite == nullptr) return;
    try {
      watcher_ = std::make_unique<CommitWatcher>(sqlite->path());
    } catch (const std::exception&) {
      return;
    }
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
  void run() noexcept {
    try {
      follow();
    } catch (const std::exception& e) {
      // An IntegrityError (the checkpoint is beyond the head) stops it here;
      // nothing else is expected: step() reports failures.
      fail(ProjectionFailure{checkpoint() + 1, e.what(), 1});
    } catch (...) {
      fail(ProjectionFailure{checkpoint() + 1, "a non-standard exception", 1});
    }
    bool failed;
    {
      std::lock_guard lock(mu_);
      failed = failure_.has_value();
      running_ = false;
      state_ = ProjectionState::stopped;
    }
    cv_.notify_all();
    if (!failed) record_stopped();
  }

  // Stores the state "stopped" in the read model's table (what `annals
  // projections` shows). Best effort: the state column is informative only.
  void record_stopped() noexcept {
    try {
      read_model_.write(
          [&](SqlTransaction& tx) { detail::save_state(tx, projection_.name, ProjectionState::stopped, now()); });
    } catch (...) {
    }
  }

  void follow() {
    bool idle = false;
    for (;;) {
      if (idle && !wait_for_news()) return;
      if (stop_requested()) return;
      const StepResult r = step();
      switch (r.outcome) {
        case Outcome::progressed:
          set_state(r.at_head ? ProjectionState::live : ProjectionState::catching_up);
          idle = r.at_head;
          break;
        case Outcome::caught_up:
          set_state(ProjectionState::live);
          idle = true;
          break;
        case Outcome::retry_later:
          if (!sleep(r.backoff)) return;
          idle = false;
          break;
        case Outcome::failed:
          return;
      }
    }
  }

  // Sleeps until this process commits, the poll interval shows a newer head,
  // or stop is requested (then returns false).
  bool wait_for_news() {
    for (;;) {
      {
        std::unique_lock lock(mu_);
        const bool woken = cv_.wait_for(lock, options_.poll_interval,
                                        [this] { return stop_requested_ || wake_; });
        if (stop_requested_) return false;
        if (woken) {
          wake_ = false;
          return true;
        }
      }
      // Polling for other processes: one indexed query when nothing changed.
      try {
        // A head below the checkpoint is news too: step() stops on it.
        if (store_.head_position() != checkpoint() || rebuild_pending() || check_pending()) {
          return true;
        }
      } catch (...) {
        return true;  // let step() meet the error and count it
      }
    }
  }

  // Waits `d` unless stop is requested (then returns false).
  bool sleep(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [this] { return stop_requested_; });
  }

  // Throws: IntegrityError when the checkpoint is beyond the store's head
  // (recorded as the projection's failure first).
  std::int64_t catch_up_locked() {
    const std::int64_t target = store_.head_position();
    set_state(ProjectionState::catching_up);
    try {
      for (;;) {
        const StepResult r = step();
        if (r.outcome == Outcome::failed) break;
        if (r.outcome == Outcome::retry_later) {
          sleep(r.backoff);
          continue;
        }
        if (r.outcome == Outcome::caught_up || checkpoint() >= target) break;
      }
    } catch (const IntegrityError& e) {
      fail(ProjectionFailure{checkpoint() + 1, e.what(), 1});
      throw;
    }
    set_state(ProjectionState::stopped);
    // A step at the head recorded "live"; nothing follows after a catch-up, so
    // the table must say stopped, as the worker does when it exits.
    record_stopped();
    return checkpoint();
  }

  // Throws: IntegrityError when the checkpoint is beyond the store's head and
  // no rebuild is requested.
  StepResult step() {
    serve_check_request();
    // A rebuild request (rebuild_request.hpp) is served blue/green, as
    // rebuild() is; the check inside the batch's transaction below stays for
    // a request that arrives after this look.
    try {
      if (rebuild_pending()) {
        rebuild_into_shadow_and_swap();
        attempts_ = {};
        std::lock_guard lock(mu_);
        if (failure_) return StepResult{Outcome::failed, false, {}};
        return StepResult{Outcome::progressed, false, {}};
      }
    } catch (const IntegrityError&) {
      throw;
    } catch (...) {
      return infrastructure_failure(checkpoint() + 1, std::current_exception());
    }
    const std::int64_t from = checkpoint() + 1;
    std::vector<RecordedEvent> events;
    std::int64_t head = 0;
    try {
      head = store_.head_position();
      if (metrics_) metrics_->saw_head(head, from - 1);
      if (from - 1 > head) {
        // Only a pending rebuild request (honoured in the transaction below)
        // may move such a checkpoint: back to 0.
        if (!rebuild_pending()) {
          throw detail::checkpoint_beyond_head(projection_.name, from - 1, head);
        }
      } else {
        for (auto& e : store_.read_all(from, projection_.filter, options_.batch_size)) {
          events.push_back(std::move(e));
        }
      }
    } catch (const IntegrityError&) {
      throw;
    } catch (...) {
      return infrastructure_failure(from, std::current_exception());
    }
    StepResult result;
    result.at_head = events.size() < options_.batch_size;
    const std::int64_t last_read = events.empty() ? from - 1 : events.back().position;
    const std::int64_t target = result.at_head ? std::max(head, last_read) : last_read;
    if (target < from) {
      bool pending = false;
      try {
        pending = rebuild_pending();
      } catch (...) {
        return infrastructure_failure(from, std::current_exception());
      }
      if (!pending) {
        result.outcome = Outcome::caught_up;
        return result;
      }
    }

    const RecordedEvent* failed = nullptr;
    std::exception_ptr event_error;
    std::int64_t committed = from - 1;
    bool rebuilt = false;
    try {
      read_model_.write([&](SqlTransaction& tx) {
        failed = nullptr;
        event_error = nullptr;
        rebuilt = false;
        // A rebuild request (rebuild_request.hpp) wins over the batch read:
        // reset and rewind in this transaction, replay from the next step.
        if (projection_.reset && detail::rebuild_requested(tx, projection_.name)) {
          projection_.reset(tx);
          detail::clear_parked(tx, projection_.name);
          detail::save_checkpoint(tx, projection_.name, 0, ProjectionState::catching_up, now());
          detail::clear_rebuild_request(tx, projection_.name);
          committed = 0;
          rebuilt = true;
          return;
        }
        const std::int64_t stored = detail::checkpoint_position(tx, projection_.name);
        if (stored != from - 1) {  // another runner moved it: adopt, apply nothing
          committed = stored;
          return;
        }
        for (const RecordedEvent& e : events) {
          if (auto error = detail::in_savepoint(tx, [&] { projection_.apply(tx, e); })) {
            failed = &e;
            event_error = error;
            break;
          }
        }
        committed = failed ? failed->position - 1 : target;
        if (committed >= from) {
          detail::save_checkpoint(tx, projection_.name, committed,
                                  result.at_head && !failed ? ProjectionState::live
                                                            : ProjectionState::catching_up,
                                  now());
        }
      });
    } catch (...) {
      return infrastructure_failure(from, std::current_exception());
    }
    set_checkpoint(committed);
    if (rebuilt) {
      attempts_ = {};
      return StepResult{Outcome::progressed, false, {}};
    }
    if (!failed) {
      attempts_ = {};
      result.outcome = Outcome::progressed;
      return result;
    }
    result.at_head = false;
    return event_failure(*failed, event_error);
  }

  // Counts a failed attempt at `position`; true when attempts are left.
  int count_attempt(std::int64_t position, bool infrastructure) {
    if (attempts_.position != position || attempts_.infrastructure != infrastructure) {
      attempts_ = Attempts{position, infrastructure, 0};
    }
    return ++attempts_.count;
  }

  std::chrono::milliseconds backoff_for(int attempt) const {
    auto d = options_.retry_backoff;
    for (int i = 1; i < attempt && d < options_.max_retry_backoff; ++i) d *= 2;
    return std::min(d, options_.max_retry_backoff);
  }

  StepResult event_failure(const RecordedEvent& event, const std::exception_ptr& error) {
    const std::string message = detail::message_of(error);
    const int attempt = count_attempt(event.position, false);
    report(event.position, message, attempt);
    if (attempt < options_.max_attempts) {
      return StepResult{Outcome::retry_later, false, backoff_for(attempt)};
    }
    if (options_.on_poison == PoisonPolicy::stop) {
      fail(ProjectionFailure{event.position, message, attempt});
      return StepResult{Outcome::failed, false, {}};
    }
    // Park it and move past it, in one transaction.
    std::int64_t committed = event.position - 1;
    try {
      read_model_.write([&](SqlTransaction& tx) {
        committed = detail::checkpoint_position(tx, projection_.name);
        if (committed != event.position - 1) return;  // another runner moved on
        ParkedEvent parked;
        parked.projection = projection_.name;
        parked.position = event.position;
        parked.stream_id = event.stream_id;
        parked.type = event.type;
        parked.error = message;
        parked.attempts = attempt;
        parked.parked_at = now();
        detail::park_event(tx, parked);
        detail::save_checkpoint(tx, projection_.name, event.position, ProjectionState::catching_up,
                                now());
        committed = event.position;
      });
    } catch (...) {
      return infrastructure_failure(event.position, std::current_exception());
    }
    if (metrics_ && committed == event.position) metrics_->parked.add();
    set_checkpoint(committed);
    attempts_ = {};
    return StepResult{Outcome::progressed, false, {}};
  }

  StepResult infrastructure_failure(std::int64_t position, const std::exception_ptr& error) {
    const std::string message = detail::message_of(error);
    const int attempt = count_attempt(position, true);
    report(position, message, attempt);
    if (attempt < options_.max_attempts) {
      return StepResult{Outcome::retry_later, false, backoff_for(attempt)};
    }
    fail(ProjectionFailure{position, message, attempt});
    return StepResult{Outcome::failed, false, {}};
  }

  // Records a failure that stops the projection (in memory, and in the
  // checkpoint table if the read model lets us).
  void fail(ProjectionFailure failure) noexcept {
    try {
      read_model_.write(
          [&](SqlTransaction& tx) { detail::save_failure(tx, projection_.name, failure, now()); });
    } catch (...) {  // the read model is what failed: memory must do
    }
    {
      std::lock_guard lock(mu_);
      failure_ = std::move(failure);
      state_ = ProjectionState::stopped;
    }
    cv_.notify_all();
  }

  void report(std::int64_t position, const std::string& message, int attempt) const noexcept {
    if (metrics_) metrics_->failures.add();
    if (!options_.on_error) return;
    try {
      options_.on_error(ProjectionAttemptError{projection_.name, position, message, attempt});
    } catch (...) {
    }
  }

  std::int64_t checkpoint() const {
    std::lock_guard lock(mu_);
    return checkpoint_;
  }

  // A check request (check_request.hpp) pending?
  bool check_pending() const {
    return read_model_
        .query_int("SELECT count(*) FROM projection_checks WHERE name = ?1 AND checked_at IS NULL",
                   {projection_.name})
        .value_or(0) > 0;
  }

  // Runs a pending check request between two batches (the live model does not
  // move meanwhile) and records its report, or the error that stopped it.
  // Best effort: a read model that fails here fails the step that follows.
  void serve_check_request() noexcept {
    try {
      const auto pending = read_model_.query(
          "SELECT requested_at FROM projection_checks WHERE name = ?1 AND checked_at IS NULL",
          {projection_.name});
      if (pending.empty()) return;
      Json result;
      try {
        result = check_report_json(check_projection(store_, read_model_, projection_));
      } catch (const std::exception& e) {
        result = Json{{"error", e.what()}};
      }
      read_model_.write([&](SqlTransaction& tx) {
        tx.exec("UPDATE projection_checks SET checked_at = ?3, result = ?4 "
                "WHERE name = ?1 AND requested_at = ?2",
                {projection_.name, pending[0][0].as_int(), to_micros(now()), result.dump()});
      });
    } catch (...) {
    }
  }

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
      std::lock_guard lock(mu_);
      if (metrics_) metrics_->advanced(checkpoint_, position);
      checkpoint_ = position;
    }
    cv_.notify_all();
  }

  void set_state(ProjectionState state) {
    std::lock_guard lock(mu_);
    state_ = state;
  }

  bool stop_requested() const {
    std::lock_guard lock(mu_);
    return stop_requested_;
  }

  EventStore& store_;
  SqliteReadModel& read_model_;
  const Projection projection_;
  const ProjectionRunnerOptions options_;
  const std::unique_ptr<detail::ProjectionMetrics> metrics_ =
      detail::make_projection_metrics(options_.metrics, projection_.name);

  std::mutex control_mu_;  // start, stop, catch_up, rebuild: one at a time

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;  // wakes the worker; signals progress
  std::int64_t checkpoint_ = 0;
  std::optional<ProjectionFailure> failure_;
  ProjectionState state_ = ProjectionState::stopped;
  bool running_ = false;
  bool stop_requested_ = false;
  bool wake_ = false;

  // Used only by the thread that steps (the worker, or catch_up's caller while
  // no worker runs).
  Attempts attempts_;

  std::thread worker_;
  CommitListenerHandle wake_listener_;
  Subscription wake_subscription_;
  // Set up by start_locked(), torn down by stop_locked() (start/stop are
  // serialized by control_mu_): the watcher and the thread that waits on it.
  std::unique_ptr<CommitWatcher> watcher_;
  std::thread watcher_thread_;
  std::atomic<bool> watching_{false};
};

ProjectionRunner::ProjectionRunner(EventStore& store, SqliteReadModel& read_model,
                                   Projection projection, ProjectionRunnerOptions options)
    : impl_(std::make_shared<Impl>(store, read_model, std::move(projection), std::move(options))) {}

ProjectionRunner::~ProjectionRunner() { impl_->stop(); }

void ProjectionRunner::start() { impl_->start(); }
void ProjectionRunner::stop() noexcept { impl_->stop(); }
bool ProjectionRunner::running() const { return impl_->running(); }
std::int64_t ProjectionRunner::catch_up() { return impl_->catch_up(); }
bool ProjectionRunner::wait_for(std::int64_t position, std::chrono::milliseconds timeout) const {
  return impl_->wait_for(position, timeout);
}
ProjectionStatus ProjectionRunner::status() const { return impl_->status(); }
void ProjectionRunner::rebuild() { impl_->rebuild(); }
std::vector<ParkedEvent> ProjectionRunner::parked() const { return impl_->parked(); }
bool ProjectionRunner::retry_parked(std::int64_t position) { return impl_->retry_parked(position); }
std::size_t ProjectionRunner::retry_parked() { return impl_->retry_parked(); }
CheckReport ProjectionRunner::check(const CheckOptions& options) const {
  return check_projection(impl_->store(), impl_->read_model(), impl_->projection(), options);
}

}  // namespace annals
