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

#include "projection_runner_impl.hpp"
#include "shadow_model.hpp"

namespace annals {

void ProjectionRunner::Impl::rebuild() {
  detail::MutexLock control(control_mu_);
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
    detail::MutexLock lock(mu_);
    failed = failure_.has_value();
  }
  if (!failed) catch_up_locked();  // the events appended during the replay
  {
    detail::MutexLock lock(mu_);
    failed = failure_.has_value();
  }
  if (was_running && !failed) start_locked();
}

ProjectionStatus ProjectionRunner::Impl::status() const {
  ProjectionStatus s;
  s.name = projection_.name;
  bool running;
  {
    detail::MutexLock lock(mu_);
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

bool ProjectionRunner::Impl::retry_parked(std::int64_t position) {
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

std::size_t ProjectionRunner::Impl::retry_parked() {
  std::size_t applied = 0;
  for (const auto& p : read_model_.parked_events(projection_.name)) {
    if (retry_parked(p.position)) ++applied;
  }
  return applied;
}

void ProjectionRunner::Impl::start_locked() {
  if (running()) return;
  if (worker_.joinable()) worker_.join();  // a worker that stopped on a failure
  clear_failure_locked();
  {
    detail::MutexLock lock(mu_);
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
    detail::MutexLock lock(mu_);
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
void ProjectionRunner::Impl::rebuild_into_shadow_and_swap() {
  auto shadow = detail::ReadModelAccess::open_shadow(read_model_);
  std::vector<std::string> tables;
  {
    ProjectionRunnerOptions shadow_options = options_;
    shadow_options.dispatcher = nullptr;
    shadow_options.metrics = nullptr;
    ProjectionRunner replay(store_, shadow->model(), projection_, shadow_options);
    replay.catch_up();
    shadow->model().read([&](SqlTransaction& tx) { tables = detail::projection_tables(tx); });
  }
  const std::string live = detail::quote_identifier(shadow->live_schema()) + ".";
  const std::string from = detail::quote_identifier(shadow->shadow_schema()) + ".";
  std::optional<CheckpointRecord> record;
  shadow->with_live(true, [&](SqlTransaction& tx) {
    shadow->replace_tables(tx, tables);
    tx.exec("DELETE FROM " + live + "projection_parked_events WHERE name = $1", {projection_.name});
    tx.exec("INSERT INTO " + live +
                "projection_parked_events (name, position, stream_id, type, error, attempts, "
                "parked_at) SELECT name, position, stream_id, type, error, attempts, parked_at "
                "FROM " +
                from + "projection_parked_events WHERE name = $1",
            {projection_.name});
    tx.exec("UPDATE " + live +
                "projection_checkpoints SET (position, state, error, error_position, attempts, "
                "updated_at, rebuild_requested) = (SELECT position, 'stopped', error, "
                "error_position, attempts, updated_at, CAST(NULL AS BIGINT) FROM " +
                from + "projection_checkpoints WHERE name = $1) WHERE name = $1",
            {projection_.name});
    record = detail::load_checkpoint(tx, projection_.name);
  });
  {
    detail::MutexLock lock(mu_);
    checkpoint_ = record ? record->position : 0;
    failure_ = record ? record->failure : std::nullopt;
  }
  cv_.notify_all();
}

// Forgets a recorded failure, so the failed event gets a fresh set of
// attempts, and reloads the checkpoint (another runner may have moved it).
void ProjectionRunner::Impl::clear_failure_locked() {
  std::int64_t stored = 0;
  read_model_.write([&](SqlTransaction& tx) {
    stored = detail::checkpoint_position(tx, projection_.name);
    detail::clear_failure(tx, projection_.name, ProjectionState::stopped, now());
  });
  {
    detail::MutexLock lock(mu_);
    checkpoint_ = stored;
    failure_.reset();
  }
  attempts_ = {};
}

void ProjectionRunner::Impl::stop_locked() noexcept {
  {
    detail::MutexLock lock(mu_);
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
  detail::MutexLock lock(mu_);
  running_ = false;
  state_ = ProjectionState::stopped;
  // The worker is gone: the request has been served. Left set, it would cut
  // short the retry backoff of a later catch_up() or rebuild().
  stop_requested_ = false;
  cv_.notify_all();
}

ProjectionRunner::ProjectionRunner(EventStore& store, ReadModel& read_model, Projection projection,
                                   ProjectionRunnerOptions options)
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
