#pragma once
/// Given/when/then tests of domain logic, without a database and without any
/// test framework: a mismatch throws ScenarioFailure whose message shows the
/// expected and the actual events as JSON.
///
///   Scenario<Account>{"1"}
///       .given(Opened{"Ada"}, Deposited{500})
///       .when([](Account& a) { a.withdraw(700); })
///       .then_throws<InsufficientFunds>();
///
///   Scenario<Account>{"1"}.given(Opened{"Ada"}).when([](Account& a) { a.deposit(5); })
///       .then(Deposited{5});
///
/// Thread safety: a scenario is used by one thread.

#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "annals/aggregates/aggregate.hpp"

namespace annals::testing {

/// A scenario whose outcome differs from the expectation.
class ScenarioFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class A>
class Scenario {
 public:
  explicit Scenario(std::string id) : aggregate_(std::move(id)) {}

  /// Applies past events, as a load would (they are not pending).
  template <class... Es>
  Scenario& given(const Es&... events) {
    static_assert((std::is_constructible_v<typename A::EventType, Es> && ...),
                  "given() takes events of the aggregate's event variant");
    (detail::AggregateAccess::replay_one(aggregate_, events, aggregate_.version_loaded() + 1), ...);
    return *this;
  }

  /// Runs a command; an exception it throws is kept for then_throws().
  template <class Command>
  Scenario& when(Command&& command) {
    try {
      command(aggregate_);
    } catch (...) {
      error_ = std::current_exception();
    }
    ran_ = true;
    return *this;
  }

  /// The command raised exactly these events, in this order (compared by type
  /// name, schema version and JSON payload).
  /// Throws: ScenarioFailure.
  /// Returns a copy of the aggregate for checks of its state (a copy, because
  /// scenarios are usually temporaries).
  template <class... Es>
  A then(const Es&... expected) const {
    require_ran("then");
    if (error_)
      fail("expected events\n" + describe_all(expected...) + "but the command threw " +
           describe_error());
    const std::string want = describe_all(expected...);
    std::string got;
    for (const auto& event : aggregate_.pending_events()) {
      got += std::visit([](const auto& e) { return describe(e); }, event);
    }
    // Both sides in the same form: no event at all reads "(none)" on each.
    if (want != orNone(got)) {
      fail("expected events\n" + want + "but the command raised\n" + orNone(got));
    }
    return aggregate_;
  }

  /// The command raised no event and threw nothing.
  A then_nothing() const { return then(); }

  /// The command threw an exception of type Ex (or derived from it).
  /// Throws: ScenarioFailure.
  template <class Ex>
  A then_throws() const {
    require_ran("then_throws");
    if (!error_) {
      std::string got;
      for (const auto& event : aggregate_.pending_events()) {
        got += std::visit([](const auto& e) { return describe(e); }, event);
      }
      fail(std::string("expected the command to throw ") + typeid(Ex).name() + " but it raised\n" +
           orNone(got));
    }
    try {
      std::rethrow_exception(error_);
    } catch (const Ex&) {
      return aggregate_;
    } catch (...) {
      fail(std::string("expected the command to throw ") + typeid(Ex).name() + " but it threw " +
           describe_error());
    }
    return aggregate_;
  }

  /// The aggregate, for checks of its state.
  const A& aggregate() const noexcept { return aggregate_; }

 private:
  template <class E>
  static std::string describe(const E& event) {
    Json j = Json::object();
    j["type"] = E::type_name;
    j["schema_version"] = E::schema_version;
    j["payload"] = Json(event);
    return "  " + j.dump() + "\n";
  }
  template <class... Es>
  static std::string describe_all(const Es&... events) {
    std::string out = (std::string() + ... + describe(events));
    return orNone(out);
  }
  static std::string orNone(const std::string& s) { return s.empty() ? "  (none)\n" : s; }
  std::string describe_error() const {
    try {
      std::rethrow_exception(error_);
    } catch (const std::exception& e) {
      return std::string(typeid(e).name()) + ": " + e.what();
    } catch (...) {
      return "a non-standard exception";
    }
  }
  void require_ran(const char* what) const {
    if (!ran_) fail(std::string(what) + "() called before when()");
  }
  [[noreturn]] static void fail(const std::string& message) { throw ScenarioFailure(message); }

  A aggregate_;
  std::exception_ptr error_;
  bool ran_ = false;
};

}  // namespace annals::testing
