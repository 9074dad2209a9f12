// Each subscriber has its own queue of published batches and at most one
// drain task queued or running on the executor at a time. That one task
// delivers the queue in order, which gives per-subscriber ordering and
// one-at-a-time delivery on any executor, and lets a handler publish (through
// an append) without re-entering itself: the new batch just joins the queue.
//
// Each queued batch carries how many of its events pass the subscriber's
// filter: the queue's bound counts those, and with a metrics registry the
// queue-depth gauge goes up by that at publish and down by one per event
// handled or dropped.

#include "annals/projections/dispatcher.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <string>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/thread_annotations.hpp"

namespace annals {

namespace detail {

using Batch = std::shared_ptr<const std::vector<RecordedEvent>>;

// What a dispatcher reports for the subscribers of one name (docs/operations.md).
// The registry is shared so that a subscriber outliving its dispatcher can
// still report its drops.
struct SubscriberMetrics {
  SubscriberMetrics(std::shared_ptr<MetricsRegistry> r, const std::string& name)
      : registry(std::move(r)),
        depth(registry->gauge("annals_dispatcher_queue_depth",
                              "Events queued for the subscriber (passing its filter) and not yet handled.",
                              {{"subscriber", name}})),
        delivered(registry->counter("annals_dispatcher_delivered_total",
                                    "Handler calls that returned.", {{"subscriber", name}})),
        failures(registry->counter("annals_dispatcher_handler_failures_total",
                                   "Handler calls that threw (each also goes to the error handler).",
                                   {{"subscriber", name}})),
        dropped(registry->counter("annals_dispatcher_dropped_total",
                                  "Events never handed to the subscriber: dropped by its overflow "
                                  "policy, or still queued when the subscription ended.",
                                  {{"subscriber", name}})) {}

  // `n` events that were queued (counted in the depth) leave undelivered.
  void drop_queued(std::uint64_t n) noexcept {
    if (n == 0) return;
    dropped.add(n);
    depth.add(-static_cast<double>(n));
  }

  std::shared_ptr<MetricsRegistry> registry;
  Gauge& depth;
  Counter& delivered;
  Counter& failures;
  Counter& dropped;
};

// A published batch in a subscriber's queue, with how many of its events pass
// the subscriber's filter (what the queue's bound counts).
struct Queued {
  Batch batch;
  std::size_t events = 0;
};

struct Subscriber {
  std::string name;
  EventFilter filter;
  EventHandler handler;
  SubscriptionOptions options;
  std::unique_ptr<SubscriberMetrics> metrics;  // null: nobody listens

  Mutex mu;
  std::condition_variable idle;   // running became false
  std::condition_variable space;  // the queue shrank, or the subscriber ended
  std::deque<Queued> queue ANNALS_GUARDED_BY(mu);
  std::size_t queued ANNALS_GUARDED_BY(mu) = 0;  // events in `queue`
  bool scheduled ANNALS_GUARDED_BY(mu) = false;  // a drain task is queued or running
  bool running ANNALS_GUARDED_BY(mu) = false;    // a handler call is in progress
  // The last batch offered was dropped (report once per streak).
  bool dropping ANNALS_GUARDED_BY(mu) = false;
  std::thread::id runner ANNALS_GUARDED_BY(mu);  // the thread making it
  std::atomic<bool> active{true};
  SubscriptionStats stats ANNALS_GUARDED_BY(mu);

  // The rate limit's bucket, used by the one draining thread only.
  double tokens = 0;
  std::chrono::steady_clock::time_point refilled{};

  // Stops delivery; waits for a handler call in progress unless we are it.
  void deactivate() ANNALS_EXCLUDES(mu) {
    MutexLock lock(mu);
    active.store(false);
    if (metrics) metrics->drop_queued(queued);
    queue.clear();
    queued = 0;
    space.notify_all();
    if (running && runner == std::this_thread::get_id()) return;
    while (running) lock.wait(idle);
  }

  // Waits, if the rate limit asks for it, before the next handler call.
  // Called by the draining thread without `mu`; returns false when the
  // subscriber ended while waiting.
  bool take_token() ANNALS_EXCLUDES(mu) {
    const double rate = options.max_rate;
    if (rate <= 0) return true;
    const double burst = static_cast<double>(options.burst);
    auto refill = [&] {
      const auto now = std::chrono::steady_clock::now();
      if (refilled == std::chrono::steady_clock::time_point{}) {
        tokens = burst;
      } else {
        tokens = std::min(burst, tokens + std::chrono::duration<double>(now - refilled).count() * rate);
      }
      refilled = now;
    };
    refill();
    if (tokens < 1) {
      {
        MutexLock lock(mu);
        ++stats.delayed;
      }
      // Short slices, so that reset() never waits long for a limited subscriber.
      while (tokens < 1) {
        if (!active.load()) return false;
        const auto wait = std::chrono::duration<double>((1 - tokens) / rate);
        std::this_thread::sleep_for(std::min<std::chrono::duration<double>>(
            wait, std::chrono::milliseconds(10)));
        refill();
      }
    }
    tokens -= 1;
    return true;
  }
};

class DispatcherCore : public std::enable_shared_from_this<DispatcherCore> {
 public:
  DispatcherCore(std::shared_ptr<Executor> executor, DeliveryErrorHandler on_error,
                 std::shared_ptr<MetricsRegistry> metrics)
      : executor_(executor ? std::move(executor) : std::make_shared<InlineExecutor>()),
        on_error_(std::move(on_error)),
        metrics_(std::move(metrics)) {}

  const std::shared_ptr<MetricsRegistry>& metrics() const noexcept { return metrics_; }

  void add(std::shared_ptr<Subscriber> subscriber) ANNALS_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    subscribers_.push_back(std::move(subscriber));
  }

  void remove(const std::shared_ptr<Subscriber>& subscriber) ANNALS_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    std::erase(subscribers_, subscriber);
  }

  std::optional<SubscriptionStats> stats(std::string_view name) ANNALS_EXCLUDES(mu_) {
    std::shared_ptr<Subscriber> found;
    {
      MutexLock lock(mu_);
      for (const auto& subscriber : subscribers_) {
        if (subscriber->name == name) {
          found = subscriber;
          break;
        }
      }
    }
    if (!found) return std::nullopt;
    MutexLock lock(found->mu);
    SubscriptionStats stats = found->stats;
    stats.queued = found->queued;
    return stats;
  }

  void publish(std::span<const RecordedEvent> events) ANNALS_EXCLUDES(mu_) {
    if (events.empty()) return;
    std::vector<std::shared_ptr<Subscriber>> targets;
    {
      MutexLock lock(mu_);
      targets = subscribers_;
    }
    Batch batch;  // copied once, shared by every subscriber that wants it
    for (const auto& subscriber : targets) {
      const auto wanted = static_cast<std::size_t>(
          std::count_if(events.begin(), events.end(),
                        [&](const RecordedEvent& e) { return subscriber->filter.matches(e); }));
      if (wanted == 0) continue;
      if (!batch)
        batch = std::make_shared<const std::vector<RecordedEvent>>(events.begin(), events.end());
      if (offer(*subscriber, Queued{batch, wanted})) {
        executor_->submit([self = shared_from_this(), subscriber] { self->drain(subscriber); });
      }
    }
  }

 private:
  // Queues `item` for `subscriber` as its overflow policy allows; true when a
  // drain task must be scheduled.
  bool offer(Subscriber& subscriber, Queued item) ANNALS_EXCLUDES(subscriber.mu) {
    MutexLock lock(subscriber.mu);
    if (!subscriber.active.load()) return false;
    const SubscriptionOptions& options = subscriber.options;
    const auto fits = [&]() ANNALS_REQUIRES(subscriber.mu) {
      return subscriber.queued == 0 || subscriber.queued + item.events <= options.max_queued;
    };
    // A handler publishing (by appending) must not wait for itself to drain.
    const bool own_thread = subscriber.running && subscriber.runner == std::this_thread::get_id();
    if (!fits() && !own_thread) {
      const std::size_t waiting = subscriber.queued;
      bool drop = true;
      if (options.on_overflow == Overflow::block) {
        ++subscriber.stats.blocked;
        const auto deadline = std::chrono::steady_clock::now() + options.block_timeout;
        bool room = fits();
        while (subscriber.active.load() && !room &&
               lock.wait_until(subscriber.space, deadline) == std::cv_status::no_timeout) {
          room = fits();
        }
        room = room || fits();
        if (!subscriber.active.load()) return false;
        drop = !room;
      }
      if (drop) {
        subscriber.stats.dropped += item.events;
        if (subscriber.metrics) subscriber.metrics->dropped.add(item.events);
        const bool first = !std::exchange(subscriber.dropping, true);
        if (options.on_overflow == Overflow::fail) {
          subscriber.stats.failed = true;
          if (subscriber.metrics) subscriber.metrics->drop_queued(subscriber.queued);
          subscriber.active.store(false);
          subscriber.queue.clear();
          subscriber.queued = 0;
          subscriber.space.notify_all();
        }
        const std::int64_t position = item.batch->front().position;
        lock.unlock();
        std::string why = "queue full (" + std::to_string(waiting) + " events waiting, limit " +
                          std::to_string(options.max_queued) + "): ";
        if (options.on_overflow == Overflow::fail) {
          report(subscriber, position, why + "subscription ended, " +
                                           std::to_string(item.events) + " events dropped");
        } else if (first) {
          report(subscriber, position,
                 why + "dropped " + std::to_string(item.events) +
                     " events (and any more until the queue has room; see stats().dropped)");
        }
        return false;
      }
    }
    subscriber.dropping = false;
    if (subscriber.metrics) subscriber.metrics->depth.add(static_cast<double>(item.events));
    subscriber.queued += item.events;
    subscriber.stats.max_queued_seen = std::max(subscriber.stats.max_queued_seen, subscriber.queued);
    subscriber.queue.push_back(std::move(item));
    return !std::exchange(subscriber.scheduled, true);
  }

  void drain(const std::shared_ptr<Subscriber>& subscriber) ANNALS_EXCLUDES(subscriber->mu) {
    MutexLock lock(subscriber->mu);
    while (subscriber->active.load() && !subscriber->queue.empty()) {
      Queued item = std::move(subscriber->queue.front());
      subscriber->queue.pop_front();
      subscriber->queued -= item.events;
      subscriber->space.notify_all();
      subscriber->running = true;
      subscriber->runner = std::this_thread::get_id();
      lock.unlock();
      std::uint64_t delivered = 0;
      SubscriberMetrics* const metrics = subscriber->metrics.get();
      for (const RecordedEvent& event : *item.batch) {
        if (!subscriber->active.load()) break;
        if (!subscriber->filter.matches(event)) continue;
        if (!subscriber->take_token()) break;
        ++delivered;
        bool failed = true;
        try {
          subscriber->handler(event);
          failed = false;
        } catch (const std::exception& e) {
          report(*subscriber, event.position, e.what());
        } catch (...) {
          report(*subscriber, event.position, "a non-standard exception");
        }
        if (metrics) {
          (failed ? metrics->failures : metrics->delivered).add();
          metrics->depth.add(-1);
        }
      }
      // The subscription ended mid-batch: the rest was never handed over.
      if (metrics) metrics->drop_queued(item.events - delivered);
      lock.lock();
      subscriber->stats.delivered += delivered;
      subscriber->running = false;
      subscriber->runner = {};
      subscriber->idle.notify_all();
    }
    subscriber->scheduled = false;
  }

  void report(const Subscriber& subscriber, std::int64_t position, std::string message) noexcept {
    if (!on_error_) return;
    try {
      on_error_(DeliveryError{subscriber.name, position, std::move(message)});
    } catch (...) {  // an error handler that fails has nobody left to tell
    }
  }

  std::shared_ptr<Executor> executor_;
  DeliveryErrorHandler on_error_;
  std::shared_ptr<MetricsRegistry> metrics_;
  Mutex mu_;
  std::vector<std::shared_ptr<Subscriber>> subscribers_ ANNALS_GUARDED_BY(mu_);
};

}  // namespace detail

Dispatcher::Dispatcher(std::shared_ptr<Executor> executor, DeliveryErrorHandler on_error,
                       std::shared_ptr<MetricsRegistry> metrics)
    : core_(std::make_shared<detail::DispatcherCore>(std::move(executor), std::move(on_error),
                                                     std::move(metrics))) {}

Dispatcher::~Dispatcher() = default;

Subscription Dispatcher::subscribe(std::string name, EventFilter filter, EventHandler handler,
                                   SubscriptionOptions options) {
  if (!handler) throw InvalidArgument("subscriber '" + name + "' has no handler");
  const std::string what = "subscriber '" + name + "': ";
  if (options.max_queued == 0) throw InvalidArgument(what + "max_queued must be at least 1");
  if (options.burst == 0) throw InvalidArgument(what + "burst must be at least 1");
  if (!std::isfinite(options.max_rate) || options.max_rate < 0) {
    throw InvalidArgument(what + "max_rate must be a finite number >= 0, got " +
                          std::to_string(options.max_rate));
  }
  if (options.block_timeout.count() < 0) {
    throw InvalidArgument(what + "block_timeout must be >= 0");
  }
  auto subscriber = std::make_shared<detail::Subscriber>();
  subscriber->name = std::move(name);
  subscriber->filter = std::move(filter);
  subscriber->handler = std::move(handler);
  subscriber->options = options;
  if (core_->metrics()) {
    subscriber->metrics =
        std::make_unique<detail::SubscriberMetrics>(core_->metrics(), subscriber->name);
  }
  core_->add(subscriber);
  std::weak_ptr<detail::DispatcherCore> weak = core_;
  return Subscription([weak, subscriber = std::move(subscriber)] {
    if (auto core = weak.lock()) core->remove(subscriber);
    subscriber->deactivate();
  });
}

void Dispatcher::publish(std::span<const RecordedEvent> events) { core_->publish(events); }

std::optional<SubscriptionStats> Dispatcher::stats(std::string_view name) const {
  return core_->stats(name);
}

CommitListenerHandle Dispatcher::connect(EventStore& store) {
  std::weak_ptr<detail::DispatcherCore> weak = core_;
  return store.add_commit_listener([weak](std::span<const RecordedEvent> events) {
    if (auto core = weak.lock()) core->publish(events);
  });
}

}  // namespace annals
