// SqliteStoreOptions::read_only, which the `annals` read commands use: every
// read works, nothing is written, and the file's bytes never change.

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "annals/core/error.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "store/store_fixtures.hpp"

namespace annals {
namespace {

using testing::TempDir;

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

SqliteStoreOptions read_only() {
  SqliteStoreOptions o;
  o.read_only = true;
  return o;
}

EventData event(int n) {
  EventData d;
  d.type = "test.Happened";
  d.payload = "{\"n\":" + std::to_string(n) + "}";
  return d;
}

// A closed store with three events in two streams.
void make_store(const std::filesystem::path& path) {
  SqliteStoreOptions o;
  o.synchronous = Synchronous::normal;
  SqliteEventStore store(path, o);
  store.append("a-1", ExpectedVersion::no_stream(), {event(1), event(2)});
  store.append("b-1", ExpectedVersion::no_stream(), {event(3)});
}

TEST(SqliteStoreReadOnly, EveryReadWorksAndWritesThrowWithoutChangingTheFile) {
  TempDir dir;
  make_store(dir / "s.db");
  const std::string before = file_bytes(dir / "s.db");
  {
    SqliteEventStore store(dir / "s.db", read_only());
    EXPECT_EQ(store.head_position(), 3);
    EXPECT_EQ(store.stream_version("a-1"), 2);
    int n = 0;
    for (const auto& e : store.read_all()) n += e.position > 0;
    EXPECT_EQ(n, 3);
    std::vector<std::string> streams;
    for (auto& s : store.list_streams()) streams.push_back(s);
    EXPECT_EQ(streams, (std::vector<std::string>{"a-1", "b-1"}));
    EXPECT_TRUE(store.verify().ok);
    EXPECT_THROW(store.append("a-1", ExpectedVersion::any(), {event(4)}), StorageError);
    EXPECT_THROW(store.save_snapshot(Snapshot{"a-1", 2, 1, "{}", {}}), StorageError);
    EXPECT_THROW(store.delete_snapshots(), StorageError);
  }
  EXPECT_EQ(file_bytes(dir / "s.db"), before);
}

TEST(SqliteStoreReadOnly, AMissingFileIsRefusedAndNotCreated) {
  TempDir dir;
  EXPECT_THROW(SqliteEventStore(dir / "missing.db", read_only()), StorageError);
  EXPECT_FALSE(std::filesystem::exists(dir / "missing.db"));
}

TEST(SqliteStoreReadOnly, AnEmptyFileIsRefusedAsNotAStoreAndStaysEmpty) {
  TempDir dir;
  std::ofstream(dir / "empty.db").close();
  try {
    SqliteEventStore store(dir / "empty.db", read_only());
    ADD_FAILURE() << "opened an empty file";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("not an Annals store"), std::string::npos) << e.what();
  }
  EXPECT_EQ(std::filesystem::file_size(dir / "empty.db"), 0u);
}

TEST(SqliteStoreReadOnly, AFileWithoutWritePermissionIsRead) {
  TempDir dir;
  make_store(dir / "s.db");
  ASSERT_EQ(::chmod((dir / "s.db").c_str(), 0444), 0);
  const std::string before = file_bytes(dir / "s.db");
  {
    SqliteEventStore store(dir / "s.db", read_only());
    EXPECT_EQ(store.head_position(), 3);
  }
  EXPECT_EQ(file_bytes(dir / "s.db"), before);
}

TEST(SqliteStoreReadOnly, AnOlderSchemaIsReadWithoutBeingMigrated) {
  TempDir dir;
  make_store(dir / "s.db");
  {
    SQLite::Database raw((dir / "s.db").string(), SQLite::OPEN_READWRITE);
    raw.exec("DROP TRIGGER events_append_only_insert");
    raw.exec("PRAGMA user_version = 1");
  }
  const std::string before = file_bytes(dir / "s.db");
  {
    SqliteEventStore store(dir / "s.db", read_only());
    EXPECT_EQ(store.head_position(), 3);
  }
  EXPECT_EQ(file_bytes(dir / "s.db"), before);
  SQLite::Database raw((dir / "s.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("PRAGMA user_version").getInt(), 1);
}

TEST(SqliteStoreReadOnly, ANewerSchemaIsRefused) {
  TempDir dir;
  make_store(dir / "s.db");
  {
    SQLite::Database raw((dir / "s.db").string(), SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA user_version = 99");
  }
  try {
    SqliteEventStore store(dir / "s.db", read_only());
    ADD_FAILURE() << "opened schema 99";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace annals
