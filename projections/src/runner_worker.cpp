// The runner's worker: following the store, stepping batches into the read
// model, retries with backoff, the poison policies, and recording failures.

#include "projection_runner_impl.hpp"

namespace annals {

// The worker thread.
void ProjectionRunner::Impl::run() noexcept {
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
    detail::MutexLock lock(mu_);
    failed = failure_.has_value();
    running_ = false;
    state_ = ProjectionState::stopped;
  }
  cv_.notify_all();
  if (!failed) record_stopped();
}

// Stores the state "stopped" in the read model's table (what `annals
// projections` shows). Best effort: the state column is informative only.
void ProjectionRunner::Impl::record_stopped() noexcept {
  try {
    read_model_.write(
        [&](SqlTransaction& tx) { detail::save_state(tx, projection_.name, ProjectionState::stopped, now()); });
  } catch (...) {
  }
}

void ProjectionRunner::Impl::follow() {
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
bool ProjectionRunner::Impl::wait_for_news() {
  for (;;) {
    {
      const auto deadline = std::chrono::steady_clock::now() + options_.poll_interval;
      detail::MutexLock lock(mu_);
      while (!stop_requested_ && !wake_ &&
             lock.wait_until(cv_, deadline) == std::cv_status::no_timeout) {
      }
      const bool woken = wake_;
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

// Throws: IntegrityError when the checkpoint is beyond the store's head
// (recorded as the projection's failure first).
std::int64_t ProjectionRunner::Impl::catch_up_locked() {
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
detail::StepResult ProjectionRunner::Impl::step() {
  serve_check_request();
  // A rebuild request (rebuild_request.hpp) is served blue/green, as
  // rebuild() is; the check inside the batch's transaction below stays for
  // a request that arrives after this look.
  try {
    if (rebuild_pending()) {
      rebuild_into_shadow_and_swap();
      attempts_ = {};
      detail::MutexLock lock(mu_);
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
detail::StepResult ProjectionRunner::Impl::event_failure(const RecordedEvent& event, const std::exception_ptr& error) {
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

detail::StepResult ProjectionRunner::Impl::infrastructure_failure(std::int64_t position, const std::exception_ptr& error) {
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
void ProjectionRunner::Impl::fail(ProjectionFailure failure) noexcept {
  try {
    read_model_.write(
        [&](SqlTransaction& tx) { detail::save_failure(tx, projection_.name, failure, now()); });
  } catch (...) {  // the read model is what failed: memory must do
  }
  {
    detail::MutexLock lock(mu_);
    failure_ = std::move(failure);
    state_ = ProjectionState::stopped;
  }
  cv_.notify_all();
}

// Runs a pending check request between two batches (the live model does not
// move meanwhile) and records its report, or the error that stopped it.
// Best effort: a read model that fails here fails the step that follows.
void ProjectionRunner::Impl::serve_check_request() noexcept {
  try {
    const auto pending = read_model_.query(
        "SELECT requested_at FROM projection_checks WHERE name = $1 AND checked_at IS NULL",
        {projection_.name});
    if (pending.empty()) return;
    Json result;
    try {
      result = check_report_json(check_projection(store_, read_model_, projection_));
    } catch (const std::exception& e) {
      result = Json{{"error", e.what()}};
    }
    read_model_.write([&](SqlTransaction& tx) {
      tx.exec(
          "UPDATE projection_checks SET checked_at = $3, result = $4 "
          "WHERE name = $1 AND requested_at = $2",
          {projection_.name, pending[0][0].as_int(), to_micros(now()), result.dump()});
    });
  } catch (...) {
  }
}

}  // namespace annals
