#include "annals/core/metrics.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "annals/core/error.hpp"

namespace annals {
namespace {

TEST(Metrics, CountersAndGaugesAreExposedWithHelpTypeAndLabels) {
  MetricsRegistry m;
  m.counter("annals_appends_total", "Appends committed.").add(3);
  m.gauge("annals_projection_lag", "Events not yet handled.", {{"projection", "balances"}}).set(7);
  m.gauge("annals_projection_lag", "ignored", {{"projection", "ledger"}}).set(0.5);
  EXPECT_EQ(m.prometheus_text(),
            "# HELP annals_appends_total Appends committed.\n"
            "# TYPE annals_appends_total counter\n"
            "annals_appends_total 3\n"
            "# HELP annals_projection_lag Events not yet handled.\n"
            "# TYPE annals_projection_lag gauge\n"
            "annals_projection_lag{projection=\"balances\"} 7\n"
            "annals_projection_lag{projection=\"ledger\"} 0.5\n");
}

TEST(Metrics, TheSameNameAndLabelsGiveTheSameMetric) {
  MetricsRegistry m;
  Counter& a = m.counter("x_total", "x", {{"k", "v"}});
  Counter& b = m.counter("x_total", "x", {{"k", "v"}});
  Counter& c = m.counter("x_total", "x", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
}

TEST(Metrics, HistogramsHaveCumulativeBucketsSumAndCount) {
  MetricsRegistry m;
  Histogram& h = m.histogram("annals_append_seconds", "Append latency.", {0.001, 0.01}, {{"store", "a"}});
  h.observe(0.0005);
  h.observe(0.001);  // on a bound: counted in that bucket (le = less or equal)
  h.observe(0.005);
  h.observe(3);
  EXPECT_EQ(m.prometheus_text(),
            "# HELP annals_append_seconds Append latency.\n"
            "# TYPE annals_append_seconds histogram\n"
            "annals_append_seconds_bucket{store=\"a\",le=\"0.001\"} 2\n"
            "annals_append_seconds_bucket{store=\"a\",le=\"0.01\"} 3\n"
            "annals_append_seconds_bucket{store=\"a\",le=\"+Inf\"} 4\n"
            "annals_append_seconds_sum{store=\"a\"} 3.0065\n"
            "annals_append_seconds_count{store=\"a\"} 4\n");
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  MetricsRegistry m;
  m.counter("x_total", "line one\nback\\slash", {{"stream", "a\"b\\c\nd"}}).add();
  EXPECT_EQ(m.prometheus_text(),
            "# HELP x_total line one\\nback\\\\slash\n"
            "# TYPE x_total counter\n"
            "x_total{stream=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(Metrics, SpecialFloatsAreSpelledAsTheFormatWants) {
  MetricsRegistry m;
  m.gauge("a", "a").set(std::numeric_limits<double>::infinity());
  m.gauge("b", "b").set(-std::numeric_limits<double>::infinity());
  m.gauge("c", "c").set(std::numeric_limits<double>::quiet_NaN());
  const std::string text = m.prometheus_text();
  EXPECT_NE(text.find("\na +Inf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nb -Inf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nc NaN\n"), std::string::npos) << text;
}

TEST(Metrics, BadNamesLabelsKindsAndBucketsAreRefused) {
  MetricsRegistry m;
  EXPECT_THROW(m.counter("", "x"), InvalidArgument);
  EXPECT_THROW(m.counter("9lives", "x"), InvalidArgument);
  EXPECT_THROW(m.counter("has-dash", "x"), InvalidArgument);
  EXPECT_THROW(m.counter("x", "x", {{"__reserved", "v"}}), InvalidArgument);
  EXPECT_THROW(m.counter("x", "x", {{"a:b", "v"}}), InvalidArgument);
  EXPECT_THROW(m.counter("x", "x", {{"a", "1"}, {"a", "2"}}), InvalidArgument);
  EXPECT_THROW(m.histogram("h", "h", {1, 1}), InvalidArgument);
  EXPECT_THROW(m.histogram("h", "h", {1}, {{"le", "x"}}), InvalidArgument);
  m.counter("used", "u");
  EXPECT_THROW(m.gauge("used", "u"), InvalidArgument);
  m.histogram("h2", "h", {1, 2});
  EXPECT_THROW(m.histogram("h2", "h", {1, 3}, {{"k", "v"}}), InvalidArgument);
  EXPECT_NO_THROW(m.counter("ns:name_total", "colons are allowed in names"));
}

TEST(Metrics, ConcurrentUpdatesAreAllCounted) {
  MetricsRegistry m;
  Counter& c = m.counter("c_total", "c");
  Histogram& h = m.histogram("h", "h", {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.add();
        h.observe(2);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
  const auto s = h.snapshot();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_EQ(s.sum, 80000.0);
}

TEST(Metrics, AGaugeMovedByManyThreadsAtOnceKeepsEveryAddition) {
  MetricsRegistry m;
  Gauge& depth = m.gauge("annals_queue_depth", "Queued.");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) depth.add(2);
      for (int i = 0; i < 10000; ++i) depth.add(-1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(depth.value(), 40000.0);
}

}  // namespace
}  // namespace annals
