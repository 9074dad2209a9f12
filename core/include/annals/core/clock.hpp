#pragma once
/// Time as Annals records it: UTC with microsecond resolution. The clock is
/// injectable so tests and audits can fix or step time.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "annals/core/thread_annotations.hpp"

namespace annals {

using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

/// Source of recorded_at times.
/// Thread safety: implementations must allow concurrent now() calls.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp now() const = 0;
};

/// The system's real-time clock, truncated to microseconds.
class SystemClock final : public Clock {
 public:
  Timestamp now() const override;
  /// A shared instance, the default clock of every store.
  static std::shared_ptr<const Clock> shared();
};

/// A clock that returns a set time and moves only when told; for tests and
/// reproducible demos. Thread safety: all members are safe to call concurrently.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start) : now_(start) {}
  Timestamp now() const override;
  void set(Timestamp t);
  void advance(std::chrono::microseconds by);

 private:
  mutable detail::Mutex mu_;
  Timestamp now_ ANNALS_GUARDED_BY(mu_);
};

/// "2026-03-01T12:00:00.000000Z".
std::string format_timestamp(Timestamp t);

/// Parses ISO 8601 UTC times: "2026-03-01", "2026-03-01T12:00:00Z",
/// "2026-03-01T12:00:00.123456Z" and "+hh:mm"/"-hh:mm" offsets.
/// Timestamps have microsecond precision and a fraction finer than that is
/// refused, never rounded or cut: "...00.1234567Z" throws, while digits after
/// the sixth that are all 0 ("...00.123456000Z", nanosecond tools) are accepted.
/// Throws: InvalidArgument naming the text when it is not such a time.
Timestamp parse_timestamp(std::string_view text);

/// Microseconds since the Unix epoch, the form stored in the events table.
constexpr std::int64_t to_micros(Timestamp t) noexcept { return t.time_since_epoch().count(); }
constexpr Timestamp from_micros(std::int64_t us) noexcept {
  return Timestamp(std::chrono::microseconds(us));
}

}  // namespace annals
