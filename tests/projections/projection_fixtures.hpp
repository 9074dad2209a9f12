#pragma once
// Helpers shared by the projection tests: events, a ledger projection whose
// rows can be checked against the store exactly, waiting, and child processes.

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "annals/projections/projection.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "process_helpers.hpp"
#include "store/store_fixtures.hpp"

namespace annals::testing {

using namespace std::chrono_literals;

inline EventData event(const std::string& type = "test.Happened", std::string payload = "{}") {
  EventData e;
  e.type = type;
  e.payload = std::move(payload);
  return e;
}

inline std::vector<EventData> events(int n, const std::string& type = "test.Happened") {
  std::vector<EventData> out;
  out.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out.push_back(event(type, R"({"i":)" + std::to_string(i) + "}"));
  return out;
}

// Appends `total` events in appends of `per_append`, spread over `streams` streams.
inline void fill(EventStore& store, int total, int per_append = 1000, int streams = 10,
                 const std::string& type = "test.Happened") {
  for (int done = 0, i = 0; done < total; ++i) {
    const int n = std::min(per_append, total - done);
    store.append("s-" + std::to_string(i % streams), ExpectedVersion::any(), events(n, type));
    done += n;
  }
}

inline SqliteStoreOptions fast_store() {
  SqliteStoreOptions options;
  options.synchronous = Synchronous::normal;
  return options;
}

// A projection that keeps one row per event it sees and a count per stream:
// both must match the store exactly up to the checkpoint, and a count applied
// twice would show.
inline Projection ledger_projection(std::string name = "ledger", EventFilter filter = {}) {
  const std::string table = name + "_rows";
  const std::string totals = name + "_totals";
  Projection p;
  p.name = std::move(name);
  p.filter = std::move(filter);
  p.setup = [=](SqlTransaction& tx) {
    tx.exec_script("CREATE TABLE IF NOT EXISTS " + table +
                   " (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, type TEXT NOT NULL);"
                   "CREATE TABLE IF NOT EXISTS " +
                   totals + " (stream_id TEXT PRIMARY KEY, n INTEGER NOT NULL);");
  };
  p.apply = [=](SqlTransaction& tx, const RecordedEvent& e) {
    tx.exec("INSERT INTO " + table + " (position, stream_id, type) VALUES (?1, ?2, ?3)",
            {e.position, e.stream_id, e.type});
    tx.exec("INSERT INTO " + totals +
                " (stream_id, n) VALUES (?1, 1) ON CONFLICT(stream_id) DO UPDATE SET n = n + 1",
            {e.stream_id});
  };
  p.reset = [=](SqlTransaction& tx) {
    tx.exec("DELETE FROM " + table);
    tx.exec("DELETE FROM " + totals);
  };
  return p;
}

// Every row of a query, rendered as text, for comparing read models.
inline std::vector<std::string> dump(const SqliteReadModel& model, const std::string& sql) {
  std::vector<std::string> out;
  for (const auto& row : model.query(sql)) {
    std::string line;
    for (const auto& v : row) {
      line += v.is_null() ? "NULL" : v.is_int() ? std::to_string(v.as_int()) : v.is_text() ? v.as_text() : std::to_string(v.as_real());
      line += "|";
    }
    out.push_back(std::move(line));
  }
  return out;
}

// Waits (bounded) until `done` holds.
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Runs `fn` on a thread of its own and waits for it at most `limit`, then
// rethrows what it threw. A call that has not returned by then is taken for a
// deadlock: the stuck thread cannot be recovered, so the test program prints
// `what` and exits with status 1, and the regression fails instead of hanging.
template <class Fn>
void within_deadline(const char* what, Fn fn, std::chrono::milliseconds limit = 60s) {
  std::promise<void> finished;
  auto done = finished.get_future();
  std::exception_ptr error;
  std::thread worker([&] {
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
    finished.set_value();
  });
  if (done.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "DEADLOCK: %s did not return within %lld ms\n", what,
                 static_cast<long long>(limit.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }
  worker.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace annals::testing
