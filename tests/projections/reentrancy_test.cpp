// Calls that come back into the object that called them (issue 12, items 6-8):
// a runner's retry backoff after start() and stop(), a read() nested in a
// read(), and an append() from inside a transaction hook. A nested call that
// would deadlock must be detected (or supported), never left to hang: each
// such test runs under within_deadline(), so a regression fails, not hangs.

#include <gtest/gtest.h>

#include <mutex>

#include "annals/core/error.hpp"
#include "annals/projections/inline_projection.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/store/in_memory_event_store.hpp"
#include "projection_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;
using Instant = std::chrono::steady_clock::time_point;

// ---- item 6: the retry backoff after start() and stop() ------------------------------

constexpr auto kBackoff = 200ms;

// A projection whose every apply() fails, noting when it was called.
struct AlwaysFailing {
  std::mutex mu;
  std::vector<Instant> calls;

  Projection projection() {
    Projection p = ledger_projection();
    p.apply = [this](SqlTransaction&, const RecordedEvent& e) {
      {
        std::lock_guard lock(mu);
        calls.push_back(std::chrono::steady_clock::now());
      }
      throw std::runtime_error("cannot apply event " + std::to_string(e.position));
    };
    return p;
  }
  void forget() {
    std::lock_guard lock(mu);
    calls.clear();
  }
  std::vector<Instant> taken() {
    std::lock_guard lock(mu);
    return calls;
  }
};

ProjectionRunnerOptions two_attempts() {
  ProjectionRunnerOptions options;
  options.max_attempts = 2;
  options.retry_backoff = kBackoff;
  options.max_retry_backoff = kBackoff;
  return options;
}

// The second attempt comes at least the backoff after the first: a lower
// bound that a condition variable's timed wait guarantees, so it cannot fail
// spuriously; without the wait the attempts are microseconds apart.
void expect_backoff_between(const std::vector<Instant>& calls) {
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_GE(calls[1] - calls[0], kBackoff)
      << "the retry came after "
      << std::chrono::duration_cast<std::chrono::microseconds>(calls[1] - calls[0]).count()
      << " us";
}

TEST(RetryBackoff, CatchUpAfterStartAndStopStillWaitsTheRetryBackoff) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  store.append("a-1", ExpectedVersion::any(), events(1));
  SqliteReadModel model(dir / "views.db");
  AlwaysFailing failing;
  ProjectionRunner runner(store, model, failing.projection(), two_attempts());
  runner.start();
  runner.stop();
  failing.forget();  // what the worker tried before it stopped

  EXPECT_EQ(runner.catch_up(), 0);
  expect_backoff_between(failing.taken());
  ASSERT_TRUE(model.checkpoint_record("ledger")->failure);
  EXPECT_EQ(model.checkpoint_record("ledger")->failure->attempts, 2);
}

TEST(RetryBackoff, RebuildAfterStartAndStopStillWaitsTheRetryBackoff) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  store.append("a-1", ExpectedVersion::any(), events(1));
  SqliteReadModel model(dir / "views.db");
  AlwaysFailing failing;
  ProjectionRunner runner(store, model, failing.projection(), two_attempts());
  runner.start();
  runner.stop();
  failing.forget();

  runner.rebuild();
  expect_backoff_between(failing.taken());
  EXPECT_FALSE(runner.running());
}

TEST(RetryBackoff, ACatchUpAfterTheWorkerStoppedOnItsOwnStillWaitsTheRetryBackoff) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  store.append("a-1", ExpectedVersion::any(), events(1));
  SqliteReadModel model(dir / "views.db");
  AlwaysFailing failing;
  ProjectionRunner runner(store, model, failing.projection(), two_attempts());
  runner.start();
  ASSERT_TRUE(eventually([&] { return !runner.running(); }));  // gave up on the event
  failing.forget();
  runner.catch_up();
  expect_backoff_between(failing.taken());
}

// ---- item 7: a read() nested in a read() ---------------------------------------------

TEST(NestedRead, ANestedReadOnTheSameThreadJoinsTheOuterReadInsteadOfDeadlocking) {
  TempDir dir;
  SqliteReadModel model(dir / "views.db");
  model.write([](SqlTransaction& tx) {
    tx.exec_script("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)");
  });
  std::optional<std::int64_t> outer_count, nested_count, query_count;
  std::int64_t checkpoint = -1;
  within_deadline("a read() nested in a read()", [&] {
    model.read([&](SqlTransaction& outer) {
      outer_count = outer.query_int("SELECT count(*) FROM t");
      // A write committed meanwhile (another connection) is not seen by the
      // outer transaction, nor by the reads nested in it: they join it.
      model.write([](SqlTransaction& tx) { tx.exec("INSERT INTO t VALUES (2)"); });
      model.read([&](SqlTransaction& inner) {
        nested_count = inner.query_int("SELECT count(*) FROM t");
      });
      query_count = model.query_int("SELECT count(*) FROM t");
      checkpoint = model.checkpoint("none");
    });
  });
  EXPECT_EQ(outer_count, 1);
  EXPECT_EQ(nested_count, 1);
  EXPECT_EQ(query_count, 1);
  EXPECT_EQ(checkpoint, 0);
  EXPECT_EQ(model.query_int("SELECT count(*) FROM t"), 2);  // a new read sees the write
}

TEST(NestedRead, AnErrorInANestedReadReachesTheOuterReadWhichMayGoOn) {
  TempDir dir;
  SqliteReadModel model(dir / "views.db");
  model.write([](SqlTransaction& tx) { tx.exec_script("CREATE TABLE t (x INTEGER)"); });
  bool caught = false;
  std::optional<std::int64_t> after;
  within_deadline("a failing read() nested in a read()", [&] {
    model.read([&](SqlTransaction& outer) {
      try {
        model.read([](SqlTransaction& inner) { inner.query("SELECT * FROM no_such_table"); });
      } catch (const StorageError&) {
        caught = true;
      }
      after = outer.query_int("SELECT count(*) FROM t");
    });
  });
  EXPECT_TRUE(caught);
  EXPECT_EQ(after, 0);
  // The reader is left usable, and other threads can read again.
  std::optional<std::int64_t> from_other;
  std::thread([&] { from_other = model.query_int("SELECT count(*) FROM t"); }).join();
  EXPECT_EQ(from_other, 0);
}

// ---- item 8: append() from inside a transaction hook ---------------------------------

TEST(AppendFromHook, AnAppendFromInsideATransactionHookThrowsInvalidArgumentInsteadOfBlocking) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  auto hook = store.add_transaction_hook([&](SqlTransaction&, std::span<const RecordedEvent> es) {
    if (es.front().stream_id == "outer-1") {
      store.append("inner-1", ExpectedVersion::any(), events(1));
    }
  });
  within_deadline("an append() from inside a transaction hook", [&] {
    try {
      store.append("outer-1", ExpectedVersion::any(), events(2));
      ADD_FAILURE() << "the nested append was not refused";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("transaction hook"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("store.db"), std::string::npos) << e.what();
    }
  });
  // The hook's error rejected the outer append: nothing was written, and the
  // store goes on (no leader or lock was left behind).
  EXPECT_EQ(store.head_position(), 0);
  EXPECT_EQ(store.stream_version("inner-1"), 0);
  within_deadline("an append after the refused one", [&] {
    EXPECT_EQ(store.append("other-1", ExpectedVersion::any(), events(1)).first_position, 1);
  });
}

TEST(AppendFromHook, AHookThatCatchesTheRefusalLetsTheOuterAppendCommit) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  std::string refusal;
  auto hook = store.add_transaction_hook([&](SqlTransaction&, std::span<const RecordedEvent>) {
    try {
      store.append("inner-1", ExpectedVersion::any(), events(1));
    } catch (const InvalidArgument& e) {
      refusal = e.what();
    }
  });
  within_deadline("an append() from inside a transaction hook", [&] {
    EXPECT_EQ(store.append("outer-1", ExpectedVersion::any(), events(1)).last_position, 1);
  });
  EXPECT_FALSE(refusal.empty());
  EXPECT_EQ(store.head_position(), 1);
  EXPECT_EQ(store.stream_version("inner-1"), 0);
}

TEST(AppendFromHook, AnInMemoryStoreRefusesAnAppendFromInsideItsHookToo) {
  InMemoryEventStore store;
  auto hook = store.add_transaction_hook([&](std::span<const RecordedEvent> es) {
    if (es.front().stream_id == "outer-1") {
      store.append("inner-1", ExpectedVersion::any(), events(1));
    }
  });
  within_deadline("an append() from inside an in-memory store's hook", [&] {
    EXPECT_THROW(store.append("outer-1", ExpectedVersion::any(), events(1)), InvalidArgument);
  });
  EXPECT_EQ(store.head_position(), 0);
  EXPECT_EQ(store.append("other-1", ExpectedVersion::any(), events(1)).first_position, 1);
}

TEST(AppendFromHook, AnInlineProjectionWhoseApplyAppendsRejectsTheAppendInsteadOfBlocking) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  Projection p = ledger_projection();
  auto apply = p.apply;
  p.apply = [&store, apply](SqlTransaction& tx, const RecordedEvent& e) {
    apply(tx, e);
    if (e.stream_id == "echo-1") store.append("echoed-1", ExpectedVersion::any(), events(1));
  };
  InlineProjection projection(store, p);
  store.append("quiet-1", ExpectedVersion::any(), events(1));
  within_deadline("an inline projection appending from apply()", [&] {
    EXPECT_THROW(store.append("echo-1", ExpectedVersion::any(), events(1)), InvalidArgument);
  });
  EXPECT_EQ(store.head_position(), 1);
  EXPECT_EQ(projection.checkpoint(), 1);
  EXPECT_EQ(projection.read_model().query_int("SELECT count(*) FROM ledger_rows"), 1);
}

TEST(AppendFromHook, AHookMayAppendToAnotherStore) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  InMemoryEventStore audit;
  auto hook = store.add_transaction_hook([&](SqlTransaction&, std::span<const RecordedEvent> es) {
    audit.append("audit-1", ExpectedVersion::any(), events(static_cast<int>(es.size())));
  });
  within_deadline("an append to another store from a hook", [&] {
    store.append("a-1", ExpectedVersion::any(), events(3));
  });
  EXPECT_EQ(audit.head_position(), 3);
}

}  // namespace
}  // namespace annals
