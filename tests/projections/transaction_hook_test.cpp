// Transaction hooks of both stores: what inline projections are built on.
// A hook runs inside the append, sees the append's events with their final
// positions, writes in the same transaction, and rejects the append by
// throwing; in a group commit only that append fails.

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "annals/core/error.hpp"
#include "projection_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

struct Rejected : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::int64_t count_rows(SqliteEventStore& store, const std::string& table) {
  SqliteReadModel reader(store.path());
  return reader.query_int("SELECT count(*) FROM " + table).value_or(-1);
}

TEST(InlineTransactionHook, SqliteHookSeesTheAppendsEventsInsideItsTransaction) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  { SqliteReadModel setup(store.path()); setup.write([](SqlTransaction& tx) {
      tx.exec_script("CREATE TABLE seen (position INTEGER PRIMARY KEY, visible INTEGER)");
    }); }
  std::vector<std::vector<std::int64_t>> calls;
  auto hook = store.add_transaction_hook([&](SqlTransaction& tx, std::span<const RecordedEvent> es) {
    std::vector<std::int64_t> positions;
    for (const auto& e : es) {
      positions.push_back(e.position);
      // The hook's connection sees the events being appended (uncommitted).
      const auto visible =
          tx.query_int("SELECT count(*) FROM events WHERE position <= ?1", {e.position});
      tx.exec("INSERT INTO seen (position, visible) VALUES (?1, ?2)", {e.position, *visible});
    }
    calls.push_back(positions);
  });
  store.append("a-1", ExpectedVersion::any(), events(2));
  std::vector<StreamAppend> multi;
  multi.push_back({"b-1", ExpectedVersion::no_stream(), events(1)});
  multi.push_back({"c-1", ExpectedVersion::no_stream(), events(2)});
  store.append(std::move(multi));
  EXPECT_EQ(calls, (std::vector<std::vector<std::int64_t>>{{1, 2}, {3, 4, 5}}));
  SqliteReadModel reader(store.path());
  EXPECT_EQ(dump(reader, "SELECT position, visible FROM seen ORDER BY position"),
            (std::vector<std::string>{"1|1|", "2|2|", "3|3|", "4|4|", "5|5|"}));
}

TEST(InlineTransactionHook, SqliteHookThatThrowsRejectsTheAppendAndWritesNothing) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  { SqliteReadModel setup(store.path()); setup.write([](SqlTransaction& tx) {
      tx.exec_script("CREATE TABLE hook_rows (position INTEGER PRIMARY KEY)");
    }); }
  auto hook = store.add_transaction_hook([&](SqlTransaction& tx, std::span<const RecordedEvent> es) {
    for (const auto& e : es) tx.exec("INSERT INTO hook_rows VALUES (?1)", {e.position});
    if (es.front().stream_id == "bad-1") throw Rejected("bad-1 is not welcome");
  });
  store.append("good-1", ExpectedVersion::any(), events(1));
  try {
    store.append("bad-1", ExpectedVersion::any(), events(3));
    FAIL() << "the hook should have rejected the append";
  } catch (const Rejected& e) {
    EXPECT_STREQ(e.what(), "bad-1 is not welcome");
  }
  EXPECT_EQ(store.head_position(), 1);
  EXPECT_EQ(store.stream_version("bad-1"), 0);
  EXPECT_EQ(count_rows(store, "hook_rows"), 1);
  // The store goes on as before; positions stay dense.
  EXPECT_EQ(store.append("good-2", ExpectedVersion::any(), events(1)).first_position, 2);
  EXPECT_EQ(count_rows(store, "hook_rows"), 2);
  EXPECT_TRUE(store.verify().ok);
}

TEST(InlineTransactionHook, SqliteHookFailureInAGroupCommitFailsOnlyItsOwnAppend) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  { SqliteReadModel setup(store.path()); setup.write([](SqlTransaction& tx) {
      tx.exec_script("CREATE TABLE hook_rows (position INTEGER PRIMARY KEY, stream_id TEXT)");
    }); }
  auto hook = store.add_transaction_hook([&](SqlTransaction& tx, std::span<const RecordedEvent> es) {
    for (const auto& e : es) {
      tx.exec("INSERT INTO hook_rows VALUES (?1, ?2)", {e.position, e.stream_id});
    }
    if (es.front().stream_id.starts_with("bad")) throw Rejected("rejected " + es.front().stream_id);
  });
  constexpr int kThreads = 8, kAppends = 100;
  std::atomic<int> rejected{0}, other_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAppends; ++i) {
        const bool bad = (i + t) % 3 == 0;
        const std::string stream = (bad ? "bad-" : "good-") + std::to_string(t);
        try {
          store.append(stream, ExpectedVersion::any(), events(2));
        } catch (const Rejected&) {
          ++rejected;
        } catch (...) {
          ++other_errors;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(other_errors.load(), 0);
  std::int64_t good = 0;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(store.stream_version("bad-" + std::to_string(t)), 0);
    good += store.stream_version("good-" + std::to_string(t));
  }
  EXPECT_EQ(good + 2 * rejected.load(), 2 * kThreads * kAppends);
  EXPECT_EQ(store.head_position(), good);
  SqliteReadModel reader(store.path());
  EXPECT_EQ(reader.query_int("SELECT count(*) FROM hook_rows"), good);
  EXPECT_EQ(reader.query_int("SELECT count(*) FROM hook_rows WHERE stream_id LIKE 'bad%'"), 0);
  EXPECT_EQ(reader.query_int("SELECT max(position) FROM hook_rows"), good);
  EXPECT_TRUE(store.verify().ok);
}

TEST(InlineTransactionHook, SqliteHookSqlErrorRejectsItsAppendWithTheSqliteCode) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  { SqliteReadModel setup(store.path()); setup.write([](SqlTransaction& tx) {
      tx.exec_script("CREATE TABLE names (name TEXT NOT NULL UNIQUE)");
    }); }
  auto hook = store.add_transaction_hook([&](SqlTransaction& tx, std::span<const RecordedEvent> es) {
    for (const auto& e : es) {
      tx.exec("INSERT INTO names VALUES (?1)", {e.payload_json().at("name").get<std::string>()});
    }
  });
  store.append("user-1", ExpectedVersion::any(), {event("user.Registered", R"({"name":"ada"})")});
  try {
    store.append("user-2", ExpectedVersion::any(), {event("user.Registered", R"({"name":"ada"})")});
    FAIL() << "the UNIQUE constraint should have rejected the append";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.extended_code(), 2067) << e.what();  // SQLITE_CONSTRAINT_UNIQUE
  }
  EXPECT_EQ(store.head_position(), 1);
  store.append("user-3", ExpectedVersion::any(), {event("user.Registered", R"({"name":"bob"})")});
  EXPECT_EQ(store.head_position(), 2);
}

TEST(InlineTransactionHook, RemovedHooksAndIdempotentRetriesCallNothing) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  int calls = 0;
  auto hook = store.add_transaction_hook(
      [&](SqlTransaction&, std::span<const RecordedEvent>) { ++calls; });
  auto e = event();
  e.event_id = "0190a000-0000-7000-8000-000000000001";
  store.append("a-1", ExpectedVersion::no_stream(), {e});
  store.append("a-1", ExpectedVersion::no_stream(), {e});  // idempotent retry
  EXPECT_EQ(calls, 1);
  hook.reset();
  store.append("a-1", ExpectedVersion::any(), events(1));
  EXPECT_EQ(calls, 1);
  EXPECT_THROW(store.add_transaction_hook({}), InvalidArgument);
}

TEST(InlineTransactionHook, InMemoryHookThatThrowsRejectsTheAppendAndLeavesNoTrace) {
  InMemoryEventStore store;
  std::set<std::string> names;
  auto hook = store.add_transaction_hook([&](std::span<const RecordedEvent> es) {
    for (const auto& e : es) {
      const auto name = e.payload_json().at("name").get<std::string>();
      if (names.contains(name)) throw Rejected("name taken: " + name);
    }
    for (const auto& e : es) names.insert(e.payload_json().at("name").get<std::string>());
  });
  std::vector<std::int64_t> committed;
  auto listener = store.add_commit_listener([&](std::span<const RecordedEvent> es) {
    for (const auto& e : es) committed.push_back(e.position);
  });
  store.append("user-1", ExpectedVersion::any(), {event("user.Registered", R"({"name":"ada"})")});
  auto dup = event("user.Registered", R"({"name":"ada"})");
  dup.event_id = "0190a000-0000-7000-8000-000000000002";
  EXPECT_THROW(store.append("user-2", ExpectedVersion::no_stream(), {dup}), Rejected);
  EXPECT_EQ(store.head_position(), 1);
  EXPECT_EQ(store.stream_version("user-2"), 0);
  EXPECT_EQ(committed, (std::vector<std::int64_t>{1}));
  std::vector<std::string> streams;
  for (auto& s : store.list_streams()) streams.push_back(s);
  EXPECT_EQ(streams, (std::vector<std::string>{"user-1"}));
  // The rejected event id was not kept: it can be used once the rule allows it.
  hook.reset();
  EXPECT_EQ(store.append("user-2", ExpectedVersion::no_stream(), {dup}).first_position, 2);
  EXPECT_TRUE(store.verify().ok);
}

}  // namespace
}  // namespace annals
