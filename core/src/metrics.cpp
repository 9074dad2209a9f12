// The Prometheus text format written here is version 0.0.4: lines
// "name{label="value",...} value", "# HELP name text" and "# TYPE name kind";
// in label values backslash, double quote and newline are escaped as \\, \"
// and \n, in help text backslash and newline; floats are Go-style, with
// +Inf, -Inf and NaN spelled so.

#include "annals/core/metrics.hpp"

#include <charconv>
#include <cmath>
#include <set>
#include <variant>

#include "annals/core/error.hpp"

namespace annals {

namespace {

enum Kind { kCounter, kGauge, kHistogram };

bool valid_name(std::string_view name, bool colons) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colons && c == ':');
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  return ec == std::errc() ? std::string(buffer, end) : std::string("NaN");
}

std::string escape(std::string_view text, bool quotes) {
  std::string out;
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (quotes && c == '"') out += "\\\"";
    else out += c;
  }
  return out;
}

// {a="x",b="y"} with `extra` (le="...") last; empty when there are no labels.
std::string label_text(const MetricLabels& labels, const std::string& extra = {}) {
  std::string out;
  for (const auto& [name, value] : labels) {
    out += (out.empty() ? "" : ",") + name + "=\"" + escape(value, true) + "\"";
  }
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out.empty() ? out : "{" + out + "}";
}

void atomic_add(std::atomic<double>& target, double v) noexcept {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + v, std::memory_order_relaxed)) {
  }
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1])) {
      throw InvalidArgument("histogram bounds must be finite and strictly increasing");
    }
  }
  counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double v) noexcept {
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // Read from the buckets, so that +Inf and count agree within one snapshot.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

struct MetricsRegistry::Family {
  std::string help;
  int kind = kCounter;
  std::vector<double> bounds;
  // Label sets in registration order, each with its metric.
  std::vector<std::pair<MetricLabels, std::variant<std::unique_ptr<Counter>, std::unique_ptr<Gauge>,
                                                   std::unique_ptr<Histogram>>>>
      members;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family& MetricsRegistry::family(const std::string& name, const std::string& help,
                                                 int kind, const MetricLabels& labels) {
  if (!valid_name(name, true)) throw InvalidArgument("metric name '" + name + "' is not valid");
  std::set<std::string> seen;
  for (const auto& [label, value] : labels) {
    if (!valid_name(label, false) || label.rfind("__", 0) == 0 || (kind == kHistogram && label == "le")) {
      throw InvalidArgument("label name '" + label + "' of metric '" + name + "' is not valid");
    }
    if (!seen.insert(label).second) {
      throw InvalidArgument("label '" + label + "' given twice for metric '" + name + "'");
    }
  }
  auto& slot = families_[name];
  if (!slot) {
    slot = std::make_unique<Family>();
    slot->help = help;
    slot->kind = kind;
  } else if (slot->kind != kind) {
    throw InvalidArgument("metric '" + name + "' is already registered as another kind");
  }
  return *slot;
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help,
                                  const MetricLabels& labels) {
  detail::MutexLock lock(mutex_);
  Family& f = family(name, help, kCounter, labels);
  for (auto& [l, m] : f.members) {
    if (l == labels) return *std::get<std::unique_ptr<Counter>>(m);
  }
  f.members.emplace_back(labels, std::make_unique<Counter>());
  return *std::get<std::unique_ptr<Counter>>(f.members.back().second);
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help,
                              const MetricLabels& labels) {
  detail::MutexLock lock(mutex_);
  Family& f = family(name, help, kGauge, labels);
  for (auto& [l, m] : f.members) {
    if (l == labels) return *std::get<std::unique_ptr<Gauge>>(m);
  }
  f.members.emplace_back(labels, std::make_unique<Gauge>());
  return *std::get<std::unique_ptr<Gauge>>(f.members.back().second);
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      const std::vector<double>& bounds, const MetricLabels& labels) {
  detail::MutexLock lock(mutex_);
  auto histogram = std::make_unique<Histogram>(bounds);  // checks the bounds first
  Family& f = family(name, help, kHistogram, labels);
  if (f.members.empty()) {
    f.bounds = bounds;
  } else if (f.bounds != bounds) {
    throw InvalidArgument("metric '" + name + "' is already registered with other buckets");
  }
  for (auto& [l, m] : f.members) {
    if (l == labels) return *std::get<std::unique_ptr<Histogram>>(m);
  }
  f.members.emplace_back(labels, std::move(histogram));
  return *std::get<std::unique_ptr<Histogram>>(f.members.back().second);
}

std::string MetricsRegistry::prometheus_text() const {
  detail::MutexLock lock(mutex_);
  std::string out;
  for (const auto& [name, f] : families_) {
    static const char* const kinds[] = {"counter", "gauge", "histogram"};
    out += "# HELP " + name + " " + escape(f->help, false) + "\n";
    out += "# TYPE " + name + " " + kinds[f->kind] + "\n";
    for (const auto& [labels, metric] : f->members) {
      if (f->kind == kCounter) {
        out += name + label_text(labels) + " " +
               std::to_string(std::get<std::unique_ptr<Counter>>(metric)->value()) + "\n";
      } else if (f->kind == kGauge) {
        out += name + label_text(labels) + " " +
               format_value(std::get<std::unique_ptr<Gauge>>(metric)->value()) + "\n";
      } else {
        const auto s = std::get<std::unique_ptr<Histogram>>(metric)->snapshot();
        for (std::size_t i = 0; i <= s.bounds.size(); ++i) {
          const std::string le = i < s.bounds.size() ? format_value(s.bounds[i]) : "+Inf";
          out += name + "_bucket" + label_text(labels, "le=\"" + le + "\"") + " " +
                 std::to_string(s.cumulative[i]) + "\n";
        }
        out += name + "_sum" + label_text(labels) + " " + format_value(s.sum) + "\n";
        out += name + "_count" + label_text(labels) + " " + std::to_string(s.count) + "\n";
      }
    }
  }
  return out;
}

}  // namespace annals
