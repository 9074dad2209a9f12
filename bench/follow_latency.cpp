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

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/store/commit_watcher.hpp"
#include "annals/store/sqlite_event_store.hpp"

extern char** environ;

namespace {

std::int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int run_writer(const std::filesystem::path& file, int events, int interval_ms) {
  annals::SqliteStoreOptions options;
  options.synchronous = annals::Synchronous::normal;
  annals::SqliteEventStore store(file, options);
  for (int i = 0; i < events; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    annals::EventData e;
    e.type = "bench.Sent";
    e.payload = "{\"t\":" + std::to_string(monotonic_ns()) + "}";
    store.append("latency-1", annals::ExpectedVersion::any(), {e});
  }
  return 0;
}

std::int64_t sent_at(const annals::RecordedEvent& e) {
  const auto at = e.payload.find(':');
  return std::stoll(e.payload.substr(at + 1));
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "push";
  int events = 200;
  int interval_ms = 20;
  int poll_ms = 500;
  std::filesystem::path dir = std::filesystem::temp_directory_path();
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (!args.empty() && args[0] == "--writer" && args.size() == 4) {
      return run_writer(args[1], std::stoi(args[2]), std::stoi(args[3]));
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
      } else if (key == "--dir") {
        dir = value;
      } else {
        std::cerr << "follow_latency: unknown argument '" << key << " " << value << "'\n";
        return 2;
      }
    }
    if (args.size() % 2 != 0 || events < 1 || interval_ms < 0 || poll_ms < 1) {
      std::cerr << "usage: follow_latency [--mode push|poll] [--events N>0] [--interval-ms M] "
                   "[--poll-ms P>0] [--dir D]\n";
      return 2;
    }
    const auto file = dir / ("follow-latency-" + std::to_string(::getpid()) + ".db");
    annals::SqliteStoreOptions options;
    options.synchronous = annals::Synchronous::normal;
    annals::SqliteEventStore store(file, options);
    annals::CommitWatcher watcher(file, {.push = mode == "push"});

    const std::string self = std::filesystem::canonical("/proc/self/exe").string();
    const std::string n = std::to_string(events);
    const std::string interval = std::to_string(interval_ms);
    std::vector<char*> child_argv{const_cast<char*>(self.c_str()), const_cast<char*>("--writer"),
                                  const_cast<char*>(file.c_str()), const_cast<char*>(n.c_str()),
                                  const_cast<char*>(interval.c_str()), nullptr};
    pid_t child = 0;
    if (::posix_spawn(&child, self.c_str(), nullptr, nullptr, child_argv.data(), environ) != 0) {
      std::cerr << "follow_latency: cannot start the writer\n";
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
          std::cerr << "follow_latency: the writer exited early\n";
          return 1;
        }
        continue;
      }
      watcher.wait(std::chrono::milliseconds(poll_ms));
    }
    if (child != 0) ::waitpid(child, nullptr, 0);
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file.string() + suffix);
    std::cout << "{\"mode\":\"" << mode << "\",\"events\":" << latencies_ms.size()
              << ",\"median_ms\":" << percentile(latencies_ms, 0.5)
              << ",\"p99_ms\":" << percentile(latencies_ms, 0.99)
              << ",\"max_ms\":" << percentile(latencies_ms, 1.0) << "}\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "follow_latency: " << e.what() << "\n";
    return 1;
  }
}
