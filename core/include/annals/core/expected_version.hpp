#pragma once
/// The optimistic-concurrency condition an append is made under.
///
/// - any():            append whatever the stream's current version;
/// - no_stream():      the stream must not exist yet (same as exactly(0));
/// - stream_exists():  the stream must hold at least one event;
/// - exactly(n):       the stream's last version must be n (versions start at 1).
///
/// Thread safety: an immutable value type.

#include <cstdint>
#include <string>

namespace annals {

class ExpectedVersion {
 public:
  enum class Kind { any, no_stream, stream_exists, exactly };

  static constexpr ExpectedVersion any() noexcept { return ExpectedVersion(Kind::any, 0); }
  static constexpr ExpectedVersion no_stream() noexcept {
    return ExpectedVersion(Kind::no_stream, 0);
  }
  static constexpr ExpectedVersion stream_exists() noexcept {
    return ExpectedVersion(Kind::stream_exists, 0);
  }
  /// Throws: InvalidArgument if n < 0.
  static ExpectedVersion exactly(std::int64_t n);

  constexpr Kind kind() const noexcept { return kind_; }
  /// The version for Kind::exactly; 0 otherwise.
  constexpr std::int64_t value() const noexcept { return value_; }

  /// True when a stream whose last version is `actual` (0: no stream) satisfies this.
  constexpr bool matches(std::int64_t actual) const noexcept {
    switch (kind_) {
      case Kind::any:
        return true;
      case Kind::no_stream:
        return actual == 0;
      case Kind::stream_exists:
        return actual > 0;
      case Kind::exactly:
        return actual == value_;
    }
    return false;
  }

  /// "any", "no_stream", "stream_exists" or "exactly(n)".
  std::string to_string() const;

  friend constexpr bool operator==(ExpectedVersion, ExpectedVersion) = default;

 private:
  constexpr ExpectedVersion(Kind kind, std::int64_t value) noexcept : kind_(kind), value_(value) {}
  Kind kind_;
  std::int64_t value_;
};

}  // namespace annals
