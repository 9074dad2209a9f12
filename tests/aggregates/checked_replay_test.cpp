// The checked replay of long streams (for_each_checked): past its first few
// hundred events a load checks hashes on a second thread while it applies,
// and must still find every changed, moved or missing event, report it as
// such whatever else fails after it, and leave no thread behind.

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "account.hpp"
#include "annals/aggregates/checked_read.hpp"
#include "annals/aggregates/repository.hpp"
#include "forwarding_store.hpp"
#include "store/store_fixtures.hpp"
#include "tamper.hpp"

namespace annals::test_domain {
namespace {

using annals::testing::TempDir;

constexpr std::int64_t kDeposits = 2000;  // account-1: Opened, then deposits of 1, 2, ...
constexpr std::int64_t kRun = 100;        // deposits saved per call

std::int64_t sum_to(std::int64_t n) { return n * (n + 1) / 2; }

// account-1 holds 1 + kDeposits events, saved in runs of kRun; after every
// run one event of account-2 is appended, so the first event of each run
// follows another stream's event and the rest follow their own stream's.
class CheckedReplay : public ::testing::Test {
 protected:
  CheckedReplay() {
    open();
    Repository<Account> accounts(*store_);
    Account one("1"), two("2");
    one.open("Ada");
    two.open("Bob");
    accounts.save(one);
    accounts.save(two);
    for (std::int64_t i = 1; i <= kDeposits; ++i) {
      one.deposit(i);
      if (i % kRun == 0) {
        accounts.save(one);
        two.deposit(1);
        accounts.save(two);
      }
    }
  }

  void open() {
    store_.reset();
    SqliteStoreOptions options;
    options.synchronous = Synchronous::normal;
    options.read_page_size = 97;  // pages that do not line up with the checker's batches
    store_ = std::make_unique<SqliteEventStore>(dir_ / "store.db", options);
  }
  void tamper(const std::string& sql) {
    store_.reset();
    test_domain::tamper(dir_ / "store.db", sql);
    open();
  }
  // The position of account-1's event at `version`.
  std::int64_t position_of(std::int64_t version) {
    for (const RecordedEvent& e : store_->read_stream("account-1", version, Direction::forward, 1)) {
      return e.position;
    }
    ADD_FAILURE() << "no version " << version;
    return 0;
  }
  // Loads account-1 expecting HistoryIntegrityError at `position`; returns its message.
  std::string load_fails_at(std::int64_t position) {
    Repository<Account> accounts(*store_);
    try {
      accounts.load("1");
      ADD_FAILURE() << "a load replayed history that does not check (position " << position << ")";
    } catch (const HistoryIntegrityError& e) {
      EXPECT_EQ(e.stream_id(), "account-1");
      EXPECT_EQ(e.position(), position);
      return e.what();
    }
    return {};
  }

  TempDir dir_;
  std::unique_ptr<SqliteEventStore> store_;
};

TEST_F(CheckedReplay, ALongInterleavedStreamLoadsWithEveryEventApplied) {
  Repository<Account> accounts(*store_);
  const Account a = accounts.load("1");
  EXPECT_EQ(a.version(), kDeposits + 1);
  EXPECT_EQ(a.balance(), sum_to(kDeposits));
  EXPECT_EQ(accounts.load_at("1", 1501).balance(), sum_to(1500));
  Repository<Account> unchecked(*store_, {.check_history = false});
  EXPECT_EQ(unchecked.load("1").balance(), a.balance());
  EXPECT_EQ(accounts.load("2").version(), 1 + kDeposits / kRun);
}

TEST_F(CheckedReplay, AChangedEventAnywhereInALongStreamIsFound) {
  // Versions on the calling thread's first events, on the first events
  // checked beside it, at batch and page edges, right after another
  // stream's event, and the newest.
  for (const std::int64_t version : {2, 257, 258, 300, 513, 769, 1001, 1002, 1999, 2001}) {
    SCOPED_TRACE("version " + std::to_string(version));
    const std::int64_t position = position_of(version);
    const std::string where = " WHERE position = " + std::to_string(position);
    tamper("UPDATE events SET recorded_at = recorded_at + 1" + where);
    const std::string message = load_fails_at(position);
    EXPECT_NE(message.find("does not match"), std::string::npos) << message;
    tamper("UPDATE events SET recorded_at = recorded_at - 1" + where);
    EXPECT_EQ(Repository<Account>(*store_).load("1").balance(), sum_to(kDeposits));
  }
}

TEST_F(CheckedReplay, AChangedEventThatNoLongerDecodesIsReportedAsChanged) {
  // Applying it would fail first (its amount is no number): the load must
  // say the history was changed, not that an event does not decode.
  const std::int64_t position = position_of(1200);
  tamper(R"(UPDATE events SET payload = '{"amount":"lots","currency":"EUR"}' WHERE position = )" +
         std::to_string(position));
  load_fails_at(position);
  Repository<Account> unchecked(*store_, {.check_history = false});
  EXPECT_THROW(unchecked.load("1"), SerializationError);
}

TEST_F(CheckedReplay, AMissingEventInALongStreamIsFound) {
  const std::int64_t removed = position_of(1500);
  tamper("DELETE FROM events WHERE position = " + std::to_string(removed));
  const std::string message = load_fails_at(removed + 1);
  EXPECT_NE(message.find("version 1500 is missing"), std::string::npos) << message;
}

TEST_F(CheckedReplay, ARemovedPredecessorInAnotherStreamIsFoundInALongStream) {
  // The event before account-1's version 1402 (the first of a run) is
  // account-2's.
  const std::int64_t position = position_of(1402);
  tamper("DELETE FROM events WHERE position = " + std::to_string(position - 1));
  const std::string message = load_fails_at(position);
  EXPECT_NE(message.find("is missing"), std::string::npos) << message;
}

TEST_F(CheckedReplay, ALoadAsOfChecksTheEventWhoseTimeEndsItDeepInAStream) {
  // Pushed into the future, version 1700 ends a load as of now; its changed
  // time does not check, so the load fails instead of ending there.
  const std::int64_t position = position_of(1700);
  tamper("UPDATE events SET recorded_at = recorded_at + 3155760000000000 WHERE position = " +
         std::to_string(position));
  Repository<Account> accounts(*store_);
  try {
    accounts.load_as_of("1", SystemClock().now());
    FAIL() << "the event that ended the load was not checked";
  } catch (const HistoryIntegrityError& e) {
    EXPECT_EQ(e.position(), position);
  }
}

TEST_F(CheckedReplay, StopsWhereApplySaysAfterCheckingThatEventOnly) {
  // Changed after the event it stops at: not reached, so not reported.
  const std::int64_t changed = position_of(1300);
  tamper("UPDATE events SET recorded_at = recorded_at + 1 WHERE position = " +
         std::to_string(changed));
  std::int64_t last = 0;
  for_each_checked(*store_, "account-1", 1, kNoLimit, [&](const RecordedEvent& e) {
    last = e.version;
    return e.version < 1299;
  });
  EXPECT_EQ(last, 1299);
  // Stopping at the changed event itself fails.
  EXPECT_THROW(for_each_checked(*store_, "account-1", 1, kNoLimit,
                                [&](const RecordedEvent& e) { return e.version < 1300; }),
               HistoryIntegrityError);
  // So does a replay of a range that holds it, and not one that ends before it.
  EXPECT_THROW(for_each_checked(*store_, "account-1", 1000, 400,
                                [](const RecordedEvent&) { return true; }),
               HistoryIntegrityError);
  std::int64_t seen = 0;
  for_each_checked(*store_, "account-1", 1000, 299, [&](const RecordedEvent&) {
    ++seen;
    return true;
  });
  EXPECT_EQ(seen, 299);
}

TEST_F(CheckedReplay, CallsApplyOnTheCallingThreadInVersionOrder) {
  const auto caller = std::this_thread::get_id();
  std::int64_t expected = 5;
  bool elsewhere = false;
  for_each_checked(*store_, "account-1", 5, kNoLimit, [&](const RecordedEvent& e) {
    elsewhere = elsewhere || std::this_thread::get_id() != caller;
    EXPECT_EQ(e.version, expected++);
    return true;
  });
  EXPECT_FALSE(elsewhere);
  EXPECT_EQ(expected, kDeposits + 2);
}

TEST_F(CheckedReplay, AnExceptionFromApplyPassesThroughWhenTheHistoryChecks) {
  std::int64_t applied = 0;
  EXPECT_THROW(for_each_checked(*store_, "account-1", 1, kNoLimit,
                                [&](const RecordedEvent& e) -> bool {
                                  ++applied;
                                  if (e.version == 1100) throw std::logic_error("stop here");
                                  return true;
                                }),
               std::logic_error);
  EXPECT_EQ(applied, 1100);
}

TEST_F(CheckedReplay, AReplayInsideAnotherReplayOnTheSameThreadChecksToo) {
  std::int64_t inner = 0;
  std::int64_t outer = 0;
  for_each_checked(*store_, "account-1", 1, kNoLimit, [&](const RecordedEvent& e) {
    ++outer;
    if (e.version == 700) {
      for_each_checked(*store_, "account-1", 1, kNoLimit, [&](const RecordedEvent&) {
        ++inner;
        return true;
      });
    }
    return true;
  });
  EXPECT_EQ(outer, kDeposits + 1);
  EXPECT_EQ(inner, kDeposits + 1);
}

// ---- a read that fails part way -------------------------------------------------

// Serves an in-memory store's linked events, with one payload forged, and
// fails with StorageError after `fail_after` events.
class FailingStore final : public ForwardingStore {
 public:
  FailingStore(std::int64_t forged_position, std::size_t fail_after)
      : forged_(forged_position), fail_after_(fail_after) {}

  Cursor<LinkedEvent> read_stream_linked(const std::string& stream_id, std::int64_t from_version,
                                         std::uint64_t max_count) const override {
    return Cursor<LinkedEvent>(
        std::make_unique<Source>(inner_.read_stream_linked(stream_id, from_version, max_count),
                                 forged_, fail_after_),
        64, max_count);
  }

 private:
  class Source final : public Cursor<LinkedEvent>::Source {
   public:
    Source(Cursor<LinkedEvent> inner, std::int64_t forged, std::size_t fail_after)
        : inner_(std::move(inner)), forged_(forged), fail_after_(fail_after) {}
    bool fetch(std::vector<LinkedEvent>& out, std::size_t max) override {
      while (out.size() < max) {
        if (served_ == fail_after_) throw StorageError("the disk went away");
        auto next = inner_.next();
        if (!next) return false;
        if (next->event.position == forged_) next->event.payload = R"({"amount":1,"currency":"EUR"})";
        out.push_back(std::move(*next));
        ++served_;
      }
      return true;
    }

   private:
    Cursor<LinkedEvent> inner_;
    std::int64_t forged_;
    std::size_t fail_after_;
    std::size_t served_ = 0;
  };

  std::int64_t forged_;
  std::size_t fail_after_;
};

void fill(EventStore& store) {
  Repository<Account> accounts(store);
  Account a("1");
  a.open("Ada");
  for (std::int64_t i = 1; i <= 1500; ++i) a.deposit(i);
  accounts.save(a);
}

TEST(CheckedReplayRead, AReadThatFailsAfterAChangedEventReportsTheChangedEvent) {
  FailingStore store(900, 1200);
  fill(store.inner());
  Repository<Account> accounts(store);
  try {
    accounts.load("1");
    FAIL() << "the load succeeded";
  } catch (const HistoryIntegrityError& e) {
    EXPECT_EQ(e.position(), 900);
  }
}

TEST(CheckedReplayRead, AReadThatFailsWithAllBeforeItCheckingReportsTheRead) {
  FailingStore unforged(0, 1200);
  fill(unforged.inner());
  EXPECT_THROW(Repository<Account>(unforged).load("1"), StorageError);
  // Changed after the point where the read fails: the read's error.
  FailingStore late(1300, 1200);
  fill(late.inner());
  EXPECT_THROW(Repository<Account>(late).load("1"), StorageError);
}

}  // namespace
}  // namespace annals::test_domain
