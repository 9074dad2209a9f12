// ConsumerGroupWorker: lease rounds, batches fenced by the partitions'
// tokens, retries and poison policies, and the worker thread.

#include "annals/projections/consumer_group.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "annals/core/error.hpp"
#include "annals/core/thread_annotations.hpp"
#include "annals/projections/rebuild_request.hpp"
#include "annals/store/commit_watcher.hpp"
#include "consumer_group_tables.hpp"
#include "projection_tables.hpp"
#include "retry_attempts.hpp"
#include "sql_connection.hpp"

namespace annals {

int partition_of(std::string_view stream_id, int partitions) {
  if (partitions < 1) {
    throw InvalidArgument("partition_of: partitions must be >= 1, got " +
                          std::to_string(partitions));
  }
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a, 64 bit
  for (const char c : stream_id) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return static_cast<int>(h % static_cast<std::uint64_t>(partitions));
}

namespace {

std::string default_worker_id() {
  static std::atomic<int> counter{0};
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" +
         std::to_string(counter.fetch_add(1) + 1);
}

}  // namespace

class ConsumerGroupWorker::Impl {
 public:
  Impl(EventStore& store, ReadModel& read_model, Projection projection,
       ConsumerGroupOptions options)
      : store_(store),
        read_model_(read_model),
        projection_(std::move(projection)),
        options_(std::move(options)),
        worker_(options_.worker_id.empty() ? default_worker_id() : options_.worker_id) {
    const std::string& name = projection_.name;
    if (name.empty()) throw InvalidArgument("a projection needs a name");
    const auto bad = [&](const std::string& what) {
      return InvalidArgument("consumer group '" + name + "': " + what);
    };
    if (!projection_.apply && !options_.apply_prepared) throw bad("the projection has no apply function");
    if (options_.prepare && !options_.apply_prepared) throw bad("prepare needs apply_prepared");
    if (options_.partitions < 1 || options_.partitions > 4096) {
      throw bad("partitions must be between 1 and 4096, got " + std::to_string(options_.partitions));
    }
    const auto& r = options_.runner;
    if (r.batch_size == 0) throw bad("batch_size must be >= 1");
    if (r.max_attempts < 1) throw bad("max_attempts must be >= 1");
    if (r.poll_interval < std::chrono::milliseconds(1)) throw bad("poll_interval must be at least 1 ms");
    if (options_.renew_interval < std::chrono::milliseconds(1) ||
        options_.renew_interval >= options_.lease_duration) {
      throw bad("renew_interval must be at least 1 ms and shorter than lease_duration");
    }
    read_model_.write([&](SqlTransaction& tx) {
      detail::create_group_tables(tx);
      detail::ensure_group(tx, name, options_.partitions, now());
      if (projection_.setup) projection_.setup(tx);
      detail::ensure_checkpoint(tx, name, now());
    });
  }

  ~Impl() { stop(); }

  Timestamp now() const { return (options_.clock ? *options_.clock : read_model_.clock()).now(); }

  void start() {
    detail::MutexLock control(control_mu_);
    {
      detail::MutexLock lock(mu_);
      if (running_) return;
    }
    join();
    {
      detail::MutexLock lock(mu_);
      failure_.reset();
      running_ = true;
      stop_requested_ = false;
    }
    attempts_ = {};
    watcher_.reset();
    const auto* sqlite = dynamic_cast<const SqliteEventStore*>(&store_);
    if (options_.runner.watch_commits && sqlite != nullptr) {
      try {
        watcher_ = std::make_unique<CommitWatcher>(sqlite->path());
        if (!watcher_->pushes()) watcher_.reset();
      } catch (const std::exception&) {
        watcher_.reset();  // poll instead
      }
    }
    thread_ = std::thread([this] { run(); });
  }

  void stop() noexcept {
    try {
      detail::MutexLock control(control_mu_);
      {
        detail::MutexLock lock(mu_);
        stop_requested_ = true;
      }
      cv_.notify_all();
      if (watcher_) watcher_->interrupt();
      join();
      bool holding;
      {
        detail::MutexLock lock(mu_);
        holding = !held_.empty();
      }
      if (holding) leave();  // leases taken by poll() on the caller's thread
    } catch (...) {
    }
  }

  bool running() const {
    detail::MutexLock lock(mu_);
    return running_;
  }

  std::size_t poll() {
    detail::MutexLock control(control_mu_);
    if (running()) {
      throw InvalidArgument("consumer group '" + projection_.name + "': poll() while started");
    }
    join();
    return poll_once().applied;
  }

  std::vector<int> owned() const {
    detail::MutexLock lock(mu_);
    std::vector<int> out;
    for (const auto& [p, h] : held_) out.push_back(p);
    return out;
  }

  const std::string& worker_id() const noexcept { return worker_; }

  std::optional<ProjectionFailure> failure() const {
    detail::MutexLock lock(mu_);
    return failure_;
  }

  bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto low = read_model_.query_int(
          "SELECT min(position) FROM projection_partitions WHERE name = $1", {projection_.name});
      if (low.value_or(0) >= position) return true;
      if (!running() || std::chrono::steady_clock::now() >= deadline) return false;
      detail::MutexLock lock(mu_);
      lock.wait_for(cv_, std::chrono::milliseconds(5));
    }
  }

  ConsumerGroupStatus status() const {
    const std::int64_t head = store_.head_position();
    std::vector<ConsumerGroupStatus> groups;
    // Leases are judged by this worker's clock, the one they were taken with.
    read_model_.read([&](SqlTransaction& tx) { groups = detail::load_groups(tx, head, now()); });
    for (auto& g : groups) {
      if (g.name == projection_.name) return std::move(g);
    }
    return ConsumerGroupStatus{projection_.name, 0, head, {}, {}};
  }

 private:
  struct Round {
    std::size_t applied = 0;
    bool idle = false;  // nothing to do until news or the next renewal
    std::chrono::milliseconds backoff{0};
    bool failed = false;
  };

  void join() {
    if (thread_.joinable()) thread_.join();
  }

  const std::string& name() const { return projection_.name; }

  // Renews leases when due; honours a pending rebuild request in the same
  // transaction. Returns whether a round ran.
  void renew_if_due() {
    const Timestamp t = now();
    if (last_renewal_ && t - *last_renewal_ < options_.renew_interval) return;
    detail::HeldPartitions held;
    {
      detail::MutexLock lock(mu_);
      held = held_;
    }
    read_model_.write([&](SqlTransaction& tx) {
      if (projection_.reset && detail::rebuild_requested(tx, name())) {
        projection_.reset(tx);
        detail::clear_parked(tx, name());
        detail::reset_partitions(tx, name(), t);
        detail::save_checkpoint(tx, name(), 0, ProjectionState::catching_up, t);
        detail::clear_rebuild_request(tx, name());
        held.clear();
      }
      held = detail::renew_leases(tx, name(), options_.partitions, held,
                                  detail::LeaseTerms{worker_, t, options_.lease_duration});
    });
    last_renewal_ = t;
    detail::MutexLock lock(mu_);
    held_ = std::move(held);
  }

  // One round: leases, then one batch of the held partitions.
  // Throws: StorageError (the store or the read model failing); IntegrityError
  // when a checkpoint is beyond the store's head.
  Round poll_once() {
    renew_if_due();
    detail::HeldPartitions held;
    {
      detail::MutexLock lock(mu_);
      held = held_;
    }
    Round round;
    if (held.empty()) {
      round.idle = true;
      return round;
    }
    std::int64_t low = held.begin()->second.position;
    for (const auto& [p, h] : held) low = std::min(low, h.position);
    const std::int64_t head = store_.head_position();
    if (low > head) throw detail::checkpoint_beyond_head(name(), low, head);
    std::vector<RecordedEvent> events;
    std::vector<int> partition;
    for (auto& e : store_.read_all(low + 1, projection_.filter, options_.runner.batch_size)) {
      partition.push_back(partition_of(e.stream_id, options_.partitions));
      events.push_back(std::move(e));
    }
    const bool at_head = events.size() < options_.runner.batch_size;
    const std::int64_t last_read = events.empty() ? low : events.back().position;
    const std::int64_t target = at_head ? std::max(head, last_read) : last_read;
    round.idle = at_head;
    if (target <= low) return round;

    const auto mine = [&](std::size_t i) {
      const auto h = held.find(partition[i]);
      return h != held.end() && events[i].position > h->second.position;
    };
    // CPU work outside the write lock: what runs in parallel across workers.
    const RecordedEvent* failed = nullptr;
    std::exception_ptr error;
    std::vector<Json> prepared(events.size());
    if (options_.prepare) {
      for (std::size_t i = 0; i < events.size() && !failed; ++i) {
        if (!mine(i)) continue;
        try {
          prepared[i] = options_.prepare(events[i]);
        } catch (...) {
          failed = &events[i];
          error = std::current_exception();
        }
      }
    }
    const std::int64_t limit = failed ? failed->position - 1 : target;

    std::size_t applied = 0;
    detail::HeldPartitions after;
    std::vector<int> lost;
    const Timestamp t = now();
    read_model_.write([&](SqlTransaction& tx) {
      applied = 0;
      after = held;
      lost.clear();
      const RecordedEvent* apply_failed = nullptr;
      std::exception_ptr apply_error;
      // The fence: each partition still ours, checked under the write lock
      // that the rows and checkpoints below are written with.
      for (auto it = after.begin(); it != after.end();) {
        if (detail::holds(tx, name(), it->first, worker_, it->second.token, t)) {
          ++it;
        } else {
          lost.push_back(it->first);
          it = after.erase(it);
        }
      }
      for (std::size_t i = 0; i < events.size() && events[i].position <= limit; ++i) {
        const auto h = after.find(partition[i]);
        if (h == after.end() || events[i].position <= h->second.position) continue;
        const auto& e = events[i];
        auto err = detail::in_savepoint(tx, [&] {
          if (options_.apply_prepared) {
            options_.apply_prepared(tx, e, prepared[i]);
          } else {
            projection_.apply(tx, e);
          }
        });
        if (err) {
          apply_failed = &e;
          apply_error = err;
          break;
        }
        ++applied;
      }
      const std::int64_t to = apply_failed ? apply_failed->position - 1 : limit;
      for (auto& [p, h] : after) {
        if (to <= h.position) continue;
        detail::save_partition(tx, name(), p, h.position, to, worker_, h.token, t,
                               options_.record_writes);
        h.position = to;
      }
      detail::save_group_checkpoint(
          tx, name(), at_head && !apply_failed && !failed ? ProjectionState::live
                                                           : ProjectionState::catching_up,
          t);
      if (apply_failed) {
        failed = apply_failed;
        error = apply_error;
      }
    });
    {
      detail::MutexLock lock(mu_);
      for (const int p : lost) held_.erase(p);
      for (const auto& [p, h] : after) {
        const auto it = held_.find(p);
        if (it != held_.end() && it->second.token == h.token) it->second.position = h.position;
      }
    }
    cv_.notify_all();
    round.applied = applied;
    if (!failed) {
      attempts_ = {};
      return round;
    }
    round.idle = false;
    return event_failure(*failed, partition_of(failed->stream_id, options_.partitions), error,
                         round);
  }

  int count_attempt(std::int64_t position, bool infrastructure) {
    return attempts_.fail(position, infrastructure);
  }

  std::chrono::milliseconds backoff_for(int attempt) const {
    return detail::retry_backoff(options_.runner, attempt);
  }

  void report(std::int64_t position, const std::string& message, int attempt) const noexcept {
    if (!options_.runner.on_error) return;
    try {
      options_.runner.on_error(ProjectionAttemptError{name(), position, message, attempt});
    } catch (...) {
    }
  }

  Round event_failure(const RecordedEvent& event, int partition, const std::exception_ptr& error,
                      Round round) {
    const std::string message = detail::message_of(error);
    const int attempt = count_attempt(event.position, false);
    report(event.position, message, attempt);
    if (attempt < options_.runner.max_attempts) {
      round.backoff = backoff_for(attempt);
      return round;
    }
    if (options_.runner.on_poison == PoisonPolicy::stop) {
      fail(ProjectionFailure{event.position, message, attempt}, partition);
      round.failed = true;
      return round;
    }
    // Park it and move its partition past it, fenced like a batch.
    detail::HeldPartition h;
    {
      detail::MutexLock lock(mu_);
      const auto it = held_.find(partition);
      if (it == held_.end()) return round;  // lost meanwhile: its new owner will meet it
      h = it->second;
    }
    const Timestamp t = now();
    bool parked = false;
    read_model_.write([&](SqlTransaction& tx) {
      if (!detail::holds(tx, name(), partition, worker_, h.token, t)) return;
      const auto stored = tx.query_int(
          "SELECT position FROM projection_partitions WHERE name = $1 AND partition = $2",
          {name(), partition});
      if (stored.value_or(-1) != event.position - 1) return;
      detail::park_event(tx, ParkedEvent{name(), event.position, event.stream_id, event.type,
                                         message, attempt, t});
      detail::save_partition(tx, name(), partition, event.position - 1, event.position, worker_,
                             h.token, t, options_.record_writes);
      parked = true;
    });
    if (parked) {
      detail::MutexLock lock(mu_);
      const auto it = held_.find(partition);
      if (it != held_.end() && it->second.token == h.token) it->second.position = event.position;
    }
    attempts_ = {};
    return round;
  }

  // Records a failure that stops this worker (in memory, on the partition's
  // row and on the group's checkpoint row, if the read model lets us).
  void fail(ProjectionFailure failure, int partition) noexcept {
    try {
      read_model_.write([&](SqlTransaction& tx) {
        if (partition >= 0) detail::save_partition_failure(tx, name(), partition, failure, now());
        detail::save_failure(tx, name(), failure, now());
      });
    } catch (...) {
    }
    detail::MutexLock lock(mu_);
    failure_ = std::move(failure);
  }

  void run() noexcept {
    for (;;) {
      if (stop_requested()) break;
      Round r;
      try {
        r = poll_once();
        if (attempts_.infrastructure) attempts_ = {};
      } catch (const IntegrityError& e) {
        fail(ProjectionFailure{0, e.what(), 1}, -1);
        break;
      } catch (...) {
        const auto error = std::current_exception();
        const int attempt = count_attempt(-1, true);
        report(0, detail::message_of(error), attempt);
        if (attempt >= options_.runner.max_attempts) {
          fail(ProjectionFailure{0, detail::message_of(error), attempt}, -1);
          break;
        }
        r.backoff = backoff_for(attempt);
      }
      if (r.failed) break;
      if (r.backoff.count() > 0) {
        if (!sleep(std::min(r.backoff, options_.renew_interval))) break;
      } else if (r.idle) {
        if (!wait_for_news()) break;
      }
    }
    leave();
    {
      detail::MutexLock lock(mu_);
      running_ = false;
    }
    cv_.notify_all();
  }

  // Gives the leases back so that others take over at once, and records the
  // group stopped when no other worker is live. Best effort.
  void leave() noexcept {
    try {
      read_model_.write([&](SqlTransaction& tx) {
        detail::leave_group(tx, name(), worker_);
        if (detail::live_members(tx, name(), now()) == 0) {
          detail::save_state(tx, name(), ProjectionState::stopped, now());
        }
      });
    } catch (...) {
    }
    detail::MutexLock lock(mu_);
    held_.clear();
    last_renewal_.reset();
  }

  // Sleeps until a commit (any process, through the watcher), the poll
  // interval, or the next lease renewal; false when stop was requested.
  bool wait_for_news() {
    const auto timeout = std::min(options_.runner.poll_interval, options_.renew_interval);
    if (watcher_) {
      watcher_->wait(timeout);
      return !stop_requested();
    }
    return sleep(timeout);
  }

  bool sleep(std::chrono::milliseconds d) ANNALS_EXCLUDES(mu_) {
    const auto deadline = std::chrono::steady_clock::now() + d;
    detail::MutexLock lock(mu_);
    while (!stop_requested_ && lock.wait_until(cv_, deadline) == std::cv_status::no_timeout) {
    }
    return !stop_requested_;
  }

  bool stop_requested() const {
    detail::MutexLock lock(mu_);
    return stop_requested_;
  }

  EventStore& store_;
  ReadModel& read_model_;
  const Projection projection_;
  const ConsumerGroupOptions options_;
  const std::string worker_;

  detail::Mutex control_mu_;  // start, stop, poll: one at a time

  mutable detail::Mutex mu_;
  mutable std::condition_variable cv_;
  detail::HeldPartitions held_ ANNALS_GUARDED_BY(mu_);
  std::optional<ProjectionFailure> failure_ ANNALS_GUARDED_BY(mu_);
  bool running_ ANNALS_GUARDED_BY(mu_) = false;
  bool stop_requested_ ANNALS_GUARDED_BY(mu_) = false;

  // Used only by the thread that polls (the worker, or poll()'s caller).
  detail::RetryAttempts attempts_;
  std::optional<Timestamp> last_renewal_;

  std::unique_ptr<CommitWatcher> watcher_;
  std::thread thread_;
};

ConsumerGroupWorker::ConsumerGroupWorker(EventStore& store, ReadModel& read_model,
                                         Projection projection, ConsumerGroupOptions options)
    : impl_(std::make_unique<Impl>(store, read_model, std::move(projection), std::move(options))) {}
ConsumerGroupWorker::~ConsumerGroupWorker() = default;
void ConsumerGroupWorker::start() { impl_->start(); }
void ConsumerGroupWorker::stop() noexcept { impl_->stop(); }
bool ConsumerGroupWorker::running() const { return impl_->running(); }
std::size_t ConsumerGroupWorker::poll() { return impl_->poll(); }
std::vector<int> ConsumerGroupWorker::owned_partitions() const { return impl_->owned(); }
const std::string& ConsumerGroupWorker::worker_id() const noexcept { return impl_->worker_id(); }
std::optional<ProjectionFailure> ConsumerGroupWorker::failure() const { return impl_->failure(); }
bool ConsumerGroupWorker::wait_for(std::int64_t position, std::chrono::milliseconds timeout) const {
  return impl_->wait_for(position, timeout);
}
ConsumerGroupStatus ConsumerGroupWorker::status() const { return impl_->status(); }

}  // namespace annals
