#pragma once
// The metrics a SqliteEventStore reports when SqliteStoreOptions::metrics is
// set (listed in docs/operations.md). Private to the store.

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/metrics.hpp"
#include "annals/store/event_store.hpp"

namespace annals::detail {

/// Thread safety: the metrics are atomics; any thread may report.
struct StoreMetrics {
  explicit StoreMetrics(MetricsRegistry& r)
      : appends(r.counter("annals_store_appends_total", "Appends that returned a result (idempotent retries included).")),
        events(r.counter("annals_store_appended_events_total", "Events in the appends counted by annals_store_appends_total.")),
        conflicts(r.counter("annals_store_conflicts_total", "Appends refused with WrongExpectedVersion.")),
        idempotent_retries(r.counter("annals_store_idempotent_retries_total",
                                     "Streams of appends answered from an earlier append with the same event ids (nothing written).")),
        failures(r.counter("annals_store_append_failures_total", "Appends with valid input that threw anything but WrongExpectedVersion.")),
        latency(r.histogram("annals_store_append_seconds", "Time append() took, successful or not.", kLatencyBuckets)),
        commit_events(r.histogram("annals_store_commit_events", "Events in the appends of one group-commit transaction (idempotent retries included).",
                                  {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096})) {}

  /// Runs one append through `submit`, counting and timing it.
  template <class Submit>
  std::vector<AppendResult> measure(const std::vector<StreamAppend>& batch, Submit&& submit) {
    std::uint64_t n = 0;
    for (const StreamAppend& s : batch) n += s.events.size();
    const auto started = std::chrono::steady_clock::now();
    const auto seconds = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    try {
      auto results = submit();
      latency.observe(seconds());
      appends.add();
      events.add(n);
      return results;
    } catch (const WrongExpectedVersion&) {
      latency.observe(seconds());
      conflicts.add();
      throw;
    } catch (...) {
      latency.observe(seconds());
      failures.add();
      throw;
    }
  }

  Counter& appends;
  Counter& events;
  Counter& conflicts;
  Counter& idempotent_retries;
  Counter& failures;
  Histogram& latency;
  Histogram& commit_events;
};

inline std::unique_ptr<StoreMetrics> make_store_metrics(const std::shared_ptr<MetricsRegistry>& r) {
  return r ? std::make_unique<StoreMetrics>(*r) : nullptr;
}

}  // namespace annals::detail
