// Contention: four processes of four threads append to shared streams, some
// with ExpectedVersion::any(), some with exactly(n) and a retry on
// WrongExpectedVersion. No SQLITE_BUSY may reach a caller, no version may be
// given twice, positions and versions stay dense, every acknowledged event is
// stored where it was acknowledged.
//
// And the write-ahead log: a reader that iterates a long read_all() slowly
// beside steady writers must not pin the log (cursors hold no read
// transaction between pages), so the -wal file stays bounded; the control
// shows that a reader that does pin it makes the log outgrow the bound.
//
// ANNALS_CONTENTION_APPENDS sets the appends per thread (default 300).

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "annals/core/event_id.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "process_helpers.hpp"
#include "store/sqlite_vfs_spy.hpp"
#include "store/store_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;
using namespace std::chrono_literals;

EventData contention_event(const std::string& id, int i) {
  EventData e;
  e.event_id = id;
  e.type = "test.Contended";
  e.payload = R"({"i":)" + std::to_string(i) + "}";
  return e;
}

TEST(StoreContention, FourProcessesOfFourThreadsNeverSeeBusyNorDuplicateVersions) {
  constexpr int kProcesses = 4, kThreads = 4;
  const int per_thread = env_int("ANNALS_CONTENTION_APPENDS", 300);
  TempDir dir;
  const auto db = dir / "store.db";
  { SqliteEventStore create(db); }
  StartLine start;
  std::vector<pid_t> children;
  const auto started = std::chrono::steady_clock::now();
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(spawn_child([&, p] {
      start.wait();
      SqliteStoreOptions options;
      // Half the processes sync every commit, as in production; half do not,
      // so commits of very different lengths interleave.
      options.synchronous = p % 2 == 0 ? Synchronous::full : Synchronous::normal;
      SqliteEventStore store(db, options);
      AckLog acks(dir / ("acks-" + std::to_string(p)));
      std::atomic<int> busy{0}, other_errors{0}, conflicts{0};
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
          for (int i = 0; i < per_thread; ++i) {
            const std::string id = new_event_id();
            try {
              if ((i + t) % 2 == 0) {  // any(): the store picks the version
                const std::string stream = "shared-" + std::to_string(i % 3);
                const auto r = store.append(stream, ExpectedVersion::any(), {contention_event(id, i)});
                acks.ack({id + " " + stream + " " + std::to_string(r.stream_version)});
              } else {  // exactly(n): read, decide, append, retry on conflict
                const std::string stream = "counter-" + std::to_string(i % 2);
                for (;;) {
                  const auto v = store.stream_version(stream);
                  try {
                    const auto r = store.append(stream, ExpectedVersion::exactly(v), {contention_event(id, i)});
                    acks.ack({id + " " + stream + " " + std::to_string(r.stream_version)});
                    break;
                  } catch (const WrongExpectedVersion&) {
                    ++conflicts;
                  }
                }
              }
            } catch (const StorageError& e) {
              ++((e.code() == SQLITE_BUSY || e.code() == SQLITE_LOCKED) ? busy : other_errors);
              std::fprintf(stderr, "process %d thread %d: %s\n", p, t, e.what());
            }
          }
        });
      }
      for (auto& th : threads) th.join();
      AckLog figures(dir / ("figures-" + std::to_string(p)));
      figures.ack({std::to_string(busy.load()) + " " + std::to_string(other_errors.load()) + " " +
                   std::to_string(conflicts.load())});
      return busy.load() + other_errors.load() == 0 ? 0 : 5;
    }));
  }
  start.release();
  for (pid_t child : children) EXPECT_EQ(wait_for_exit(child), 0) << "a child saw errors (above)";
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  int busy = 0, other_errors = 0, conflicts = 0;
  for (int p = 0; p < kProcesses; ++p) {
    const auto lines = read_lines(dir / ("figures-" + std::to_string(p)));
    ASSERT_EQ(lines.size(), 1u) << "process " << p << " wrote no figures";
    std::istringstream in(lines[0]);
    int b = 0, o = 0, c = 0;
    in >> b >> o >> c;
    busy += b;
    other_errors += o;
    conflicts += c;
  }
  EXPECT_EQ(busy, 0) << "SQLITE_BUSY reached a caller";
  EXPECT_EQ(other_errors, 0);

  SqliteEventStore store(db, SqliteStoreOptions{});
  const auto versions = expect_consistent(store);  // dense positions and versions, unique ids
  std::map<std::string, std::pair<std::string, std::int64_t>> where;  // id -> (stream, version)
  for (const auto& e : store.read_all()) where[e.event_id] = {e.stream_id, e.version};
  std::size_t acked = 0;
  for (int p = 0; p < kProcesses; ++p) {
    for (const auto& line : read_lines(dir / ("acks-" + std::to_string(p)))) {
      std::istringstream in(line);
      std::string id, stream;
      std::int64_t version = 0;
      in >> id >> stream >> version;
      ++acked;
      const auto it = where.find(id);
      ASSERT_NE(it, where.end()) << "acknowledged event missing: " << line;
      EXPECT_EQ(it->second, std::make_pair(stream, version)) << line;
    }
  }
  const auto expected_total = static_cast<std::size_t>(kProcesses * kThreads * per_thread);
  EXPECT_EQ(acked, expected_total);
  EXPECT_EQ(static_cast<std::size_t>(store.head_position()), expected_total);
  std::printf(
      "contention: %d processes x %d threads x %d appends = %zu events in %.1f s; "
      "SQLITE_BUSY seen by callers %d, other storage errors %d, WrongExpectedVersion retries %d, "
      "streams %zu\n",
      kProcesses, kThreads, per_thread, acked, seconds, busy, other_errors, conflicts, versions.size());
}

std::uintmax_t wal_size(const std::filesystem::path& db) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(db.string() + "-wal", ec);
  return ec ? 0 : size;
}

// The log's size bound: SQLite checkpoints at 1000 pages and then reuses the
// log from its start, unless a reader still needs frames at its end.
constexpr std::uintmax_t kWalBoundPages = 3000;

TEST(StoreContention, ASlowLongReadBesideSteadyWritesKeepsTheWriteAheadLogBounded) {
  TempDir dir;
  const auto db = dir / "store.db";
  SqliteVfsSpy spy("annals-wal-growth");  // counts the bytes written to the log
  SqliteStoreOptions options;
  options.synchronous = Synchronous::normal;
  options.read_page_size = 64;
  options.vfs = spy.name();
  SqliteEventStore store(db, options);
  std::uintmax_t page_size = 0;
  {
    SQLite::Database raw(db, SQLite::OPEN_READONLY);
    page_size = static_cast<std::uintmax_t>(raw.execAndGet("PRAGMA page_size").getInt64());
  }
  const std::uintmax_t bound = kWalBoundPages * page_size;
  const std::string pad(1500, 'w');
  auto append_one = [&](int i) {
    EventData e;
    e.type = "test.Written";
    e.payload = R"({"i":)" + std::to_string(i) + R"(,"pad":")" + pad + "\"}";
    store.append("w-" + std::to_string(i % 7), ExpectedVersion::any(), {e});
  };
  for (int i = 0; i < 500; ++i) append_one(i);

  // Writers append until the log has seen several times the bound in frames,
  // while a reader walks read_all() from the start, slowly, over and over.
  std::atomic<bool> writing{true};
  std::atomic<long> events_read{0};
  std::atomic<int> passes{0};
  std::thread reader([&] {
    while (writing.load()) {
      for (const auto& e : store.read_all()) {
        (void)e;
        ++events_read;
        if (!writing.load()) break;
        std::this_thread::sleep_for(50us);
      }
      ++passes;
    }
  });
  std::uintmax_t max_wal = 0;
  int appended = 0;
  spy.reset_counts();
  // Six times the bound written to the log: without reuse it would be that large.
  const auto written_target = static_cast<long long>(6 * bound);
  while (spy.wal_bytes_written() < written_target) {
    for (int i = 0; i < 50; ++i) append_one(appended++);
    max_wal = std::max(max_wal, wal_size(db));
  }
  const auto log_bytes_written = static_cast<std::uintmax_t>(spy.wal_bytes_written());
  writing = false;
  reader.join();
  std::printf(
      "wal growth: %d appends (%ju MiB written to the log) beside a reader that read %ld events in "
      "%d passes; largest -wal %.1f MiB, bound %.1f MiB\n",
      appended, log_bytes_written >> 20, events_read.load(), passes.load(),
      static_cast<double>(max_wal) / (1 << 20), static_cast<double>(bound) / (1 << 20));
  EXPECT_GT(events_read.load(), 1000) << "the reader did not overlap the writes";
  EXPECT_LE(max_wal, bound) << "the log grows while a cursor is open";

  // Control: a reader that holds one read transaction pins the log, and the
  // same measurement sees it outgrow the bound.
  SQLite::Database pinning(db, SQLite::OPEN_READONLY);
  pinning.exec("BEGIN");
  (void)pinning.execAndGet("SELECT count(*) FROM events").getInt64();
  std::uintmax_t pinned_max = 0;
  spy.reset_counts();
  while (spy.wal_bytes_written() < static_cast<long long>(2 * bound) && pinned_max <= bound) {
    for (int i = 0; i < 50; ++i) append_one(appended++);
    pinned_max = std::max(pinned_max, wal_size(db));
  }
  pinning.exec("COMMIT");
  std::printf("wal growth control: with a read transaction held open the -wal reached %.1f MiB\n",
              static_cast<double>(pinned_max) / (1 << 20));
  EXPECT_GT(pinned_max, bound) << "the measurement cannot see a pinned log";
  expect_consistent(store);
}

}  // namespace
}  // namespace annals
