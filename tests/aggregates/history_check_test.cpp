// Issue 12 item 13: a load checks what it replays against the hash chain, so
// no command decides on history altered after it was written.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <stdexcept>

#include "account.hpp"
#include "annals/aggregates/checked_read.hpp"
#include "annals/aggregates/repository.hpp"
#include "forwarding_store.hpp"
#include "store/store_fixtures.hpp"
#include "tamper.hpp"

namespace annals::test_domain {
namespace {

using annals::testing::TempDir;

class HistoryCheck : public ::testing::Test {
 protected:
  HistoryCheck() { reopen(); }

  void reopen() {
    store_.reset();
    SqliteStoreOptions options;
    options.synchronous = Synchronous::normal;
    options.read_page_size = 3;  // several pages per load
    store_ = std::make_unique<SqliteEventStore>(db(), options);
  }
  std::filesystem::path db() const { return dir_ / "store.db"; }

  // account-1: Opened (position 1), Deposited 100 (2), account-2: Opened (3),
  // account-1: Deposited 50 (4), Withdrawn 30 (5), Deposited 10 (6).
  void fill(Repository<Account>& accounts) {
    Account one("1"), two("2");
    one.open("Ada"), one.deposit(100);
    accounts.save(one);
    two.open("Bob");
    accounts.save(two);
    one.deposit(50), one.withdraw(30), one.deposit(10);
    accounts.save(one);
  }

  TempDir dir_;
  std::unique_ptr<SqliteEventStore> store_;
};

TEST_F(HistoryCheck, LoadOfAnUntouchedStreamChecksAndReplaysEveryEvent) {
  Repository<Account> accounts(*store_);
  fill(accounts);
  const Account a = accounts.load("1");
  EXPECT_EQ(a.balance(), 130);
  EXPECT_EQ(a.version(), 5);
  EXPECT_EQ(accounts.load_at("1", 3).balance(), 150);
}

TEST(Repository, LoadOfATamperedStreamThrowsIntegrityErrorNamingThePosition) {
  TempDir dir;
  {
    SqliteEventStore store(dir / "store.db");
    Repository<Account> accounts(store);
    Account a("1");
    a.open("Ada"), a.deposit(100), a.deposit(50);
    accounts.save(a);
  }
  // A forged amount at version 2, position 2; its stored hash left as it was.
  tamper(dir / "store.db",
         R"(UPDATE events SET payload = json_set(payload, '$.amount', 100000) WHERE position = 2)");
  SqliteEventStore store(dir / "store.db");
  ASSERT_FALSE(store.verify().ok);
  Repository<Account> accounts(store);
  try {
    accounts.load("1");
    FAIL() << "a forged event was replayed";
  } catch (const IntegrityError& e) {
    EXPECT_EQ(e.position(), 2);
    const std::string message = e.what();
    EXPECT_NE(message.find("'account-1'"), std::string::npos) << message;
    EXPECT_NE(message.find("version 2"), std::string::npos) << message;
    EXPECT_NE(message.find("position 2"), std::string::npos) << message;
    const auto* history = dynamic_cast<const HistoryIntegrityError*>(&e);
    ASSERT_NE(history, nullptr);
    EXPECT_EQ(history->stream_id(), "account-1");
    EXPECT_EQ(history->version(), 2);
  }
  EXPECT_THROW(accounts.try_load("1"), HistoryIntegrityError);
  EXPECT_THROW(accounts.load_at("1", 2), HistoryIntegrityError);
  EXPECT_THROW(accounts.load_as_of("1", parse_timestamp("2100-01-01T00:00:00Z")),
               HistoryIntegrityError);
  // Before the forged event the history checks.
  EXPECT_EQ(accounts.load_at("1", 1).balance(), 0);
}

TEST_F(HistoryCheck, UpdateOnATamperedStreamRunsNoCommandAndWritesNothing) {
  Repository<Account> accounts(*store_);
  fill(accounts);
  tamper(db(), R"(UPDATE events SET payload = '{"amount":100000,"currency":"EUR"}'
                  WHERE position = 4)");
  reopen();
  Repository<Account> reopened(*store_);
  bool ran = false;
  EXPECT_THROW(reopened.update("1",
                               [&](Account& a) {
                                 ran = true;
                                 a.withdraw(500);
                               }),
               HistoryIntegrityError);
  EXPECT_FALSE(ran);
  EXPECT_EQ(store_->stream_version("account-1"), 5);
  EXPECT_EQ(store_->head_position(), 6);
}

TEST_F(HistoryCheck, ARemovedEventOfTheStreamIsFound) {
  Repository<Account> accounts(*store_);
  fill(accounts);
  tamper(db(), "DELETE FROM events WHERE position = 5");  // Withdrawn 30
  reopen();
  Repository<Account> reopened(*store_);
  try {
    reopened.load("1");
    FAIL() << "a history with a removed event was replayed";
  } catch (const HistoryIntegrityError& e) {
    EXPECT_EQ(e.position(), 6);
    EXPECT_EQ(e.version(), 5);
    EXPECT_NE(std::string(e.what()).find("version 4 is missing"), std::string::npos) << e.what();
  }
}

TEST_F(HistoryCheck, ARemovedPredecessorInAnotherStreamIsFound) {
  Repository<Account> accounts(*store_);
  fill(accounts);
  tamper(db(), "DELETE FROM events WHERE position = 3");  // account-2's only event
  reopen();
  Repository<Account> reopened(*store_);
  try {
    reopened.load("1");
    FAIL() << "an event whose predecessor is gone was replayed";
  } catch (const HistoryIntegrityError& e) {
    EXPECT_EQ(e.position(), 4);
    EXPECT_NE(std::string(e.what()).find("position 3) is missing"), std::string::npos) << e.what();
  }
}

TEST_F(HistoryCheck, AnEventMovedToAnotherVersionIsFound) {
  Repository<Account> accounts(*store_);
  fill(accounts);
  // Swap the versions of the Deposited 50 and the Withdrawn 30 (positions 4, 5).
  tamper(db(), R"(UPDATE events SET version = 100 WHERE position = 4;
                  UPDATE events SET version = 3 WHERE position = 5;
                  UPDATE events SET version = 4 WHERE position = 4)");
  reopen();
  Repository<Account> reopened(*store_);
  EXPECT_THROW(reopened.load("1"), HistoryIntegrityError);
}

// load_as_of ends at the first event recorded after its time: that event is
// checked too, so a time moved forward cannot cut events out of the replay.
TEST_F(HistoryCheck, LoadAsOfChecksTheEventWhoseTimeEndsTheReplay) {
  Repository<Account> accounts(*store_);
  fill(accounts);
  const Timestamp then = parse_timestamp("2100-01-01T00:00:00Z");
  EXPECT_EQ(accounts.load_as_of("1", then).balance(), 130);
  // The Withdrawn 30 (position 5) moved a century later; its hash left as it was.
  tamper(db(), "UPDATE events SET recorded_at = recorded_at + 3155760000000000 WHERE position = 5");
  reopen();
  Repository<Account> reopened(*store_);
  try {
    reopened.load_as_of("1", then);
    FAIL() << "a load as of 2100 ended silently before the moved event";
  } catch (const HistoryIntegrityError& e) {
    EXPECT_EQ(e.position(), 5);
  }
  Repository<Account> unchecked(*store_, {.check_history = false});
  EXPECT_EQ(unchecked.load_as_of("1", then).balance(), 150);
}

TEST_F(HistoryCheck, WithCheckHistoryOffATamperedEventIsReplayedAsStored) {
  Repository<Account> accounts(*store_);
  fill(accounts);
  tamper(db(), R"(UPDATE events SET payload = '{"amount":100000,"currency":"EUR"}'
                  WHERE position = 4)");
  reopen();
  Repository<Account> unchecked(*store_, {.check_history = false});
  EXPECT_EQ(unchecked.load("1").balance(), 100'080);
}

// A snapshot is a cache, trusted as it is: what it covers is not replayed and
// so not checked; every event after it is.
TEST_F(HistoryCheck, ALoadFromASnapshotChecksTheEventsAfterItButNotThoseItCovers) {
  Repository<Account> accounts(*store_, {.snapshots = store_.get(), .snapshot_every = 2});
  fill(accounts);  // account-1 snapshot at version 5 (its last save crossed 4)
  ASSERT_EQ(store_->load_snapshot("account-1")->version, 5);
  Repository<Account> plain(*store_);
  Account a = plain.load("1");
  a.deposit(1);
  plain.save(a);  // version 6, position 7, no snapshot
  tamper(db(), R"(UPDATE events SET payload = '{"amount":999,"currency":"EUR"}'
                  WHERE position = 2)");
  reopen();
  Repository<Account> snapshotting(*store_, {.snapshots = store_.get(), .snapshot_every = 2});
  EXPECT_EQ(snapshotting.load("1").balance(), 131);  // from the snapshot: position 2 unread
  Repository<Account> replaying(*store_);
  EXPECT_THROW(replaying.load("1"), HistoryIntegrityError);

  tamper(db(), R"(UPDATE events SET payload = '{"amount":999,"currency":"EUR"}'
                  WHERE position = 7)");
  reopen();
  Repository<Account> after(*store_, {.snapshots = store_.get(), .snapshot_every = 2});
  try {
    after.load("1");
    FAIL() << "a forged event after the snapshot was replayed";
  } catch (const HistoryIntegrityError& e) {
    EXPECT_EQ(e.position(), 7);
    EXPECT_EQ(e.version(), 6);
  }
}

// ---- every store -------------------------------------------------------------

// Serves an in-memory store's events with one payload forged on the way out,
// as a tampered backend would: through the store's own linked read, or
// through the generic one (read_stream plus read_all per predecessor).
class ForgingStore final : public ForwardingStore {
 public:
  ForgingStore(std::int64_t forged_position, bool generic_linked_read)
      : forged_(forged_position), generic_(generic_linked_read) {}

  Cursor<RecordedEvent> read_stream(const std::string& stream_id, std::int64_t from_version,
                                    Direction direction, std::uint64_t max_count) const override {
    return forge(inner_.read_stream(stream_id, from_version, direction, max_count));
  }
  Cursor<LinkedEvent> read_stream_linked(const std::string& stream_id, std::int64_t from_version,
                                         std::uint64_t max_count) const override {
    if (generic_) return EventStore::read_stream_linked(stream_id, from_version, max_count);
    std::vector<LinkedEvent> out;
    for (auto& linked : inner_.read_stream_linked(stream_id, from_version, max_count)) {
      if (linked.event.position == forged_) linked.event.payload = kForged;
      out.push_back(std::move(linked));
    }
    return cursor_over(std::move(out));
  }
  Cursor<RecordedEvent> read_all(std::int64_t from_position, const EventFilter& filter,
                                 std::uint64_t max_count) const override {
    return forge(inner_.read_all(from_position, filter, max_count));
  }

 private:
  static constexpr const char* kForged = R"({"amount":100000,"currency":"EUR"})";

  template <class T>
  class VectorSource final : public Cursor<T>::Source {
   public:
    explicit VectorSource(std::vector<T> items) : items_(std::move(items)) {}
    bool fetch(std::vector<T>& out, std::size_t max) override {
      while (out.size() < max && next_ < items_.size()) out.push_back(items_[next_++]);
      return next_ < items_.size();
    }

   private:
    std::vector<T> items_;
    std::size_t next_ = 0;
  };
  template <class T>
  static Cursor<T> cursor_over(std::vector<T> items) {
    return Cursor<T>(std::make_unique<VectorSource<T>>(std::move(items)), 64, kNoLimit);
  }
  Cursor<RecordedEvent> forge(Cursor<RecordedEvent> events) const {
    std::vector<RecordedEvent> out;
    for (auto& e : events) {
      if (e.position == forged_) e.payload = kForged;
      out.push_back(std::move(e));
    }
    return cursor_over(std::move(out));
  }

  std::int64_t forged_;
  bool generic_;
};

class EveryStoreHistoryCheck : public ::testing::TestWithParam<bool> {};

TEST_P(EveryStoreHistoryCheck, AForgedEventIsRefusedNamingItsPosition) {
  ForgingStore store(4, GetParam());
  Repository<Account> accounts(store);
  {
    Repository<Account> writer(store.inner());
    Account one("1"), two("2");
    one.open("Ada"), one.deposit(100);
    writer.save(one);
    two.open("Bob");
    writer.save(two);
    one.deposit(50), one.withdraw(30);
    writer.save(one);
  }
  EXPECT_EQ(Repository<Account>(store.inner()).load("1").balance(), 120);
  EXPECT_EQ(accounts.load_at("1", 2).balance(), 100);
  try {
    accounts.load("1");
    FAIL() << "a forged event was replayed";
  } catch (const HistoryIntegrityError& e) {
    EXPECT_EQ(e.stream_id(), "account-1");
    EXPECT_EQ(e.version(), 3);
    EXPECT_EQ(e.position(), 4);
  }
  EXPECT_EQ(accounts.load("2").version(), 1);
  // read_stream_checked returns the events before the forged one, then throws.
  auto cursor = read_stream_checked(store, "account-1");
  EXPECT_EQ(cursor.next()->version, 1);
  EXPECT_EQ(cursor.next()->version, 2);
  EXPECT_THROW(cursor.next(), HistoryIntegrityError);
}

INSTANTIATE_TEST_SUITE_P(LinkedRead, EveryStoreHistoryCheck, ::testing::Values(false, true),
                         [](const auto& info) {
                           return std::string(info.param ? "Generic" : "InMemory");
                         });

}  // namespace
}  // namespace annals::test_domain
