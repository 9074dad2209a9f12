// Peak memory of the streaming paths: run each in a fresh process and print its
// peak resident set size (VmHWM), so bench/run can compare 100,000 with
// 1,000,000 events.
//
// Usage:
//   annals_bench_rss build EVENTS     build the store of that many events in
//                                     $ANNALS_BENCH_FIXTURES (if missing; the
//                                     same file the read benchmarks use for
//                                     that size) and print its path
//   annals_bench_rss read_all STORE   read every event
//   annals_bench_rss catch_up STORE   catch a projection up into a fresh read model
// read_all and catch_up print one JSON object:
//   {"case": ..., "events": N, "peak_rss_kib": K}

#include <cstdlib>
#include <iostream>
#include <string>

#include <annals/projections/projection_runner.hpp>
#include <annals/store/sqlite_event_store.hpp>

#include "bench_support.hpp"

namespace {

int usage() {
  std::cerr << "usage: annals_bench_rss build EVENTS | read_all STORE | catch_up STORE\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace annals;
  using namespace annals::bench;
  if (argc != 3) return usage();
  const std::string mode = argv[1];
  SqliteStoreOptions existing;
  existing.create_if_missing = false;
  const std::filesystem::path path = argv[2];
  try {
    if (mode == "build") {
      std::int64_t events = 0;
      try {
        events = std::stoll(argv[2]);
      } catch (const std::exception&) {
      }
      if (events < 10'000) {
        std::cerr << "annals_bench_rss: EVENTS must be a number of at least 10000, got '"
                  << argv[2] << "'\n";
        return 2;
      }
      // The layout of the full-size read benchmarks, so a run shares the file.
      const Sizes full = [] {
        int argc = 1;
        char name[] = "annals_bench_rss";
        char* argv[] = {name, nullptr};
        return parse_sizes(argc, argv);
      }();
      if (std::getenv("ANNALS_BENCH_FIXTURES") == nullptr) {
        std::cerr << "annals_bench_rss: build needs $ANNALS_BENCH_FIXTURES\n";
        return 2;
      }
      const auto store = fixture_store(full.stream_events, full.snapshot_tail, events, {});
      ensure_store(store, full.stream_events, full.snapshot_tail, events);
      std::cout << store.string() << "\n";
      return 0;
    }
    if (!std::filesystem::exists(path)) {
      std::cerr << "annals_bench_rss: store '" << path.string() << "' does not exist\n";
      return 1;
    }
    std::int64_t events = 0;
    if (mode == "read_all") {
      const SqliteEventStore store(path, existing);
      for (const RecordedEvent& e : store.read_all()) {
        if (e.position > 0) ++events;
      }
    } else if (mode == "catch_up") {
      TempDir dir;
      SqliteEventStore store(path, existing);
      SqliteReadModel views(dir.file("views.db"));
      ProjectionRunner runner(store, views, balances_projection());
      events = runner.catch_up();
    } else {
      return usage();
    }
    std::cout << Json{{"case", mode}, {"events", events}, {"peak_rss_kib", peak_rss_kib()}}.dump()
              << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "annals_bench_rss " << mode << " '" << path.string() << "': " << e.what() << "\n";
    return 1;
  }
}
