#pragma once
// The metrics a ProjectionRunner reports when ProjectionRunnerOptions::metrics
// is set (listed in docs/operations.md), labelled with the projection's name.
// Private to the projections module.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "annals/core/metrics.hpp"

namespace annals::detail {

/// Thread safety: the metrics are atomics; any thread may report.
struct ProjectionMetrics {
  ProjectionMetrics(MetricsRegistry& r, const std::string& name)
      : handled(r.counter("annals_projection_events_handled_total",
                          "Positions the projection's checkpoint moved past (events applied, filtered out or parked).",
                          {{"projection", name}})),
        failures(r.counter("annals_projection_attempt_failures_total",
                           "Failed attempts at an event or at the read model.", {{"projection", name}})),
        parked(r.counter("annals_projection_parked_total", "Events parked under PoisonPolicy::park.",
                         {{"projection", name}})),
        checkpoint(r.gauge("annals_projection_checkpoint_position",
                           "The checkpoint the runner last committed.", {{"projection", name}})),
        lag(r.gauge("annals_projection_lag_events",
                    "The store's head as the runner last read it, minus the checkpoint.",
                    {{"projection", name}})) {}

  /// The checkpoint moved from `from` to `to` (a rebuild moves it back to 0).
  void advanced(std::int64_t from, std::int64_t to) noexcept {
    if (to > from) handled.add(static_cast<std::uint64_t>(to - from));
    checkpoint.set(static_cast<double>(to));
    set_lag(to);
  }

  /// The runner read the store's head `position` while at `checkpoint`.
  void saw_head(std::int64_t position, std::int64_t at) noexcept {
    head.store(position, std::memory_order_relaxed);
    set_lag(at);
  }

  Counter& handled;
  Counter& failures;
  Counter& parked;
  Gauge& checkpoint;
  Gauge& lag;
  std::atomic<std::int64_t> head{0};

 private:
  void set_lag(std::int64_t at) noexcept {
    lag.set(static_cast<double>(std::max<std::int64_t>(0, head.load(std::memory_order_relaxed) - at)));
  }
};

inline std::unique_ptr<ProjectionMetrics> make_projection_metrics(
    const std::shared_ptr<MetricsRegistry>& r, const std::string& name) {
  return r ? std::make_unique<ProjectionMetrics>(*r, name) : nullptr;
}

}  // namespace annals::detail
