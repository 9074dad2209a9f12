// A checkpoint beyond the store's head (issue 12, item 5, projection side):
// the store lost its newest events (rows deleted behind its triggers) or the
// read model belongs to another store. Runners and inline projections stop
// with an IntegrityError naming both positions; they never skip the positions
// in between, and a rebuild is the only way on.

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include "annals/core/error.hpp"
#include "annals/projections/inline_projection.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/projections/rebuild_request.hpp"
#include "projection_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

// Deletes the events after `keep` through a connection of its own, with the
// append-only delete trigger dropped first, as someone with the file could.
// The store object stays open (its own opens are not what is tested here).
void remove_tail(const std::filesystem::path& db, std::int64_t keep) {
  SQLite::Database raw(db.string(), SQLite::OPEN_READWRITE);
  raw.exec("DROP TRIGGER IF EXISTS events_append_only_delete");
  raw.exec("DELETE FROM events WHERE position > " + std::to_string(keep));
}

// The message names the checkpoint and the head, as positions.
void expect_names_both(const std::string& message, std::int64_t checkpoint, std::int64_t head) {
  EXPECT_NE(message.find("checkpoint (position " + std::to_string(checkpoint) + ")"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("head (position " + std::to_string(head) + ")"), std::string::npos)
      << message;
}

std::int64_t rows(const SqliteReadModel& model) {
  return model.query_int("SELECT count(*) FROM ledger_rows").value_or(-1);
}

ProjectionRunnerOptions quick_polls() {
  ProjectionRunnerOptions options;
  options.poll_interval = 5ms;
  options.retry_backoff = 1ms;
  return options;
}

TEST(CheckpointBeyondHead,
     CatchUpAfterTheStoresTailWasRemovedThrowsIntegrityErrorNamingBothPositions) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 10, 1, 3);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunner runner(store, model, ledger_projection());
  ASSERT_EQ(runner.catch_up(), 10);

  remove_tail(store.path(), 7);
  ASSERT_EQ(store.head_position(), 7);
  try {
    runner.catch_up();
    FAIL() << "catch_up() went on past a checkpoint beyond the head";
  } catch (const IntegrityError& e) {
    expect_names_both(e.what(), 10, 7);
    EXPECT_NE(std::string(e.what()).find("'ledger'"), std::string::npos) << e.what();
    EXPECT_EQ(e.position(), 8);  // the first position the checkpoint claims and the store lacks
  }
  // Nothing moved: the checkpoint and the rows stay as they were, and the
  // failure is recorded for `annals projections` and other processes.
  EXPECT_EQ(model.checkpoint("ledger"), 10);
  EXPECT_EQ(rows(model), 10);
  const auto record = model.checkpoint_record("ledger");
  ASSERT_TRUE(record && record->failure);
  expect_names_both(record->failure->message, 10, 7);
  EXPECT_FALSE(runner.running());
  // A second try meets the same wall; it never skips ahead.
  EXPECT_THROW(runner.catch_up(), IntegrityError);
  EXPECT_EQ(model.checkpoint("ledger"), 10);
}

TEST(CheckpointBeyondHead, StatusThrowsIntegrityErrorInsteadOfShowingALagOfZero) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 10, 2, 3);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunner runner(store, model, ledger_projection());
  runner.catch_up();
  remove_tail(store.path(), 4);
  try {
    const auto status = runner.status();
    FAIL() << "status() reported lag " << status.lag << " for checkpoint " << status.checkpoint
           << " and head " << status.head_position;
  } catch (const IntegrityError& e) {
    expect_names_both(e.what(), 10, 4);
  }
}

TEST(CheckpointBeyondHead, AStartedRunnerOnAStoreWithFewerEventsStopsAndSaysWhy) {
  TempDir dir;
  SqliteReadModel model(dir / "views.db");
  {
    SqliteEventStore bigger(dir / "bigger.db", fast_store());
    fill(bigger, 12, 4, 3);
    ProjectionRunner runner(bigger, model, ledger_projection());
    ASSERT_EQ(runner.catch_up(), 12);
  }
  // The same read model pointed at another store, with fewer events.
  SqliteEventStore smaller(dir / "smaller.db", fast_store());
  fill(smaller, 5, 5, 1);
  ProjectionRunner runner(smaller, model, ledger_projection(), quick_polls());
  runner.start();
  ASSERT_TRUE(eventually([&] { return !runner.running(); }));
  const auto record = model.checkpoint_record("ledger");
  ASSERT_TRUE(record && record->failure);
  expect_names_both(record->failure->message, 12, 5);
  EXPECT_EQ(record->failure->position, 13);
  EXPECT_EQ(record->position, 12);
  EXPECT_EQ(rows(model), 12);
  EXPECT_THROW(runner.status(), IntegrityError);
}

TEST(CheckpointBeyondHead, ALiveRunnerStopsWhenItsPollFindsTheHeadBelowItsCheckpoint) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 9, 3, 3);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunner runner(store, model, ledger_projection(), quick_polls());
  runner.start();
  ASSERT_TRUE(runner.wait_for(9, 30s));
  // No commit listener fires for rows deleted behind the store's back: the
  // runner finds out by polling.
  remove_tail(store.path(), 6);
  ASSERT_TRUE(eventually([&] { return !runner.running(); }));
  const auto record = model.checkpoint_record("ledger");
  ASSERT_TRUE(record && record->failure);
  expect_names_both(record->failure->message, 9, 6);
  EXPECT_EQ(model.checkpoint("ledger"), 9);
  EXPECT_EQ(rows(model), 9);
}

TEST(CheckpointBeyondHead, RebuildReplaysWhatTheStoreHoldsAndTheRunnerGoesOn) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 10, 1, 3);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunner runner(store, model, ledger_projection());
  runner.catch_up();
  remove_tail(store.path(), 7);
  EXPECT_THROW(runner.catch_up(), IntegrityError);

  runner.rebuild();
  EXPECT_EQ(model.checkpoint("ledger"), 7);
  EXPECT_EQ(rows(model), 7);
  EXPECT_FALSE(model.checkpoint_record("ledger")->failure);
  const auto status = runner.status();
  EXPECT_EQ(status.lag, 0);
  EXPECT_FALSE(status.failure);
}

TEST(CheckpointBeyondHead, ARebuildRequestFromAnotherProcessIsTheWayOnForARunner) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 10, 1, 3);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunner runner(store, model, ledger_projection());
  runner.catch_up();
  remove_tail(store.path(), 3);
  request_rebuild(model, "ledger");
  EXPECT_EQ(runner.catch_up(), 3);
  EXPECT_EQ(rows(model), 3);
  EXPECT_FALSE(rebuild_requested(model, "ledger"));
}

// ---- inline projections -------------------------------------------------------------

TEST(CheckpointBeyondHead, AnInlineProjectionWhoseCheckpointIsBeyondTheHeadRefusesToAttach) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 8, 2, 2);
  { InlineProjection inline_ledger(store, ledger_projection()); }
  remove_tail(store.path(), 5);
  try {
    InlineProjection again(store, ledger_projection());
    FAIL() << "an inline projection attached over a checkpoint beyond the head";
  } catch (const IntegrityError& e) {
    // Refused by the store (its high-water mark) or by the projection.
    const std::string message = e.what();
    if (message.find("high-water mark") != std::string::npos) {
      EXPECT_NE(message.find("position 5"), std::string::npos) << message;
      EXPECT_NE(message.find("up to 8"), std::string::npos) << message;
    } else {
      expect_names_both(message, 8, 5);
    }
  }
  // Refused before attaching: appends go on without it, and its rows and
  // checkpoint are as they were.
  SqliteReadModel reader(store.path());
  EXPECT_EQ(reader.checkpoint("ledger"), 8);
  EXPECT_EQ(rows(reader), 8);
}

TEST(CheckpointBeyondHead, ARebuildRequestLetsAnInlineProjectionAttachAgain) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 8, 2, 2);
  { InlineProjection inline_ledger(store, ledger_projection()); }
  remove_tail(store.path(), 5);
  {
    SqliteReadModel requester(store.path());
    request_rebuild(requester, "ledger");
  }
  InlineProjection again(store, ledger_projection());
  EXPECT_EQ(again.checkpoint(), 5);
  EXPECT_EQ(rows(again.read_model()), 5);
  EXPECT_FALSE(rebuild_requested(again.read_model(), "ledger"));
  // The store refuses appends past a removed tail (its high-water mark of
  // positions), so the projection stays where the store is.
  EXPECT_THROW(store.append("late-1", ExpectedVersion::any(), events(1)), IntegrityError);
  EXPECT_EQ(again.checkpoint(), 5);
  EXPECT_EQ(rows(again.read_model()), 5);
}

TEST(CheckpointBeyondHead, AnAttachedInlineProjectionNeverSkipsAnAppendAfterTheTailWasRemoved) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  InlineProjection inline_ledger(store, ledger_projection());
  fill(store, 8, 2, 2);
  ASSERT_EQ(inline_ledger.checkpoint(), 8);
  remove_tail(store.path(), 5);
  // A store that hands out positions 6..8 again would have the projection
  // skip this event: the append must be refused. A store that never reuses
  // a position gives it one past 8, which the projection applies.
  try {
    const auto r = store.append("late-1", ExpectedVersion::any(), events(1));
    EXPECT_GT(r.first_position, 8);
    EXPECT_EQ(inline_ledger.checkpoint(), r.last_position);
    EXPECT_EQ(inline_ledger.read_model()
                  .query_int("SELECT count(*) FROM ledger_rows WHERE stream_id = 'late-1'")
                  .value_or(0),
              1);
  } catch (const IntegrityError& e) {
    // Refused by the store (its high-water mark) or by the projection.
    const std::string message = e.what();
    if (message.find("high-water mark") != std::string::npos) {
      EXPECT_NE(message.find("position 5"), std::string::npos) << message;
      EXPECT_NE(message.find("up to 8"), std::string::npos) << message;
    } else {
      expect_names_both(message, 8, 5);
    }
    EXPECT_EQ(store.head_position(), 5);  // rejected: nothing written
    EXPECT_EQ(inline_ledger.checkpoint(), 8);
    EXPECT_EQ(rows(inline_ledger.read_model()), 8);
  }
}

}  // namespace
}  // namespace annals
