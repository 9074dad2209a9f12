// Repository<A> against every store: load, save, optimistic concurrency,
// loads at a version and as of a time, atomic saves of several aggregates,
// update() retries, metadata, unknown types and upcasting.

#include "annals/aggregates/repository.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "account.hpp"
#include "store/store_fixtures.hpp"

namespace annals::test_domain {
namespace {

using annals::testing::InMemoryStoreFactory;
using annals::testing::SqliteStoreFactory;

template <class Factory>
class RepositoryTest : public ::testing::Test {
 protected:
  RepositoryTest()
      : clock_(std::make_shared<ManualClock>(parse_timestamp("2026-03-01T09:00:00Z"))),
        store_(factory_.make(clock_)),
        accounts_(*store_) {}

  EventStore& store() { return *store_; }
  SnapshotStore& snapshots() { return dynamic_cast<SnapshotStore&>(*store_); }

  Account open(const std::string& id, std::int64_t deposit = 0) {
    Account a(id);
    a.open("Ada");
    if (deposit > 0) a.deposit(deposit);
    accounts_.save(a);
    return a;
  }

  Factory factory_;
  std::shared_ptr<ManualClock> clock_;
  std::unique_ptr<EventStore> store_;
  Repository<Account> accounts_;
};

using Stores = ::testing::Types<InMemoryStoreFactory, SqliteStoreFactory>;
TYPED_TEST_SUITE(RepositoryTest, Stores, annals::testing::StoreNames);

TYPED_TEST(RepositoryTest, LoadingAnAggregateWithNoEventsIsNotFound) {
  EXPECT_THROW(this->accounts_.load("404"), AggregateNotFound);
  EXPECT_FALSE(this->accounts_.try_load("404").has_value());
  try {
    this->accounts_.load("404");
  } catch (const AggregateNotFound& e) {
    EXPECT_EQ(e.stream_id(), "account-404");
  }
}

TYPED_TEST(RepositoryTest, SaveThenLoadRebuildsTheSameStateByReplay) {
  Account a("1");
  a.open("Ada");
  a.deposit(500);
  a.withdraw(120);
  const auto result = this->accounts_.save(a);
  EXPECT_EQ(result.stream_version, 3);
  EXPECT_TRUE(a.pending_events().empty());
  EXPECT_EQ(a.version_loaded(), 3);

  const Account loaded = this->accounts_.load("1");
  EXPECT_EQ(loaded, a);
  EXPECT_EQ(loaded.balance(), 380);
  EXPECT_EQ(loaded.owner(), "Ada");
  ASSERT_TRUE(this->accounts_.try_load("1").has_value());
  EXPECT_EQ(this->accounts_.save(a), (AppendResult{3, 0, 0}));  // nothing pending
}

TYPED_TEST(RepositoryTest, SavingAStaleCopyFailsWritesNothingAndKeepsItsEvents) {
  this->open("1", 100);
  Account first = this->accounts_.load("1");
  Account second = this->accounts_.load("1");
  first.withdraw(80);
  second.withdraw(80);
  this->accounts_.save(first);
  EXPECT_THROW(this->accounts_.save(second), WrongExpectedVersion);
  EXPECT_EQ(second.pending_events().size(), 1u);
  EXPECT_EQ(this->accounts_.load("1").balance(), 20);
  // A new account saves with no_stream semantics: opening twice is a conflict.
  Account again("1");
  again.open("Eve");
  EXPECT_THROW(this->accounts_.save(again), WrongExpectedVersion);
}

TYPED_TEST(RepositoryTest, LoadAtGivesTheStateAtEachPastVersion) {
  Account a = this->open("1");
  for (int i = 1; i <= 5; ++i) {
    a.deposit(i * 10);
    this->accounts_.save(a);
  }
  std::int64_t expected = 0;
  for (std::int64_t v = 1; v <= 6; ++v) {
    if (v > 1) expected += (v - 1) * 10;
    const Account at = this->accounts_.load_at("1", v);
    EXPECT_EQ(at.version(), v);
    EXPECT_EQ(at.balance(), expected);
  }
  EXPECT_THROW(this->accounts_.load_at("1", 7), AggregateNotFound);
  EXPECT_THROW(this->accounts_.load_at("1", 0), InvalidArgument);
}

TYPED_TEST(RepositoryTest, LoadAsOfGivesTheStateAtAPointInTime) {
  Account a = this->open("1", 100);  // 09:00
  this->clock_->set(parse_timestamp("2026-03-02T09:00:00Z"));
  a.deposit(50);
  this->accounts_.save(a);
  this->clock_->set(parse_timestamp("2026-03-03T09:00:00Z"));
  a.withdraw(30);
  this->accounts_.save(a);

  EXPECT_EQ(this->accounts_.load_as_of("1", parse_timestamp("2026-03-01T12:00:00Z")).balance(),
            100);
  EXPECT_EQ(this->accounts_.load_as_of("1", parse_timestamp("2026-03-02T09:00:00Z")).balance(),
            150);
  EXPECT_EQ(this->accounts_.load_as_of("1", parse_timestamp("2026-03-02T23:59:59Z")).version(), 3);
  EXPECT_EQ(this->accounts_.load_as_of("1", parse_timestamp("2027-01-01T00:00:00Z")).balance(),
            120);
  EXPECT_THROW(this->accounts_.load_as_of("1", parse_timestamp("2026-02-28T00:00:00Z")),
               AggregateNotFound);
}

TYPED_TEST(RepositoryTest, SavingSeveralAggregatesIsAllOrNothing) {
  this->open("from", 100);
  this->open("to");
  Account from = this->accounts_.load("from");
  Account to = this->accounts_.load("to");
  from.withdraw(60);
  to.deposit(60);
  const auto results = save_together(this->store(), {.actor = "teller"}, from, to);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(this->accounts_.load("from").balance(), 40);
  EXPECT_EQ(this->accounts_.load("to").balance(), 60);

  // One stale aggregate: neither is written.
  Account from2 = this->accounts_.load("from");
  Account to2 = this->accounts_.load("to");
  Account stale = this->accounts_.load("to");
  stale.deposit(1);
  this->accounts_.save(stale);
  from2.withdraw(10);
  to2.deposit(10);
  EXPECT_THROW(this->accounts_.save_all({&from2, &to2}), WrongExpectedVersion);
  EXPECT_EQ(this->accounts_.load("from").balance(), 40);
  EXPECT_EQ(this->accounts_.load("to").balance(), 61);
}

TYPED_TEST(RepositoryTest, UpdateRetriesAConflictFromAFreshLoad) {
  this->open("1", 100);
  int attempts = 0;
  const Account saved = this->accounts_.update("1", [&](Account& a) {
    if (++attempts == 1) {
      // Someone else saves between our load and our save.
      Account other = this->accounts_.load("1");
      other.deposit(5);
      this->accounts_.save(other);
    }
    a.withdraw(50);
  });
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(saved.balance(), 55);
  EXPECT_EQ(this->accounts_.load("1").balance(), 55);
}

TYPED_TEST(RepositoryTest, UpdateNeverRetriesTheDomainsOwnExceptions) {
  this->open("1", 100);
  int attempts = 0;
  EXPECT_THROW(this->accounts_.update("1",
                                      [&](Account& a) {
                                        ++attempts;
                                        a.withdraw(1000);
                                      }),
               InsufficientFunds);
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(this->store().stream_version("account-1"), 2);
}

TYPED_TEST(RepositoryTest, UpdateGivesUpAfterMaxRetries) {
  this->open("1", 100);
  Repository<Account> impatient(this->store(), {.max_retries = 2});
  int attempts = 0;
  EXPECT_THROW(impatient.update("1",
                                [&](Account& a) {
                                  ++attempts;
                                  Account other = impatient.load("1");
                                  other.deposit(1);
                                  impatient.save(other);
                                  a.deposit(1);
                                }),
               WrongExpectedVersion);
  EXPECT_EQ(attempts, 3);
}

TYPED_TEST(RepositoryTest, UpdateTakesAnExplicitRetryLimit) {
  this->open("1", 100);
  int attempts = 0;
  auto always_conflicting = [&](Account& a) {
    ++attempts;
    Account other = this->accounts_.load("1");
    other.deposit(1);
    this->accounts_.save(other);
    a.deposit(1);
  };
  EXPECT_THROW(this->accounts_.update("1", always_conflicting, 0), WrongExpectedVersion);
  EXPECT_EQ(attempts, 1);
  attempts = 0;
  EXPECT_THROW(this->accounts_.update("1", always_conflicting, 4), WrongExpectedVersion);
  EXPECT_EQ(attempts, 5);
  EXPECT_THROW(this->accounts_.update("1", always_conflicting, -1), InvalidArgument);
}

TYPED_TEST(RepositoryTest, CommandContextEndsUpInEveryEventsMetadata) {
  Account a("1");
  a.open("Ada");
  a.deposit(10);
  this->accounts_.save(a, {.correlation_id = "corr-1", .causation_id = "cmd-9", .actor = "alice"});
  for (const auto& recorded : this->store().read_stream("account-1")) {
    const Json metadata = recorded.metadata_json();
    EXPECT_EQ(metadata["correlation_id"], "corr-1");
    EXPECT_EQ(metadata["causation_id"], "cmd-9");
    EXPECT_EQ(metadata["actor"], "alice");
    EXPECT_EQ(recorded.correlation_id(), "corr-1");  // what a projection or dispatcher handler reads
    EXPECT_EQ(recorded.causation_id(), "cmd-9");
  }
  this->accounts_.update("1", [](Account& acc) { acc.deposit(1); }, {.actor = "bob"});
  const auto last =
      this->store().read_stream("account-1", kStreamEnd, Direction::backward, 1).next();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->metadata, R"({"actor":"bob"})");
}

TYPED_TEST(RepositoryTest, AnUnknownEventTypeIsNamedUnlessSkippingIsAskedFor) {
  this->open("1", 100);
  this->store().append("account-1", ExpectedVersion::exactly(2),
                       {EventData::from_json("test.Frozen", {{"reason", "audit"}})});
  try {
    this->accounts_.load("1");
    FAIL() << "loaded an account with an unknown event";
  } catch (const UnknownEventType& e) {
    EXPECT_EQ(e.type(), "test.Frozen");
    EXPECT_EQ(e.stream_id(), "account-1");
    EXPECT_EQ(e.version(), 3);
  }
  Repository<Account> lenient(this->store(), {.skip_unknown_events = true});
  const Account a = lenient.load("1");
  EXPECT_EQ(a.balance(), 100);
  EXPECT_EQ(a.version(), 3);  // the skipped event still counts for concurrency
}

TYPED_TEST(RepositoryTest, UpcastVersionOneEventsLoadAsTheCurrentType) {
  this->open("1");
  // Written as an old build would have: schema version 1, payload {"cents"}.
  EventData v1 = EventData::from_json("test.Deposited", {{"cents", 125}}, Json::object(), 1);
  EventData v2 = EventData::from_json("test.Deposited", {{"amount", 5}}, Json::object(), 2);
  this->store().append("account-1", ExpectedVersion::exactly(1), {v1, v2});

  EXPECT_THROW(this->accounts_.load("1"), SerializationError);  // no upcasters: refused

  UpcasterChain upcasters;
  upcasters.add("test.Deposited", 1, [](Json p) { return Json{{"amount", p.at("cents")}}; });
  upcasters.add("test.Deposited", 2, [](Json p) {
    p["currency"] = "EUR";
    return p;
  });
  Repository<Account> upcasting(this->store(), {.upcasters = &upcasters});
  const Account a = upcasting.load("1");
  EXPECT_EQ(a.balance(), 130);
  EXPECT_EQ(a.transactions(), 2);
}

// Issue 12, item 4: load_as_of gives every event recorded at or before the
// time, also after the wall clock stepped back between saves (recorded_at
// never decreases along positions, so its replay may stop at the first later one).
TYPED_TEST(RepositoryTest, LoadAsOfIncludesEveryEventRecordedByThenWhenTheClockSteppedBack) {
  this->clock_->set(parse_timestamp("2026-03-02T09:00:00Z"));
  Account a = this->open("1", 100);  // versions 1 and 2
  this->clock_->set(parse_timestamp("2026-03-02T10:00:00Z"));
  a.deposit(50);
  this->accounts_.save(a);                                     // version 3
  this->clock_->set(parse_timestamp("2026-03-02T08:30:00Z"));  // the clock steps back
  a.withdraw(30);
  this->accounts_.save(a);  // version 4

  for (const char* when : {"2026-03-02T09:00:00Z", "2026-03-02T09:30:00Z",
                           "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"}) {
    const Timestamp t = parse_timestamp(when);
    std::int64_t recorded_by_then = 0;
    for (const RecordedEvent& e : this->store().read_stream(a.stream_id())) {
      if (e.recorded_at <= t) ++recorded_by_then;
    }
    EXPECT_EQ(this->accounts_.load_as_of("1", t).version(), recorded_by_then) << when;
  }
  EXPECT_EQ(this->accounts_.load_as_of("1", parse_timestamp("2026-03-02T09:00:00Z")).balance(),
            100);
  EXPECT_EQ(this->accounts_.load_as_of("1", parse_timestamp("2026-03-02T10:00:00Z")).balance(),
            120);
}

}  // namespace
}  // namespace annals::test_domain
