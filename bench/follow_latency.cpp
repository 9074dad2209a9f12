// Commit-to-handler latency when the writer is another process: a child
// process appends one event every --interval-ms milliseconds, each carrying
// the CLOCK_MONOTONIC time (shared by all processes of the machine) taken just
// before its append; this process follows the store and, for every event it
// reads, records how long after that time it got it. Prints one JSON line:
// {"mode", "events", "median_ms", "p99_ms", "max_ms"}.
//
//   follow_latency [--mode push|poll] [--events N] [--interval-ms M] [--poll-ms P] [--dir D]
//
// push: annals::CommitWatcher wakes the follower (docs/adr/0009-commit-wake-ups.md).
// poll: the follower sleeps --poll-ms between looks at the head, as before.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "annals/store/sqlite_event_store.hpp"
#include "follow_support.hpp"

namespace {

annals::SqliteStoreOptions store_options() {
  annals::SqliteStoreOptions options;
  options.synchronous = annals::Synchronous::normal;
  return options;
}

int run_writer(const std::filesystem::path& file, int events, int interval_ms) {
  annals::SqliteEventStore store(file, store_options());
  for (int i = 0; i < events; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    store.append("latency-1", annals::ExpectedVersion::any(),
                 {annals::bench::stamped_event(annals::bench::monotonic_ns())});
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  namespace bench = annals::bench;
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (!args.empty() && args[0] == "--writer" && args.size() == 4) {
      return run_writer(args[1], std::stoi(args[2]), std::stoi(args[3]));
    }
    const auto parsed = bench::parse_follow_args(args, "follow_latency", true);
    if (!parsed) return 2;
    const std::filesystem::path dir =
        parsed->dir.empty() ? std::filesystem::temp_directory_path() : std::filesystem::path(parsed->dir);
    const auto file = dir / ("follow-latency-" + std::to_string(::getpid()) + ".db");
    std::optional<std::vector<double>> latencies_ms;
    {
      annals::SqliteEventStore store(file, store_options());
      const auto watcher = store.watch_commits({.push = parsed->mode == "push"});
      const pid_t child = bench::spawn_self({"--writer", file.string(),
                                             std::to_string(parsed->events),
                                             std::to_string(parsed->interval_ms)});
      if (child == 0) {
        std::cerr << "follow_latency: cannot start the writer\n";
        return 1;
      }
      latencies_ms = bench::follow(store, watcher.get(), std::chrono::milliseconds(parsed->poll_ms),
                                   child, parsed->events, "follow_latency");
    }
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file.string() + suffix);
    if (!latencies_ms) return 1;
    bench::print_latencies(parsed->mode, *latencies_ms);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "follow_latency: " << e.what() << "\n";
    return 1;
  }
}
