// Loading a 100,000-event aggregate with and without a snapshot. Prints both
// times (no timing assertion: the machine is shared); checks both give the
// same state.

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

#include "account.hpp"
#include "annals/aggregates/repository.hpp"
#include "store/store_fixtures.hpp"

namespace annals::test_domain {
namespace {

TEST(RepositoryLargeStream, LoadsA100000EventStreamWithAndWithoutSnapshots) {
  constexpr int kEvents = 100'000, kBatch = 1'000;
  annals::testing::TempDir dir;
  SqliteStoreOptions options;
  options.synchronous = Synchronous::normal;
  SqliteEventStore store(dir / "large.db", options);
  Repository<Account> plain(store);
  Repository<Account> snapshotting(store, {.snapshots = &store, .snapshot_every = kEvents});

  Account a("big");
  a.open("Ada");
  for (int i = 1; i < kEvents; ++i) {
    a.deposit(1);
    if (a.pending_events().size() == kBatch || i == kEvents - 1) snapshotting.save(a);
  }
  ASSERT_EQ(store.stream_version("account-big"), kEvents);
  ASSERT_EQ(store.load_snapshot("account-big")->version, kEvents);

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const Account replayed = plain.load("big");
  const auto t1 = Clock::now();
  const Account from_snapshot = snapshotting.load("big");
  const auto t2 = Clock::now();

  EXPECT_EQ(replayed, from_snapshot);
  EXPECT_EQ(replayed.balance(), kEvents - 1);
  const auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::cout << "load of " << kEvents << " events: full replay " << ms(t1 - t0)
            << " ms, from snapshot " << ms(t2 - t1) << " ms\n";
}

}  // namespace
}  // namespace annals::test_domain
