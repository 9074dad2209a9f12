// Snapshots are a cache: with them or without them, every load gives the same
// state. Also update() from many threads, on the SQLite store.

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "account.hpp"
#include "annals/aggregates/repository.hpp"
#include "store/store_fixtures.hpp"

namespace annals::test_domain {
namespace {

using annals::testing::TempDir;

class SnapshotTest : public ::testing::Test {
 protected:
  SnapshotTest() : store_(dir_ / "store.db", options()) {}
  static SqliteStoreOptions options() {
    SqliteStoreOptions o;
    o.synchronous = Synchronous::normal;
    return o;
  }
  std::int64_t snapshot_count() {
    std::int64_t n = 0;
    for (std::int64_t v = store_.stream_version("account-1"); v > 0;) {
      auto s = store_.load_snapshot("account-1", v);
      if (!s) break;
      ++n;
      v = s->version - 1;
    }
    return n;
  }
  TempDir dir_;
  SqliteEventStore store_;
};

TEST_F(SnapshotTest, APolicyOfEveryNEventsSnapshotsWhenASaveCrossesAMultiple) {
  Repository<Account> accounts(store_, {.snapshots = &store_, .snapshot_every = 3});
  Account a("1");
  a.open("Ada");
  accounts.save(a);  // v1: none
  EXPECT_EQ(snapshot_count(), 0);
  a.deposit(1), a.deposit(1);
  accounts.save(a);  // v3: crosses 3
  EXPECT_EQ(store_.load_snapshot("account-1")->version, 3);
  a.deposit(1), a.deposit(1), a.deposit(1), a.deposit(1);
  accounts.save(a);  // v7: crosses 6
  EXPECT_EQ(store_.load_snapshot("account-1")->version, 7);
  EXPECT_EQ(snapshot_count(), 2);
  EXPECT_EQ(accounts.load("1"), a);
}

TEST_F(SnapshotTest, StateWithSnapshotsEqualsFullReplayAtEveryVersionForRandomHistories) {
  for (unsigned seed : {1u, 7u, 42u, 2026u}) {
    store_.delete_snapshots();
    const std::string id = "r" + std::to_string(seed);
    std::mt19937 rng(seed);
    Repository<Account> with(
        store_, {.snapshots = &store_, .snapshot_every = 1 + static_cast<std::int64_t>(rng() % 7)});
    Repository<Account> without(store_);
    Account a(id);
    a.open("Ada");
    with.save(a);
    for (int step = 0; step < 60; ++step) {
      const int events = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < events; ++e) {
        const std::int64_t amount = 1 + static_cast<std::int64_t>(rng() % 100);
        if (rng() % 3 == 0 && a.balance() >= amount) {
          a.withdraw(amount);
        } else {
          a.deposit(amount);
        }
      }
      with.save(a);
    }
    const std::int64_t last = a.version();
    for (std::int64_t v = 1; v <= last; ++v) {
      ASSERT_EQ(with.load_at(id, v), without.load_at(id, v)) << "seed " << seed << " v" << v;
    }
    EXPECT_EQ(with.load(id), a);
    // Dropping every snapshot changes nothing.
    store_.delete_snapshots();
    EXPECT_EQ(with.load(id), a);
    EXPECT_EQ(with.load_at(id, last / 2), without.load_at(id, last / 2));
  }
}

TEST_F(SnapshotTest, ASnapshotOfAnotherSchemaVersionOrUnreadableStateIsIgnored) {
  Repository<Account> accounts(store_, {.snapshots = &store_});
  Account a("1");
  a.open("Ada");
  a.deposit(100);
  accounts.save(a);
  // A snapshot from an older layout of the state: must not be used.
  store_.save_snapshot({"account-1", 2, 99, R"({"money":5})", {}});
  EXPECT_EQ(accounts.load("1").balance(), 100);
  // Same schema version, but state that does not restore: replay instead.
  store_.save_snapshot({"account-1", 2, 1, R"({"unexpected":true})", {}});
  EXPECT_EQ(accounts.load("1").balance(), 100);
  // A good snapshot is used: prove it by a (deliberately false) balance.
  store_.save_snapshot(
      {"account-1",
       2,
       1,
       R"({"owner":"Ada","balance":777,"transactions":1,"opened":true,"closed":false})",
       {}});
  EXPECT_EQ(accounts.load("1").balance(), 777);
}

TEST_F(SnapshotTest, LoadsBelowTheNewestSnapshotStillGiveThePastState) {
  auto clock = std::make_shared<ManualClock>(parse_timestamp("2026-03-01T00:00:00Z"));
  SqliteStoreOptions o = options();
  o.clock = clock;
  SqliteEventStore store(dir_ / "timed.db", o);
  Repository<Account> accounts(store, {.snapshots = &store, .snapshot_every = 2});
  Account a("1");
  a.open("Ada");
  accounts.save(a);
  for (int day = 1; day <= 9; ++day) {
    clock->set(parse_timestamp("2026-03-01T00:00:00Z") + std::chrono::hours(24 * day));
    a.deposit(day);
    accounts.save(a);
  }
  ASSERT_EQ(store.load_snapshot("account-1")->version, 10);
  EXPECT_EQ(accounts.load_at("1", 4).balance(), 1 + 2 + 3);
  EXPECT_EQ(accounts.load_at("1", 3).balance(), 1 + 2);
  EXPECT_EQ(accounts.load_as_of("1", parse_timestamp("2026-03-03T12:00:00Z")).balance(), 1 + 2);
  EXPECT_EQ(accounts.load_as_of("1", parse_timestamp("2026-03-03T12:00:00Z")).version(), 3);
}

TEST_F(SnapshotTest, RepositoryUpdateFromEightThreadsAppliesEachSuccessExactlyOnce) {
  Repository<Account> accounts(store_, {.snapshots = &store_, .snapshot_every = 10, .max_retries = 1000});
  Account a("1");
  a.open("Ada");
  accounts.save(a);
  constexpr int kThreads = 8, kEach = 25;
  std::atomic<int> succeeded{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        try {
          accounts.update("1", [](Account& acc) { acc.deposit(1); });
          ++succeeded;
        } catch (const WrongExpectedVersion&) {
          // retries exhausted: the command was not applied
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const Account final_state = accounts.load("1");
  EXPECT_EQ(final_state.balance(), succeeded.load());
  EXPECT_EQ(final_state.version(), 1 + succeeded.load());
  EXPECT_EQ(succeeded.load(), kThreads * kEach);  // 1000 retries are plenty here
  EXPECT_TRUE(store_.verify().ok);
}

}  // namespace
}  // namespace annals::test_domain
