#pragma once
// What the commit-to-handler latency programs (follow_latency.cpp on SQLite,
// pg_follow_latency.cpp on PostgreSQL) share: their arguments, the stamped
// events the writer process appends, starting that writer, and the follower's
// loop, which only needs an EventStore and the watcher it hands out
// (EventStore::watch_commits), so it is the same on both backends.

#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "annals/store/commit_watcher.hpp"
#include "annals/store/event_store.hpp"

extern char** environ;

namespace annals::bench {

inline std::int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// An event carrying the CLOCK_MONOTONIC time `sent` (shared by all processes
// of the machine).
inline EventData stamped_event(std::int64_t sent) {
  EventData e;
  e.type = "bench.Sent";
  e.payload = "{\"t\":" + std::to_string(sent) + "}";
  return e;
}

inline std::int64_t sent_at(const RecordedEvent& e) {
  const auto at = e.payload.find(':');
  return std::stoll(e.payload.substr(at + 1));
}

struct FollowArgs {
  std::string mode = "push";
  int events = 200;
  int interval_ms = 20;
  int poll_ms = 500;
  std::string dir;  // --dir, when the program takes it
};

// Parses "--key value" pairs; prints the usage and returns nullopt when they
// are not valid. `takes_dir` admits --dir.
inline std::optional<FollowArgs> parse_follow_args(const std::vector<std::string>& args,
                                                   const std::string& program, bool takes_dir) {
  FollowArgs parsed;
  bool bad = args.size() % 2 != 0;
  for (std::size_t i = 0; !bad && i + 1 < args.size(); i += 2) {
    const std::string& key = args[i];
    const std::string& value = args[i + 1];
    if (key == "--mode" && (value == "push" || value == "poll")) {
      parsed.mode = value;
    } else if (key == "--events") {
      parsed.events = std::stoi(value);
    } else if (key == "--interval-ms") {
      parsed.interval_ms = std::stoi(value);
    } else if (key == "--poll-ms") {
      parsed.poll_ms = std::stoi(value);
    } else if (key == "--dir" && takes_dir) {
      parsed.dir = value;
    } else {
      std::cerr << program << ": unknown argument '" << key << " " << value << "'\n";
      return std::nullopt;
    }
  }
  if (bad || parsed.events < 1 || parsed.interval_ms < 0 || parsed.poll_ms < 1) {
    std::cerr << "usage: " << program
              << " [--mode push|poll] [--events N>0] [--interval-ms M] [--poll-ms P>0]"
              << (takes_dir ? " [--dir D]" : "") << "\n";
    return std::nullopt;
  }
  return parsed;
}

// Starts this program again with `args` (its writer mode); 0 when it cannot.
inline pid_t spawn_self(const std::vector<std::string>& args) {
  const std::string self = std::filesystem::canonical("/proc/self/exe").string();
  std::vector<char*> argv{const_cast<char*>(self.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t child = 0;
  if (::posix_spawn(&child, self.c_str(), nullptr, nullptr, argv.data(), environ) != 0) return 0;
  return child;
}

// Follows `store` from its first event until `events` stamped events were
// read, sleeping in `watcher` (or `poll` when there is none) between looks at
// the head; returns each event's latency in milliseconds, or nullopt (after
// saying so) when the writer `child` exited before appending them all. Waits
// for the writer to end.
inline std::optional<std::vector<double>> follow(EventStore& store, CommitWatcher* watcher,
                                                 std::chrono::milliseconds poll, pid_t child,
                                                 int events, const std::string& program) {
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
        std::cerr << program << ": the writer exited early\n";
        return std::nullopt;
      }
      continue;
    }
    if (watcher != nullptr) {
      watcher->wait(poll);
    } else {
      std::this_thread::sleep_for(poll);
    }
  }
  if (child != 0) ::waitpid(child, nullptr, 0);
  return latencies_ms;
}

// The result line: {"mode", "events", "median_ms", "p99_ms", "max_ms"}.
inline void print_latencies(const std::string& mode, const std::vector<double>& latencies_ms) {
  std::cout << "{\"mode\":\"" << mode << "\",\"events\":" << latencies_ms.size()
            << ",\"median_ms\":" << percentile(latencies_ms, 0.5)
            << ",\"p99_ms\":" << percentile(latencies_ms, 0.99)
            << ",\"max_ms\":" << percentile(latencies_ms, 1.0) << "}\n";
}

}  // namespace annals::bench
