// Read benchmarks: Annals (annals/<case>) against the raw-SQLite baseline
// (baseline/<case>) on one prebuilt store file (see ensure_store), which both
// sides only read. Catch-up writes a fresh read-model file per run.
//
// Usage: annals_bench_read [--size=tiny|quick|full] [Google Benchmark flags]
// The prebuilt store is kept in $ANNALS_BENCH_FIXTURES when set (bench/run
// shares one between processes), else built in a temporary directory.

#include <benchmark/benchmark.h>


#include <annals/aggregates/repository.hpp>
#include <annals/projections/projection_runner.hpp>
#include <annals/store/sqlite_event_store.hpp>

#include "bench_main.hpp"
#include "bench_support.hpp"

namespace annals::bench {
namespace {

constexpr const char* kColumns =
    "position, stream_id, version, event_id, type, schema_version, payload, metadata, "
    "recorded_at, hash";

struct Fixture {
  explicit Fixture(const Sizes& s) : store(fixture_store(s.stream_events, s.snapshot_tail, s.all_events, scratch.path())) {
    ensure_store(store, s.stream_events, s.snapshot_tail, s.all_events);
  }
  TempDir scratch;  // where the store lives unless $ANNALS_BENCH_FIXTURES is set
  std::filesystem::path store;
};

// The prebuilt store, built before the first benchmark of this process.
const Fixture& fixture(const Sizes& s) {
  static const Fixture f(s);
  return f;
}

// `events` read in all iterations; `expected` per iteration.
void finish(benchmark::State& state, std::int64_t events, std::int64_t expected) {
  expected *= static_cast<std::int64_t>(state.iterations());
  if (events != expected) {
    state.SkipWithError(("read " + std::to_string(events) + " events, expected " +
                         std::to_string(expected))
                            .c_str());
    return;
  }
  state.SetItemsProcessed(events);
  state.counters["events"] = static_cast<double>(events);
}

// ---- read_stream / read_all ---------------------------------------------------

// The baseline's read: every row of the bound query copied out, as a store
// hands out events. Returns the number of rows; resets the statement.
std::int64_t read_every_row(RawStatement& st) {
  std::int64_t n = 0;
  Row row;
  while (st.step()) {
    read_row(st.get(), row);
    benchmark::DoNotOptimize(row.payload.data());
    ++n;
  }
  st.reset();
  return n;
}

void annals_read_stream(benchmark::State& state, const Sizes& s) {
  const SqliteEventStore store(fixture(s).store);
  std::int64_t n = 0;
  for (auto _ : state) {
    for (const RecordedEvent& e : store.read_stream(aggregate_stream())) {
      benchmark::DoNotOptimize(e.payload.data());
      ++n;
    }
  }
  finish(state, n, s.stream_events);
}

void baseline_read_stream(benchmark::State& state, const Sizes& s) {
  RawDb db(fixture(s).store, true);
  RawStatement st(db, (std::string("SELECT ") + kColumns +
                       " FROM events WHERE stream_id = ?1 AND version >= ?2 ORDER BY version")
                          .c_str());
  const std::string stream = aggregate_stream();
  std::int64_t n = 0;
  for (auto _ : state) {
    sqlite3_bind_text(st.get(), 1, stream.data(), static_cast<int>(stream.size()), SQLITE_STATIC);
    sqlite3_bind_int64(st.get(), 2, 1);
    n += read_every_row(st);
  }
  finish(state, n, s.stream_events);
}

void annals_read_all(benchmark::State& state, const Sizes& s) {
  const SqliteEventStore store(fixture(s).store);
  std::int64_t n = 0;
  for (auto _ : state) {
    for (const RecordedEvent& e : store.read_all()) {
      benchmark::DoNotOptimize(e.payload.data());
      ++n;
    }
  }
  finish(state, n, s.all_events);
}

void baseline_read_all(benchmark::State& state, const Sizes& s) {
  RawDb db(fixture(s).store, true);
  RawStatement st(
      db, (std::string("SELECT ") + kColumns + " FROM events WHERE position >= ?1 ORDER BY position")
              .c_str());
  std::int64_t n = 0;
  for (auto _ : state) {
    sqlite3_bind_int64(st.get(), 1, 1);
    n += read_every_row(st);
  }
  finish(state, n, s.all_events);
}

// ---- typed reads, against the raw copy of the same rows --------------------------
//
// The baselines of read_stream_decode, aggregate_load and read_all_decode are
// baseline_read_stream / baseline_read_all: copying the rows is the limit, and
// the ratio shows what turning each row into its typed event costs on top.

void annals_read_stream_decode(benchmark::State& state, const Sizes& s) {
  const SqliteEventStore store(fixture(s).store);
  std::int64_t n = 0;
  std::int64_t sum = 0;
  for (auto _ : state) {
    for (const RecordedEvent& e : store.read_stream(aggregate_stream())) {
      sum += std::get<Deposited>(decode<AccountEvent>(e)).amount;
      ++n;
    }
  }
  benchmark::DoNotOptimize(sum);
  finish(state, n, s.stream_events);
}

void annals_read_all_decode(benchmark::State& state, const Sizes& s) {
  const SqliteEventStore store(fixture(s).store);
  std::int64_t n = 0;
  std::int64_t sum = 0;
  for (auto _ : state) {
    for (const RecordedEvent& e : store.read_all()) {
      sum += std::get<Deposited>(decode<AccountEvent>(e)).amount;
      ++n;
    }
  }
  benchmark::DoNotOptimize(sum);
  finish(state, n, s.all_events);
}

// ---- loading an aggregate --------------------------------------------------------

// check_history: the default, each replayed event checked against the hash
// chain; off, the events are replayed as stored (RepositoryOptions).
void annals_load(benchmark::State& state, const Sizes& s, bool snapshots,
                 bool check_history = true) {
  SqliteEventStore store(fixture(s).store);
  Repository<Account> accounts(
      store, {.snapshots = snapshots ? &store : nullptr, .check_history = check_history});
  std::int64_t version = 0;
  for (auto _ : state) {
    const Account a = accounts.load(std::string(kAggregateId));
    version = a.version_loaded();
    benchmark::DoNotOptimize(a.balance());
  }
  const std::int64_t replayed = snapshots ? s.snapshot_tail : s.stream_events;
  finish(state,
         version == s.stream_events ? replayed * static_cast<std::int64_t>(state.iterations()) : -1,
         replayed);
}

// What a hand-written loader does: the newest snapshot (if used), then the
// payloads after it, each parsed and applied.
void baseline_load(benchmark::State& state, const Sizes& s, bool snapshots) {
  RawDb db(fixture(s).store, true);
  RawStatement snapshot(db,
                        "SELECT version, state FROM snapshots WHERE stream_id = ?1 "
                        "ORDER BY version DESC LIMIT 1");
  RawStatement events(db,
                      "SELECT version, type, payload FROM events WHERE stream_id = ?1 "
                      "AND version >= ?2 ORDER BY version");
  const std::string stream = aggregate_stream();
  std::int64_t version = 0;
  std::int64_t replayed = 0;
  for (auto _ : state) {
    Account a{std::string(kAggregateId)};
    std::int64_t from = 1;
    if (snapshots) {
      sqlite3_bind_text(snapshot.get(), 1, stream.data(), static_cast<int>(stream.size()),
                        SQLITE_STATIC);
      if (snapshot.step()) {
        from = sqlite3_column_int64(snapshot.get(), 0) + 1;
        a.restore_state(Json::parse(
            reinterpret_cast<const char*>(sqlite3_column_text(snapshot.get(), 1))));
      }
      snapshot.reset();
    }
    sqlite3_bind_text(events.get(), 1, stream.data(), static_cast<int>(stream.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(events.get(), 2, from);
    while (events.step()) {
      version = sqlite3_column_int64(events.get(), 0);
      const auto* payload = reinterpret_cast<const char*>(sqlite3_column_text(events.get(), 2));
      a.apply(Json::parse(payload).get<Deposited>());
      ++replayed;
    }
    events.reset();
    benchmark::DoNotOptimize(a.balance());
  }
  const std::int64_t expected = snapshots ? s.snapshot_tail : s.stream_events;
  finish(state, version == s.stream_events ? replayed : -1, expected);
}

// ---- projection catch-up -------------------------------------------------------------

void annals_catch_up(benchmark::State& state, const Sizes& s) {
  TempDir dir;
  SqliteEventStore store(fixture(s).store);
  SqliteReadModel views(dir.file("views.db"));
  ProjectionRunner runner(store, views, balances_projection());
  std::int64_t checkpoint = 0;
  for (auto _ : state) checkpoint = runner.catch_up();
  finish(state, checkpoint, s.all_events);  // one iteration: a second would find nothing
}

// The same read model by hand: read the events in position order; every 256
// events, one transaction with their upserts and the checkpoint.
void baseline_catch_up(benchmark::State& state, const Sizes& s) {
  TempDir dir;
  RawDb store(fixture(s).store, true);
  RawDb views(dir.file("views.db"), false, true);
  views.exec(kBalancesTable);
  views.exec("CREATE TABLE checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL)");
  views.exec("INSERT INTO checkpoints VALUES ('balances', 0)");
  RawStatement read(store, (std::string("SELECT ") + kColumns +
                            " FROM events WHERE position > ?1 ORDER BY position")
                               .c_str());
  RawStatement begin(views, "BEGIN IMMEDIATE");
  RawStatement commit(views, "COMMIT");
  RawStatement upsert(views, kUpsert);
  RawStatement save(views, "UPDATE checkpoints SET position = ?1 WHERE name = 'balances'");
  std::int64_t checkpoint = 0;
  for (auto _ : state) {
    sqlite3_bind_int64(read.get(), 1, checkpoint);
    Row row;
    bool open = false;
    std::int64_t in_batch = 0;
    const auto close = [&] {
      sqlite3_bind_int64(save.get(), 1, checkpoint);
      save.step();
      save.reset();
      commit.step();
      commit.reset();
      open = false;
      in_batch = 0;
    };
    while (read.step()) {
      read_row(read.get(), row);
      if (!open) {
        begin.step();
        begin.reset();
        open = true;
      }
      sqlite3_bind_text(upsert.get(), 1, row.stream_id.data(),
                        static_cast<int>(row.stream_id.size()), SQLITE_STATIC);
      sqlite3_bind_int64(upsert.get(), 2, amount_of(row.payload));
      upsert.step();
      upsert.reset();
      checkpoint = row.position;
      if (++in_batch == 256) close();
    }
    if (open) close();
    read.reset();
  }
  finish(state, checkpoint, s.all_events);
}

void register_all(const Sizes& s) {
  // Short cases repeat inside one process, so that one run lasts long enough
  // to measure on a busy machine; both sides use the same counts.
  const std::int64_t repeat = s.name == "tiny" ? 1 : 20;
  const auto reg = [](const std::string& name, std::int64_t iterations, auto fn) {
    benchmark::RegisterBenchmark(name.c_str(), fn)
        ->Iterations(iterations)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  };
  reg("annals/read_stream", repeat, [s](benchmark::State& st) { annals_read_stream(st, s); });
  reg("baseline/read_stream", repeat, [s](benchmark::State& st) { baseline_read_stream(st, s); });
  reg("annals/read_all", 1, [s](benchmark::State& st) { annals_read_all(st, s); });
  reg("baseline/read_all", 1, [s](benchmark::State& st) { baseline_read_all(st, s); });
  reg("annals/read_stream_decode", repeat,
      [s](benchmark::State& st) { annals_read_stream_decode(st, s); });
  reg("baseline/read_stream_decode", repeat,
      [s](benchmark::State& st) { baseline_read_stream(st, s); });
  reg("annals/aggregate_load", repeat, [s](benchmark::State& st) { annals_load(st, s, false); });
  reg("baseline/aggregate_load", repeat,
      [s](benchmark::State& st) { baseline_read_stream(st, s); });
  // The same load without the hash-chain check, against the same raw copy:
  // what the check costs on top of decoding (docs/performance.md).
  reg("annals/aggregate_load_unchecked", repeat,
      [s](benchmark::State& st) { annals_load(st, s, false, false); });
  reg("baseline/aggregate_load_unchecked", repeat,
      [s](benchmark::State& st) { baseline_read_stream(st, s); });
  reg("annals/read_all_decode", 1, [s](benchmark::State& st) { annals_read_all_decode(st, s); });
  reg("baseline/read_all_decode", 1, [s](benchmark::State& st) { baseline_read_all(st, s); });
  reg("annals/load_aggregate", repeat, [s](benchmark::State& st) { annals_load(st, s, false); });
  reg("baseline/load_aggregate", repeat,
      [s](benchmark::State& st) { baseline_load(st, s, false); });
  // The same load without the hash-chain check, against the same baseline.
  reg("annals/load_aggregate_unchecked", repeat,
      [s](benchmark::State& st) { annals_load(st, s, false, false); });
  reg("baseline/load_aggregate_unchecked", repeat,
      [s](benchmark::State& st) { baseline_load(st, s, false); });
  reg("annals/load_aggregate_snapshot", repeat * 10,
      [s](benchmark::State& st) { annals_load(st, s, true); });
  reg("baseline/load_aggregate_snapshot", repeat * 10,
      [s](benchmark::State& st) { baseline_load(st, s, true); });
  reg("annals/catch_up", 1, [s](benchmark::State& st) { annals_catch_up(st, s); });
  reg("baseline/catch_up", 1, [s](benchmark::State& st) { baseline_catch_up(st, s); });
}

}  // namespace
}  // namespace annals::bench

int main(int argc, char** argv) {
  return annals::bench::run_benchmarks("annals_bench_read", argc, argv, annals::bench::register_all);
}
