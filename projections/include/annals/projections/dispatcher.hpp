#pragma once
/// Dispatcher: in-process publish/subscribe of committed events.
///
///   annals::Dispatcher dispatcher(std::make_shared<annals::ThreadPoolExecutor>(4),
///                                 [](const annals::DeliveryError& e) { log(e); });
///   auto wiring = dispatcher.connect(store);            // publish after each commit
///   auto sub = dispatcher.subscribe("balances", annals::EventFilter::for_category("account"),
///                                   [](const annals::RecordedEvent& e) { ... });
///
/// Each subscriber receives the events that pass its filter in position order,
/// one at a time, whatever the executor. A handler that throws is reported to
/// the error handler (subscriber, position, message) and delivery goes on, to
/// it and to the others. Handlers may subscribe and unsubscribe, and may
/// append to the store, without deadlock.
///
/// Delivery is in memory and at most once: events published while nobody is
/// subscribed, or lost with the process, are not redelivered. Read models that
/// must not miss an event use a durable projection, which reads the store.
///
/// Given a MetricsRegistry, the dispatcher reports per subscriber name the
/// events queued and not yet handled, the handler calls that returned or
/// threw, and the events dropped undelivered because the subscription ended
/// (docs/operations.md); without one it measures nothing.
///
/// Thread safety: every member may be called from any thread. The executor
/// and the dispatcher must outlive the subscriptions' handlers' runs: destroy
/// (or reset) subscriptions before the dispatcher, and the dispatcher before
/// its executor.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "annals/core/metrics.hpp"
#include "annals/projections/executor.hpp"
#include "annals/store/event_store.hpp"

namespace annals {

struct DeliveryError {
  std::string subscriber;
  std::int64_t position = 0;
  std::string message;
};

using EventHandler = std::function<void(const RecordedEvent&)>;
using DeliveryErrorHandler = std::function<void(const DeliveryError&)>;

namespace detail {
class DispatcherCore;
struct Subscriber;
}  // namespace detail

/// Keeps a subscription alive; unsubscribes when destroyed or on reset().
/// After reset() returns, the handler is not running and will not run again,
/// unless reset() is called from inside the handler itself (then the current
/// call finishes and no other starts).
class Subscription {
 public:
  Subscription() = default;
  Subscription(std::weak_ptr<detail::DispatcherCore> core,
               std::shared_ptr<detail::Subscriber> subscriber);
  Subscription(Subscription&&) noexcept = default;
  Subscription& operator=(Subscription&& other) noexcept;
  ~Subscription() { reset(); }

  void reset() noexcept;
  bool active() const noexcept;

 private:
  std::weak_ptr<detail::DispatcherCore> core_;
  std::shared_ptr<detail::Subscriber> subscriber_;
};

class Dispatcher {
 public:
  /// `executor` runs handlers (inline when null); `on_error` receives handler
  /// failures (ignored when empty). Under a thread pool `on_error` may be called
  /// from several threads at once (for different subscribers); it must not throw.
  /// `metrics`: the registry to report into (none when null); dispatchers
  /// sharing a registry add up into the same metrics, as do subscribers
  /// sharing a name.
  explicit Dispatcher(std::shared_ptr<Executor> executor = nullptr,
                      DeliveryErrorHandler on_error = {},
                      std::shared_ptr<MetricsRegistry> metrics = nullptr);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Delivers to `handler` every published event that passes `filter` (by
  /// event type, stream prefix or category; an empty filter passes all).
  /// `name` identifies the subscriber in error reports.
  /// Throws: InvalidArgument if the handler is empty.
  [[nodiscard]] Subscription subscribe(std::string name, EventFilter filter, EventHandler handler);
  [[nodiscard]] Subscription subscribe(std::string name, EventHandler handler) {
    return subscribe(std::move(name), EventFilter{}, std::move(handler));
  }

  /// Hands `events` (in position order) to every matching subscriber.
  void publish(std::span<const RecordedEvent> events);

  /// Publishes every batch `store` commits from now on, until the returned
  /// handle is reset or destroyed.
  [[nodiscard]] CommitListenerHandle connect(EventStore& store);

 private:
  std::shared_ptr<detail::DispatcherCore> core_;
};

}  // namespace annals
