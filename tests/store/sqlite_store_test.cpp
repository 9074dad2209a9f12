// The SQLite store beyond what sqlite_file_test.cpp covers: durability settings
// observed at the file-system boundary (a VFS that counts syncs), I/O faults,
// every way the sqlite3 shell could overwrite history, paths the file system
// rejects, cursors that must not pin the write-ahead log, listener contents,
// group-commit isolation with appends that are wrong on purpose, and processes
// that create, reopen or die while appending.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/event_id.hpp"
#include "process_helpers.hpp"
#include "sqlite_vfs_spy.hpp"
#include "store_fixtures.hpp"

namespace annals {
namespace {

using namespace std::chrono_literals;
using testing::AckLog;
using testing::read_lines;
using testing::spawn_child;
using testing::SqliteVfsSpy;
using testing::StartLine;
using testing::wait_for_exit;
using testing::fast;
using testing::file_bytes;
using testing::sqlite3_shell;
using testing::TempDir;

// ---- helpers ----------------------------------------------------------------

EventData event(int i, std::string id = {}) {
  EventData e;
  e.event_id = std::move(id);
  e.type = "test.Happened";
  e.payload = R"({"i":)" + std::to_string(i) + "}";
  return e;
}

std::set<std::string> directory_listing(const std::filesystem::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

std::vector<RecordedEvent> all_events(const EventStore& store) {
  std::vector<RecordedEvent> out;
  for (auto& e : store.read_all()) out.push_back(std::move(e));
  return out;
}

std::vector<std::int64_t> positions_of(const std::vector<RecordedEvent>& events) {
  std::vector<std::int64_t> out;
  for (const auto& e : events) out.push_back(e.position);
  return out;
}

std::vector<std::int64_t> iota(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = from; i <= to; ++i) out.push_back(i);
  return out;
}

// Every field of an event on one line, so a mismatch is one readable failure.
std::string describe(const RecordedEvent& e) {
  return "#" + std::to_string(e.position) + " " + e.stream_id + "@" + std::to_string(e.version) +
         " id=" + e.event_id + " type=" + e.type + "/" + std::to_string(e.schema_version) +
         " payload=" + e.payload + " metadata=" + e.metadata +
         " at=" + std::to_string(to_micros(e.recorded_at)) + " hash=" + to_hex(e.hash);
}

// Dense positions from 1, versions dense from 1 in every stream, head and
// hash chain in agreement. Returns every stored event id.
std::set<std::string> expect_consistent(const EventStore& store) {
  std::set<std::string> ids;
  std::map<std::string, std::int64_t> last_version;
  std::int64_t expected_position = 1;
  for (const auto& e : store.read_all()) {
    EXPECT_EQ(e.position, expected_position) << "positions are not dense";
    expected_position = e.position + 1;
    EXPECT_EQ(e.version, ++last_version[e.stream_id]) << e.stream_id;
    EXPECT_TRUE(ids.insert(e.event_id).second) << "event id twice: " << e.event_id;
  }
  EXPECT_EQ(store.head_position(), expected_position - 1);
  for (const auto& [stream, version] : last_version) {
    EXPECT_EQ(store.stream_version(stream), version) << stream;
  }
  const auto check = store.verify();
  EXPECT_TRUE(check.ok) << "at " << check.first_bad_position << ": " << check.reason;
  return ids;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::filesystem::path db() const { return dir_ / "store.db"; }
  TempDir dir_;
};

// ---- append-only, whoever connects --------------------------------------------

using SqliteStoreAppendOnly = SqliteStoreTest;

// The triggers stop UPDATE and DELETE, but INSERT OR REPLACE deletes the
// conflicting row without firing DELETE triggers (SQLite fires them for
// REPLACE only with recursive_triggers on), so history could be rewritten
// through the shell without dropping anything.
TEST_F(SqliteStoreAppendOnly, ReplaceAndUpsertCannotOverwriteStoredEventsThroughTheShell) {
  {
    SqliteEventStore store(db(), fast());
    for (int i = 0; i < 5; ++i) store.append("s-1", ExpectedVersion::any(), {event(i)});
  }
  const auto before = all_events(SqliteEventStore(db(), fast()));
  const std::string copy_row =
      "SELECT position, stream_id, version, event_id, type, schema_version, "
      "'{\"forged\":true}', metadata, recorded_at, hash FROM events ";
  for (const std::string& sql : std::vector<std::string>{
           "INSERT OR REPLACE INTO events " + copy_row + "WHERE position = 2;",
           "REPLACE INTO events " + copy_row + "WHERE position = 3;",
           // Same event id at a new position: REPLACE would delete row 4.
           "INSERT OR REPLACE INTO events SELECT 100, stream_id, 100, event_id, type, "
           "schema_version, payload, metadata, recorded_at, hash FROM events WHERE position = 4;",
           "INSERT INTO events " + copy_row +
               "WHERE position = 5 ON CONFLICT(position) DO UPDATE SET payload = excluded.payload;",
       }) {
    const auto [status, output] = sqlite3_shell(db(), sql);
    EXPECT_NE(status, 0) << sql << "\n" << output;
    EXPECT_NE(output.find("append-only"), std::string::npos) << sql << "\n" << output;
  }
  SqliteEventStore store(db(), fast());
  const auto after = all_events(store);
  ASSERT_EQ(after.size(), before.size()) << "rows were added or removed";
  for (std::size_t i = 0; i < after.size(); ++i) EXPECT_EQ(describe(after[i]), describe(before[i]));
  const auto check = store.verify();
  EXPECT_TRUE(check.ok) << "at " << check.first_bad_position << ": " << check.reason;
}

// A store written by a build of schema version 1 had no INSERT trigger: opening
// it migrates it, and REPLACE is refused from then on.
TEST_F(SqliteStoreAppendOnly, AVersion1StoreIsMigratedAndGainsTheReplaceGuard) {
  {
    SqliteEventStore store(db(), fast());
    for (int i = 0; i < 3; ++i) store.append("s-1", ExpectedVersion::any(), {event(i)});
  }
  {
    SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);
    raw.exec(
        "DROP TRIGGER events_append_only_insert; DROP TABLE events_high_water; "
        "PRAGMA user_version = 1");
  }
  {
    SqliteEventStore store(db(), fast());
    store.append("s-1", ExpectedVersion::exactly(3), {event(3)});
  }
  SQLite::Database raw(db().string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("PRAGMA user_version").getInt(), SqliteEventStore::kSchemaVersion);
  const auto [status, output] = sqlite3_shell(
      db(), "REPLACE INTO events SELECT position, stream_id, version, event_id, type, "
            "schema_version, '{}', metadata, recorded_at, hash FROM events WHERE position = 1;");
  EXPECT_NE(status, 0) << output;
  EXPECT_NE(output.find("append-only"), std::string::npos) << output;
  EXPECT_TRUE(SqliteEventStore(db(), fast()).verify().ok);
}

// ---- durability, seen by the file system -------------------------------------

using SqliteStoreDurability = SqliteStoreTest;

TEST_F(SqliteStoreDurability, ByDefaultEveryAppendHasSyncedTheLogBeforeItReturns) {
  SqliteVfsSpy spy("annals-spy-full");
  SqliteStoreOptions options;  // defaults: Synchronous::full
  options.vfs = spy.name();
  SqliteEventStore store(db(), options);
  for (int i = 0; i < 10; ++i) {
    const int syncs = spy.wal_syncs();
    store.append("s-1", ExpectedVersion::any(), {event(i)});
    EXPECT_GT(spy.wal_syncs(), syncs) << "append " << i << " returned before an fsync of the log";
  }
  SQLite::Database raw(db().string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("PRAGMA journal_mode").getString(), "wal");
  EXPECT_EQ(raw.execAndGet("SELECT count(*) FROM events").getInt(), 10);
}

TEST_F(SqliteStoreDurability, SynchronousNormalCommitsWithoutSyncingEachAppend) {
  SqliteVfsSpy spy("annals-spy-normal");
  SqliteStoreOptions options = fast();
  options.vfs = spy.name();
  SqliteEventStore store(db(), options);
  for (int i = 0; i < 20; ++i) store.append("s-1", ExpectedVersion::any(), {event(i)});
  EXPECT_LT(spy.wal_syncs(), 5) << "NORMAL should sync the log at checkpoints only";
  EXPECT_EQ(store.head_position(), 20);
  expect_consistent(store);
}

TEST_F(SqliteStoreDurability, ConcurrentAppendsShareCommitsAndSyncs) {
  constexpr int kThreads = 8, kEach = 50;
  SqliteVfsSpy spy("annals-spy-group");
  SqliteStoreOptions options;  // FULL: each commit costs an fsync, so groups form
  options.vfs = spy.name();
  SqliteEventStore store(db(), options);
  std::atomic<int> batches{0};
  auto handle = store.add_commit_listener([&](std::span<const RecordedEvent>) { ++batches; });
  spy.reset_counts();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        store.append("s-" + std::to_string(t), ExpectedVersion::exactly(i), {event(i)});
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store.head_position(), kThreads * kEach);
  EXPECT_LT(batches.load(), kThreads * kEach) << "no two appends ever shared a commit";
  EXPECT_LT(spy.wal_syncs(), kThreads * kEach) << "no two appends ever shared an fsync";
  expect_consistent(store);
}

// ---- I/O faults ---------------------------------------------------------------

using SqliteStoreFaults = SqliteStoreTest;

TEST_F(SqliteStoreFaults, AFailedLogWriteIsAStorageErrorAndTheStoreCarriesOn) {
  SqliteVfsSpy spy("annals-spy-faults");
  {
    SqliteStoreOptions options;
    options.vfs = spy.name();
    SqliteEventStore store(db(), options);
    std::vector<std::int64_t> delivered;
    auto handle = store.add_commit_listener([&](std::span<const RecordedEvent> batch) {
      for (const auto& e : batch) delivered.push_back(e.position);
    });
    for (int i = 0; i < 3; ++i) store.append("s-1", ExpectedVersion::any(), {event(i)});

    spy.fail_wal_writes(true);
    const std::string lost_id = new_event_id();
    try {
      store.append("s-1", ExpectedVersion::exactly(3), {event(3, lost_id)});
      ADD_FAILURE() << "append succeeded although the log could not be written";
    } catch (const StorageError& e) {
      EXPECT_NE(e.code(), 0) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a StorageError: " << e.what();
    }
    spy.fail_wal_writes(false);

    EXPECT_EQ(store.head_position(), 3);
    EXPECT_EQ(store.stream_version("s-1"), 3);
    EXPECT_EQ(store.append("s-1", ExpectedVersion::exactly(3), {event(4)}),
              (AppendResult{4, 4, 4}));
    EXPECT_EQ(delivered, iota(1, 4)) << "the failed append was delivered, or a later one was not";
    const auto ids = expect_consistent(store);
    EXPECT_FALSE(ids.contains(lost_id));
  }
  SqliteEventStore reopened(db(), fast());
  EXPECT_EQ(reopened.head_position(), 4);
  expect_consistent(reopened);
}

// ---- files the store refuses or creates -----------------------------------------

using SqliteStoreFiles = SqliteStoreTest;

// The log holds the newest events until a checkpoint: it must be as private
// as the store, even for a process whose umask would allow more.
TEST_F(SqliteStoreFiles, TheLogAndSharedMemoryFilesArePrivateToo) {
  struct UmaskGuard {
    mode_t old = ::umask(0);
    ~UmaskGuard() { ::umask(old); }
  } permissive;
  SqliteEventStore store(db());
  store.append("s-1", ExpectedVersion::any(), {event(1)});
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const auto path = db().string() + suffix;
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << path;
  }
}

// std::filesystem reports these paths by throwing its own filesystem_error;
// the store promises a StorageError naming the path for every file it cannot open.
TEST_F(SqliteStoreFiles, PathsTheFileSystemRejectsAreStorageErrorsNamingThePath) {
  const auto loop = dir_ / "loop.db";
  std::filesystem::create_symlink("loop.db", loop);
  for (const auto& path : {dir_ / std::string(300, 'x') / "store.db",  // ENAMETOOLONG
                           loop}) {                                    // ELOOP
    try {
      SqliteEventStore store(path);
      ADD_FAILURE() << "opened " << path;
    } catch (const StorageError& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a StorageError: " << e.what();
    }
  }
  EXPECT_EQ(directory_listing(dir_.path()), std::set<std::string>{"loop.db"});
}

TEST_F(SqliteStoreFiles, ADirectoryIsRefusedWithAStorageErrorNamingIt) {
  const auto path = dir_ / "a-directory";
  std::filesystem::create_directory(path);
  try {
    SqliteEventStore store(path);
    ADD_FAILURE() << "opened " << path;
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a StorageError: " << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_empty(path));
}

// Opening must fail with a StorageError naming the file, and leave the file as
// it was, with no journal or log beside it.
void expect_refused_untouched(const std::filesystem::path& path, const std::string& needle) {
  const std::string bytes = file_bytes(path);
  const auto listing = directory_listing(path.parent_path());
  try {
    SqliteEventStore store(path);
    ADD_FAILURE() << "opened " << path << " as a store";
  } catch (const StorageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << message;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a StorageError: " << e.what();
  }
  EXPECT_EQ(file_bytes(path), bytes) << "the file was modified";
  EXPECT_EQ(directory_listing(path.parent_path()), listing) << "files were left beside it";
}

TEST_F(SqliteStoreFiles, AForeignDatabaseInWalModeIsRefusedAndLeftUntouched) {
  const auto path = dir_ / "app.db";
  {
    SQLite::Database other(path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    other.exec("PRAGMA journal_mode = WAL");
    other.exec("CREATE TABLE orders(id INTEGER PRIMARY KEY, total INTEGER)");
    other.exec("INSERT INTO orders(total) VALUES (100), (250)");
  }
  expect_refused_untouched(path, "not an Annals store");
}

TEST_F(SqliteStoreFiles, AnEmptyDatabaseClaimedByAnotherApplicationIsRefusedAndLeftUntouched) {
  const auto path = dir_ / "claimed.db";
  {
    SQLite::Database other(path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    other.exec("PRAGMA application_id = 42");
  }
  ASSERT_GT(std::filesystem::file_size(path), 0u);
  expect_refused_untouched(path, "not an Annals store");
}

TEST_F(SqliteStoreFiles, ATextFileIsRefusedAndNothingIsCreatedBesideIt) {
  const auto path = dir_ / "readme.txt";
  std::ofstream(path) << "SQLite format 2\n" << std::string(4096, '.');
  expect_refused_untouched(path, "not an SQLite database");
}

TEST_F(SqliteStoreFiles, ANewerStoreIsRefusedNamingItsSchemaVersionAndLeftUntouched) {
  {
    SqliteEventStore store(db(), fast());
    store.append("s-1", ExpectedVersion::any(), {event(1)});
  }
  {
    SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA user_version = 99");
  }
  expect_refused_untouched(db(), "newer");
  try {
    SqliteEventStore store(db());
    ADD_FAILURE() << "opened a store of schema version 99";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("99"), std::string::npos) << e.what();
  }
}

// ---- cursors --------------------------------------------------------------------

using SqliteStoreCursor = SqliteStoreTest;

TEST_F(SqliteStoreCursor, PagesOfThreeReturnEveryEventInOrderForEveryKindOfRead) {
  SqliteStoreOptions options = fast();
  options.read_page_size = 3;
  SqliteEventStore store(db(), options);
  // 10 events in order-1 interleaved with 5 in invoice-1: positions 1..15.
  for (int i = 0; i < 10; ++i) {
    store.append("order-1", ExpectedVersion::exactly(i), {event(i)});
    if (i % 2 == 1) store.append("invoice-1", ExpectedVersion::any(), {event(100 + i)});
  }
  const auto all = all_events(store);
  EXPECT_EQ(positions_of(all), iota(1, 15));

  std::vector<std::int64_t> versions;
  for (const auto& e : store.read_stream("order-1")) versions.push_back(e.version);
  EXPECT_EQ(versions, iota(1, 10));

  versions.clear();
  for (const auto& e : store.read_stream("order-1", kStreamEnd, Direction::backward)) {
    versions.push_back(e.version);
  }
  EXPECT_EQ(versions, (std::vector<std::int64_t>{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}));

  versions.clear();
  for (const auto& e : store.read_stream("order-1", 4, Direction::forward, 5)) {
    versions.push_back(e.version);
  }
  EXPECT_EQ(versions, iota(4, 8));

  std::vector<std::int64_t> positions;
  for (const auto& e : store.read_all(1, EventFilter::for_category("order"))) {
    EXPECT_EQ(e.stream_id, "order-1");
    positions.push_back(e.position);
  }
  EXPECT_EQ(positions, (std::vector<std::int64_t>{1, 2, 4, 5, 7, 8, 10, 11, 13, 14}));
}

// The WAL checkpoint that truncates the log must wait for every reader that
// still holds an old snapshot; the control shows that a real open read
// transaction does block it, so an idle cursor demonstrably holds none.
TEST_F(SqliteStoreCursor, AnOpenCursorHoldsNoReadTransactionBetweenPages) {
  SqliteStoreOptions options = fast();
  options.read_page_size = 3;
  SqliteEventStore store(db(), options);
  for (int i = 0; i < 10; ++i) store.append("s-1", ExpectedVersion::any(), {event(i)});

  auto checkpoint_truncate = [&] {
    SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);  // busy timeout 0
    SQLite::Statement q(raw, "PRAGMA wal_checkpoint(TRUNCATE)");
    EXPECT_TRUE(q.executeStep());
    return q.getColumn(0).getInt();  // 1 when blocked by a reader or writer
  };

  {  // control: a reader in an open transaction blocks the truncation
    SQLite::Database reader(db().string(), SQLite::OPEN_READONLY);
    reader.exec("BEGIN");
    EXPECT_EQ(reader.execAndGet("SELECT count(*) FROM events").getInt(), 10);
    store.append("s-1", ExpectedVersion::any(), {event(10)});
    EXPECT_EQ(checkpoint_truncate(), 1);
    reader.exec("COMMIT");
  }

  auto cursor = store.read_all();
  auto first = cursor.next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->position, 1);
  // Mid-iteration: an append from another thread completes...
  auto append = std::async(
      std::launch::async, [&] { return store.append("s-2", ExpectedVersion::any(), {event(99)}); });
  EXPECT_EQ(append.wait_for(10s), std::future_status::ready) << "the cursor blocked an append";
  // ...and the log can be checkpointed and truncated under the cursor.
  EXPECT_EQ(checkpoint_truncate(), 0) << "the cursor pins a snapshot between pages";
  EXPECT_EQ(std::filesystem::file_size(db().string() + "-wal"), 0u);

  std::vector<std::int64_t> positions{first->position};
  while (auto e = cursor.next()) positions.push_back(e->position);
  EXPECT_EQ(append.get(), (AppendResult{1, 12, 12}));
  EXPECT_EQ(positions, iota(1, 12));
}

// A page's events are overwritten in place by the next page (Cursor::Source::
// refill): every event must still carry only its own fields, whether the one
// before it in that slot was longer, shorter or moved from by the caller.
TEST_F(SqliteStoreCursor, PagesThatReuseTheirBuffersGiveEveryEventOnlyItsOwnFields) {
  SqliteStoreOptions options = fast();
  options.read_page_size = 2;
  SqliteEventStore store(db(), options);
  std::vector<EventData> appended;
  for (int i = 0; i < 9; ++i) {
    EventData e;
    e.type = i % 3 == 0 ? "test.AVeryLongTypeNameThatNeedsTheHeap" : "t.S";
    e.schema_version = 1 + i % 4;
    // Long and short texts alternate, so a slot holds a longer one before a shorter one.
    e.payload = i % 2 == 0 ? R"({"text":")" + std::string(200 + i, 'x') + R"("})"
                           : R"({"i":)" + std::to_string(i) + "}";
    e.metadata = i % 3 == 1 ? "{}" : R"({"who":")" + std::string(50 + i, 'm') + R"("})";
    appended.push_back(e);
    store.append(i % 2 == 0 ? "s-1" : "a-much-longer-stream-id-2", ExpectedVersion::any(), {e});
  }

  const auto check = [&](const RecordedEvent& e, const EventHash& previous) {
    ASSERT_GE(e.position, 1);
    ASSERT_LE(e.position, 9);
    const EventData& want = appended[static_cast<std::size_t>(e.position - 1)];
    EXPECT_EQ(e.stream_id, e.position % 2 == 1 ? "s-1" : "a-much-longer-stream-id-2");
    EXPECT_EQ(e.type, want.type) << describe(e);
    EXPECT_EQ(e.schema_version, want.schema_version) << describe(e);
    EXPECT_EQ(e.payload, want.payload) << describe(e);
    EXPECT_EQ(e.metadata, want.metadata) << describe(e);
    EXPECT_EQ(e.event_id.size(), 36u) << describe(e);
    EXPECT_EQ(e.hash, chain_hash(previous, e)) << describe(e);
  };

  // read_all, moving every event out of the page as the caller may.
  std::vector<RecordedEvent> moved;
  for (RecordedEvent& e : store.read_all()) moved.push_back(std::move(e));
  ASSERT_EQ(positions_of(moved), iota(1, 9));
  EventHash previous{};
  std::set<std::string> ids;
  for (const RecordedEvent& e : moved) {
    check(e, previous);
    previous = e.hash;
    ids.insert(e.event_id);
  }
  EXPECT_EQ(ids.size(), 9u);

  // read_all by reference and read_stream backward: slots reused without moves.
  std::size_t seen = 0;
  for (const RecordedEvent& e : store.read_all()) {
    EXPECT_EQ(describe(e), describe(moved[seen++]));
  }
  EXPECT_EQ(seen, 9u);
  std::vector<std::int64_t> versions;
  for (const RecordedEvent& e : store.read_stream("s-1", kStreamEnd, Direction::backward)) {
    EXPECT_EQ(describe(e), describe(moved[static_cast<std::size_t>(e.position - 1)]));
    versions.push_back(e.version);
  }
  EXPECT_EQ(versions, (std::vector<std::int64_t>{5, 4, 3, 2, 1}));

  // read_stream_linked: each predecessor's hash is the stored one at position - 1.
  std::int64_t linked = 0;
  for (const LinkedEvent& l : store.read_stream_linked("a-much-longer-stream-id-2")) {
    const RecordedEvent& want = moved[static_cast<std::size_t>(l.event.position - 1)];
    EXPECT_EQ(describe(l.event), describe(want));
    ASSERT_TRUE(l.previous_hash.has_value());
    EXPECT_EQ(*l.previous_hash, moved[static_cast<std::size_t>(l.event.position - 2)].hash);
    ++linked;
  }
  EXPECT_EQ(linked, 4);
}

// A cursor whose source fails part-way through refilling a page must not hand
// out what was left of the previous page when the caller carries on.
TEST(Cursor, AfterASourceThrowsMidPageNoItemOfThePreviousPageIsHandedOutAgain) {
  // Pages {10, 11}, then a failure after overwriting one slot, then {30, 31}.
  class Source final : public Cursor<int>::Source {
   public:
    bool fetch(std::vector<int>& out, std::size_t max) override {
      out.clear();
      return refill(out, max);
    }
    bool refill(std::vector<int>& page, std::size_t max) override {
      ++calls_;
      if (calls_ == 2) {
        if (!page.empty()) page[0] = -1;
        throw std::runtime_error("page 2 failed");
      }
      page.clear();
      for (std::size_t i = 0; i < max; ++i) page.push_back(calls_ * 10 + static_cast<int>(i));
      return calls_ < 3;
    }

   private:
    int calls_ = 0;
  };
  Cursor<int> cursor(std::make_unique<Source>(), 2, kNoLimit);
  EXPECT_EQ(cursor.next(), 10);
  EXPECT_EQ(cursor.next(), 11);
  EXPECT_THROW(cursor.next(), std::runtime_error);
  EXPECT_EQ(cursor.next(), 30);
  EXPECT_EQ(cursor.next(), 31);
  EXPECT_EQ(cursor.next(), std::nullopt);
}

// ---- commit listeners -------------------------------------------------------------

using SqliteStoreListeners = SqliteStoreTest;

TEST_F(SqliteStoreListeners, ABatchArrivesWithEveryStoredFieldAfterOtherConnectionsCanSeeIt) {
  SqliteEventStore store(db(), fast());
  std::vector<std::vector<RecordedEvent>> batches;
  std::vector<int> visible_elsewhere;
  auto handle = store.add_commit_listener([&](std::span<const RecordedEvent> batch) {
    batches.emplace_back(batch.begin(), batch.end());
    // A connection of its own, as another process would have.
    SQLite::Database raw(db().string(), SQLite::OPEN_READONLY);
    SQLite::Statement q(raw, "SELECT count(*) FROM events WHERE position BETWEEN ?1 AND ?2");
    q.bind(1, static_cast<std::int64_t>(batch.front().position));
    q.bind(2, static_cast<std::int64_t>(batch.back().position));
    q.executeStep();
    visible_elsewhere.push_back(q.getColumn(0).getInt());
  });
  EventData rich = event(1);
  rich.schema_version = 3;
  rich.metadata = R"({"actor":"ada","correlation_id":"c-1"})";
  store.append("a-1", ExpectedVersion::no_stream(), {rich, event(2)});
  store.append(std::vector<StreamAppend>{{"b-1", ExpectedVersion::no_stream(), {event(3)}},
                                         {"a-1", ExpectedVersion::exactly(2), {event(4)}}});
  EXPECT_THROW(store.append("a-1", ExpectedVersion::exactly(0), {event(5)}), WrongExpectedVersion);

  ASSERT_EQ(batches.size(), 2u) << "one batch per committed append, none for the failed one";
  EXPECT_EQ(visible_elsewhere, (std::vector<int>{2, 2}));
  std::vector<RecordedEvent> delivered;
  for (const auto& b : batches) delivered.insert(delivered.end(), b.begin(), b.end());
  const auto stored = all_events(store);
  ASSERT_EQ(delivered.size(), stored.size());
  for (std::size_t i = 0; i < stored.size(); ++i)
    EXPECT_EQ(describe(delivered[i]), describe(stored[i]));
  EXPECT_EQ(delivered[0].schema_version, 3);
  EXPECT_EQ(delivered[0].metadata, rich.metadata);
  EXPECT_EQ(delivered[2].stream_id, "b-1");  // multi-stream: in the order of the batch
  EXPECT_EQ(delivered[3].stream_id, "a-1");
}

TEST_F(SqliteStoreListeners, ResettingAHandleWhileThreadsAppendStopsDeliveryWhenResetReturns) {
  SqliteEventStore store(db(), fast());
  std::atomic<int> calls{0};
  std::atomic<bool> after_reset{false};
  std::atomic<int> calls_after_reset{0};
  auto handle = store.add_commit_listener([&](std::span<const RecordedEvent>) {
    ++calls;
    if (after_reset) ++calls_after_reset;
    std::this_thread::sleep_for(100us);  // widen the window a reset can race with
  });
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        store.append("s-" + std::to_string(t), ExpectedVersion::any(), {event(i)});
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  auto wait_until = [&](auto done) {
    while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    return done();
  };
  EXPECT_TRUE(wait_until([&] { return calls >= 200; }));
  handle.reset();
  after_reset = true;
  const auto head_at_reset = store.head_position();
  EXPECT_TRUE(wait_until([&] { return store.head_position() >= head_at_reset + 200; }));
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(calls_after_reset.load(), 0);
  expect_consistent(store);
}

// ---- group commit ---------------------------------------------------------------

using SqliteStoreGroupCommit = SqliteStoreTest;

// How one round of GroupRun went, as its test judges it.
enum class Outcome { committed, refused, unexpected };

// Eight threads, each owning the stream "own-<t>", make `rounds` appends each
// through `round(t, i, own, version, id)`, which appends (or fails to) and
// says how it went; `version` is own's version so far and `id` a fresh id
// the round may use. FULL synchronous: commits are slow, so groups form.
struct GroupRun {
  static constexpr int kThreads = 8;
  std::set<std::string> committed_ids, refused_ids;
  int unexpected = 0;
  int mixed_batches = 0;  // commits holding more than two streams

  template <class Round>
  GroupRun(SqliteEventStore& store, int rounds, Round round) {
    std::atomic<int> mixed{0};
    auto handle = store.add_commit_listener([&](std::span<const RecordedEvent> batch) {
      std::set<std::string> streams;
      for (const auto& e : batch) streams.insert(e.stream_id);
      if (streams.size() > 2) ++mixed;
    });
    std::mutex mu;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const std::string own = "own-" + std::to_string(t);
        std::int64_t version = 0;
        for (int i = 0; i < rounds; ++i) {
          const std::string id = new_event_id();
          const Outcome outcome = round(t, i, own, version, id);
          if (outcome == Outcome::committed) ++version;
          std::lock_guard lock(mu);
          (outcome == Outcome::committed ? committed_ids : refused_ids).insert(id);
          if (outcome == Outcome::unexpected) ++unexpected;
        }
      });
    }
    for (auto& th : threads) th.join();
    mixed_batches = mixed.load();
  }
};

// Every thread owns a stream. Some of its appends are wrong on purpose: an
// impossible exact version, or a multi-stream append whose second stream is
// wrong. Exactly those fail, with the true version; everything else commits,
// although it shared transactions with the failures.
TEST_F(SqliteStoreGroupCommit, AppendsWrongOnPurposeFailAloneAndTheRestOfTheirGroupCommits) {
  constexpr int kRounds = 60;
  SqliteEventStore store(db());
  const GroupRun run(store, kRounds, [&](int t, int i, const std::string& own,
                                         std::int64_t version, const std::string& id) {
    const std::string side = "side-" + std::to_string(t);
    try {
      if (i % 3 == 0) {
        store.append(own, ExpectedVersion::exactly(version), {event(i, id)});
        return Outcome::committed;
      }
      if (i % 3 == 1) {
        store.append(own, ExpectedVersion::exactly(version + 1000), {event(i, id)});
      } else {
        store.append(std::vector<StreamAppend>{
            {own, ExpectedVersion::exactly(version), {event(i, id)}},
            {side, ExpectedVersion::stream_exists(), {event(i)}}});
      }
    } catch (const WrongExpectedVersion& e) {
      const bool as_meant = i % 3 == 1
                                ? e.stream_id() == own && e.actual_version() == version
                                : e.stream_id() == side && e.actual_version() == 0;
      return as_meant ? Outcome::refused : Outcome::unexpected;
    } catch (const std::exception&) {
    }
    return Outcome::unexpected;
  });
  EXPECT_EQ(run.unexpected, 0);
  const auto stored = expect_consistent(store);
  EXPECT_EQ(stored, run.committed_ids);
  for (const auto& id : run.refused_ids) EXPECT_FALSE(stored.contains(id)) << id;
  for (int t = 0; t < GroupRun::kThreads; ++t) {
    EXPECT_EQ(store.stream_version("own-" + std::to_string(t)), kRounds / 3);
    EXPECT_EQ(store.stream_version("side-" + std::to_string(t)), 0);
  }
  EXPECT_GT(run.mixed_batches, 0) << "no group ever formed: the test proved nothing";
}

// A single event is written without a savepoint of its own (it cannot fail
// after writing), a longer append inside one. Both kinds fail here on an id
// stored in another stream, the longer one only at its second row, after its
// first row is written: each must fail alone and leave no row behind, while
// the appends sharing its transaction commit.
TEST_F(SqliteStoreGroupCommit, AppendsFailingOnAStoredIdLeaveNoRowWhetherOrNotTheyWroteOneFirst) {
  constexpr int kRounds = 45;
  SqliteEventStore store(db());
  const std::string taken = new_event_id();
  store.append("holder", ExpectedVersion::no_stream(), {event(0, taken)});
  const GroupRun run(store, kRounds, [&](int, int i, const std::string& own,
                                         std::int64_t version, const std::string& id) {
    try {
      if (i % 3 == 0) {
        store.append(own, ExpectedVersion::exactly(version), {event(i, id)});
        return Outcome::committed;
      }
      if (i % 3 == 1) {
        store.append(own, ExpectedVersion::exactly(version), {event(i, taken)});
      } else {
        store.append(own, ExpectedVersion::exactly(version), {event(i, id), event(i, taken)});
      }
    } catch (const DuplicateEventId& e) {
      return e.event_id() == taken ? Outcome::refused : Outcome::unexpected;
    } catch (const std::exception&) {
    }
    return Outcome::unexpected;
  });
  EXPECT_EQ(run.unexpected, 0);
  const auto stored = expect_consistent(store);
  auto expected = run.committed_ids;
  expected.insert(taken);
  EXPECT_EQ(stored, expected);
  for (const auto& id : run.refused_ids) EXPECT_FALSE(stored.contains(id)) << id;
  for (int t = 0; t < GroupRun::kThreads; ++t) {
    EXPECT_EQ(store.stream_version("own-" + std::to_string(t)), kRounds / 3);
  }
  EXPECT_GT(run.mixed_batches, 0) << "no group ever formed: the test proved nothing";
}

TEST_F(SqliteStoreGroupCommit, ConcurrentRetriesOfOneAppendAllGetTheFirstResult) {
  constexpr int kThreads = 6, kRounds = 20;
  SqliteEventStore store(db());
  for (int round = 0; round < kRounds; ++round) {
    const std::string stream = "order-" + std::to_string(round);
    const std::vector<EventData> batch{event(1, new_event_id()), event(2, new_event_id())};
    std::barrier start(kThreads);
    std::vector<std::future<AppendResult>> results;
    for (int t = 0; t < kThreads; ++t) {
      results.push_back(std::async(std::launch::async, [&] {
        start.arrive_and_wait();
        return store.append(stream, ExpectedVersion::no_stream(), batch);
      }));
    }
    const std::int64_t first = 2 * round + 1;
    for (auto& r : results) EXPECT_EQ(r.get(), (AppendResult{2, first, first + 1})) << stream;
    EXPECT_EQ(store.stream_version(stream), 2);
  }
  EXPECT_EQ(store.head_position(), 2 * kRounds);
  expect_consistent(store);
}

// ---- processes --------------------------------------------------------------------


using SqliteStoreProcesses = SqliteStoreTest;

TEST_F(SqliteStoreProcesses, ProcessesCreatingTheSameNewFileAtOnceAllSucceed) {
  constexpr int kProcesses = 4, kEach = 10, kAttempts = 25;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const auto path = dir_ / ("new-" + std::to_string(attempt) + ".db");
    StartLine start;
    std::vector<pid_t> children;
    for (int p = 0; p < kProcesses; ++p) {
      children.push_back(spawn_child([&, p] {
        start.wait();
        SqliteEventStore store(path, fast());
        for (int i = 0; i < kEach; ++i) {
          store.append("s-" + std::to_string(i % 3), ExpectedVersion::any(), {event(p * 1000 + i)});
        }
        return 0;
      }));
    }
    start.release();
    int failed = 0;
    for (pid_t child : children) failed += wait_for_exit(child) != 0 ? 1 : 0;
    ASSERT_EQ(failed, 0) << "in attempt " << attempt << " (see the children's errors above)";
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    SqliteEventStore store(path, fast());
    EXPECT_EQ(store.head_position(), kProcesses * kEach);
    expect_consistent(store);
  }
}

// Each open and close of a store is a WAL recovery or a checkpoint that others
// may run into; none of that may surface as SQLITE_BUSY.
TEST_F(SqliteStoreProcesses, ProcessesReopeningTheStoreForEveryAppendNeverSeeBusy) {
  constexpr int kProcesses = 3, kEach = 150;
  { SqliteEventStore create(db(), fast()); }
  StartLine start;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(spawn_child([&, p] {
      start.wait();
      AckLog acks(dir_ / ("acks-" + std::to_string(p)));
      for (int i = 0; i < kEach; ++i) {
        SqliteEventStore store(db(), fast());
        for (;;) {
          const std::string id = new_event_id();
          const auto v = store.stream_version("contended-1");
          try {
            store.append("contended-1", ExpectedVersion::exactly(v), {event(i, id)});
            acks.ack({id});
            break;
          } catch (const WrongExpectedVersion&) {
          }
        }
      }
      return 0;
    }));
  }
  start.release();
  for (pid_t child : children) EXPECT_EQ(wait_for_exit(child), 0);
  SqliteEventStore store(db(), fast());
  const auto stored = expect_consistent(store);
  EXPECT_EQ(store.stream_version("contended-1"), kProcesses * kEach);
  for (int p = 0; p < kProcesses; ++p) {
    const auto acks = read_lines(dir_ / ("acks-" + std::to_string(p)));
    EXPECT_EQ(acks.size(), static_cast<std::size_t>(kEach));
    for (const auto& id : acks) EXPECT_TRUE(stored.contains(id)) << id;
  }
}

// A writer killed at an arbitrary point loses none of its acknowledged
// appends, leaves no partial append, and does not stop another process that
// keeps appending before and after the kill. Three kills, at different points.
TEST_F(SqliteStoreProcesses, AWriterKilledMidAppendLosesNothingAcknowledgedAndBlocksNoOne) {
  { SqliteEventStore create(db()); }
  std::int64_t survivor_version = 0;
  for (int round = 0; round < 3; ++round) {
    const std::string tag = std::to_string(round);
    const auto victim_acks = dir_ / ("victim-acks-" + tag);
    const auto survivor_acks = dir_ / ("survivor-acks-" + tag);
    const auto killed = dir_ / ("killed-" + tag);
    const pid_t victim = spawn_child([&] {
      SqliteEventStore store(db());  // FULL, as in production
      AckLog acks(victim_acks);
      const auto deadline = std::chrono::steady_clock::now() + 30s;
      for (int i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
        const std::string a = new_event_id(), b = new_event_id();
        store.append("victim" + tag + "-" + std::to_string(i % 4), ExpectedVersion::any(),
                     {event(i, a), event(i, b)});
        acks.ack({a, b});
      }
      return 4;  // never killed
    });
    const pid_t survivor = spawn_child([&] {
      SqliteEventStore store(db(), fast());
      AckLog acks(survivor_acks);
      const auto deadline = std::chrono::steady_clock::now() + 20s;
      int after_kill = 0;
      for (std::int64_t v = survivor_version; after_kill < 100; ++v) {
        if (std::chrono::steady_clock::now() > deadline) return 3;
        if (std::filesystem::exists(killed)) ++after_kill;
        const std::string id = new_event_id();
        store.append("survivor-1", ExpectedVersion::exactly(v), {event(static_cast<int>(v), id)});
        acks.ack({id});
      }
      return 0;
    });
    const auto enough = static_cast<std::size_t>(50 + 150 * round);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (read_lines(victim_acks).size() < enough && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    EXPECT_EQ(wait_for_exit(victim), 100 + SIGKILL);
    std::ofstream(killed) << "now\n";
    EXPECT_EQ(wait_for_exit(survivor), 0) << "the survivor stalled or failed after the kill";

    SqliteEventStore store(db(), fast());
    const auto stored = expect_consistent(store);
    const auto acked = read_lines(victim_acks);
    ASSERT_GE(acked.size(), enough);
    for (const auto& id : acked) EXPECT_TRUE(stored.contains(id)) << id;
    std::size_t victim_stored = 0;
    for (const auto& e : store.read_all(1, EventFilter::for_category("victim" + tag))) {
      (void)e;
      ++victim_stored;
    }
    // Acknowledgements are written a whole append at a time; at most the one
    // append in flight (2 events) committed without its ack; never half of one.
    EXPECT_GE(victim_stored, acked.size());
    EXPECT_LE(victim_stored, acked.size() + 2);
    EXPECT_EQ(victim_stored % 2, 0u) << "half an append was stored";
    const auto survivor_acked = read_lines(survivor_acks);
    for (const auto& id : survivor_acked) EXPECT_TRUE(stored.contains(id)) << id;
    survivor_version += static_cast<std::int64_t>(survivor_acked.size());
    EXPECT_EQ(store.stream_version("survivor-1"), survivor_version);
  }
}

}  // namespace
}  // namespace annals
