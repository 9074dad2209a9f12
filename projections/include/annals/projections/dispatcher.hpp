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
/// Memory stays bounded: each subscriber's queue holds at most
/// SubscriptionOptions::max_queued events; when a batch does not fit, the
/// subscription's Overflow policy decides (block the publisher, drop, or fail
/// the subscription), and a rate limit can slow a subscriber down on purpose.
/// The executor's own queue holds at most one task per subscriber.
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

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

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

/// What publish() does with a batch that does not fit a subscriber's queue.
enum class Overflow {
  /// Waits for room (the publisher, often an appending thread, slows down to
  /// the subscriber's pace) up to SubscriptionOptions::block_timeout, then
  /// drops the batch and reports it. A handler's own publishes (through its
  /// appends) never wait on its own queue: they are queued beyond the bound.
  block,
  /// Drops the batch's events for this subscriber, counts and reports them.
  drop,
  /// Ends the subscription: its queue is emptied, nothing more is delivered,
  /// and a DeliveryError says why; stats().failed becomes true.
  fail,
};

struct SubscriptionOptions {
  /// Most events waiting for this subscriber; at least 1. A batch larger than
  /// this is accepted when the queue is empty. Default: 10,000.
  std::size_t max_queued = 10'000;
  /// Default: Overflow::block.
  Overflow on_overflow = Overflow::block;
  /// Overflow::block: the longest a publish waits for room. Default: 10 s.
  std::chrono::milliseconds block_timeout{10'000};
  /// Most events per second handed to the handler (a token bucket refilled
  /// continuously); 0: no limit. Default: 0.
  double max_rate = 0;
  /// With max_rate: how many events may go at once after a quiet spell; at
  /// least 1. Default: 1.
  std::size_t burst = 1;
};

/// A subscriber's counts, from Dispatcher::stats().
struct SubscriptionStats {
  std::uint64_t delivered = 0;  ///< handler calls made (also those that threw)
  std::uint64_t dropped = 0;    ///< events dropped by the overflow policy
  std::uint64_t blocked = 0;    ///< publishes that had to wait for room
  std::uint64_t delayed = 0;    ///< events held back by the rate limit
  std::size_t queued = 0;       ///< events waiting now
  std::size_t max_queued_seen = 0;  ///< the most that ever waited
  bool failed = false;          ///< ended by Overflow::fail
};
using DeliveryErrorHandler = std::function<void(const DeliveryError&)>;

namespace detail {
class DispatcherCore;
struct Subscriber;
}  // namespace detail

/// Keeps a subscription alive; unsubscribes when destroyed or on reset().
/// After reset() returns, the handler is not running and will not run again,
/// unless reset() is called from inside the handler itself (then the current
/// call finishes and no other starts).
using Subscription = Registration;

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
  /// Throws: InvalidArgument if the handler is empty or the options are out
  /// of range (max_queued or burst of 0, a negative or non-finite max_rate, a
  /// negative block_timeout), naming the subscriber.
  [[nodiscard]] Subscription subscribe(std::string name, EventFilter filter, EventHandler handler,
                                       SubscriptionOptions options = {});
  [[nodiscard]] Subscription subscribe(std::string name, EventHandler handler) {
    return subscribe(std::move(name), EventFilter{}, std::move(handler));
  }

  /// The counts of the live subscription named `name` (the first, if several
  /// share the name); std::nullopt when there is none. A subscription ended by
  /// Overflow::fail stays readable until it is reset.
  std::optional<SubscriptionStats> stats(std::string_view name) const;

  /// Hands `events` (in position order) to every matching subscriber.
  void publish(std::span<const RecordedEvent> events);

  /// Publishes every batch `store` commits from now on, until the returned
  /// handle is reset or destroyed.
  [[nodiscard]] CommitListenerHandle connect(EventStore& store);

 private:
  std::shared_ptr<detail::DispatcherCore> core_;
};

}  // namespace annals
