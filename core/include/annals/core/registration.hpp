#pragma once
/// Registration: the one handle type for everything that is registered and
/// must be unregistered when its owner goes away (a store's commit listener
/// and transaction hook, a dispatcher's subscription). The names
/// CommitListenerHandle, TransactionHookHandle and Subscription are aliases
/// of it.
///
///   annals::Registration wiring = dispatcher.connect(store);
///   annals::Registration sub = dispatcher.subscribe("audit", handler);
///   sub.reset();   // from here on, the handler is not running and never runs again
///
/// Thread safety: a Registration is a plain movable value; use one from one
/// thread at a time. reset() may run concurrently with the registered
/// callback (it waits for it, as the registering type documents).

#include <functional>
#include <utility>

namespace annals {

class Registration {
 public:
  /// An empty registration: active() is false, reset() does nothing.
  Registration() = default;
  /// Calls `unregister` once, on reset() or destruction.
  explicit Registration(std::function<void()> unregister) : unregister_(std::move(unregister)) {}
  Registration(Registration&& other) noexcept
      : unregister_(std::exchange(other.unregister_, nullptr)) {}
  /// Unregisters what this one held, then takes over `other`'s.
  Registration& operator=(Registration&& other) noexcept {
    if (this != &other) {
      reset();
      unregister_ = std::exchange(other.unregister_, nullptr);
    }
    return *this;
  }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  ~Registration() { reset(); }

  /// Unregisters now. What the registering type promises then holds (for
  /// listeners, hooks and subscriptions: the callback is not running and will
  /// not run again, unless reset() is called from inside it, when the current
  /// call finishes and no other starts). Never throws; a second call does
  /// nothing.
  void reset() noexcept {
    if (unregister_) {
      auto unregister = std::exchange(unregister_, nullptr);
      try {
        unregister();
      } catch (...) {  // a destructor path: never throw
      }
    }
  }

  /// True until reset() (or a move from this one).
  bool active() const noexcept { return static_cast<bool>(unregister_); }

 private:
  std::function<void()> unregister_;
};

}  // namespace annals
