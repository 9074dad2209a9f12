// SqliteReadModelOptions::read_only: looking at a read model creates and
// changes nothing, and sees every projection's checkpoint record.

#include <gtest/gtest.h>

#include <fstream>

#include "annals/core/error.hpp"
#include "annals/projections/inline_projection.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/projections/rebuild_request.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "store/store_fixtures.hpp"

namespace annals {
namespace {

using testing::TempDir;

Projection counting(std::string name) {
  return Projection{
      .name = std::move(name),
      .filter = {},
      .setup = [](SqlTransaction& tx) { tx.exec_script("CREATE TABLE IF NOT EXISTS seen (n INTEGER)"); },
      .apply = [](SqlTransaction& tx, const RecordedEvent& e) {
        tx.exec("INSERT INTO seen VALUES (?1)", {e.position});
        if (e.type == "test.Poison") throw std::runtime_error("poisoned");
      },
      .reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM seen"); },
  };
}

EventData event(const std::string& type) {
  EventData e;
  e.type = type;
  return e;
}

TEST(ReadOnlyReadModel, SeesEveryCheckpointRecordAndParkedEventsAndWritesNothing) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", testing::fast());
  store.append("s-1", ExpectedVersion::any(), {event("test.Ok"), event("test.Poison"), event("test.Ok")});
  {
    SqliteReadModel views(dir / "views.db");
    ProjectionRunnerOptions parking;
    parking.max_attempts = 1;
    parking.on_poison = PoisonPolicy::park;
    ProjectionRunner a(store, views, counting("a"), parking);
    ProjectionRunner b(store, views, counting("b"));
    a.catch_up();
    request_rebuild(views, "b");
  }
  const std::string before = testing::file_bytes(dir / "views.db");
  const SqliteReadModel looking(dir / "views.db", {.read_only = true});
  const auto records = looking.checkpoint_records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].name, "a");
  EXPECT_EQ(records[0].position, 3);
  EXPECT_FALSE(records[0].rebuild_requested);
  EXPECT_EQ(records[1].name, "b");
  EXPECT_EQ(records[1].position, 0);
  EXPECT_TRUE(records[1].rebuild_requested);
  EXPECT_EQ(looking.parked_count("a"), 1);
  const auto parked = looking.parked_events("a", 10);
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].position, 2);
  EXPECT_TRUE(looking.parked_events("a", 0).empty());
  try {
    const_cast<SqliteReadModel&>(looking).write([](SqlTransaction&) {});
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("read-only"), std::string::npos) << e.what();
  }
  EXPECT_EQ(testing::file_bytes(dir / "views.db"), before);
}

TEST(ReadOnlyReadModel, AFileNoProjectionUsedReadsAsNoneAndGetsNoTables) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", testing::fast());
  store.append("s-1", ExpectedVersion::any(), {event("test.Ok")});
  const SqliteReadModel looking(store.path(), {.read_only = true});
  EXPECT_TRUE(looking.checkpoint_records().empty());
  EXPECT_EQ(looking.parked_count("a"), 0);
  EXPECT_FALSE(looking.checkpoint_record("a").has_value());
  EXPECT_EQ(looking.query_int("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'projection_%'"), 0);
}

TEST(ReadOnlyReadModel, AMissingFileIsAStorageErrorAndIsNotCreated) {
  TempDir dir;
  EXPECT_THROW(SqliteReadModel(dir / "nope.db", {.read_only = true}), StorageError);
  EXPECT_FALSE(std::filesystem::exists(dir / "nope.db"));
}

TEST(ReadOnlyReadModel, AFileThatIsNotADatabaseIsAStorageErrorSayingSo) {
  TempDir dir;
  {
    std::ofstream junk(dir / "junk.db");
    junk << std::string(4096, 'x');
  }
  try {
    SqliteReadModel views(dir / "junk.db", {.read_only = true});
    FAIL() << "expected StorageError";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("not an SQLite database"), std::string::npos) << e.what();
  }
}

TEST(ReadModelClock, RunnersAndInlineProjectionsStampTheirBookkeepingWithTheReadModelsClock) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", testing::fast());
  store.append("s-1", ExpectedVersion::any(), {event("test.Ok"), event("test.Poison")});
  const Timestamp then = parse_timestamp("2031-07-04T12:00:00Z");
  auto clock = std::make_shared<ManualClock>(then);
  SqliteReadModel views(dir / "views.db", {.clock = clock});
  EXPECT_EQ(views.clock().now(), then);
  ProjectionRunnerOptions parking;
  parking.max_attempts = 1;
  parking.on_poison = PoisonPolicy::park;
  ProjectionRunner runner(store, views, counting("a"), parking);
  runner.catch_up();
  EXPECT_EQ(views.checkpoint_record("a")->updated_at, then);
  ASSERT_EQ(views.parked_count("a"), 1);
  EXPECT_EQ(views.parked_events("a").front().parked_at, then);

  Projection quiet = counting("b");
  quiet.filter = EventFilter::for_types({"test.Ok"});
  InlineProjection inline_projection(store, quiet, {.clock = clock});
  clock->advance(std::chrono::seconds(90));
  store.append("s-1", ExpectedVersion::any(), {event("test.Ok")});
  const SqliteReadModel on_store(store.path(), {.read_only = true});
  EXPECT_EQ(on_store.checkpoint_record("b")->updated_at, then + std::chrono::seconds(90));
}

}  // namespace
}  // namespace annals
