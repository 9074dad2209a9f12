// Group commit on PostgreSQL: appends from threads sharing one store object
// written in one transaction, each with its own checks, result or error.
//
// The tests that need a group of several hold the head row's lock from a
// connection of their own: the first append then leads and waits for the lock
// inside its transaction, the others queue behind it, and releasing the lock
// lets the leader write them all before its COMMIT. Every append transaction
// that stores events sends one NOTIFY, so counting notifications counts
// transactions.

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
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

EventData event(const std::string& id = new_event_id()) {
  EventData e;
  e.event_id = id;
  e.type = "test.Grouped";
  e.payload = R"({"id":")" + id + R"("})";
  return e;
}

PostgresStoreOptions in_schema(const std::string& schema) {
  PostgresStoreOptions options;
  options.schema = schema;
  return options;
}

using PgConn = std::unique_ptr<PGconn, decltype(&PQfinish)>;

// A connection of the test's own, with the store's schema on its path.
PgConn connect(const std::string& schema) {
  const std::string path = "-c search_path=" + schema;
  const char* keys[] = {"dbname", "options", nullptr};
  const char* values[] = {postgres_url().c_str(), path.c_str(), nullptr};
  PgConn c(PQconnectdbParams(keys, values, 1), &PQfinish);
  if (PQstatus(c.get()) != CONNECTION_OK) {
    throw std::runtime_error(std::string("cannot connect: ") + PQerrorMessage(c.get()));
  }
  return c;
}

// Runs `sql` on `c`; returns the first value of its result ("" when none).
std::string run(PGconn* c, const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c, sql.c_str()), &PQclear);
  const auto status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(r.get()));
  }
  return PQntuples(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : "";
}

// LISTENs on the store's channel and counts the notifications, one per
// committed append transaction that stored events.
class TransactionCounter {
 public:
  explicit TransactionCounter(const std::string& schema) : c_(connect(schema)) {
    run(c_.get(), "LISTEN \"annals." + schema + "\"");
  }
  // Notifications received since the last call. Those of transactions
  // committed before the call are all in: the server sends them to an idle
  // session before it answers its next query.
  int take() {
    run(c_.get(), "SELECT 1");
    int n = 0;
    PQconsumeInput(c_.get());
    while (PGnotify* note = PQnotifies(c_.get())) {
      ++n;
      PQfreemem(note);
    }
    return n;
  }

 private:
  PgConn c_;
};

// Holds the head row's lock until release(), so that the next append waits
// for it in its transaction, as the leader of a group.
class HeadLock {
 public:
  explicit HeadLock(const std::string& schema) : c_(connect(schema)) {
    run(c_.get(), "BEGIN");
    run(c_.get(), "SELECT position FROM annals_head WHERE id = 1 FOR UPDATE");
  }
  ~HeadLock() {
    if (held_) PQexec(c_.get(), "ROLLBACK");
  }
  HeadLock(const HeadLock&) = delete;
  HeadLock& operator=(const HeadLock&) = delete;

  // Returns once a store connection waits for the lock (the leader is in).
  void wait_for_leader() {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (run(c_.get(),
               "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
               "'annals' AND wait_event_type = 'Lock'") == "0") {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("no append waited for the head row");
      }
      std::this_thread::sleep_for(2ms);
    }
  }
  void release() {
    run(c_.get(), "ROLLBACK");
    held_ = false;
  }

 private:
  PgConn c_;
  bool held_ = true;
};

// Starts `calls` one thread each: the first leads and waits for the head
// lock, the others queue behind it (given time to), then the lock goes and
// the leader writes the lot. Returns once every call returned.
void as_one_group(const std::string& schema, const std::vector<std::function<void()>>& calls) {
  const auto guarded = [](const std::function<void()>& call) {
    return [call] {
      try {
        call();
      } catch (const std::exception& e) {
        ADD_FAILURE() << "unexpected: " << e.what();
      }
    };
  };
  HeadLock lock(schema);
  std::vector<std::thread> threads;
  threads.emplace_back(guarded(calls.front()));
  lock.wait_for_leader();
  for (std::size_t i = 1; i < calls.size(); ++i) threads.emplace_back(guarded(calls[i]));
  // Not an assertion: appends later than this would make groups of their
  // own, which the caller's count of transactions reports.
  std::this_thread::sleep_for(1s);
  lock.release();
  for (auto& t : threads) t.join();
}

TEST(PostgresGroupCommit,
     EightThreadsSharingOneStoreKeepPositionsDenseVersionsWholeAndTheChainValid) {
  constexpr int kThreads = 8;
  constexpr int kAppendsEach = 120;  // half to its own stream, half to a shared one
  const std::string schema = fresh_schema();
  PostgresEventStore store(postgres_url(), in_schema(schema));
  TransactionCounter transactions(schema);
  struct Acked {
    std::string stream;
    std::string id;
    AppendResult result;
  };
  std::mutex mu;
  std::vector<Acked> acked;
  std::atomic<long> conflicts{0};
  std::vector<std::string> bad;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string own = "own-" + std::to_string(t);
      std::int64_t own_version = 0;
      for (int i = 0; i < kAppendsEach; ++i) {
        const bool shared = i % 2 == 1;
        const std::string stream = shared ? "shared" : own;
        const EventData e = event();
        try {
          AppendResult r;
          if (!shared) {
            r = store.append(stream, ExpectedVersion::exactly(own_version), {e});
            own_version = r.stream_version;
          } else {
            for (;;) {
              try {
                r = store.append(stream, ExpectedVersion::exactly(store.stream_version(stream)),
                                 {e});
                break;
              } catch (const WrongExpectedVersion&) {
                ++conflicts;  // another thread's append took the version: read it again
              }
            }
          }
          std::lock_guard lock(mu);
          acked.push_back({stream, e.event_id, r});
        } catch (const std::exception& x) {
          std::lock_guard lock(mu);
          bad.push_back(x.what());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(bad.empty()) << bad.size() << " appends failed, the first: " << bad.front();

  const auto versions = expect_consistent(store);  // dense positions and versions, the chain
  EXPECT_EQ(store.head_position(), kThreads * kAppendsEach);
  EXPECT_EQ(versions.at("shared"), kThreads * kAppendsEach / 2);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(versions.at("own-" + std::to_string(t)), kAppendsEach / 2);
  }
  // Each caller got the place its event was stored at.
  std::map<std::string, RecordedEvent> stored;
  for (auto& e : store.read_all()) stored.emplace(e.event_id, std::move(e));
  ASSERT_EQ(stored.size(), acked.size());
  std::set<std::int64_t> positions;
  for (const auto& a : acked) {
    const RecordedEvent& e = stored.at(a.id);
    EXPECT_EQ(e.stream_id, a.stream);
    EXPECT_EQ(e.position, a.result.first_position);
    EXPECT_EQ(e.position, a.result.last_position);
    EXPECT_EQ(e.version, a.result.stream_version);
    positions.insert(a.result.first_position);
  }
  EXPECT_EQ(positions.size(), acked.size()) << "two appends were given one position";
  // The point of it all: appends shared transactions.
  const int commits = transactions.take();
  EXPECT_LT(commits, kThreads * kAppendsEach) << "no two appends shared a transaction";
  std::printf("%zu appends in %d transactions, %ld conflicts retried\n", acked.size(), commits,
              conflicts.load());
}

TEST(PostgresGroupCommit, AFailingAppendInAGroupFailsAloneAndTheOthersCommit) {
  const std::string schema = fresh_schema();
  PostgresEventStore store(postgres_url(), in_schema(schema));
  const std::string taken = new_event_id();
  store.append("other", ExpectedVersion::no_stream(), {event(taken)});
  // A statement that fails on the server in the middle of an append, which
  // aborts the transaction: only the append's savepoint can save the group.
  {
    auto owner = connect(schema);
    run(owner.get(),
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'poisoned stream'; END $$");
    run(owner.get(),
        "CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW "
        "WHEN (NEW.stream_id = 'poison' AND NEW.version = 2) EXECUTE FUNCTION poison()");
  }
  std::mutex mu;
  std::vector<std::vector<std::string>> heard;  // each listener call's event ids
  auto handle = store.add_commit_listener([&](std::span<const RecordedEvent> events) {
    std::vector<std::string> ids;
    for (const auto& e : events) ids.push_back(e.event_id);
    std::lock_guard lock(mu);
    heard.push_back(std::move(ids));
  });
  TransactionCounter transactions(schema);

  const EventData first = event();
  const EventData last = event();
  std::optional<AppendResult> first_result, last_result;
  std::string wrong_version, poisoned, duplicate;
  as_one_group(
      schema,
      {
          [&] { first_result = store.append("first", ExpectedVersion::no_stream(), {first}); },
          [&] {
            try {
              store.append("stale", ExpectedVersion::exactly(5), {event()});
            } catch (const WrongExpectedVersion& e) {
              wrong_version = e.what();
            }
          },
          [&] {
            try {
              // Two events: the first row is written when the second fails.
              store.append("poison", ExpectedVersion::any(), {event(), event()});
            } catch (const StorageError& e) {
              poisoned = e.what();
            }
          },
          [&] {
            try {
              store.append("reuses", ExpectedVersion::no_stream(), {event(taken)});
            } catch (const DuplicateEventId& e) {
              duplicate = e.what();
            }
          },
          [&] { last_result = store.append("last", ExpectedVersion::no_stream(), {last}); },
      });

  EXPECT_NE(wrong_version, "");
  EXPECT_NE(poisoned.find("poisoned stream"), std::string::npos) << poisoned;
  EXPECT_EQ(poisoned.find("outcome may be unknown"), std::string::npos) << poisoned;
  EXPECT_NE(duplicate, "");
  ASSERT_TRUE(first_result && last_result);
  EXPECT_EQ(first_result->first_position, 2);
  EXPECT_EQ(last_result->first_position, 3);
  EXPECT_EQ(last_result->stream_version, 1);
  EXPECT_EQ(store.stream_version("stale"), 0);
  EXPECT_EQ(store.stream_version("poison"), 0);
  EXPECT_EQ(store.stream_version("reuses"), 0);
  expect_consistent(store);
  EXPECT_EQ(transactions.take(), 1) << "the appends did not share one transaction";
  // Listeners hear each append on its own, in position order.
  std::lock_guard lock(mu);
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[0], std::vector<std::string>{first.event_id});
  EXPECT_EQ(heard[1], std::vector<std::string>{last.event_id});
}

TEST(PostgresGroupCommit, TheSameEventIdsTwiceInOneGroupAreStoredOnceAndBothCallersSucceed) {
  const std::string schema = fresh_schema();
  PostgresEventStore store(postgres_url(), in_schema(schema));
  TransactionCounter transactions(schema);
  const std::vector<EventData> batch{event(), event()};
  constexpr int kCallers = 3;
  std::vector<std::optional<AppendResult>> results(kCallers);
  std::vector<std::string> errors(kCallers);
  std::vector<std::function<void()>> calls;
  for (int i = 0; i < kCallers; ++i) {
    calls.push_back([&, i] {
      try {
        results[static_cast<std::size_t>(i)] =
            store.append("twice", ExpectedVersion::no_stream(), batch);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(i)] = e.what();
      }
    });
  }
  as_one_group(schema, calls);

  for (int i = 0; i < kCallers; ++i) {
    const auto u = static_cast<std::size_t>(i);
    EXPECT_EQ(errors[u], "") << "caller " << i;
    ASSERT_TRUE(results[u]) << "caller " << i;
    EXPECT_EQ(results[u]->stream_version, 2);
    EXPECT_EQ(results[u]->first_position, 1);
    EXPECT_EQ(results[u]->last_position, 2);
  }
  EXPECT_EQ(store.head_position(), 2);
  expect_consistent(store);
  EXPECT_EQ(transactions.take(), 1) << "the appends did not share one transaction";
}

TEST(PostgresGroupCommit, AMaximumGroupSizeOfOneCommitsEveryAppendOnItsOwn) {
  const std::string schema = fresh_schema();
  PostgresStoreOptions options = in_schema(schema);
  options.max_group_size = 1;
  PostgresEventStore store(postgres_url(), options);
  TransactionCounter transactions(schema);
  std::vector<std::function<void()>> calls;
  for (int i = 0; i < 3; ++i) {
    calls.push_back([&, i] {
      store.append("alone-" + std::to_string(i), ExpectedVersion::no_stream(), {event()});
    });
  }
  as_one_group(schema, calls);
  EXPECT_EQ(store.head_position(), 3);
  expect_consistent(store);
  EXPECT_EQ(transactions.take(), 3);
}

}  // namespace
