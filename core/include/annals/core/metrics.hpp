#pragma once
/// Metrics: counters, gauges and histograms kept in a registry, and their
/// Prometheus text exposition (format 0.0.4), for a service to serve at
/// /metrics.
///
///   annals::MetricsRegistry metrics;
///   auto& appends = metrics.counter("annals_appends_total", "Appends committed.");
///   auto& latency = metrics.histogram("annals_append_seconds", "Append latency.",
///                                     annals::kLatencyBuckets);
///   appends.add();
///   latency.observe(0.0021);
///   std::string text = metrics.prometheus_text();
///
/// A metric is identified by its name and its labels; asking again for the
/// same one returns the same object, whose reference stays valid as long as
/// the registry. Updates are lock-free atomics; registering and exposition
/// take the registry's lock.
///
/// Thread safety: every member of every type here may be called concurrently.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "annals/core/thread_annotations.hpp"

namespace annals {

/// Label name -> value, e.g. {{"projection", "balances"}}.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

/// Upper bounds in seconds for latencies from 50 µs to 10 s.
inline const std::vector<double> kLatencyBuckets{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                 0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                                 0.5,     1,      2.5,     5,      10};

/// A value that only goes up (events appended, failures).
class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down (lag, queue depth).
class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  /// Adds `d` (negative to subtract) atomically, for a gauge that several
  /// reporters move together (the events queued for subscribers of one name).
  void add(double d) noexcept {
    double old = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(old, old + d, std::memory_order_relaxed)) {
    }
  }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// Counts observations into buckets by upper bound, with their sum.
class Histogram {
 public:
  /// `bounds`: strictly increasing finite upper bounds; +Inf is implied.
  /// Throws: InvalidArgument otherwise.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v) noexcept;

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  ///< per bound, then +Inf (== count)
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
  std::atomic<std::uint64_t> count_{0};
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  /// The metric `name` with `labels`, created on first use. `help` is kept
  /// from the first registration of the name.
  /// Throws: InvalidArgument for a name outside [a-zA-Z_:][a-zA-Z0-9_:]*, a
  /// label name outside [a-zA-Z_][a-zA-Z0-9_]* or starting with "__", a label
  /// named twice, a name already registered as another kind of metric, or
  /// histogram bounds that differ from the name's first registration.
  Counter& counter(const std::string& name, const std::string& help, const MetricLabels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const MetricLabels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help,
                       const std::vector<double>& bounds, const MetricLabels& labels = {});

  /// Every metric in the Prometheus text format 0.0.4 (serve it with
  /// Content-Type "text/plain; version=0.0.4; charset=utf-8"): for each name,
  /// in name order, "# HELP" and "# TYPE" lines, then one sample per label
  /// set (histograms: _bucket{le=...}, _sum and _count). Label values and
  /// help text are escaped as the format requires.
  std::string prometheus_text() const;

 private:
  struct Family;
  Family& family(const std::string& name, const std::string& help, int kind,
                 const MetricLabels& labels) ANNALS_REQUIRES(mutex_);
  mutable detail::Mutex mutex_;
  std::map<std::string, std::unique_ptr<Family>> families_ ANNALS_GUARDED_BY(mutex_);
};

}  // namespace annals
