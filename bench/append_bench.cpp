// Append benchmarks: Annals (annals/<case>) against the raw-SQLite baseline
// (baseline/<case>). Each benchmark runs once per process on a fresh store
// file in a temporary directory; bench/run alternates the two sides over
// several processes and compares events per second.
//
// Usage: annals_bench_append [--size=tiny|quick|full] [Google Benchmark flags]

#include <benchmark/benchmark.h>

#include <thread>

#include <annals/store/sqlite_event_store.hpp>

#include "bench_main.hpp"
#include "bench_support.hpp"

namespace annals::bench {
namespace {

const std::string kStream = "account-1";

// Untimed appends first, the same ones the baseline makes (see kWarmUpStream):
// the store prepares its statements, fetches SHA-256, and its write-ahead log
// reaches the size at which it is rewritten in place.
void warm_up(SqliteEventStore& store, std::int64_t events) {
  const std::string stream(kWarmUpStream);
  for (std::int64_t done = 0; done < events; done += kWarmUpBatch) {
    std::vector<EventData> batch;
    for (std::int64_t i = done; i < std::min(events, done + kWarmUpBatch); ++i) {
      batch.push_back(deposit_data(i));
    }
    store.append(stream, ExpectedVersion::exactly(done), std::move(batch));
  }
}

void finish(benchmark::State& state, std::int64_t events) {
  state.SetItemsProcessed(events);
  state.counters["events"] = static_cast<double>(events);
}

// Pre-serialized events, `per_call` per append, `calls` appends to one stream
// with exactly(version).
void annals_append(benchmark::State& state, std::int64_t warm, std::int64_t calls,
                   std::int64_t per_call) {
  TempDir dir;
  SqliteEventStore store(dir.file("store.db"));
  warm_up(store, warm);
  std::vector<std::vector<EventData>> batches(static_cast<std::size_t>(calls));
  for (std::int64_t c = 0; c < calls; ++c) {
    for (std::int64_t i = 0; i < per_call; ++i) batches[c].push_back(deposit_data(c * per_call + i));
  }
  for (auto _ : state) {
    std::int64_t version = 0;
    for (auto& batch : batches) {
      version = store.append(kStream, ExpectedVersion::exactly(version), std::move(batch))
                    .stream_version;
    }
    benchmark::DoNotOptimize(version);
  }
  finish(state, calls * per_call);
}

void baseline_append(benchmark::State& state, std::int64_t warm, std::int64_t calls,
                     std::int64_t per_call, BaselineSchema schema = BaselineSchema::kAnnals) {
  TempDir dir;
  BaselineWriter writer(dir.file("store.db"), schema);
  const std::int64_t stored = writer.warm_up(warm);
  const std::vector<Row> rows = prepare_rows(kStream, calls * per_call, stored + 1);
  for (auto _ : state) {
    for (std::int64_t c = 0; c < calls; ++c) {
      writer.append(&rows[static_cast<std::size_t>(c * per_call)],
                    static_cast<std::size_t>(per_call), c * per_call);
    }
  }
  finish(state, calls * per_call);
}

// Typed events: JSON encoding and hashing happen inside the timed loop.
void annals_append_typed(benchmark::State& state, std::int64_t warm, std::int64_t calls,
                         std::int64_t per_call) {
  TempDir dir;
  SqliteEventStore store(dir.file("store.db"));
  warm_up(store, warm);
  std::vector<Deposited> deposits;
  for (std::int64_t i = 0; i < calls * per_call; ++i) deposits.push_back(deposit(i));
  for (auto _ : state) {
    std::int64_t version = 0;
    for (std::int64_t c = 0; c < calls; ++c) {
      std::vector<EventData> batch;
      batch.reserve(static_cast<std::size_t>(per_call));
      for (std::int64_t i = 0; i < per_call; ++i) {
        batch.push_back(encode(deposits[static_cast<std::size_t>(c * per_call + i)],
                               bench_metadata()));
      }
      version = store.append(kStream, ExpectedVersion::exactly(version), std::move(batch))
                    .stream_version;
    }
    benchmark::DoNotOptimize(version);
  }
  finish(state, calls * per_call);
}

// Eight threads, each appending single events to a stream of its own.
void annals_group_commit(benchmark::State& state, std::int64_t warm, int threads,
                         std::int64_t per_thread) {
  TempDir dir;
  SqliteEventStore store(dir.file("store.db"));
  warm_up(store, warm);
  std::vector<std::vector<EventData>> events(static_cast<std::size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    for (std::int64_t i = 0; i < per_thread; ++i) events[t].push_back(deposit_data(i));
  }
  for (auto _ : state) {
    std::vector<std::jthread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const std::string stream = "account-t" + std::to_string(t);
        for (std::int64_t i = 0; i < per_thread; ++i) {
          store.append(stream, ExpectedVersion::exactly(i), {std::move(events[t][i])});
        }
      });
    }
  }
  finish(state, threads * per_thread);
}

void register_all(const Sizes& s) {
  const auto reg = [](const std::string& name, auto fn) {
    benchmark::RegisterBenchmark(name.c_str(), fn)
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  };
  const std::int64_t warm = s.warm_up_events;
  const std::int64_t single_calls = s.append_1_calls;
  reg("annals/append_1",
      [warm, single_calls](benchmark::State& st) { annals_append(st, warm, single_calls, 1); });
  reg("baseline/append_1",
      [warm, single_calls](benchmark::State& st) { baseline_append(st, warm, single_calls, 1); });
  // Plain pairs, not structured bindings: clang 14 cannot capture those.
  for (const std::pair<std::int64_t, std::int64_t>& batch :
       {std::pair<std::int64_t, std::int64_t>{10, s.batch_10_calls},
        {100, s.batch_100_calls},
        {1000, s.batch_1000_calls}}) {
    const std::int64_t n = batch.first;
    const std::int64_t calls = batch.second;
    const std::string name = "append_batch_" + std::to_string(n);
    reg("annals/" + name,
        [warm, calls, n](benchmark::State& st) { annals_append(st, warm, calls, n); });
    reg("baseline/" + name,
        [warm, calls, n](benchmark::State& st) { baseline_append(st, warm, calls, n); });
  }
  // The same appends of 100 against plain inserts into a minimal table (no
  // triggers, no hash, no event-id uniqueness): what the guarantees cost.
  const std::int64_t calls_100 = s.batch_100_calls;
  reg("annals/append_batch_100_minimal",
      [warm, calls_100](benchmark::State& st) { annals_append(st, warm, calls_100, 100); });
  reg("baseline/append_batch_100_minimal", [warm, calls_100](benchmark::State& st) {
    baseline_append(st, warm, calls_100, 100, BaselineSchema::kMinimal);
  });
  const std::int64_t typed_calls = s.typed_100_calls;
  reg("annals/append_typed_100", [warm, typed_calls](benchmark::State& st) {
    annals_append_typed(st, warm, typed_calls, 100);
  });
  reg("baseline/append_typed_100",
      [warm, typed_calls](benchmark::State& st) { baseline_append(st, warm, typed_calls, 100); });
  // The baseline of group commit is what SQLite does without it: one
  // transaction per event, from one thread.
  const std::int64_t per_thread = s.group_events_per_thread;
  reg("annals/group_commit_8_threads",
      [warm, per_thread](benchmark::State& st) { annals_group_commit(st, warm, 8, per_thread); });
  reg("baseline/group_commit_8_threads",
      [warm, per_thread](benchmark::State& st) { baseline_append(st, warm, 8 * per_thread, 1); });
}

}  // namespace
}  // namespace annals::bench

int main(int argc, char** argv) {
  return annals::bench::run_benchmarks("annals_bench_append", argc, argv, annals::bench::register_all);
}
