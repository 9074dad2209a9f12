#pragma once
// A one-line progress bar on stderr for long commands (export, import,
// verify, rebuild --wait). It draws only when stderr is a terminal and the
// work is large, redraws at most a few times a second, and erases itself when
// done, so piped or redirected output never contains it.

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

namespace annals::tool {

/// Thread safety: one thread at a time.
class ProgressBar {
 public:
  /// Work at or below this many items draws nothing.
  static constexpr std::int64_t kThreshold = 2000;
  /// Least time between two redraws.
  static constexpr std::chrono::milliseconds kRedrawInterval{200};

  /// `enabled`: whether `err` is a terminal. `total`: items expected, 0 when
  /// unknown (then the count alone is shown).
  ProgressBar(std::ostream& err, bool enabled, std::string label, std::int64_t total = 0);
  /// Erases the bar if it was drawn. Never throws.
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Reports `done` items (and a new total, if > 0).
  void update(std::int64_t done, std::int64_t total = 0);
  /// Erases the bar now. Never throws.
  void finish() noexcept;

 private:
  void draw(std::int64_t done);

  std::ostream& err_;
  bool enabled_;
  std::string label_;
  std::int64_t total_;
  bool drawn_ = false;
  std::size_t width_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace annals::tool
