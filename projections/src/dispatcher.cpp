// Each subscriber has its own queue of published batches and at most one
// drain task queued or running on the executor at a time. That one task
// delivers the queue in order, which gives per-subscriber ordering and
// one-at-a-time delivery on any executor, and lets a handler publish (through
// an append) without re-entering itself: the new batch just joins the queue.

#include "annals/projections/dispatcher.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"

namespace annals {

namespace detail {

using Batch = std::shared_ptr<const std::vector<RecordedEvent>>;

struct Subscriber {
  std::string name;
  EventFilter filter;
  EventHandler handler;

  std::mutex mu;
  std::condition_variable idle;
  std::deque<Batch> queue;
  bool scheduled = false;  // a drain task is queued or running
  bool running = false;    // a handler call is in progress
  std::thread::id runner;  // the thread making it
  std::atomic<bool> active{true};

  // Stops delivery; waits for a handler call in progress unless we are it.
  void deactivate() {
    std::unique_lock lock(mu);
    active.store(false);
    queue.clear();
    if (running && runner == std::this_thread::get_id()) return;
    idle.wait(lock, [this] { return !running; });
  }
};

class DispatcherCore : public std::enable_shared_from_this<DispatcherCore> {
 public:
  DispatcherCore(std::shared_ptr<Executor> executor, DeliveryErrorHandler on_error)
      : executor_(executor ? std::move(executor) : std::make_shared<InlineExecutor>()),
        on_error_(std::move(on_error)) {}

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
      if (std::none_of(events.begin(), events.end(),
                       [&](const RecordedEvent& e) { return subscriber->filter.matches(e); })) {
        continue;
      }
      if (!batch)
        batch = std::make_shared<const std::vector<RecordedEvent>>(events.begin(), events.end());
      bool schedule = false;
      {
        std::lock_guard lock(subscriber->mu);
        if (!subscriber->active.load()) continue;
        subscriber->queue.push_back(batch);
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
      Batch batch = std::move(subscriber->queue.front());
      subscriber->queue.pop_front();
      subscriber->running = true;
      subscriber->runner = std::this_thread::get_id();
      lock.unlock();
      for (const RecordedEvent& event : *batch) {
        if (!subscriber->active.load()) break;
        if (!subscriber->filter.matches(event)) continue;
        try {
          subscriber->handler(event);
        } catch (const std::exception& e) {
          report(*subscriber, event.position, e.what());
        } catch (...) {
          report(*subscriber, event.position, "a non-standard exception");
        }
      }
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
  std::mutex mu_;
  std::vector<std::shared_ptr<Subscriber>> subscribers_;
};

}  // namespace detail

Dispatcher::Dispatcher(std::shared_ptr<Executor> executor, DeliveryErrorHandler on_error)
    : core_(std::make_shared<detail::DispatcherCore>(std::move(executor), std::move(on_error))) {}

Dispatcher::~Dispatcher() = default;

Subscription Dispatcher::subscribe(std::string name, EventFilter filter, EventHandler handler) {
  if (!handler) throw InvalidArgument("subscriber '" + name + "' has no handler");
  auto subscriber = std::make_shared<detail::Subscriber>();
  subscriber->name = std::move(name);
  subscriber->filter = std::move(filter);
  subscriber->handler = std::move(handler);
  core_->add(subscriber);
  std::weak_ptr<detail::DispatcherCore> weak = core_;
  return Subscription([weak, subscriber = std::move(subscriber)] {
    if (auto core = weak.lock()) core->remove(subscriber);
    subscriber->deactivate();
  });
}

void Dispatcher::publish(std::span<const RecordedEvent> events) { core_->publish(events); }

CommitListenerHandle Dispatcher::connect(EventStore& store) {
  std::weak_ptr<detail::DispatcherCore> weak = core_;
  return store.add_commit_listener([weak](std::span<const RecordedEvent> events) {
    if (auto core = weak.lock()) core->publish(events);
  });
}

}  // namespace annals
