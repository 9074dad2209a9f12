// Faults under load: 4 writers append while the server is SIGKILLed and
// restarted, or while another connection terminates their backends in the
// middle of an append (pg_terminate_backend). Each writer retries a failed
// append with the same event ids until it is acknowledged, as the store's
// contract tells callers to. Then:
//   - every failure a writer saw is a StorageError saying the outcome may be
//     unknown (nothing else, and no DuplicateEventId on a retry),
//   - every acknowledged append is stored, whole, where it was acknowledged,
//   - no event is stored twice and nothing is stored that was not
//     acknowledged; positions and versions are dense, the hash chain holds,
//   - the store works again after each restart without being reopened.
//
// 40 kills and 100 terminations in the default run; ANNALS_SOAK=1 makes it
// 1000 and 2000 (ANNALS_PG_KILLS and ANNALS_PG_TERMINATIONS set them).
// The kill test needs a server it started itself: it is skipped under
// ANNALS_TEST_PG_URL.

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/event_id.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "postgres/postgres_server.hpp"
#include "process_helpers.hpp"

namespace {

[[maybe_unused]] ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new annals::testing::PostgresEnvironment);

using namespace annals;
using namespace annals::testing;
using namespace std::chrono_literals;

constexpr int kWriters = 4;

struct Acked {
  std::string stream;
  std::vector<std::string> ids;
  AppendResult result;
};

// What the writers saw; filled by their threads, read after they stopped.
struct Outcome {
  std::vector<Acked> acked;
  long failures = 0;           // appends that threw and were retried
  std::vector<std::string> bad;  // failures that broke the contract
};

// Writers, each with its own store object (or all sharing `shared`, whose
// appends they then make in group commits), appending batches of 1 to 3
// events (half to a stream of their own with exactly(version), half to a
// shared stream with any()) and retrying a failed append with the same ids.
class Writers {
 public:
  explicit Writers(const std::string& schema, int writers = kWriters,
                   PostgresEventStore* shared = nullptr)
      : shared_(shared) {
    for (int w = 0; w < writers; ++w) {
      threads_.emplace_back([this, schema, w] { run(schema, w); });
    }
  }
  ~Writers() { stop(); }
  Writers(const Writers&) = delete;
  Writers& operator=(const Writers&) = delete;

  long acknowledged() const { return acknowledged_.load(); }

  // Waits until `n` more appends are acknowledged (or 60 s pass).
  bool wait_for_progress(long n) const {
    const long target = acknowledged() + n;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (acknowledged() < target) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }

  // Stops the writers once their current append is acknowledged (they give
  // up after 30 s, which the outcome reports as a failure).
  Outcome stop() {
    give_up_at_ = std::chrono::steady_clock::now() + 30s;
    stopping_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::lock_guard lock(mu_);
    return outcome_;
  }

 private:
  void run(const std::string& schema, int w) {
    PostgresStoreOptions options;
    options.schema = schema;
    std::unique_ptr<PostgresEventStore> store;
    std::mt19937 rng(static_cast<unsigned>(w));
    const std::string own = "fault-" + std::to_string(w);
    std::int64_t own_version = 0;
    for (int i = 0; !stopping_; ++i) {
      const bool shared = i % 2 == 1;
      const std::string stream = shared ? "shared" : own;
      const auto expected = shared ? ExpectedVersion::any() : ExpectedVersion::exactly(own_version);
      std::vector<EventData> batch;
      for (int j = 0, n = 1 + static_cast<int>(rng() % 3); j < n; ++j) {
        EventData e;
        e.event_id = new_event_id();
        e.type = "test.Survived";
        e.payload = R"({"writer":)" + std::to_string(w) + R"(,"i":)" + std::to_string(i) + "}";
        batch.push_back(std::move(e));
      }
      // Retried until acknowledged, with the same ids, even after stop():
      // a writer never abandons an append whose outcome it does not know.
      for (;;) {
        try {
          if (!store && !shared_) store = std::make_unique<PostgresEventStore>(url(), options);
          const auto r = (shared_ != nullptr ? *shared_ : *store).append(stream, expected, batch);
          Acked a{stream, {}, r};
          for (const auto& e : batch) a.ids.push_back(e.event_id);
          if (!shared) own_version = r.stream_version;
          std::lock_guard lock(mu_);
          outcome_.acked.push_back(std::move(a));
          ++acknowledged_;
          break;
        } catch (const StorageError& e) {
          const std::string what = e.what();
          std::lock_guard lock(mu_);
          ++outcome_.failures;
          // A store that could not even be opened has appended nothing.
          if ((store || shared_) && what.find("outcome may be unknown") == std::string::npos) {
            outcome_.bad.push_back("StorageError without 'outcome may be unknown': " + what);
          }
        } catch (const std::exception& e) {
          std::lock_guard lock(mu_);
          ++outcome_.failures;
          outcome_.bad.push_back(std::string("not a StorageError: ") + e.what());
        }
        if (stopping_ && std::chrono::steady_clock::now() > give_up_at_.load()) {
          std::lock_guard lock(mu_);
          outcome_.bad.push_back("writer " + std::to_string(w) + " gave up an append 30 s after stop()");
          return;
        }
        std::this_thread::sleep_for(2ms);
      }
    }
  }
  static const std::string& url() { return postgres_url(); }

  PostgresEventStore* const shared_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::chrono::steady_clock::time_point> give_up_at_{};
  std::atomic<long> acknowledged_{0};
  std::mutex mu_;
  Outcome outcome_;
  std::vector<std::thread> threads_;
};

// Every acknowledged append stored whole where acknowledged; nothing else.
void expect_acknowledged_exactly(const EventStore& store, const Outcome& outcome) {
  EXPECT_EQ(outcome.bad.size(), 0u) << "failures that broke the contract, the first: "
                                     << (outcome.bad.empty() ? "" : outcome.bad.front());
  std::map<std::string, RecordedEvent> stored;
  for (auto& e : store.read_all()) stored.emplace(e.event_id, std::move(e));
  std::size_t acked_events = 0;
  for (const auto& a : outcome.acked) {
    for (std::size_t j = 0; j < a.ids.size(); ++j) {
      ++acked_events;
      const auto it = stored.find(a.ids[j]);
      ASSERT_NE(it, stored.end()) << "acknowledged event lost: " << a.ids[j];
      EXPECT_EQ(it->second.stream_id, a.stream);
      EXPECT_EQ(it->second.position, a.result.first_position + static_cast<std::int64_t>(j));
      EXPECT_EQ(it->second.version,
                a.result.stream_version - static_cast<std::int64_t>(a.ids.size() - 1 - j));
    }
  }
  EXPECT_EQ(stored.size(), acked_events) << "events stored that no append acknowledged";
  expect_consistent(store);
}

PostgresStoreOptions in_schema(const std::string& schema) {
  PostgresStoreOptions options;
  options.schema = schema;
  return options;
}

TEST(PostgresFaults, AnAppendWhileTheServerIsDownSaysItsOutcomeMayBeUnknownAndTheStoreWorksAfterTheRestart) {
  PostgresServer& server = *postgres_server();
  if (!server.owns_server()) GTEST_SKIP() << "kills only a server it started (ANNALS_TEST_PG_URL is set)";
  auto options = in_schema(fresh_schema());
  options.read_page_size = 2;
  PostgresEventStore store(postgres_url(), options);
  EventData first;
  first.type = "test.Survived";
  store.append("s", ExpectedVersion::no_stream(), {first, first, first});
  EXPECT_EQ(store.stream_version("s"), 3);  // a connection now idles in the pool
  server.kill();
  server.restart();
  // The pooled connection the server closed is replaced, not handed out to fail.
  EXPECT_EQ(store.stream_version("s"), 3);
  EXPECT_EQ(store.read_all().next()->position, 1);
  server.kill();
  EventData during;
  during.event_id = new_event_id();
  during.type = "test.Survived";
  try {
    store.append("s", ExpectedVersion::exactly(3), {during});
    ADD_FAILURE() << "appended while the server was down";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("outcome may be unknown"), std::string::npos) << e.what();
  }
  server.restart();
  EXPECT_EQ(store.append("s", ExpectedVersion::exactly(3), {during}).stream_version, 4);
  EXPECT_EQ(store.append("s", ExpectedVersion::exactly(3), {during}).stream_version, 4)
      << "a retry with the same id must return the first result";
  expect_consistent(store);
}

TEST(PostgresFaults, ServerKilledAndRestartedDuringAppendsLosesNoAcknowledgedEventAndRetriesNeverDuplicate) {
  PostgresServer& server = *postgres_server();
  if (!server.owns_server()) GTEST_SKIP() << "kills only a server it started (ANNALS_TEST_PG_URL is set)";
  const int kills = env_int("ANNALS_PG_KILLS", env_int("ANNALS_SOAK", 0) ? 1000 : 40);
  const std::string schema = fresh_schema();
  PostgresEventStore store(postgres_url(), in_schema(schema));
  std::mt19937 rng(42);
  Outcome outcome;
  {
    Writers writers(schema);
    for (int k = 0; k < kills; ++k) {
      // Appends under way since the last restart, then a random moment.
      ASSERT_TRUE(writers.wait_for_progress(4 + static_cast<long>(rng() % 8)))
          << "no appends succeed after restart " << k;
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20'000));
      server.kill();
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));  // the outage
      server.restart();
    }
    ASSERT_TRUE(writers.wait_for_progress(20)) << "no appends succeed after the last restart";
    outcome = writers.stop();
  }
  expect_acknowledged_exactly(store, outcome);
  EXPECT_GT(outcome.failures, 0) << "no append failed: the kills missed them";
  std::printf("kills: %d kills, %zu appends acknowledged, %ld failed attempts retried\n", kills,
              outcome.acked.size(), outcome.failures);
}

// Terminates the backends of `writers_count` threads in the middle of appends
// (each thread with its own store, or all sharing one: then the backend is
// that of a group's leader, and every append of the group loses it).
void terminate_during_appends(int writers_count, bool share_one_store) {
  const int terminations = env_int("ANNALS_PG_TERMINATIONS", env_int("ANNALS_SOAK", 0) ? 2000 : 100);
  const std::string schema = fresh_schema();
  PostgresEventStore store(postgres_url(), in_schema(schema));
  std::optional<PostgresEventStore> shared;
  if (share_one_store) shared.emplace(postgres_url(), in_schema(schema));
  const std::string head_table = schema + ".annals_head";
  std::mt19937 rng(7);
  Outcome outcome;
  int done = 0;
  {
    Writers writers(schema, writers_count, shared ? &*shared : nullptr);
    std::unique_ptr<PGconn, decltype(&PQfinish)> killer(PQconnectdb(postgres_url().c_str()),
                                                        &PQfinish);
    ASSERT_EQ(PQstatus(killer.get()), CONNECTION_OK) << PQerrorMessage(killer.get());
    // Only backends inside an append of this test: those holding the lock
    // the append takes on the head row's table.
    const std::string sql =
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_locks "
        "WHERE locktype = 'relation' AND relation = '" + head_table + "'::regclass "
        "AND granted AND pid <> pg_backend_pid()";
    const auto deadline = std::chrono::steady_clock::now() + (terminations > 100 ? 3600s : 90s);
    while (done < terminations && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 5'000));
      std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(killer.get(), sql.c_str()), &PQclear);
      ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
      const int n = std::atoi(PQgetvalue(r.get(), 0, 0));
      if (n > 0) {
        done += n;
        ASSERT_TRUE(writers.wait_for_progress(2)) << "no appends succeed after termination " << done;
      }
    }
    ASSERT_TRUE(writers.wait_for_progress(20));
    outcome = writers.stop();
  }
  EXPECT_GE(done, terminations) << "the appends' backends were not caught often enough";
  expect_acknowledged_exactly(store, outcome);
  EXPECT_GT(outcome.failures, 0) << "no append failed: the terminations missed them";
  std::printf("terminations: %d backends terminated mid-append, %zu appends acknowledged, "
              "%ld failed attempts retried\n",
              done, outcome.acked.size(), outcome.failures);
}

TEST(PostgresFaults, ConnectionsTerminatedInTheMiddleOfAppendsLoseNoAcknowledgedEventAndRetriesNeverDuplicate) {
  terminate_during_appends(kWriters, false);
}

TEST(PostgresFaults, LeadersTerminatedInTheMiddleOfGroupCommitsLoseNoAcknowledgedEventAndRetriesNeverDuplicate) {
  terminate_during_appends(8, true);
}

}  // namespace
