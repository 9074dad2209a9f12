// Throughput of a consumer group with a CPU-bound handler: N worker threads
// (each a ConsumerGroupWorker, sharing one store and one read model, as
// threads of one service would) apply --events events whose handler spins
// --spin-us microseconds in ConsumerGroupOptions::prepare (outside the read
// model's write lock; measured in thread CPU time) and writes one row. Prints one JSON line:
// {"workers", "events", "spin_us", "seconds", "events_per_s"}.
//
//   consumer_group_bench [--workers N] [--events E] [--spin-us U] [--streams S] [--dir D]
//                        [--handler spin|sleep]
//
// --handler sleep sleeps U microseconds instead of spinning: a handler that
// waits (I/O) rather than computes, which shows how well the group overlaps
// work when the machine has no idle core to give it.
//
// Compare --workers 2 with --workers 1 on the same machine (docs/projections.md).

#include <time.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/projections/consumer_group.hpp"
#include "annals/store/sqlite_event_store.hpp"

namespace {

// Busy work for `d` of this thread's CPU time (not wall time: time spent
// preempted by other programs does not count), so the handler costs the same
// CPU however loaded the machine is.
std::int64_t thread_cpu_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

void spin(std::chrono::microseconds d) {
  const std::int64_t until = thread_cpu_ns() + d.count() * 1'000;
  while (thread_cpu_ns() < until) {
  }
}

int usage(const std::string& why) {
  std::cerr << "consumer_group_bench: " << why
            << "\nusage: consumer_group_bench [--workers N] [--events E] [--spin-us U] "
               "[--streams S] [--dir D] [--handler spin|sleep]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int workers = 1;
  int events = 20'000;
  int spin_us = 50;
  int streams = 1'000;
  std::filesystem::path dir;
  std::string handler = "spin";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage("missing value after " + arg);
    const std::string value = argv[++i];
    if (arg == "--workers") {
      workers = std::atoi(value.c_str());
    } else if (arg == "--events") {
      events = std::atoi(value.c_str());
    } else if (arg == "--spin-us") {
      spin_us = std::atoi(value.c_str());
    } else if (arg == "--streams") {
      streams = std::atoi(value.c_str());
    } else if (arg == "--handler") {
      handler = value;
      if (handler != "spin" && handler != "sleep") return usage("--handler is spin or sleep");
    } else if (arg == "--dir") {
      dir = value;
    } else {
      return usage("unknown argument " + arg);
    }
  }
  if (workers < 1 || events < 1 || spin_us < 0 || streams < 1) return usage("values must be positive");
  const bool own_dir = dir.empty();
  if (own_dir) {
    std::string pattern = (std::filesystem::temp_directory_path() / "annals-group-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return usage("cannot create a temporary directory");
    dir = pattern;
  }
  try {
    annals::SqliteStoreOptions store_options;
    store_options.synchronous = annals::Synchronous::normal;
    annals::SqliteEventStore store(dir / "store.db", store_options);
    for (int done = 0; done < events;) {
      const int n = std::min(100, events - done);
      std::vector<annals::EventData> batch(static_cast<std::size_t>(n));
      for (auto& e : batch) {
        e.type = "bench.Happened";
        e.payload = annals::Json{{"i", done}}.dump();
      }
      store.append("s-" + std::to_string((done / 100) % streams), annals::ExpectedVersion::any(),
                   batch);
      done += n;
    }
    annals::SqliteReadModel views(dir / "views.db");
    annals::Projection projection;
    projection.name = "bench";
    projection.setup = [](annals::SqlTransaction& tx) {
      tx.exec_script("CREATE TABLE IF NOT EXISTS seen (position INTEGER PRIMARY KEY, v INTEGER)");
    };
    annals::ConsumerGroupOptions options;
    options.renew_interval = std::chrono::milliseconds(50);
    options.lease_duration = std::chrono::milliseconds(1'000);
    options.prepare = [spin_us, sleep = handler == "sleep"](const annals::RecordedEvent& e) {
      if (sleep) {
        std::this_thread::sleep_for(std::chrono::microseconds(spin_us));
      } else {
        spin(std::chrono::microseconds(spin_us));
      }
      return annals::Json(e.position * 2);
    };
    options.apply_prepared = [](annals::SqlTransaction& tx, const annals::RecordedEvent& e,
                                const annals::Json& v) {
      tx.exec("INSERT INTO seen (position, v) VALUES (?1, ?2)", {e.position, v.get<std::int64_t>()});
    };
    std::vector<std::unique_ptr<annals::ConsumerGroupWorker>> group;
    for (int w = 0; w < workers; ++w) {
      group.push_back(std::make_unique<annals::ConsumerGroupWorker>(store, views, projection, options));
    }
    const auto started = std::chrono::steady_clock::now();
    for (auto& w : group) w->start();
    const bool done = group[0]->wait_for(store.head_position(), std::chrono::minutes(10));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    for (auto& w : group) w->stop();
    if (!done) throw std::runtime_error("the group did not finish within 10 minutes");
    std::cout << annals::Json{{"workers", workers},
                              {"events", events},
                              {"spin_us", spin_us},
                              {"handler", handler},
                              {"seconds", seconds},
                              {"events_per_s", events / seconds}}
                     .dump()
              << '\n';
  } catch (const std::exception& e) {
    std::cerr << "consumer_group_bench: " << e.what() << '\n';
    if (own_dir) std::filesystem::remove_all(dir);
    return 1;
  }
  if (own_dir) std::filesystem::remove_all(dir);
  return 0;
}
