#pragma once
/// The aggregate base: an id, a version, state, and the events raised by
/// commands but not yet saved.
///
///   class Account : public annals::Aggregate<Account, AccountEvent> {
///    public:
///     static constexpr std::string_view category = "account";
///     using Aggregate::Aggregate;                       // Account(std::string id)
///     void deposit(std::int64_t cents) {                // a command: check, then raise
///       if (cents <= 0) throw InvalidAmount{};
///       raise(Deposited{cents});
///     }
///     void apply(const Deposited& e) { balance_ += e.amount; }  // state change only
///     ...
///   };
///
/// Requires of Derived: `static constexpr std::string_view category`, a
/// constructor from the id (std::string), and `void apply(const E&)` for every
/// alternative E of Events. Optional, for snapshots: `static constexpr int
/// snapshot_schema_version`, `Json snapshot_state() const` and
/// `void restore_state(const Json&)`.
///
/// Thread safety: an aggregate is a plain object; use one from one thread at a
/// time (a repository loads a fresh copy per call).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "annals/core/codec.hpp"

namespace annals {

namespace detail {
struct AggregateAccess;
}

template <class Derived, EventVariant Events>
class Aggregate {
 public:
  using EventType = Events;

  explicit Aggregate(std::string id) : id_(std::move(id)) {}

  const std::string& id() const noexcept { return id_; }
  /// Stream of this aggregate: "<category>-<id>".
  std::string stream_id() const { return std::string(Derived::category) + "-" + id_; }
  /// The id of the aggregate of this type that lives in `stream_id`, the
  /// inverse of stream_id(): "account-42" gives "42" for category "account".
  /// std::nullopt when the stream is not "<category>-<id>" with a non-empty
  /// id (another category's stream, or the bare category).
  static std::optional<std::string> id_from_stream(std::string_view stream_id) {
    const std::string_view category = Derived::category;
    if (stream_id.size() <= category.size() + 1 || !stream_id.starts_with(category) ||
        stream_id[category.size()] != '-') {
      return std::nullopt;
    }
    return std::string(stream_id.substr(category.size() + 1));
  }
  /// Version including pending events.
  std::int64_t version() const noexcept {
    return version_loaded_ + static_cast<std::int64_t>(pending_.size());
  }
  /// Version of the last stored event that was applied (0 for a new aggregate).
  std::int64_t version_loaded() const noexcept { return version_loaded_; }
  /// Events raised since the aggregate was loaded or last saved, in order.
  const std::vector<Events>& pending_events() const noexcept { return pending_; }

 protected:
  /// Applies `event` to the state and keeps it as pending. Call from commands,
  /// after their checks: apply() must not fail.
  template <class E>
  requires std::is_constructible_v<Events, E>
  void raise(E event) {
    static_cast<Derived&>(*this).apply(std::as_const(event));
    pending_.emplace_back(std::move(event));
  }

  ~Aggregate() = default;
  Aggregate(const Aggregate&) = default;
  Aggregate(Aggregate&&) noexcept = default;
  Aggregate& operator=(const Aggregate&) = default;
  Aggregate& operator=(Aggregate&&) noexcept = default;

 private:
  friend struct detail::AggregateAccess;

  std::string id_;
  std::int64_t version_loaded_ = 0;
  std::vector<Events> pending_;
};

/// Aggregates that can be snapshotted.
template <class A>
concept Snapshottable = requires(const A& a, A& m, const Json& j) {
  { A::snapshot_schema_version } -> std::convertible_to<int>;
  { a.snapshot_state() } -> std::convertible_to<Json>;
  m.restore_state(j);
};

namespace detail {

/// What repositories and test scenarios may do to an aggregate that commands may not.
struct AggregateAccess {
  template <class A, class Event>
  static void replay(A& a, const Event& event, std::int64_t version) {
    std::visit([&](const auto& e) { a.apply(e); }, event);
    a.version_loaded_ = version;
  }
  // A given event of a concrete type: applied without wrapping it in the
  // variant first.
  template <class A, class E>
  static void replay_one(A& a, const E& event, std::int64_t version) {
    a.apply(event);
    a.version_loaded_ = version;
  }
  template <class A>
  static void skip_to(A& a, std::int64_t version) {
    a.version_loaded_ = version;
  }
  template <class A>
  static void mark_saved(A& a) {
    a.version_loaded_ += static_cast<std::int64_t>(a.pending_.size());
    a.pending_.clear();
  }
};

}  // namespace detail

}  // namespace annals
