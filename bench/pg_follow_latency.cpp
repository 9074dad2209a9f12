// Commit-to-handler latency on PostgreSQL when the writer is another process:
// as follow_latency.cpp, on a PostgresEventStore. A child process appends one
// event every --interval-ms milliseconds, each carrying the CLOCK_MONOTONIC
// time taken just before its append; this process follows the store and, for
// every event it reads, records how long after that time it got it. Prints one
// JSON line: {"mode", "events", "median_ms", "p99_ms", "max_ms"}; the writer
// prints the time its appends took (median, p99) on stderr.
//
//   pg_follow_latency [--mode push|poll] [--events N] [--interval-ms M] [--poll-ms P]
//
// push: the store's watcher LISTENs for the NOTIFY of each commit.
// poll: the follower sleeps --poll-ms between looks at the head.
//
// The server: a throwaway PostgreSQL 15 cluster started for the run and removed
// after it (tests/postgres/postgres_server.hpp: initdb and pg_ctl, as the
// postgres user when run as root, fsync off), or the one ANNALS_TEST_PG_URL
// names.

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "annals/store/postgres_event_store.hpp"
#include "follow_support.hpp"
#include "postgres/postgres_server.hpp"

namespace {

annals::PostgresStoreOptions in_schema(const std::string& schema) {
  annals::PostgresStoreOptions options;
  options.schema = schema;
  return options;
}

// Appends; reports on stderr how long the appends themselves took (commit
// included), the share of the latency the follower cannot win back.
int run_writer(const std::string& url, const std::string& schema, int events, int interval_ms) {
  namespace bench = annals::bench;
  annals::PostgresEventStore store(url, in_schema(schema));
  std::vector<double> append_ms;
  for (int i = 0; i < events; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    const std::int64_t start = bench::monotonic_ns();
    store.append("latency-1", annals::ExpectedVersion::any(), {bench::stamped_event(start)});
    append_ms.push_back(static_cast<double>(bench::monotonic_ns() - start) / 1e6);
  }
  std::cerr << "{\"writer_append_median_ms\":" << bench::percentile(append_ms, 0.5)
            << ",\"writer_append_p99_ms\":" << bench::percentile(append_ms, 0.99) << "}\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  namespace bench = annals::bench;
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (!args.empty() && args[0] == "--writer" && args.size() == 5) {
      return run_writer(args[1], args[2], std::stoi(args[3]), std::stoi(args[4]));
    }
    const auto parsed = bench::parse_follow_args(args, "pg_follow_latency", false);
    if (!parsed) return 2;
    annals::testing::PostgresServer server;
    const std::string schema = "follow_latency_" + std::to_string(::getpid());
    annals::PostgresEventStore store(server.url(), in_schema(schema));
    const auto watcher = store.watch_commits({.push = parsed->mode == "push"});
    const pid_t child =
        bench::spawn_self({"--writer", server.url(), schema, std::to_string(parsed->events),
                           std::to_string(parsed->interval_ms)});
    if (child == 0) {
      std::cerr << "pg_follow_latency: cannot start the writer\n";
      return 1;
    }
    const auto latencies_ms =
        bench::follow(store, watcher.get(), std::chrono::milliseconds(parsed->poll_ms), child,
                      parsed->events, "pg_follow_latency");
    if (!latencies_ms) return 1;
    bench::print_latencies(parsed->mode, *latencies_ms);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "pg_follow_latency: " << e.what() << "\n";
    return 1;
  }
}
