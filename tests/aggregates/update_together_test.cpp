// Commands over several aggregates (update_together), save_together with
// snapshots, the options a repository refuses, and id_from_stream.

#include <gtest/gtest.h>

#include <string>

#include "account.hpp"
#include "annals/aggregates/repository.hpp"
#include "annals/store/in_memory_event_store.hpp"

namespace annals::test_domain {
namespace {

Account open(Repository<Account>& accounts, const std::string& id, std::int64_t deposit = 0) {
  Account a(id);
  a.open("Ada");
  if (deposit > 0) a.deposit(deposit);
  accounts.save(a);
  return a;
}

TEST(UpdateTogether, RunsOneCommandOverSeveralAggregatesAndSavesThemInOneAppend) {
  InMemoryEventStore store;
  Repository<Account> accounts(store);
  open(accounts, "a", 100);
  open(accounts, "b");
  const auto head = store.head_position();
  auto [from, to] = accounts.update_together({"a", "b"}, [](Account& f, Account& t) {
    f.withdraw(30);
    t.deposit(30);
  });
  EXPECT_EQ(from.id(), "a");
  EXPECT_EQ(to.id(), "b");
  EXPECT_EQ(from.balance(), 70);
  EXPECT_EQ(to.balance(), 30);
  EXPECT_TRUE(from.pending_events().empty());
  EXPECT_EQ(accounts.load("a").balance(), 70);
  EXPECT_EQ(accounts.load("b").balance(), 30);
  // Both events were committed by one append: consecutive positions, one transaction.
  std::vector<std::int64_t> positions;
  for (const auto& e : store.read_all(head + 1)) positions.push_back(e.position);
  EXPECT_EQ(positions, (std::vector<std::int64_t>{head + 1, head + 2}));
}

TEST(UpdateTogether, AConflictOnAnyOfThemRetriesTheWholeCommandFromFreshLoads) {
  InMemoryEventStore store;
  Repository<Account> accounts(store);
  open(accounts, "a", 100);
  open(accounts, "b");
  int attempts = 0;
  auto [from, to] = accounts.update_together({"a", "b"}, [&](Account& f, Account& t) {
    if (++attempts == 1) {
      Account other = accounts.load("b");  // someone saves b in between
      other.deposit(7);
      accounts.save(other);
    }
    f.withdraw(10);
    t.deposit(10);
  });
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(to.balance(), 17);
  EXPECT_EQ(accounts.load("a").balance(), 90);
  EXPECT_EQ(accounts.load("b").balance(), 17);
}

TEST(UpdateTogether, GivesUpAfterMaxRetriesAndWritesNothingOfItsOwn) {
  InMemoryEventStore store;
  Repository<Account> accounts(store, {.max_retries = 1});
  open(accounts, "a", 100);
  open(accounts, "b");
  int attempts = 0;
  EXPECT_THROW(accounts.update_together({"a", "b"},
                                        [&](Account& f, Account& t) {
                                          ++attempts;
                                          Account other = accounts.load("a");
                                          other.deposit(1);
                                          accounts.save(other);
                                          f.withdraw(10);
                                          t.deposit(10);
                                        }),
               WrongExpectedVersion);
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(accounts.load("a").balance(), 102);  // only the interfering deposits
  EXPECT_EQ(accounts.load("b").balance(), 0);
}

TEST(UpdateTogether, TheDomainsOwnRefusalIsNeverRetriedAndNothingIsWritten) {
  InMemoryEventStore store;
  Repository<Account> accounts(store);
  open(accounts, "a", 5);
  open(accounts, "b");
  const auto head = store.head_position();
  int attempts = 0;
  EXPECT_THROW(accounts.update_together({"a", "b"},
                                        [&](Account& f, Account& t) {
                                          ++attempts;
                                          t.deposit(10);
                                          f.withdraw(10);
                                        }),
               InsufficientFunds);
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(store.head_position(), head);
}

TEST(UpdateTogether, AMissingAggregateIsNotFoundNamingItsStream) {
  InMemoryEventStore store;
  Repository<Account> accounts(store);
  open(accounts, "a", 5);
  try {
    accounts.update_together({"a", "ghost"}, [](Account&, Account&) {});
    FAIL() << "expected AggregateNotFound";
  } catch (const AggregateNotFound& e) {
    EXPECT_EQ(e.stream_id(), "account-ghost");
    EXPECT_EQ(Account::id_from_stream(e.stream_id()), "ghost");
  }
}

TEST(UpdateTogether, AnIdGivenTwiceIsRefusedBeforeAnythingIsLoaded) {
  InMemoryEventStore store;
  Repository<Account> accounts(store);
  int calls = 0;
  try {
    accounts.update_together({"a", "b", "a"}, [&](Account&, Account&, Account&) { ++calls; });
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'a' is given twice"), std::string::npos) << e.what();
  }
  EXPECT_EQ(calls, 0);
}

TEST(UpdateTogether, TakesTheSnapshotsTheOptionsAskFor) {
  InMemoryEventStore store;
  Repository<Account> accounts(store, {.snapshots = &store, .snapshot_every = 2});
  open(accounts, "a", 100);  // versions 1-2: a snapshot at 2
  open(accounts, "b");       // version 1
  accounts.update_together({"a", "b"}, [](Account& f, Account& t) {
    f.withdraw(1);  // a: 3
    t.deposit(1);   // b: 2, crosses a multiple of 2
  });
  EXPECT_EQ(store.load_snapshot("account-a", kStreamEnd)->version, 2);
  ASSERT_TRUE(store.load_snapshot("account-b", kStreamEnd).has_value());
  EXPECT_EQ(store.load_snapshot("account-b", kStreamEnd)->version, 2);
}

TEST(SaveTogether, WithRepositoriesTakesTheirSnapshotsAfterTheAppend) {
  InMemoryEventStore store;
  Repository<Account> snapshotting(store, {.snapshots = &store, .snapshot_every = 1});
  Repository<Account> plain(store);
  Account a("a");
  a.open("Ada");
  Account b("b");
  b.open("Bob");
  const auto results = save_together({.actor = "teller"}, snapshotting.saving(a), plain.saving(b));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(a.pending_events().empty());
  EXPECT_TRUE(b.pending_events().empty());
  ASSERT_TRUE(store.load_snapshot("account-a", kStreamEnd).has_value());
  EXPECT_FALSE(store.load_snapshot("account-b", kStreamEnd).has_value());
  // The bare form takes none, as documented.
  Account c("c");
  c.open("Cy");
  save_together(store, {}, c);
  EXPECT_FALSE(store.load_snapshot("account-c", kStreamEnd).has_value());
}

TEST(SaveTogether, RepositoriesOfDifferentStoresAreRefusedAndNothingIsWritten) {
  InMemoryEventStore one;
  InMemoryEventStore two;
  Repository<Account> first(one);
  Repository<Account> second(two);
  Account a("a");
  a.open("Ada");
  Account b("b");
  b.open("Bob");
  EXPECT_THROW(save_together({}, first.saving(a), second.saving(b)), InvalidArgument);
  EXPECT_EQ(one.head_position(), 0);
  EXPECT_EQ(two.head_position(), 0);
  EXPECT_EQ(a.pending_events().size(), 1u);
}

// An aggregate without snapshot support.
struct Pinged {
  static constexpr std::string_view type_name = "test.Pinged";
  static constexpr int schema_version = 1;
};
class Counter : public Aggregate<Counter, std::variant<Pinged>> {
 public:
  static constexpr std::string_view category = "counter";
  using Aggregate::Aggregate;
  void apply(const Pinged&) {}
};

TEST(RepositoryOptions, ContradictionsAreRefusedAtConstructionNamingTheOption) {
  InMemoryEventStore store;
  auto message = [](auto&& make) {
    try {
      make();
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { Repository<Account> r(store, {.snapshot_every = 10}); })
                .find("no snapshot store"),
            std::string::npos);
  EXPECT_NE(message([&] { Repository<Account> r(store, {.snapshots = &store, .snapshot_every = -1}); })
                .find("snapshot_every must be >= 0"),
            std::string::npos);
  EXPECT_NE(message([&] { Repository<Account> r(store, {.max_retries = -1}); })
                .find("max_retries must be >= 0"),
            std::string::npos);
  EXPECT_NE(message([&] { Repository<Counter> r(store, {.snapshots = &store, .snapshot_every = 5}); })
                .find("cannot be snapshotted"),
            std::string::npos);
  EXPECT_NE(message([&] { Repository<Counter> r(store, {.snapshots = &store}); })
                .find("cannot be snapshotted"),
            std::string::npos);
  EXPECT_NO_THROW(Repository<Counter> r(store));
  EXPECT_NO_THROW((Repository<Account>(store, {.snapshots = &store})));
}

TEST(IdFromStream, IsTheInverseOfStreamIdAndRefusesOtherShapes) {
  EXPECT_EQ(Account::id_from_stream(Account("42").stream_id()), "42");
  EXPECT_EQ(Account::id_from_stream("account-a-b"), "a-b");
  EXPECT_EQ(Account::id_from_stream("account-"), std::nullopt);
  EXPECT_EQ(Account::id_from_stream("account"), std::nullopt);
  EXPECT_EQ(Account::id_from_stream("accounts-1"), std::nullopt);
  EXPECT_EQ(Account::id_from_stream("counter-1"), std::nullopt);
  EXPECT_EQ(Account::id_from_stream(""), std::nullopt);
  EXPECT_EQ(Counter::id_from_stream("counter-1"), "1");
}

}  // namespace
}  // namespace annals::test_domain
