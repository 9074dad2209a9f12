#pragma once
/// The store conformance kit: the EventStore contract as a GoogleTest suite,
/// the same one the built-in stores run. A store author instantiates it in
/// one line with a factory that makes a fresh, empty store per test:
///
///   #include <annals/testing/store_conformance.hpp>
///
///   struct MyStoreFactory {
///     // A fresh, empty store reading recorded_at from `clock`.
///     std::unique_ptr<annals::EventStore> make(std::shared_ptr<const annals::Clock> clock);
///   };
///   ANNALS_STORE_CONFORMANCE(MyStore, ::MyStoreFactory);
///
/// and links GoogleTest (GTest::gtest_main) besides annals::annals. The tests
/// are then named "MyStore/StoreConformance/0.<Test>". The factory object
/// lives as long as the test (a temporary directory can be its member). A
/// store that is not also a SnapshotStore skips the snapshot tests.
///
/// What the suite holds a store to: docs/store.md (the contract) and the
/// comments of each test below. A store that passes can stand in for any other.
///
/// Thread safety: GoogleTest runs the tests one at a time; some tests start
/// threads of their own against the one store.

#include <gtest/gtest.h>

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <utility>
#include <string>
#include <thread>
#include <vector>

#include "annals/core/clock.hpp"
#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/event_id.hpp"
#include "annals/core/stream_id.hpp"
#include "annals/store/event_store.hpp"
#include "annals/store/snapshot_store.hpp"

namespace annals::testing {

/// What the suite needs of a factory.
template <class F>
concept StoreFactory = std::default_initializable<F> &&
    requires(F& factory, std::shared_ptr<const Clock> clock) {
  { factory.make(clock) } -> std::convertible_to<std::unique_ptr<EventStore>>;
};

namespace conformance {

inline EventData event(std::string type, std::string payload = "{}", std::string metadata = "{}") {
  EventData e;
  e.type = std::move(type);
  e.payload = std::move(payload);
  e.metadata = std::move(metadata);
  return e;
}

inline std::vector<EventData> events(int n, const std::string& type = "test.Happened") {
  std::vector<EventData> out;
  for (int i = 0; i < n; ++i) out.push_back(event(type, R"({"i":)" + std::to_string(i) + "}"));
  return out;
}

template <class T>
inline std::vector<T> collect(Cursor<T> cursor) {
  std::vector<T> out;
  for (auto& item : cursor) out.push_back(std::move(item));
  return out;
}

inline std::vector<std::int64_t> versions(const std::vector<RecordedEvent>& events) {
  std::vector<std::int64_t> out;
  for (const auto& e : events) out.push_back(e.version);
  return out;
}

inline std::vector<std::int64_t> positions(const std::vector<RecordedEvent>& events) {
  std::vector<std::int64_t> out;
  for (const auto& e : events) out.push_back(e.position);
  return out;
}

}  // namespace conformance

using namespace conformance;  // the helpers, for the test bodies below

template <StoreFactory Factory>
class StoreConformance : public ::testing::Test {
 protected:
  StoreConformance()
      : clock_(std::make_shared<ManualClock>(parse_timestamp("2026-03-01T12:00:00Z"))),
        store_(factory_.make(clock_)) {}

  EventStore& store() { return *store_; }

  // Everything the store holds, for "nothing was written" checks.
  std::vector<RecordedEvent> everything() { return collect(store().read_all()); }

  Factory factory_;
  std::shared_ptr<ManualClock> clock_;
  std::unique_ptr<EventStore> store_;
};

TYPED_TEST_SUITE_P(StoreConformance);

// ---- appends ----------------------------------------------------------------

TYPED_TEST_P(StoreConformance, AppendToNewStreamNumbersVersionsAndPositionsFromOne) {
  const auto result = this->store().append("order-1", ExpectedVersion::no_stream(), events(3));
  EXPECT_EQ(result, (AppendResult{3, 1, 3}));
  const auto stored = collect(this->store().read_stream("order-1"));
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(versions(stored), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(positions(stored), (std::vector<std::int64_t>{1, 2, 3}));
  for (std::size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].stream_id, "order-1");
    EXPECT_EQ(stored[i].type, "test.Happened");
    EXPECT_EQ(stored[i].schema_version, 1);
    EXPECT_EQ(stored[i].payload, R"({"i":)" + std::to_string(i) + "}");
    EXPECT_EQ(stored[i].metadata, "{}");
    EXPECT_TRUE(is_valid_event_id(stored[i].event_id));
    EXPECT_EQ(stored[i].recorded_at, parse_timestamp("2026-03-01T12:00:00Z"));
  }
  EXPECT_EQ(this->store().stream_version("order-1"), 3);
  EXPECT_EQ(this->store().head_position(), 3);
}

TYPED_TEST_P(StoreConformance, GivenFieldsAreStoredAsGiven) {
  EventData e = event("test.Custom", R"({"b":2,"a":1})", R"({"actor":"alice","correlation_id":"c-1"})");
  e.event_id = "0190A6E4-7C1E-7A3B-9F00-1234567890AB";
  e.schema_version = 4;
  this->store().append("s-1", ExpectedVersion::any(), {e});
  const auto stored = collect(this->store().read_stream("s-1"));
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].event_id, "0190a6e4-7c1e-7a3b-9f00-1234567890ab");  // canonical case
  EXPECT_EQ(stored[0].schema_version, 4);
  EXPECT_EQ(stored[0].payload, R"({"b":2,"a":1})");  // not re-serialized
  EXPECT_EQ(stored[0].metadata_json()["actor"], "alice");
}

TYPED_TEST_P(StoreConformance, RecordedAtComesFromTheInjectedClock) {
  this->store().append("s-1", ExpectedVersion::any(), events(1));
  this->clock_->advance(std::chrono::hours(24));
  this->store().append("s-1", ExpectedVersion::any(), events(1));
  const auto stored = collect(this->store().read_stream("s-1"));
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[1].recorded_at - stored[0].recorded_at, std::chrono::hours(24));
}

TYPED_TEST_P(StoreConformance, ExpectedVersionAnyAcceptsNewAndExistingStreams) {
  EXPECT_EQ(this->store().append("s-1", ExpectedVersion::any(), events(2)).stream_version, 2);
  EXPECT_EQ(this->store().append("s-1", ExpectedVersion::any(), events(1)).stream_version, 3);
}

TYPED_TEST_P(StoreConformance, NoStreamAcceptsANewStreamAndRejectsAnExistingOneWritingNothing) {
  this->store().append("s-1", ExpectedVersion::no_stream(), events(1));
  const auto before = this->everything();
  EXPECT_THROW(this->store().append("s-1", ExpectedVersion::no_stream(), events(2)),
               WrongExpectedVersion);
  EXPECT_EQ(this->everything().size(), before.size());
  EXPECT_EQ(this->store().stream_version("s-1"), 1);
}

TYPED_TEST_P(StoreConformance, StreamExistsRejectsANewStreamAndAcceptsAnExistingOne) {
  EXPECT_THROW(this->store().append("s-1", ExpectedVersion::stream_exists(), events(1)),
               WrongExpectedVersion);
  EXPECT_EQ(this->store().head_position(), 0);
  EXPECT_EQ(this->store().stream_version("s-1"), 0);
  this->store().append("s-1", ExpectedVersion::any(), events(1));
  EXPECT_EQ(this->store().append("s-1", ExpectedVersion::stream_exists(), events(1)).stream_version,
            2);
}

TYPED_TEST_P(StoreConformance, ExactlyAcceptsTheCurrentVersionAndRejectsAnyOther) {
  EXPECT_EQ(this->store().append("s-1", ExpectedVersion::exactly(0), events(2)).stream_version, 2);
  for (std::int64_t wrong : {0, 1, 3, 100}) {
    EXPECT_THROW(this->store().append("s-1", ExpectedVersion::exactly(wrong), events(1)),
                 WrongExpectedVersion)
        << wrong;
  }
  EXPECT_EQ(this->store().stream_version("s-1"), 2);
  EXPECT_EQ(this->store().append("s-1", ExpectedVersion::exactly(2), events(1)).stream_version, 3);
  EXPECT_THROW(ExpectedVersion::exactly(-1), InvalidArgument);
}

TYPED_TEST_P(StoreConformance, WrongExpectedVersionCarriesStreamExpectedAndActual) {
  this->store().append("account-7", ExpectedVersion::any(), events(4));
  try {
    this->store().append("account-7", ExpectedVersion::exactly(2), events(1));
    FAIL() << "append with a stale version succeeded";
  } catch (const WrongExpectedVersion& e) {
    EXPECT_EQ(e.stream_id(), "account-7");
    EXPECT_EQ(e.expected(), ExpectedVersion::exactly(2));
    EXPECT_EQ(e.actual_version(), 4);
    const std::string message = e.what();
    EXPECT_NE(message.find("account-7"), std::string::npos) << message;
    EXPECT_NE(message.find("exactly(2)"), std::string::npos) << message;
    EXPECT_NE(message.find("4"), std::string::npos) << message;
  }
  try {
    this->store().append("account-8", ExpectedVersion::stream_exists(), events(1));
    FAIL();
  } catch (const WrongExpectedVersion& e) {
    EXPECT_EQ(e.actual_version(), 0);
    EXPECT_EQ(e.expected(), ExpectedVersion::stream_exists());
  }
}

// ---- idempotency and event ids ---------------------------------------------

TYPED_TEST_P(StoreConformance, RetryWithTheSameEventIdsReturnsTheFirstResultAndWritesNothing) {
  this->store().append("other-1", ExpectedVersion::any(), events(2));
  auto batch = events(3);
  for (auto& e : batch) e.event_id = new_event_id();
  const auto first = this->store().append("s-1", ExpectedVersion::no_stream(), batch);
  this->store().append("other-1", ExpectedVersion::any(), events(1));  // the store moves on
  const auto before = this->everything();

  EXPECT_EQ(this->store().append("s-1", ExpectedVersion::no_stream(), batch), first);
  EXPECT_EQ(this->store().append("s-1", ExpectedVersion::exactly(0), batch), first);
  EXPECT_EQ(this->store().append("s-1", ExpectedVersion::any(), batch), first);
  EXPECT_EQ(this->everything().size(), before.size());

  // A retry of the second append of a stream.
  auto second = events(1);
  second[0].event_id = new_event_id();
  const auto r2 = this->store().append("s-1", ExpectedVersion::exactly(3), second);
  this->store().append("s-1", ExpectedVersion::any(), events(1));
  EXPECT_EQ(this->store().append("s-1", ExpectedVersion::exactly(3), second), r2);
  EXPECT_EQ(r2, (AppendResult{4, r2.first_position, r2.first_position}));
}

TYPED_TEST_P(StoreConformance, RetryAtAnotherPlaceIsADuplicateEventId) {
  auto batch = events(2);
  for (auto& e : batch) e.event_id = new_event_id();
  this->store().append("s-1", ExpectedVersion::no_stream(), batch);
  const auto before = this->everything();

  // Same ids, another stream.
  EXPECT_THROW(this->store().append("s-2", ExpectedVersion::any(), batch), DuplicateEventId);
  // Same ids, same stream, but an expected version that places them elsewhere.
  EXPECT_THROW(this->store().append("s-1", ExpectedVersion::exactly(2), batch), DuplicateEventId);
  // Same ids in another order.
  auto reversed = batch;
  std::reverse(reversed.begin(), reversed.end());
  EXPECT_THROW(this->store().append("s-1", ExpectedVersion::any(), reversed), DuplicateEventId);
  // Only a prefix of the ids plus a new one.
  auto partial = batch;
  partial[1].event_id = new_event_id();
  EXPECT_THROW(this->store().append("s-1", ExpectedVersion::any(), partial), DuplicateEventId);
  // A new id first, then a stored one.
  auto mixed = events(2);
  mixed[1].event_id = batch[0].event_id;
  try {
    this->store().append("s-3", ExpectedVersion::any(), mixed);
    FAIL();
  } catch (const DuplicateEventId& e) {
    EXPECT_EQ(e.event_id(), batch[0].event_id);
    EXPECT_EQ(e.stream_id(), "s-3");
    EXPECT_NE(std::string(e.what()).find("s-1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(this->everything().size(), before.size());
  EXPECT_EQ(this->store().stream_version("s-3"), 0);
}

TYPED_TEST_P(StoreConformance, AnEventIdTwiceInOneAppendIsRejected) {
  auto batch = events(2);
  batch[0].event_id = batch[1].event_id = new_event_id();
  EXPECT_THROW(this->store().append("s-1", ExpectedVersion::any(), batch), DuplicateEventId);
  std::vector<StreamAppend> multi{{"a-1", ExpectedVersion::any(), {batch[0]}},
                                  {"b-1", ExpectedVersion::any(), {batch[1]}}};
  EXPECT_THROW(this->store().append(multi), DuplicateEventId);
  EXPECT_EQ(this->store().head_position(), 0);
}

// ---- multi-stream appends ---------------------------------------------------

TYPED_TEST_P(StoreConformance, MultiStreamAppendWritesEveryStreamInOrder) {
  this->store().append("account-2", ExpectedVersion::any(), events(1));
  std::vector<StreamAppend> batch{{"account-1", ExpectedVersion::no_stream(), events(2)},
                                  {"account-2", ExpectedVersion::exactly(1), events(1)}};
  const auto results = this->store().append(batch);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0], (AppendResult{2, 2, 3}));
  EXPECT_EQ(results[1], (AppendResult{2, 4, 4}));
  EXPECT_EQ(this->store().head_position(), 4);
}

TYPED_TEST_P(StoreConformance, MultiStreamAppendIsAllOrNothingWhenOneExpectationFails) {
  this->store().append("account-2", ExpectedVersion::any(), events(3));
  const auto before = this->everything();
  std::vector<StreamAppend> batch{{"account-1", ExpectedVersion::no_stream(), events(2)},
                                  {"account-2", ExpectedVersion::exactly(1), events(1)},
                                  {"account-3", ExpectedVersion::any(), events(1)}};
  try {
    this->store().append(batch);
    FAIL() << "a multi-stream append with one stale stream succeeded";
  } catch (const WrongExpectedVersion& e) {
    EXPECT_EQ(e.stream_id(), "account-2");
    EXPECT_EQ(e.actual_version(), 3);
  }
  EXPECT_EQ(this->everything().size(), before.size());
  EXPECT_EQ(this->store().stream_version("account-1"), 0);
  EXPECT_EQ(this->store().stream_version("account-3"), 0);
  // The store still works and positions stay dense after the rollback.
  EXPECT_EQ(this->store().append("account-1", ExpectedVersion::any(), events(1)).first_position, 4);
}

TYPED_TEST_P(StoreConformance, MultiStreamAppendRejectsAStreamNamedTwice) {
  std::vector<StreamAppend> batch{{"a-1", ExpectedVersion::any(), events(1)},
                                  {"a-1", ExpectedVersion::any(), events(1)}};
  EXPECT_THROW(this->store().append(batch), InvalidArgument);
  EXPECT_THROW(this->store().append(std::vector<StreamAppend>{}), InvalidArgument);
  EXPECT_EQ(this->store().head_position(), 0);
}

// ---- reads ------------------------------------------------------------------

TYPED_TEST_P(StoreConformance, ReadStreamForwardBackwardFromAVersionWithMaxCount) {
  this->store().append("s-1", ExpectedVersion::any(), events(10));
  this->store().append("s-2", ExpectedVersion::any(), events(5));
  auto& store = this->store();
  using V = std::vector<std::int64_t>;
  EXPECT_EQ(versions(collect(store.read_stream("s-1"))), (V{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(versions(collect(store.read_stream("s-1", 8))), (V{8, 9, 10}));
  EXPECT_EQ(versions(collect(store.read_stream("s-1", 3, Direction::forward, 4))), (V{3, 4, 5, 6}));
  EXPECT_EQ(versions(collect(store.read_stream("s-1", kStreamEnd, Direction::backward, 3))),
            (V{10, 9, 8}));
  EXPECT_EQ(versions(collect(store.read_stream("s-1", 4, Direction::backward))), (V{4, 3, 2, 1}));
  EXPECT_EQ(versions(collect(store.read_stream("s-1", 11))), V{});
  EXPECT_EQ(versions(collect(store.read_stream("s-1", 0, Direction::backward))), V{});
  EXPECT_EQ(versions(collect(store.read_stream("s-1", 1, Direction::forward, 0))), V{});
  EXPECT_EQ(versions(collect(store.read_stream("s-2", 1, Direction::forward, 100))),
            (V{1, 2, 3, 4, 5}));
  EXPECT_EQ(versions(collect(store.read_stream("missing-1"))), V{});
  EXPECT_THROW(store.read_stream("s-1", 0), InvalidArgument);
  EXPECT_THROW(store.read_stream("s-1", -1, Direction::backward), InvalidArgument);
}

TYPED_TEST_P(StoreConformance, CursorNextWalksTheSameEventsAsRangeFor) {
  this->store().append("s-1", ExpectedVersion::any(), events(20));
  auto cursor = this->store().read_stream("s-1");
  std::int64_t expected = 1;
  while (auto e = cursor.next()) EXPECT_EQ(e->version, expected++);
  EXPECT_EQ(expected, 21);
  EXPECT_FALSE(cursor.next().has_value());
}

TYPED_TEST_P(StoreConformance, ReadAllReturnsEveryEventInPositionOrderFromAPosition) {
  for (int round = 0; round < 5; ++round) {
    for (const char* s : {"a-1", "b-1", "a-2"}) {
      this->store().append(s, ExpectedVersion::any(), events(round % 3 + 1));
    }
  }
  const auto all = this->everything();
  const auto head = this->store().head_position();
  ASSERT_EQ(static_cast<std::int64_t>(all.size()), head);
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].position, static_cast<std::int64_t>(i) + 1);  // dense, increasing
  }
  const auto tail = collect(this->store().read_all(head - 4));
  EXPECT_EQ(positions(tail), (std::vector<std::int64_t>{head - 4, head - 3, head - 2, head - 1, head}));
  EXPECT_EQ(collect(this->store().read_all(head + 1)).size(), 0u);
  EXPECT_EQ(positions(collect(this->store().read_all(2, {}, 3))),
            (std::vector<std::int64_t>{2, 3, 4}));
  EXPECT_THROW(this->store().read_all(0), InvalidArgument);
}

TYPED_TEST_P(StoreConformance, ReadAllFiltersByTypeStreamPrefixAndCategory) {
  auto& store = this->store();
  store.append("account-1", ExpectedVersion::any(), {event("bank.Opened"), event("bank.Deposited")});
  store.append("accounting-1", ExpectedVersion::any(), {event("ledger.Posted")});
  store.append("account", ExpectedVersion::any(), {event("bank.Opened")});
  store.append("account-2", ExpectedVersion::any(), {event("bank.Opened"), event("bank.Withdrawn")});
  store.append("user-1", ExpectedVersion::any(), {event("user.Registered")});

  auto streams_of = [](const std::vector<RecordedEvent>& es) {
    std::vector<std::string> out;
    for (const auto& e : es) out.push_back(e.stream_id + ":" + e.type);
    return out;
  };
  using S = std::vector<std::string>;
  EXPECT_EQ(streams_of(collect(store.read_all(1, EventFilter::for_types({"bank.Opened"})))),
            (S{"account-1:bank.Opened", "account:bank.Opened", "account-2:bank.Opened"}));
  EXPECT_EQ(streams_of(collect(store.read_all(
                1, EventFilter::for_types({"bank.Withdrawn", "user.Registered"})))),
            (S{"account-2:bank.Withdrawn", "user-1:user.Registered"}));
  EXPECT_EQ(streams_of(collect(store.read_all(1, EventFilter::for_category("account")))),
            (S{"account-1:bank.Opened", "account-1:bank.Deposited", "account:bank.Opened",
               "account-2:bank.Opened", "account-2:bank.Withdrawn"}));
  EXPECT_EQ(streams_of(collect(store.read_all(1, EventFilter::for_prefix("account")))),
            (S{"account-1:bank.Opened", "account-1:bank.Deposited", "accounting-1:ledger.Posted",
               "account:bank.Opened", "account-2:bank.Opened", "account-2:bank.Withdrawn"}));
  EventFilter both;
  both.category = "account";
  both.types = {"bank.Opened"};
  EXPECT_EQ(streams_of(collect(store.read_all(4, both))),
            (S{"account:bank.Opened", "account-2:bank.Opened"}));
  EXPECT_EQ(collect(store.read_all(1, EventFilter::for_types({"nothing.Here"}))).size(), 0u);
  EXPECT_EQ(collect(store.read_all(1, EventFilter::for_category("acc"))).size(), 0u);
  EXPECT_EQ(collect(store.read_all(1, EventFilter::for_category("account"), 2)).size(), 2u);
}

// The category filter and stream_category() are one rule: for every
// category asked, read_all returns exactly the events whose stream's
// stream_category() is that category, however the ids sort around it.
TYPED_TEST_P(StoreConformance, ReadAllByCategoryAgreesWithStreamCategoryOnTrickyIds) {
  auto& store = this->store();
  const std::vector<std::string> ids = {
      "a", "a-", "a-1", "a--1", "a-b", "a-b-1", "a.", "a.-1", "a,1", "a,-1", "ab", "ab-1",
      "a b-1", "-", "-a", "--", "\xc3\xa9-1", "\xc3\xa9", "a\xc3\xa9-1", "A-1", "b-a-1"};
  for (const auto& id : ids) store.append(id, ExpectedVersion::any(), {event("t.Happened")});
  const std::vector<std::string> categories = {"a", "a-b", "a-", "a.", "ab", "-", "",
                                               "\xc3\xa9", "A", "b", "a b", "zzz"};
  for (const auto& category : categories) {
    if (category.empty()) continue;  // an empty category is no filter at all
    std::vector<std::string> expected;
    for (const auto& id : ids) {
      if (stream_category(id) == category) expected.push_back(id);
    }
    std::vector<std::string> got;
    for (const auto& e : collect(store.read_all(1, EventFilter::for_category(category)))) {
      got.push_back(e.stream_id);
    }
    EXPECT_EQ(got, expected) << "category '" << category << "'";
  }
}

TYPED_TEST_P(StoreConformance, PositionsStayStrictlyIncreasingAndDenseUnderConcurrentAppends) {
  constexpr int kThreads = 4, kPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        this->store().append("s-" + std::to_string((t + i) % 3), ExpectedVersion::any(),
                             events(1 + i % 2));
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto all = this->everything();
  std::set<std::pair<std::string, std::int64_t>> seen;
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i].position, static_cast<std::int64_t>(i) + 1);
    ASSERT_TRUE(seen.emplace(all[i].stream_id, all[i].version).second);
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * (kPerThread / 2) * 3));
  EXPECT_TRUE(this->store().verify().ok);
}

TYPED_TEST_P(StoreConformance, ListStreamsByPrefixInByteOrder) {
  for (const char* s : {"order-2", "account-10", "account-2", "order-1", "account-1", "accounts"}) {
    this->store().append(s, ExpectedVersion::any(), events(2));
  }
  using S = std::vector<std::string>;
  EXPECT_EQ(collect(this->store().list_streams()),
            (S{"account-1", "account-10", "account-2", "accounts", "order-1", "order-2"}));
  EXPECT_EQ(collect(this->store().list_streams("account-")),
            (S{"account-1", "account-10", "account-2"}));
  EXPECT_EQ(collect(this->store().list_streams("order-1")), (S{"order-1"}));
  EXPECT_EQ(collect(this->store().list_streams("zzz")), S{});
}

// ---- validation -------------------------------------------------------------

TYPED_TEST_P(StoreConformance, BadStreamIdsAreRejectedWithAClearErrorAndNothingWritten) {
  const std::vector<std::string> bad{"", std::string(256, 'x'), "bad\xff-utf8",
                                     "\xe2\x28\xa1", "tab\there", std::string("nul\0id", 6),
                                     "del\x7f"};
  for (const auto& id : bad) {
    EXPECT_THROW(this->store().append(id, ExpectedVersion::any(), events(1)), InvalidArgument)
        << id;
    EXPECT_THROW(this->store().read_stream(id), InvalidArgument);
    EXPECT_THROW(this->store().stream_version(id), InvalidArgument);
  }
  EXPECT_EQ(this->store().head_position(), 0);
  EXPECT_NO_THROW(this->store().append(std::string(255, 'x'), ExpectedVersion::any(), events(1)));
}

TYPED_TEST_P(StoreConformance, BadEventsAreRejectedNamingTheInputAndNothingWritten) {
  auto reject = [&](EventData e, const std::string& needle) {
    try {
      this->store().append("s-1", ExpectedVersion::any(), {event("test.Ok"), std::move(e)});
      ADD_FAILURE() << "accepted an event that should fail with: " << needle;
    } catch (const InvalidArgument& err) {
      EXPECT_NE(std::string(err.what()).find(needle), std::string::npos) << err.what();
      EXPECT_NE(std::string(err.what()).find("event 2"), std::string::npos) << err.what();
    }
  };
  reject(event(""), "type");
  reject(event("bad\ntype"), "type");
  reject(event("test.X", "not json"), "payload");
  reject(event("test.X", "[1,2]"), "payload");
  reject(event("test.X", R"({"a":1} trailing)"), "payload");
  reject(event("test.X", "{\"a\":\"\xff\"}"), "payload");
  reject(event("test.X", "{}", "null"), "metadata");
  reject(event("test.X", std::string(100000, '[')), "payload");
  EventData bad_id = event("test.X");
  bad_id.event_id = "42";
  reject(bad_id, "not a UUID");
  EventData bad_version = event("test.X");
  bad_version.schema_version = 0;
  reject(bad_version, "schema version");
  EXPECT_THROW(this->store().append("s-1", ExpectedVersion::any(), {}), InvalidArgument);
  EXPECT_EQ(this->store().head_position(), 0);
}

TYPED_TEST_P(StoreConformance, HostileStreamIdsAndPayloadsRoundTripByteExact) {
  const std::vector<std::string> ids{"quote-'\"-`", "'; DROP TABLE events;--",
                                     "Konto-Ärger-日本語-🙂", "back\\slash-%_*"};
  const std::string big = R"({"blob":")" + std::string(1 << 20, 'x') + R"("})";
  const std::vector<std::string> payloads{
      R"({"sql":"'; DROP TABLE events;--","q":"\"quoted\""})",
      R"({"nul":"a\u0000b","esc":"\n\t\u001f"})",
      "{\"text\":\"Grüße, 你好, 🙂\"}",
      big,
      R"({ "spaced" :  [ 1 , 2 ] ,"n":1.50e3})"};
  for (const auto& id : ids) {
    std::vector<EventData> batch;
    for (const auto& p : payloads) batch.push_back(event("test.Hostile", p, R"({"by":"O'Brien"})"));
    this->store().append(id, ExpectedVersion::no_stream(), batch);
  }
  for (const auto& id : ids) {
    const auto stored = collect(this->store().read_stream(id));
    ASSERT_EQ(stored.size(), payloads.size()) << id;
    for (std::size_t i = 0; i < payloads.size(); ++i) {
      EXPECT_EQ(stored[i].stream_id, id);
      EXPECT_TRUE(stored[i].payload == payloads[i]) << "payload " << i << " of " << id;
      EXPECT_EQ(stored[i].metadata, R"({"by":"O'Brien"})");
    }
    const Json nul = stored[1].payload_json();
    EXPECT_EQ(nul["nul"], std::string("a\0b", 3));
  }
  EXPECT_EQ(collect(this->store().list_streams()).size(), ids.size());
  EXPECT_EQ(this->store().head_position(), static_cast<std::int64_t>(ids.size() * payloads.size()));
  EXPECT_TRUE(this->store().verify().ok);
}

// ---- integrity and notifications --------------------------------------------

TYPED_TEST_P(StoreConformance, EveryEventCarriesAVerifiableHashChain) {
  EXPECT_TRUE(this->store().verify().ok);
  this->store().append("a-1", ExpectedVersion::any(), events(5));
  this->store().append("b-1", ExpectedVersion::any(), events(5));
  const auto result = this->store().verify();
  EXPECT_TRUE(result.ok) << result.reason;
  EXPECT_EQ(result.events_checked, 10);
  const auto all = this->everything();
  std::set<EventHash> distinct;
  for (const auto& e : all) distinct.insert(e.hash);
  EXPECT_EQ(distinct.size(), all.size());
}

// Issue 12 item 13: what an aggregate replays can be checked link by link.
TYPED_TEST_P(StoreConformance, ReadStreamLinkedGivesEachEventItsPredecessorsStoredHash) {
  auto& store = this->store();
  // Interleaved streams: most predecessors belong to the other stream.
  for (int i = 0; i < 6; ++i) {
    store.append("s-1", ExpectedVersion::any(), events(1 + i % 2));
    store.append("s-2", ExpectedVersion::any(), events(1));
  }
  const auto all = this->everything();
  const auto expect_linked = [&](const std::vector<LinkedEvent>& linked,
                                 const std::vector<RecordedEvent>& plain) {
    ASSERT_EQ(linked.size(), plain.size());
    for (std::size_t i = 0; i < linked.size(); ++i) {
      const RecordedEvent& e = linked[i].event;
      EXPECT_EQ(e.position, plain[i].position);
      EXPECT_EQ(e.version, plain[i].version);
      EXPECT_EQ(e.payload, plain[i].payload);
      EXPECT_EQ(e.hash, plain[i].hash);
      ASSERT_TRUE(linked[i].previous_hash.has_value()) << "position " << e.position;
      const EventHash expected =
          e.position == 1 ? EventHash{} : all[static_cast<std::size_t>(e.position - 2)].hash;
      EXPECT_EQ(*linked[i].previous_hash, expected) << "position " << e.position;
      EXPECT_EQ(chain_hash(*linked[i].previous_hash, e), e.hash) << "position " << e.position;
    }
  };
  for (const std::string stream : {"s-1", "s-2"}) {
    expect_linked(collect(store.read_stream_linked(stream)), collect(store.read_stream(stream)));
    expect_linked(collect(store.read_stream_linked(stream, 3, 2)),
                  collect(store.read_stream(stream, 3, Direction::forward, 2)));
    // The generic implementation (one read_all per predecessor) gives the same.
    expect_linked(collect(store.EventStore::read_stream_linked(stream, 2)),
                  collect(store.read_stream(stream, 2)));
  }
  EXPECT_TRUE(collect(store.read_stream_linked("s-1", 100)).empty());
  EXPECT_TRUE(collect(store.read_stream_linked("missing-1")).empty());
  EXPECT_TRUE(collect(store.read_stream_linked("s-1", 1, 0)).empty());
  EXPECT_THROW(store.read_stream_linked("s-1", 0), InvalidArgument);
  EXPECT_THROW(store.EventStore::read_stream_linked("s-1", 0), InvalidArgument);
  EXPECT_THROW(store.read_stream_linked(""), InvalidArgument);
}

TYPED_TEST_P(StoreConformance, CommitListenersSeeEachCommitInPositionOrderAfterItIsVisible) {
  std::vector<std::int64_t> seen;
  std::int64_t visible_head = -1;
  auto handle = this->store().add_commit_listener([&](std::span<const RecordedEvent> batch) {
    for (const auto& e : batch) seen.push_back(e.position);
    visible_head = this->store().head_position();
  });
  this->store().append("a-1", ExpectedVersion::any(), events(2));
  std::vector<StreamAppend> multi{{"b-1", ExpectedVersion::any(), events(1)},
                                  {"c-1", ExpectedVersion::any(), events(2)}};
  this->store().append(multi);
  EXPECT_THROW(this->store().append("a-1", ExpectedVersion::no_stream(), events(1)),
               WrongExpectedVersion);
  EXPECT_EQ(seen, (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(visible_head, 5);
  handle.reset();
  this->store().append("a-1", ExpectedVersion::any(), events(1));
  EXPECT_EQ(seen.size(), 5u);
}

TYPED_TEST_P(StoreConformance, AListenerMayAppendToTheSameStoreAndSeesThatBatchNext) {
  std::vector<std::int64_t> seen;
  auto handle = this->store().add_commit_listener([&](std::span<const RecordedEvent> batch) {
    for (const auto& e : batch) seen.push_back(e.position);
    if (batch.front().stream_id == "order-1") {
      // A reaction appended from inside the listener: no deadlock, and it is
      // delivered after the current batch, still in position order.
      this->store().append("invoice-1", ExpectedVersion::any(), events(1));
    }
  });
  this->store().append("order-1", ExpectedVersion::any(), events(2));
  EXPECT_EQ(seen, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(this->store().stream_version("invoice-1"), 1);
}

TYPED_TEST_P(StoreConformance, AListenerThatThrowsDoesNotUndoTheCommitOrStopOthers) {
  int calls = 0;
  auto bad = this->store().add_commit_listener(
      [](std::span<const RecordedEvent>) { throw std::runtime_error("listener failed"); });
  auto good = this->store().add_commit_listener([&](std::span<const RecordedEvent>) { ++calls; });
  EXPECT_NO_THROW(this->store().append("a-1", ExpectedVersion::any(), events(1)));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(this->store().head_position(), 1);
}

// ---- snapshots ----------------------------------------------------------------

TYPED_TEST_P(StoreConformance, SnapshotLoadGivesTheNewestAtOrBelowTheWantedVersion) {
  auto* snapshots_of_store = dynamic_cast<SnapshotStore*>(&this->store());
  if (snapshots_of_store == nullptr) GTEST_SKIP() << "this store keeps no snapshots";
  auto& snapshots = *snapshots_of_store;
  EXPECT_FALSE(snapshots.load_snapshot("account-1").has_value());
  snapshots.save_snapshot({"account-1", 10, 1, R"({"balance":100})", {}});
  snapshots.save_snapshot({"account-1", 20, 1, R"({"balance":200})", {}});
  snapshots.save_snapshot({"account-2", 5, 2, "[1,2]", {}});
  EXPECT_EQ(snapshots.load_snapshot("account-1")->version, 20);
  EXPECT_EQ(snapshots.load_snapshot("account-1", 19)->state, R"({"balance":100})");
  EXPECT_EQ(snapshots.load_snapshot("account-1", 20)->version, 20);
  EXPECT_FALSE(snapshots.load_snapshot("account-1", 9).has_value());
  const auto other = snapshots.load_snapshot("account-2");
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->schema_version, 2);
  EXPECT_EQ(other->state, "[1,2]");
  EXPECT_EQ(other->recorded_at, parse_timestamp("2026-03-01T12:00:00Z"));
  // Saving again at the same version replaces.
  snapshots.save_snapshot({"account-1", 20, 3, R"({"balance":201})", {}});
  EXPECT_EQ(snapshots.load_snapshot("account-1")->state, R"({"balance":201})");
  EXPECT_EQ(snapshots.load_snapshot("account-1")->schema_version, 3);
}

TYPED_TEST_P(StoreConformance, SnapshotsCanBeDroppedPerStreamOrAllWithoutTouchingEvents) {
  auto* snapshots_of_store = dynamic_cast<SnapshotStore*>(&this->store());
  if (snapshots_of_store == nullptr) GTEST_SKIP() << "this store keeps no snapshots";
  auto& snapshots = *snapshots_of_store;
  this->store().append("account-1", ExpectedVersion::any(), events(3));
  snapshots.save_snapshot({"account-1", 3, 1, "{}", {}});
  snapshots.save_snapshot({"account-2", 1, 1, "{}", {}});
  snapshots.delete_snapshots("account-1");
  EXPECT_FALSE(snapshots.load_snapshot("account-1").has_value());
  EXPECT_TRUE(snapshots.load_snapshot("account-2").has_value());
  snapshots.delete_snapshots();
  EXPECT_FALSE(snapshots.load_snapshot("account-2").has_value());
  EXPECT_EQ(this->store().head_position(), 3);
  EXPECT_TRUE(this->store().verify().ok);
}

TYPED_TEST_P(StoreConformance, BadSnapshotsAreRejected) {
  auto* snapshots_of_store = dynamic_cast<SnapshotStore*>(&this->store());
  if (snapshots_of_store == nullptr) GTEST_SKIP() << "this store keeps no snapshots";
  auto& snapshots = *snapshots_of_store;
  EXPECT_THROW(snapshots.save_snapshot({"", 1, 1, "{}", {}}), InvalidArgument);
  EXPECT_THROW(snapshots.save_snapshot({"s-1", 0, 1, "{}", {}}), InvalidArgument);
  EXPECT_THROW(snapshots.save_snapshot({"s-1", 1, 0, "{}", {}}), InvalidArgument);
  EXPECT_THROW(snapshots.save_snapshot({"s-1", 1, 1, "{oops", {}}), InvalidArgument);
  EXPECT_FALSE(snapshots.load_snapshot("s-1").has_value());
}

// ---- text SQLite's JSON functions could not read (issue 12, item 1) ---------

TYPED_TEST_P(StoreConformance, BomPayloadIsRefusedNamingTheField) {
  const std::string bom = "\xEF\xBB\xBF";
  for (const std::string& field : {std::string("payload"), std::string("metadata")}) {
    auto batch = events(2);
    (field == "payload" ? batch[1].payload : batch[1].metadata) = bom + R"({"a":1})";
    try {
      this->store().append("s-1", ExpectedVersion::any(), batch);
      FAIL() << field << " starting with a BOM was accepted";
    } catch (const InvalidArgument& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(field + " of event 2 for stream 's-1'"), std::string::npos) << message;
      EXPECT_NE(message.find("byte order mark"), std::string::npos) << message;
    }
  }
  EXPECT_EQ(this->store().head_position(), 0);
}

// ---- retries whose content differs (issue 12, item 3) ------------------------

TYPED_TEST_P(StoreConformance, RetryWithSameIdsButDifferentContentThrowsSayingTheContentDiffers) {
  auto batch = events(2);
  batch[1].metadata = R"({"actor":"ann"})";
  for (auto& e : batch) e.event_id = new_event_id();
  const auto first = this->store().append("s-1", ExpectedVersion::no_stream(), batch);
  const auto before = this->everything();

  const std::vector<std::pair<std::string, std::function<void(EventData&)>>> changes = {
      {"type", [](EventData& e) { e.type = "test.Other"; }},
      {"schema version", [](EventData& e) { e.schema_version = 2; }},
      {"payload", [](EventData& e) { e.payload = R"({"i":99})"; }},
      {"metadata", [](EventData& e) { e.metadata = R"({"actor":"bob"})"; }},
  };
  for (const auto& [field, change] : changes) {
    for (std::size_t which : {0u, 1u}) {
      auto retry = batch;
      change(retry[which]);
      try {
        this->store().append("s-1", ExpectedVersion::no_stream(), retry);
        FAIL() << "a retry with another " << field << " was acknowledged";
      } catch (const DuplicateEventId& e) {
        const std::string message = e.what();
        EXPECT_EQ(e.event_id(), batch[which].event_id);
        EXPECT_EQ(e.stream_id(), "s-1");
        EXPECT_NE(message.find("content differs"), std::string::npos) << message;
        EXPECT_NE(message.find(field), std::string::npos) << message;
      }
    }
  }
  // Identical content stays an idempotent retry, whatever expected version
  // places it where it is.
  EXPECT_EQ(this->store().append("s-1", ExpectedVersion::no_stream(), batch), first);
  EXPECT_EQ(this->store().append("s-1", ExpectedVersion::any(), batch), first);
  EXPECT_EQ(this->everything().size(), before.size());
  EXPECT_EQ(this->store().stream_version("s-1"), 2);
}

TYPED_TEST_P(StoreConformance, RetryOfAMultiStreamAppendWithDifferentContentWritesNothing) {
  std::vector<StreamAppend> batch{{"a-1", ExpectedVersion::no_stream(), events(1)},
                                  {"b-1", ExpectedVersion::no_stream(), events(1)}};
  for (auto& part : batch) part.events[0].event_id = new_event_id();
  const auto first = this->store().append(batch);
  auto retry = batch;
  retry[1].events[0].payload = R"({"i":7})";
  EXPECT_THROW(this->store().append(retry), DuplicateEventId);
  EXPECT_EQ(this->store().append(batch), first);
  EXPECT_EQ(this->store().head_position(), 2);
}

// ---- recorded_at follows positions (issue 12, item 4) ------------------------

TYPED_TEST_P(StoreConformance, RecordedAtNeverDecreasesAlongPositionsWhenTheClockStepsBack) {
  const Timestamp start = parse_timestamp("2026-03-01T12:00:00Z");
  this->clock_->set(start);
  this->store().append("s-1", ExpectedVersion::any(), events(2));
  this->clock_->set(start - std::chrono::hours(1));  // the wall clock steps back
  this->store().append("s-2", ExpectedVersion::any(), events(1));
  this->store().append(std::vector<StreamAppend>{{"s-3", ExpectedVersion::any(), events(2)},
                                                 {"s-4", ExpectedVersion::any(), events(1)}});
  this->clock_->set(start + std::chrono::seconds(5));  // and forward again
  this->store().append("s-1", ExpectedVersion::any(), events(1));

  const auto all = this->everything();
  ASSERT_EQ(all.size(), 7u);
  for (std::size_t i = 1; i < all.size(); ++i) {
    EXPECT_GE(all[i].recorded_at, all[i - 1].recorded_at) << "at position " << all[i].position;
  }
  // Held at the latest time seen while the clock was behind it, then the clock again.
  EXPECT_EQ(all[2].recorded_at, start);
  EXPECT_EQ(all[5].recorded_at, start);
  EXPECT_EQ(all[6].recorded_at, start + std::chrono::seconds(5));
  EXPECT_TRUE(this->store().verify().ok);
}


// ---- figures and progress -----------------------------------------------------

TYPED_TEST_P(StoreConformance, StatsCountEventsStreamsTypesAndCategories) {
  const StoreStats empty = this->store().stats();
  EXPECT_EQ(empty.events, 0);
  EXPECT_EQ(empty.streams, 0);
  EXPECT_FALSE(empty.first_recorded_at.has_value());
  EXPECT_TRUE(empty.types.empty());
  this->store().append("order-1", ExpectedVersion::any(), events(2, "shop.Placed"));
  this->clock_->advance(std::chrono::seconds(5));
  this->store().append("order-2", ExpectedVersion::any(), events(1, "shop.Paid"));
  this->store().append("nocategory", ExpectedVersion::any(), events(1, "shop.Placed"));
  const StoreStats stats = this->store().stats();
  EXPECT_EQ(stats.events, 4);
  EXPECT_EQ(stats.streams, 3);
  EXPECT_EQ(stats.head_position, 4);
  EXPECT_EQ(stats.first_recorded_at, parse_timestamp("2026-03-01T12:00:00Z"));
  EXPECT_EQ(stats.last_recorded_at, parse_timestamp("2026-03-01T12:00:05Z"));
  using Counts = std::vector<std::pair<std::string, std::int64_t>>;
  EXPECT_EQ(stats.types, (Counts{{"shop.Paid", 1}, {"shop.Placed", 3}}));
  EXPECT_EQ(stats.categories, (Counts{{"nocategory", 1}, {"order", 3}}));
}

TYPED_TEST_P(StoreConformance, VerifyReportsItsProgressUpToTheHead) {
  this->store().append("order-1", ExpectedVersion::any(), events(600));
  std::vector<std::pair<std::int64_t, std::int64_t>> reports;
  const VerifyResult result =
      this->store().verify([&](std::int64_t checked, std::int64_t total) {
        reports.emplace_back(checked, total);
      });
  EXPECT_TRUE(result.ok) << result.reason;
  EXPECT_EQ(result.events_checked, 600);
  ASSERT_GE(reports.size(), 2u);  // along the way, and once at the end
  EXPECT_EQ(reports.back(), (std::pair<std::int64_t, std::int64_t>{600, 600}));
  EXPECT_TRUE(std::is_sorted(reports.begin(), reports.end()));
}

REGISTER_TYPED_TEST_SUITE_P(StoreConformance,
                            AppendToNewStreamNumbersVersionsAndPositionsFromOne,
                            GivenFieldsAreStoredAsGiven,
                            RecordedAtComesFromTheInjectedClock,
                            ExpectedVersionAnyAcceptsNewAndExistingStreams,
                            NoStreamAcceptsANewStreamAndRejectsAnExistingOneWritingNothing,
                            StreamExistsRejectsANewStreamAndAcceptsAnExistingOne,
                            ExactlyAcceptsTheCurrentVersionAndRejectsAnyOther,
                            WrongExpectedVersionCarriesStreamExpectedAndActual,
                            RetryWithTheSameEventIdsReturnsTheFirstResultAndWritesNothing,
                            RetryAtAnotherPlaceIsADuplicateEventId,
                            AnEventIdTwiceInOneAppendIsRejected,
                            MultiStreamAppendWritesEveryStreamInOrder,
                            MultiStreamAppendIsAllOrNothingWhenOneExpectationFails,
                            MultiStreamAppendRejectsAStreamNamedTwice,
                            ReadStreamForwardBackwardFromAVersionWithMaxCount,
                            CursorNextWalksTheSameEventsAsRangeFor,
                            ReadAllReturnsEveryEventInPositionOrderFromAPosition,
                            ReadAllFiltersByTypeStreamPrefixAndCategory,
                            PositionsStayStrictlyIncreasingAndDenseUnderConcurrentAppends,
                            ListStreamsByPrefixInByteOrder,
                            BadStreamIdsAreRejectedWithAClearErrorAndNothingWritten,
                            BadEventsAreRejectedNamingTheInputAndNothingWritten,
                            HostileStreamIdsAndPayloadsRoundTripByteExact,
                            EveryEventCarriesAVerifiableHashChain,
                            ReadStreamLinkedGivesEachEventItsPredecessorsStoredHash,
                            CommitListenersSeeEachCommitInPositionOrderAfterItIsVisible,
                            AListenerMayAppendToTheSameStoreAndSeesThatBatchNext,
                            AListenerThatThrowsDoesNotUndoTheCommitOrStopOthers,
                            SnapshotLoadGivesTheNewestAtOrBelowTheWantedVersion,
                            SnapshotsCanBeDroppedPerStreamOrAllWithoutTouchingEvents,
                            BadSnapshotsAreRejected,
                            BomPayloadIsRefusedNamingTheField,
                            RetryWithSameIdsButDifferentContentThrowsSayingTheContentDiffers,
                            RetryOfAMultiStreamAppendWithDifferentContentWritesNothing,
                            RecordedAtNeverDecreasesAlongPositionsWhenTheClockStepsBack,
                            StatsCountEventsStreamsTypesAndCategories,
                            VerifyReportsItsProgressUpToTheHead,
                            ReadAllByCategoryAgreesWithStreamCategoryOnTrickyIds);

}  // namespace annals::testing

/// Runs the suite against the store `Factory` makes. GoogleTest names the
/// tests "Name/StoreConformance/0.<Test>" (CTest's gtest_discover_tests:
/// "Name.<Test><Factory>"). Use at namespace scope, once per Name, with
/// `Factory` fully qualified.
#define ANNALS_STORE_CONFORMANCE(Name, Factory)                 \
  namespace annals::testing {                                   \
  INSTANTIATE_TYPED_TEST_SUITE_P(Name, StoreConformance, Factory); \
  }                                                             \
  static_assert(true, "")
