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

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "postgres/postgres_server.hpp"

extern char** environ;

namespace {

std::int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

annals::PostgresStoreOptions in_schema(const std::string& schema) {
  annals::PostgresStoreOptions options;
  options.schema = schema;
  return options;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Appends; reports on stderr how long the appends themselves took (commit
// included), the share of the latency the follower cannot win back.
int run_writer(const std::string& url, const std::string& schema, int events, int interval_ms) {
  annals::PostgresEventStore store(url, in_schema(schema));
  std::vector<double> append_ms;
  for (int i = 0; i < events; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    annals::EventData e;
    const std::int64_t start = monotonic_ns();
    e.type = "bench.Sent";
    e.payload = "{\"t\":" + std::to_string(start) + "}";
    store.append("latency-1", annals::ExpectedVersion::any(), {e});
    append_ms.push_back(static_cast<double>(monotonic_ns() - start) / 1e6);
  }
  std::cerr << "{\"writer_append_median_ms\":" << percentile(append_ms, 0.5)
            << ",\"writer_append_p99_ms\":" << percentile(append_ms, 0.99) << "}\n";
  return 0;
}

std::int64_t sent_at(const annals::RecordedEvent& e) {
  const auto at = e.payload.find(':');
  return std::stoll(e.payload.substr(at + 1));
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "push";
  int events = 200;
  int interval_ms = 20;
  int poll_ms = 500;
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (!args.empty() && args[0] == "--writer" && args.size() == 5) {
      return run_writer(args[1], args[2], std::stoi(args[3]), std::stoi(args[4]));
    }
    for (std::size_t i = 0; i + 1 < args.size(); i += 2) {
      const std::string& key = args[i];
      const std::string& value = args[i + 1];
      if (key == "--mode" && (value == "push" || value == "poll")) {
        mode = value;
      } else if (key == "--events") {
        events = std::stoi(value);
      } else if (key == "--interval-ms") {
        interval_ms = std::stoi(value);
      } else if (key == "--poll-ms") {
        poll_ms = std::stoi(value);
      } else {
        std::cerr << "pg_follow_latency: unknown argument '" << key << " " << value << "'\n";
        return 2;
      }
    }
    if (args.size() % 2 != 0 || events < 1 || interval_ms < 0 || poll_ms < 1) {
      std::cerr << "usage: pg_follow_latency [--mode push|poll] [--events N>0] "
                   "[--interval-ms M] [--poll-ms P>0]\n";
      return 2;
    }
    annals::testing::PostgresServer server;
    const std::string schema = "follow_latency_" + std::to_string(::getpid());
    annals::PostgresEventStore store(server.url(), in_schema(schema));
    const auto watcher = store.watch_commits({.push = mode == "push"});

    const std::string self = std::filesystem::canonical("/proc/self/exe").string();
    const std::string n = std::to_string(events);
    const std::string interval = std::to_string(interval_ms);
    std::vector<char*> child_argv{const_cast<char*>(self.c_str()),
                                  const_cast<char*>("--writer"),
                                  const_cast<char*>(server.url().c_str()),
                                  const_cast<char*>(schema.c_str()),
                                  const_cast<char*>(n.c_str()),
                                  const_cast<char*>(interval.c_str()),
                                  nullptr};
    pid_t child = 0;
    if (::posix_spawn(&child, self.c_str(), nullptr, nullptr, child_argv.data(), environ) != 0) {
      std::cerr << "pg_follow_latency: cannot start the writer\n";
      return 1;
    }

    std::vector<double> latencies_ms;
    std::int64_t next = 1;
    while (static_cast<int>(latencies_ms.size()) < events) {
      if (store.head_position() >= next) {
        for (const auto& e : store.read_all(next)) {
          latencies_ms.push_back(static_cast<double>(monotonic_ns() - sent_at(e)) / 1e6);
          next = e.position + 1;
        }
      }
      if (static_cast<int>(latencies_ms.size()) >= events) break;
      int status = 0;
      if (::waitpid(child, &status, WNOHANG) == child) {
        child = 0;
        if (store.head_position() < next) {
          std::cerr << "pg_follow_latency: the writer exited early\n";
          return 1;
        }
        continue;
      }
      watcher->wait(std::chrono::milliseconds(poll_ms));
    }
    if (child != 0) ::waitpid(child, nullptr, 0);
    std::cout << "{\"mode\":\"" << mode << "\",\"events\":" << latencies_ms.size()
              << ",\"median_ms\":" << percentile(latencies_ms, 0.5)
              << ",\"p99_ms\":" << percentile(latencies_ms, 0.99)
              << ",\"max_ms\":" << percentile(latencies_ms, 1.0) << "}\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "pg_follow_latency: " << e.what() << "\n";
    return 1;
  }
}
