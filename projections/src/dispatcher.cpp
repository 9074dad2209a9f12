// Each subscriber has its own queue of published batches and at most one
// drain task queued or running on the executor at a time. That one task
// delivers the queue in order, which gives per-subscriber ordering and
// one-at-a-time delivery on any executor, and lets a handler publish (through
// an append) without re-entering itself: the new batch just joins the queue.
//
// With a metrics registry each queued batch carries how many of its events
// pass the subscriber's filter; the queue-depth gauge goes up by that at
// publish and down by one per event handled or dropped.

#include "annals/projections/dispatcher.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"

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
                                  "Events queued for the subscriber and never handed to it because the subscription ended first.",
                                  {{"subscriber", name}})) {}

  void drop(std::uint64_t n) noexcept {
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

struct Queued {
  Batch batch;
  std::uint64_t matching = 0;  // events passing the filter; counted with metrics only
};

struct Subscriber {
  std::string name;
  EventFilter filter;
  EventHandler handler;
  std::unique_ptr<SubscriberMetrics> metrics;  // null: nobody listens

  std::mutex mu;
  std::condition_variable idle;
  std::deque<Queued> queue;
  bool scheduled = false;  // a drain task is queued or running
  bool running = false;    // a handler call is in progress
  std::thread::id runner;  // the thread making it
  std::atomic<bool> active{true};

  // Stops delivery; waits for a handler call in progress unless we are it.
  void deactivate() {
    std::unique_lock lock(mu);
    active.store(false);
    if (metrics) {
      for (const Queued& q : queue) metrics->drop(q.matching);
    }
    queue.clear();
    if (running && runner == std::this_thread::get_id()) return;
    idle.wait(lock, [this] { return !running; });
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

  void add(std::shared_ptr<Subscriber> subscriber) {
    std::lock_guard lock(mu_);
    subscribers_.push_back(std::move(subscriber));
  }

  void remove(const std::shared_ptr<Subscriber>& subscriber) {
    std::lock_guard lock(mu_);
    std::erase(subscribers_, subscriber);
  }

  void publish(std::span<const RecordedEvent> events) {
    if (events.empty()) return;
    std::vector<std::shared_ptr<Subscriber>> targets;
    {
      std::lock_guard lock(mu_);
      targets = subscribers_;
    }
    Batch batch;  // copied once, shared by every subscriber that wants it
    for (const auto& subscriber : targets) {
      const auto passes = [&](const RecordedEvent& e) { return subscriber->filter.matches(e); };
      std::uint64_t matching = 0;
      if (subscriber->metrics) {
        matching = static_cast<std::uint64_t>(std::count_if(events.begin(), events.end(), passes));
        if (matching == 0) continue;
      } else if (std::none_of(events.begin(), events.end(), passes)) {
        continue;
      }
      if (!batch)
        batch = std::make_shared<const std::vector<RecordedEvent>>(events.begin(), events.end());
      bool schedule = false;
      {
        std::lock_guard lock(subscriber->mu);
        if (!subscriber->active.load()) continue;
        subscriber->queue.push_back(Queued{batch, matching});
        if (subscriber->metrics) subscriber->metrics->depth.add(static_cast<double>(matching));
        schedule = !std::exchange(subscriber->scheduled, true);
      }
      if (schedule) {
        executor_->submit([self = shared_from_this(), subscriber] { self->drain(subscriber); });
      }
    }
  }

 private:
  void drain(const std::shared_ptr<Subscriber>& subscriber) {
    std::unique_lock lock(subscriber->mu);
    while (subscriber->active.load() && !subscriber->queue.empty()) {
      Batch batch = std::move(subscriber->queue.front().batch);
      std::uint64_t undelivered = subscriber->queue.front().matching;
      subscriber->queue.pop_front();
      subscriber->running = true;
      subscriber->runner = std::this_thread::get_id();
      lock.unlock();
      SubscriberMetrics* const metrics = subscriber->metrics.get();
      for (const RecordedEvent& event : *batch) {
        if (!subscriber->active.load()) break;
        if (!subscriber->filter.matches(event)) continue;
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
          --undelivered;
        }
      }
      if (metrics) metrics->drop(undelivered);  // the subscription ended mid-batch
      lock.lock();
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
  std::mutex mu_;
  std::vector<std::shared_ptr<Subscriber>> subscribers_;
};

}  // namespace detail

Subscription::Subscription(std::weak_ptr<detail::DispatcherCore> core,
                           std::shared_ptr<detail::Subscriber> subscriber)
    : core_(std::move(core)), subscriber_(std::move(subscriber)) {}

Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    reset();
    core_ = std::move(other.core_);
    subscriber_ = std::move(other.subscriber_);
  }
  return *this;
}

void Subscription::reset() noexcept {
  if (!subscriber_) return;
  auto subscriber = std::move(subscriber_);
  try {
    if (auto core = core_.lock()) core->remove(subscriber);
    subscriber->deactivate();
  } catch (...) {  // never throw from reset/destructor (mutex errors only)
  }
}

bool Subscription::active() const noexcept { return subscriber_ && subscriber_->active.load(); }

Dispatcher::Dispatcher(std::shared_ptr<Executor> executor, DeliveryErrorHandler on_error,
                       std::shared_ptr<MetricsRegistry> metrics)
    : core_(std::make_shared<detail::DispatcherCore>(std::move(executor), std::move(on_error),
                                                     std::move(metrics))) {}

Dispatcher::~Dispatcher() = default;

Subscription Dispatcher::subscribe(std::string name, EventFilter filter, EventHandler handler) {
  if (!handler) throw InvalidArgument("subscriber '" + name + "' has no handler");
  auto subscriber = std::make_shared<detail::Subscriber>();
  subscriber->name = std::move(name);
  subscriber->filter = std::move(filter);
  subscriber->handler = std::move(handler);
  if (core_->metrics()) {
    subscriber->metrics = std::make_unique<detail::SubscriberMetrics>(core_->metrics(), subscriber->name);
  }
  core_->add(subscriber);
  return Subscription(core_, std::move(subscriber));
}

void Dispatcher::publish(std::span<const RecordedEvent> events) { core_->publish(events); }

CommitListenerHandle Dispatcher::connect(EventStore& store) {
  std::weak_ptr<detail::DispatcherCore> weak = core_;
  return store.add_commit_listener([weak](std::span<const RecordedEvent> events) {
    if (auto core = weak.lock()) core->publish(events);
  });
}

}  // namespace annals
