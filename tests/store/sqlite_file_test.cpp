// What only the SQLite store promises: a file that survives the process, a
// database that refuses UPDATE and DELETE whoever asks, a hash chain that
// finds tampering, safe use from many threads and many processes, and files
// that are not Annals stores left untouched.

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/event_id.hpp"
#include "store_fixtures.hpp"

namespace annals {
namespace {

using testing::fast;
using testing::file_bytes;
using testing::sqlite3_shell;
using testing::TempDir;

EventData event(int i, std::string type = "test.Happened") {
  EventData e;
  e.type = std::move(type);
  e.payload = R"({"i":)" + std::to_string(i) + "}";
  return e;
}

std::vector<RecordedEvent> all_events(const EventStore& store) {
  std::vector<RecordedEvent> out;
  for (auto& e : store.read_all()) out.push_back(std::move(e));
  return out;
}

// Dense positions from 1, no (stream, version) twice, versions dense per stream.
void expect_consistent(const EventStore& store) {
  std::map<std::string, std::int64_t> last_version;
  std::int64_t expected_position = 1;
  for (const auto& e : store.read_all()) {
    ASSERT_EQ(e.position, expected_position++);
    ASSERT_EQ(e.version, ++last_version[e.stream_id]) << e.stream_id;
  }
  EXPECT_EQ(store.head_position(), expected_position - 1);
  const auto check = store.verify();
  EXPECT_TRUE(check.ok) << check.reason;
}

class SqliteStoreFile : public ::testing::Test {
 protected:
  std::filesystem::path db() const { return dir_ / "store.db"; }
  void fill(int streams, int events_each) {
    SqliteEventStore store(db(), fast());
    for (int s = 0; s < streams; ++s) {
      std::vector<EventData> batch;
      for (int i = 0; i < events_each; ++i) batch.push_back(event(i));
      store.append("s-" + std::to_string(s), ExpectedVersion::no_stream(), batch);
    }
  }
  TempDir dir_;
};

// ---- the file ---------------------------------------------------------------

TEST_F(SqliteStoreFile, ANewStoreFileIsPrivateAndUsesWriteAheadLogging) {
  { SqliteEventStore store(db()); }
  struct stat st {};
  ASSERT_EQ(::stat(db().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  SQLite::Database raw(db().string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("PRAGMA journal_mode").getString(), "wal");
  EXPECT_EQ(raw.execAndGet("PRAGMA application_id").getInt(), SqliteEventStore::kApplicationId);
  EXPECT_EQ(raw.execAndGet("PRAGMA user_version").getInt(), SqliteEventStore::kSchemaVersion);
}

TEST_F(SqliteStoreFile, ReopeningKeepsEveryEventByteForByteAndAppendingContinues) {
  std::vector<RecordedEvent> before;
  {
    SqliteEventStore store(db());
    store.append("a-1", ExpectedVersion::no_stream(), {event(1), event(2)});
    store.append("b-1", ExpectedVersion::no_stream(), {event(3)});
    store.append("a-1", ExpectedVersion::exactly(2), {event(4)});
    before = all_events(store);
  }
  SqliteEventStore reopened(db());
  const auto after = all_events(reopened);
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].position, before[i].position);
    EXPECT_EQ(after[i].stream_id, before[i].stream_id);
    EXPECT_EQ(after[i].version, before[i].version);
    EXPECT_EQ(after[i].event_id, before[i].event_id);
    EXPECT_EQ(after[i].type, before[i].type);
    EXPECT_EQ(after[i].payload, before[i].payload);
    EXPECT_EQ(after[i].metadata, before[i].metadata);
    EXPECT_EQ(after[i].recorded_at, before[i].recorded_at);
    EXPECT_EQ(after[i].hash, before[i].hash);
  }
  EXPECT_EQ(reopened.stream_version("a-1"), 3);
  EXPECT_EQ(reopened.append("b-1", ExpectedVersion::exactly(1), {event(5)}),
            (AppendResult{2, 5, 5}));
  expect_consistent(reopened);
}

TEST_F(SqliteStoreFile, MissingFileWithoutCreateIfMissingIsAnErrorAndCreatesNothing) {
  SqliteStoreOptions options;
  options.create_if_missing = false;
  EXPECT_THROW(SqliteEventStore(db(), options), StorageError);
  EXPECT_FALSE(std::filesystem::exists(db()));
  EXPECT_THROW(SqliteEventStore(dir_ / "no-such-dir" / "x.db"), StorageError);
}

// Opening must fail with a StorageError naming the file and what it is, and
// leave the file exactly as it was.
void expect_refused_untouched(const std::filesystem::path& path, const std::string& needle) {
  const std::string bytes = file_bytes(path);
  try {
    SqliteEventStore store(path);
    ADD_FAILURE() << "opened " << path << " as a store";
  } catch (const StorageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << message;
  }
  EXPECT_EQ(file_bytes(path), bytes) << "the file was modified";
}

TEST_F(SqliteStoreFile, ATextFileIsRefusedAndLeftUntouched) {
  const auto path = dir_ / "notes.txt";
  std::ofstream(path) << "These are my notes, not an event store.\n" << std::string(5000, 'x');
  expect_refused_untouched(path, "not an SQLite database");
}

TEST_F(SqliteStoreFile, AnUnrelatedSqliteDatabaseIsRefusedAndLeftUntouched) {
  const auto path = dir_ / "people.db";
  {
    SQLite::Database other(path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    other.exec("CREATE TABLE people(name TEXT); INSERT INTO people VALUES ('Ada'), ('Grace')");
  }
  expect_refused_untouched(path, "not an Annals store");
}

TEST_F(SqliteStoreFile, AStoreOfANewerSchemaIsRefusedAndLeftUntouched) {
  fill(2, 3);
  {
    SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA user_version = 99");
  }
  expect_refused_untouched(db(), "newer");
}

// ---- append-only and tamper evidence ----------------------------------------

TEST_F(SqliteStoreFile, UpdateAndDeleteFailThroughTheSqliteShell) {
  fill(2, 3);
  const auto before = all_events(SqliteEventStore(db(), fast()));
  for (const char* sql : {"UPDATE events SET payload = '{}' WHERE position = 2",
                          "DELETE FROM events WHERE position = 3", "DELETE FROM events"}) {
    const auto [status, output] = sqlite3_shell(db(), sql);
    EXPECT_NE(status, 0) << sql;
    EXPECT_NE(output.find("append-only"), std::string::npos) << sql << ": " << output;
  }
  SqliteEventStore store(db(), fast());
  const auto after = all_events(store);
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].payload, before[i].payload);
  EXPECT_TRUE(store.verify().ok);
}

class SqliteStoreTamper : public SqliteStoreFile {
 protected:
  // Fills 3 streams × 4 events (positions 1..12), then runs `sql` with the
  // append-only triggers dropped, as an attacker with file access could.
  VerifyResult tamper(const std::string& sql) {
    fill(3, 4);
    {
      SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);
      raw.exec("DROP TRIGGER events_append_only_update; DROP TRIGGER events_append_only_delete");
      raw.exec(sql);
    }
    return SqliteEventStore(db(), fast()).verify();
  }
};

TEST_F(SqliteStoreTamper, VerifyIsOkOnAnUntouchedStore) {
  fill(3, 4);
  const auto result = SqliteEventStore(db(), fast()).verify();
  EXPECT_TRUE(result.ok) << result.reason;
  EXPECT_EQ(result.events_checked, 12);
}

TEST_F(SqliteStoreTamper, VerifyFindsAnAlteredPayload) {
  const auto result = tamper(R"(UPDATE events SET payload = '{"i":999}' WHERE position = 7)");
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.first_bad_position, 7);
  EXPECT_NE(result.reason.find("does not match"), std::string::npos) << result.reason;
}

TEST_F(SqliteStoreTamper, VerifyFindsADeletedRow) {
  const auto result = tamper("DELETE FROM events WHERE position = 5");
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.first_bad_position, 5);
  EXPECT_NE(result.reason.find("missing"), std::string::npos) << result.reason;
}

TEST_F(SqliteStoreTamper, VerifyFindsASwappedPairOfRows) {
  // Swap the contents of positions 9 and 10 (both in stream s-2), keeping the
  // positions, as a reordering of history would.
  const auto result = tamper(
      "UPDATE events SET position = -1, version = 1000 WHERE position = 9;"
      "UPDATE events SET position = 9, version = 1 WHERE position = 10;"
      "UPDATE events SET position = 10, version = 2 WHERE position = -1;");
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.first_bad_position, 9);
}

TEST_F(SqliteStoreTamper, VerifyFindsARecomputedHashByTheNextLink) {
  // Changing a row and its stored hash is not enough: the next event was
  // chained to the old hash.
  const auto result =
      tamper(R"(UPDATE events SET payload = '{"i":999}', hash = zeroblob(32) WHERE position = 4)");
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.first_bad_position, 4);
}

TEST_F(SqliteStoreTamper, LinkedReadReportsARemovedPredecessorAndTheStoredHashesAsTheyAre) {
  // s-1 holds positions 5..8; position 4 (the last of s-0) is removed and the
  // payload at 6 altered without its hash.
  tamper(R"(DELETE FROM events WHERE position = 4;
            UPDATE events SET payload = '{"i":999}' WHERE position = 6)");
  SqliteEventStore store(db(), fast());
  std::vector<LinkedEvent> linked;
  for (auto& e : store.read_stream_linked("s-1")) linked.push_back(std::move(e));
  ASSERT_EQ(linked.size(), 4u);
  EXPECT_EQ(linked[0].event.position, 5);
  EXPECT_FALSE(linked[0].previous_hash.has_value());
  // Hashes are reported as stored, not checked: 7's predecessor is 6's stored hash.
  ASSERT_TRUE(linked[2].previous_hash.has_value());
  EXPECT_EQ(*linked[2].previous_hash, linked[1].event.hash);
  EXPECT_EQ(linked[1].event.payload, R"({"i":999})");
  EXPECT_NE(chain_hash(*linked[1].previous_hash, linked[1].event), linked[1].event.hash);
}

// ---- threads ----------------------------------------------------------------

TEST_F(SqliteStoreFile, EightThreadsAppendingToTwentyStreamsLoseAndDuplicateNothing) {
  constexpr int kThreads = 8, kPerThread = 1000, kStreams = 20;
  SqliteEventStore store(db(), fast());
  std::vector<std::vector<std::string>> acknowledged(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        EventData e = event(i);
        e.event_id = new_event_id();
        const std::string id = e.event_id;
        store.append("s-" + std::to_string((t * 7 + i) % kStreams), ExpectedVersion::any(), {e});
        acknowledged[t].push_back(id);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> stored;
  for (const auto& e : store.read_all()) stored.insert(e.event_id);
  EXPECT_EQ(stored.size(), static_cast<std::size_t>(kThreads * kPerThread));
  for (const auto& ids : acknowledged) {
    for (const auto& id : ids) ASSERT_TRUE(stored.contains(id)) << id;
  }
  expect_consistent(store);
}

TEST_F(SqliteStoreFile, ConcurrentAppendsWithStaleVersionsFailAloneInTheirGroup) {
  SqliteEventStore store(db(), fast());
  constexpr int kThreads = 8, kRounds = 50;
  std::atomic<int> ok{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        if (t % 2 == 0) {
          store.append("own-" + std::to_string(t), ExpectedVersion::exactly(i), {event(i)});
          ++ok;
        } else {
          // Everyone races for the same stream; most lose.
          const auto v = store.stream_version("shared");
          try {
            store.append("shared", ExpectedVersion::exactly(v), {event(i)});
            ++ok;
          } catch (const WrongExpectedVersion&) {
            ++conflicts;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; t += 2) {
    EXPECT_EQ(store.stream_version("own-" + std::to_string(t)), kRounds);
  }
  EXPECT_EQ(store.head_position(), ok.load());
  EXPECT_EQ(ok + conflicts, kThreads * kRounds);
  expect_consistent(store);
}

TEST_F(SqliteStoreFile, AnOpenCursorDoesNotBlockAppends) {
  SqliteStoreOptions options = fast();
  options.read_page_size = 3;
  SqliteEventStore store(db(), options);
  for (int i = 0; i < 10; ++i) store.append("s-1", ExpectedVersion::any(), {event(i)});
  auto cursor = store.read_all();
  int read = 0;
  for (auto it = cursor.begin(); it != cursor.end(); ++it) {
    if (++read == 2) {
      // Mid-iteration, from another thread: must complete, not wait for us.
      std::thread writer([&] { store.append("s-2", ExpectedVersion::any(), {event(99)}); });
      writer.join();
    }
  }
  EXPECT_EQ(read, 11);  // pages are not snapshots: the new event is seen too
  expect_consistent(store);
}

TEST_F(SqliteStoreFile, CommitListenersSeeEveryPositionOnceInOrderUnderConcurrency) {
  SqliteEventStore store(db(), fast());
  std::vector<std::int64_t> seen;
  auto handle = store.add_commit_listener([&](std::span<const RecordedEvent> batch) {
    for (const auto& e : batch) seen.push_back(e.position);
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        store.append("s-" + std::to_string(t), ExpectedVersion::any(), {event(i), event(i)});
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(seen.size(), 1600u);
  for (std::size_t i = 0; i < seen.size(); ++i)
    ASSERT_EQ(seen[i], static_cast<std::int64_t>(i) + 1);
}

// ---- processes --------------------------------------------------------------

// Runs `body` in a child process; returns its exit status. The child must not
// touch any store object of the parent.
template <class Body>
pid_t spawn(Body body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 0;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child failed: %s\n", e.what());
      code = 10;
    } catch (...) {
      code = 11;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

std::set<std::string> read_lines(const std::filesystem::path& path) {
  std::set<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.insert(line);
  return out;
}

TEST_F(SqliteStoreFile, TwoProcessesAppendingToTheSameStreamsLoseNothing) {
  constexpr int kProcesses = 2, kAppends = 2000;
  { SqliteEventStore create(db()); }
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(spawn([&, p] {
      SqliteEventStore store(db());  // synchronous FULL: the default, as in production
      std::ofstream acks(dir_ / ("acks-" + std::to_string(p)));
      for (int i = 0; i < kAppends; ++i) {
        EventData e = event(i);
        e.event_id = new_event_id();
        store.append("s-" + std::to_string(i % 5), ExpectedVersion::any(), {e});
        acks << e.event_id << "\n";  // acknowledged only after append() returned
      }
      return 0;
    }));
  }
  for (pid_t child : children) EXPECT_EQ(wait_for(child), 0);
  SqliteEventStore store(db());
  std::set<std::string> stored;
  for (const auto& e : store.read_all()) stored.insert(e.event_id);
  EXPECT_EQ(stored.size(), static_cast<std::size_t>(kProcesses * kAppends));
  for (int p = 0; p < kProcesses; ++p) {
    const auto acks = read_lines(dir_ / ("acks-" + std::to_string(p)));
    EXPECT_EQ(acks.size(), static_cast<std::size_t>(kAppends));
    for (const auto& id : acks) ASSERT_TRUE(stored.contains(id)) << id;
  }
  expect_consistent(store);
}

TEST_F(SqliteStoreFile, ProcessesRacingOnOneStreamGetWrongExpectedVersionNeverBusy) {
  constexpr int kProcesses = 3, kEach = 150;
  { SqliteEventStore create(db()); }
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(spawn([&] {
      SqliteEventStore store(db(), fast());
      int done = 0, conflicts = 0;
      while (done < kEach) {
        const auto v = store.stream_version("contended-1");
        try {
          store.append("contended-1", ExpectedVersion::exactly(v), {event(done)});
          ++done;
        } catch (const WrongExpectedVersion&) {
          ++conflicts;  // expected under contention; StorageError would escape and fail
        }
      }
      return 0;
    }));
  }
  for (pid_t child : children) EXPECT_EQ(wait_for(child), 0);
  SqliteEventStore store(db(), fast());
  EXPECT_EQ(store.stream_version("contended-1"), kProcesses * kEach);
  expect_consistent(store);
}

// ---- dropped guards (issue 12, item 2) ----------------------------------------

constexpr const char* kDropEventGuards =
    "DROP TRIGGER events_append_only_update; DROP TRIGGER events_append_only_delete; "
    "DROP TRIGGER events_append_only_insert";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_F(SqliteStoreFile, DroppedGuardsAreRestoredByAWritableOpenAndReportedByVerify) {
  fill(1, 3);
  SQLite::Database(db().string(), SQLite::OPEN_READWRITE).exec(kDropEventGuards);
  {
    SqliteEventStore store(db(), fast());
    const auto restored = store.guards_missing_at_open();
    EXPECT_EQ(restored.size(), 3u);
    for (const char* name : {"events_append_only_update (missing)",
                             "events_append_only_delete (missing)",
                             "events_append_only_insert (missing)"}) {
      EXPECT_NE(std::find(restored.begin(), restored.end(), name), restored.end()) << name;
    }
    // Guarded again before the open returned.
    const auto [status, output] = sqlite3_shell(db(), "DELETE FROM events WHERE position = 3;");
    EXPECT_NE(status, 0) << output;
    EXPECT_TRUE(contains(output, "append-only")) << output;
    const auto result = store.verify();
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.events_checked, 3);
    EXPECT_EQ(result.first_bad_position, 0);
    EXPECT_TRUE(contains(result.reason, "restored")) << result.reason;
    EXPECT_TRUE(contains(result.reason, "events_append_only_delete (missing)")) << result.reason;
    store.append("s-0", ExpectedVersion::exactly(3), {event(3)});
  }
  // Found in place by the next open.
  SqliteEventStore again(db(), fast());
  EXPECT_TRUE(again.guards_missing_at_open().empty());
  EXPECT_TRUE(again.verify().ok) << again.verify().reason;
}

TEST_F(SqliteStoreFile, AnAlteredGuardIsReplacedByTheOneTheSchemaCreates) {
  fill(1, 3);
  SQLite::Database(db().string(), SQLite::OPEN_READWRITE)
      .exec(
          "DROP TRIGGER events_append_only_delete;"
          "CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events BEGIN SELECT 1; END;");
  SqliteEventStore store(db(), fast());
  EXPECT_EQ(store.guards_missing_at_open(),
            std::vector<std::string>{"events_append_only_delete (altered)"});
  const auto [status, output] = sqlite3_shell(db(), "DELETE FROM events WHERE position = 3;");
  EXPECT_NE(status, 0) << output;
  EXPECT_FALSE(store.verify().ok);
  EXPECT_EQ(store.head_position(), 3);
}

TEST_F(SqliteStoreFile, AReadOnlyOpenReportsDroppedGuardsAndLeavesTheFileAsItWas) {
  fill(1, 3);
  SQLite::Database(db().string(), SQLite::OPEN_READWRITE).exec(kDropEventGuards);
  const std::string before = file_bytes(db());
  {
    SqliteStoreOptions options = fast();
    options.read_only = true;
    SqliteEventStore store(db(), options);
    EXPECT_EQ(store.guards_missing_at_open().size(), 3u);
    const auto result = store.verify();
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(contains(result.reason, "events_append_only_update (missing)")) << result.reason;
    EXPECT_TRUE(contains(result.reason, "read-only")) << result.reason;
  }
  EXPECT_EQ(file_bytes(db()), before);
}

TEST_F(SqliteStoreFile, GuardsDroppedWhileTheStoreIsOpenAreReportedByVerify) {
  fill(1, 3);
  SqliteEventStore store(db(), fast());
  EXPECT_TRUE(store.verify().ok);
  SQLite::Database(db().string(), SQLite::OPEN_READWRITE)
      .exec("DROP TRIGGER events_append_only_update; DROP TRIGGER events_high_water_delete");
  const auto result = store.verify();
  EXPECT_FALSE(result.ok);
  EXPECT_TRUE(contains(result.reason, "events_append_only_update (missing)")) << result.reason;
  EXPECT_TRUE(contains(result.reason, "events_high_water_delete (missing)")) << result.reason;
}

// ---- positions are never handed out twice (issue 12, item 5) ------------------

TEST_F(SqliteStoreFile, TheHighWaterMarkCannotBeLoweredOrDeletedThroughTheShell) {
  fill(1, 5);
  for (const char* sql : {"UPDATE events_high_water SET position = 2;",
                          "DELETE FROM events_high_water;",
                          "REPLACE INTO events_high_water (singleton, position) VALUES (1, 0);",
                          "INSERT INTO events_high_water (singleton, position) VALUES (2, 9);"}) {
    const auto [status, output] = sqlite3_shell(db(), sql);
    EXPECT_NE(status, 0) << sql << ": " << output;
  }
  SQLite::Database raw(db().string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("SELECT position FROM events_high_water").getInt64(), 5);
  EXPECT_EQ(raw.execAndGet("SELECT count(*) FROM events_high_water").getInt64(), 1);
}

TEST_F(SqliteStoreFile, AfterTheNewestEventsAreDeletedAppendsNeverReuseTheirPositions) {
  fill(3, 4);  // positions 1..12
  SQLite::Database(db().string(), SQLite::OPEN_READWRITE)
      .exec(std::string(kDropEventGuards) + "; DELETE FROM events WHERE position > 10");
  SqliteEventStore store(db(), fast());
  EXPECT_EQ(store.head_position(), 10);
  try {
    store.append("s-9", ExpectedVersion::any(), {event(0)});
    FAIL() << "an append after a deleted tail was accepted";
  } catch (const IntegrityError& e) {
    EXPECT_EQ(e.position(), 11);
    EXPECT_TRUE(contains(e.what(), "position 10")) << e.what();
    EXPECT_TRUE(contains(e.what(), "up to 12")) << e.what();
  }
  EXPECT_EQ(store.head_position(), 10);
  const auto result = store.verify();
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.first_bad_position, 11);
  EXPECT_TRUE(contains(result.reason, "position 10")) << result.reason;
  EXPECT_TRUE(contains(result.reason, "up to 12")) << result.reason;
}

TEST_F(SqliteStoreFile, ATailDeletedWhileTheStoreIsOpenStopsTheNextAppend) {
  SqliteEventStore store(db(), fast());
  for (int i = 0; i < 4; ++i) store.append("s-1", ExpectedVersion::any(), {event(i)});
  {
    SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);
    raw.exec("DROP TRIGGER events_append_only_delete; DELETE FROM events WHERE position = 4");
  }
  EXPECT_THROW(store.append("s-2", ExpectedVersion::any(), {event(9)}), IntegrityError);
  EXPECT_EQ(store.head_position(), 3);
  SqliteStoreOptions options = fast();
  options.read_only = true;
  const auto result = SqliteEventStore(db(), options).verify();
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.first_bad_position, 4);
  EXPECT_TRUE(contains(result.reason, "up to 4")) << result.reason;
}

TEST_F(SqliteStoreFile, AMissingHighWaterRowIsRestoredAtTheHeadAndReported) {
  fill(1, 4);
  SQLite::Database(db().string(), SQLite::OPEN_READWRITE)
      .exec("DROP TRIGGER events_high_water_delete; DELETE FROM events_high_water");
  SqliteEventStore store(db(), fast());
  const auto restored = store.guards_missing_at_open();
  EXPECT_NE(std::find(restored.begin(), restored.end(), "events_high_water (its row is missing)"),
            restored.end());
  EXPECT_NE(std::find(restored.begin(), restored.end(), "events_high_water_delete (missing)"),
            restored.end());
  EXPECT_FALSE(store.verify().ok);
  SQLite::Database raw(db().string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("SELECT position FROM events_high_water").getInt64(), 4);
  EXPECT_EQ(store.append("s-0", ExpectedVersion::exactly(4), {event(4)}).first_position, 5);
}

TEST_F(SqliteStoreFile, AVersion2StoreIsMigratedWithItsHighWaterMarkAtItsHead) {
  fill(1, 5);
  SQLite::Database(db().string(), SQLite::OPEN_READWRITE)
      .exec("DROP TABLE events_high_water; PRAGMA user_version = 2");
  {
    SqliteEventStore store(db(), fast());
    EXPECT_TRUE(store.guards_missing_at_open().empty());
    EXPECT_TRUE(store.verify().ok) << store.verify().reason;
    EXPECT_EQ(store.append("s-0", ExpectedVersion::exactly(5), {event(5)}).first_position, 6);
  }
  SQLite::Database raw(db().string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("PRAGMA user_version").getInt(), SqliteEventStore::kSchemaVersion);
  EXPECT_EQ(raw.execAndGet("SELECT position FROM events_high_water").getInt64(), 6);
}

TEST_F(SqliteStoreFile, TheHighWaterMarkFollowsEveryCommittedAppendAndNoFailedOne) {
  SqliteEventStore store(db(), fast());
  const auto mark = [&] {
    return SQLite::Database(db().string(), SQLite::OPEN_READONLY)
        .execAndGet("SELECT position FROM events_high_water")
        .getInt64();
  };
  EXPECT_EQ(mark(), 0);
  store.append("s-1", ExpectedVersion::no_stream(), {event(0), event(1)});
  EXPECT_EQ(mark(), 2);
  EXPECT_THROW(store.append("s-1", ExpectedVersion::no_stream(), {event(2)}), WrongExpectedVersion);
  EXPECT_EQ(mark(), 2);
  store.append(std::vector<StreamAppend>{{"a-1", ExpectedVersion::any(), {event(3)}},
                                         {"b-1", ExpectedVersion::any(), {event(4)}}});
  EXPECT_EQ(mark(), 4);
}

}  // namespace
}  // namespace annals
