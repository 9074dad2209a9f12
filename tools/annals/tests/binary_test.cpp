// The built `annals` program run as a separate process: exit codes, stdout
// and stderr kept apart, pipes, and a follower seeing another process append.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "annals/version.hpp"
#include "tool_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;
using namespace std::chrono_literals;

TEST(AnnalsProgram, ErrorsGoToStderrWithTheirExitCode) {
  TempDir dir;
  auto r = annals_exec(dir.path(), {"verify", "--db", (dir / "missing.db").string()});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("missing.db' does not exist"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "missing.db"));
  r = annals_exec(dir.path(), {"streams"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--db"), std::string::npos) << r.err;
}

TEST(AnnalsProgram, VersionPrintsTheProjectVersionAndExitsZero) {
  TempDir dir;
  const auto r = annals_exec(dir.path(), {"--version"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "annals " ANNALS_PROJECT_VERSION "\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(kVersion, ANNALS_PROJECT_VERSION);
}

// Issue 12, item 10: an unprivileged user reads a 0444 store in a directory
// they cannot write (so SQLite cannot create the -shm file beside it).
TEST(AnnalsProgram, ReadOnlyStoreInAnUnwritableDirectoryIsReadByAnUnprivilegedUser) {
  TempDir dir;
  const auto ro = dir / "ro";
  std::filesystem::create_directory(ro);
  fill_sample(ro / "s.db");
  const std::string db = (ro / "s.db").string();
  ASSERT_FALSE(std::filesystem::exists(db + "-wal"));
  ASSERT_EQ(::chmod(db.c_str(), 0444), 0);
  ASSERT_EQ(::chmod(ro.c_str(), 0555), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);  // out and err files stay root's
  const std::string before = file_bytes(db);
  const auto user = as_unprivileged_user();
  for (const std::string command : {"stats", "verify", "export", "streams", "projections"}) {
    const auto r = annals_exec(dir.path(), {command, "--db", db}, "/dev/null", user);
    EXPECT_EQ(r.code, 0) << command << ": " << r.err;
    if (command != "projections") {
      EXPECT_NE(r.out, "") << command;
    }
  }
  const auto verified = annals_exec(dir.path(), {"verify", "--db", db}, "/dev/null", user);
  EXPECT_EQ(verified.out, "ok: 5 events, hash chain intact\n");
  // Writing commands are refused, naming the file, and change nothing.
  const auto imported = annals_exec(dir.path(), {"import", "--db", db, "-"}, "/dev/null", user);
  EXPECT_EQ(imported.code, 3) << imported.err;
  EXPECT_NE(imported.err.find("not writable"), std::string::npos) << imported.err;
  EXPECT_EQ(file_bytes(db), before);
  EXPECT_FALSE(std::filesystem::exists(db + "-shm"));
  EXPECT_FALSE(std::filesystem::exists(db + "-wal"));
  ::chmod(ro.c_str(), 0755);
}

TEST(AnnalsProgram, ExportThroughAPipeAndImportFromStdinGiveAByteIdenticalCopy) {
  TempDir dir;
  fill_many(dir / "a.db", 3000);
  const auto exported = annals_exec(dir.path(), {"export", "--db", (dir / "a.db").string()});
  ASSERT_EQ(exported.code, 0) << exported.err;
  EXPECT_EQ(exported.err, "") << "stderr is not a terminal: no progress bar";
  write_file(dir / "dump.jsonl", exported.out);
  const auto imported =
      annals_exec(dir.path(), {"import", "--db", (dir / "b.db").string(), "-"}, dir / "dump.jsonl");
  ASSERT_EQ(imported.code, 0) << imported.err;
  EXPECT_EQ(imported.err, "imported 3000 events into '" + (dir / "b.db").string() + "'\n");
  const auto again = annals_exec(dir.path(), {"export", "--db", (dir / "b.db").string()});
  EXPECT_EQ(again.out, exported.out);
  const auto verified = annals_exec(dir.path(), {"verify", "--db", (dir / "b.db").string()});
  EXPECT_EQ(verified.code, 0) << verified.err;
  EXPECT_EQ(verified.out, "ok: 3000 events, hash chain intact\n");
  EXPECT_EQ(verified.err, "");
}

TEST(AnnalsProgram, TailFollowPrintsWhatAnotherProcessAppends) {
  TempDir dir;
  fill_sample(dir / "s.db");
  Outcome follow;
  std::thread tail([&] {
    follow = annals_exec(dir.path(), {"tail", "--db", (dir / "s.db").string(), "--follow",
                                      "--from", "6", "--max-events", "2", "--poll-interval",
                                      "20", "--timeout", "60"});
  });
  std::this_thread::sleep_for(100ms);  // not required: the follower reads from position 6
  {
    SqliteEventStore store(dir / "s.db", quick());
    store.append("late-1", ExpectedVersion::any(), {tool_event("test.Late")});
    store.append("late-2", ExpectedVersion::any(), {tool_event("test.Late")});
  }
  tail.join();
  ASSERT_EQ(follow.code, 0) << follow.err;
  EXPECT_NE(follow.out.find("6\tlate-1@1\t"), std::string::npos) << follow.out;
  EXPECT_NE(follow.out.find("7\tlate-2@1\t"), std::string::npos) << follow.out;
}

TEST(AnnalsProgram, TailFollowIsWokenByACommitWithoutWaitingForItsPollInterval) {
  TempDir dir;
  fill_sample(dir / "s.db");
  Outcome follow;
  // A poll interval of ten minutes: only a pushed wake-up (CommitWatcher) can
  // print the event before the two-minute timeout.
  std::thread tail([&] {
    follow = annals_exec(dir.path(), {"tail", "--db", (dir / "s.db").string(), "--follow",
                                      "--from", "6", "--max-events", "1", "--poll-interval",
                                      "600000", "--timeout", "120"});
  });
  std::this_thread::sleep_for(300ms);  // let it settle into its wait (not required)
  {
    SqliteEventStore store(dir / "s.db", quick());
    store.append("late-1", ExpectedVersion::any(), {tool_event("test.Late")});
  }
  tail.join();
  ASSERT_EQ(follow.code, 0) << follow.err;
  EXPECT_NE(follow.out.find("6\tlate-1@1\t"), std::string::npos) << follow.out;
}

}  // namespace
}  // namespace annals
