// CommitWatcher: commits of any connection or process wake it, nothing
// committed lets it time out, interrupt() cuts a wait short, and the polling
// fallback never claims a push. No test asserts a time: waits that must end
// early are given long timeouts and would only make a broken build slow.

#include "annals/store/commit_watcher.hpp"

#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "annals/core/error.hpp"
#include "annals/store/in_memory_event_store.hpp"
#include "store_fixtures.hpp"

namespace annals {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

EventData one_event() {
  EventData e;
  e.type = "test.Happened";
  return e;
}

class CommitWatcherTest : public ::testing::Test {
 protected:
  CommitWatcherTest() : store_(dir_ / "store.db", testing::fast()) {
    store_.append("s-1", ExpectedVersion::any(), {one_event()});
  }
  TempDir dir_;
  SqliteEventStore store_;
};

TEST_F(CommitWatcherTest, ACommitOfThisProcessWakesAWaitingWatcher) {
  CommitWatcher watcher(store_.path());
  ASSERT_TRUE(watcher.pushes());
  std::thread writer([&] {
    std::this_thread::sleep_for(20ms);
    store_.append("s-1", ExpectedVersion::any(), {one_event()});
  });
  EXPECT_TRUE(watcher.wait(60s));
  writer.join();
}

TEST_F(CommitWatcherTest, ACommitOfAnotherProcessWakesIt) {
  CommitWatcher watcher(store_.path());
  // The sqlite3 shell is another process writing the same file through its WAL.
  const auto [status, output] =
      testing::sqlite3_shell(store_.path(), "CREATE TABLE side (x); INSERT INTO side VALUES (1);");
  ASSERT_EQ(status, 0) << output;
  EXPECT_TRUE(watcher.wait(60s));
}

TEST_F(CommitWatcherTest, ACommitBeforeTheWaitIsNotLost) {
  CommitWatcher watcher(store_.path());
  store_.append("s-1", ExpectedVersion::any(), {one_event()});  // after watching, before waiting
  EXPECT_TRUE(watcher.wait(60s));
}

TEST_F(CommitWatcherTest, WithNothingCommittedTheWaitTimesOutAndReadsDoNotWakeIt) {
  CommitWatcher watcher(store_.path());
  for (const auto& e : store_.read_all()) (void)e;
  EXPECT_EQ(store_.head_position(), 1);
  EXPECT_FALSE(watcher.wait(100ms));
}

// The -wal writes of a commit come before SQLite makes it visible, so a
// watcher woken by them alone could look too early and sleep through it
// (ADR 0009, amendment); the store touches the database file after each
// commit, which inotify reports as IN_ATTRIB once the commit can be read.
TEST_F(CommitWatcherTest, EveryCommitTouchesTheDatabaseFileOnceItIsVisible) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_GE(::inotify_add_watch(fd, dir_.path().c_str(), IN_ATTRIB), 0);
  auto touched = [&] {
    bool found = false;
    alignas(inotify_event) char buf[4096];
    for (ssize_t got; (got = ::read(fd, buf, sizeof buf)) > 0;) {
      for (ssize_t at = 0; at < got;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buf + at);
        if (event->len > 0 && std::string(event->name) == "store.db") found = true;
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      }
    }
    return found;
  };
  EXPECT_FALSE(touched());
  for (const auto& e : store_.read_all()) (void)e;
  EXPECT_FALSE(touched()) << "a read touched the database file";
  store_.append("s-1", ExpectedVersion::any(), {one_event()});
  EXPECT_TRUE(touched()) << "the commit did not touch the database file";
  ::close(fd);
}

TEST_F(CommitWatcherTest, WritesToOtherFilesOfTheDirectoryDoNotWakeIt) {
  CommitWatcher watcher(store_.path());
  {
    std::ofstream other(dir_ / "unrelated.txt");
    other << "not the store";
  }
  EXPECT_FALSE(watcher.wait(100ms));
}

TEST_F(CommitWatcherTest, InterruptCutsAWaitShort) {
  CommitWatcher watcher(store_.path());
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    watcher.interrupt();
  });
  EXPECT_FALSE(watcher.wait(60s));
  stopper.join();
  // An interrupt before the wait makes the next wait return at once.
  watcher.interrupt();
  EXPECT_FALSE(watcher.wait(60s));
}

TEST_F(CommitWatcherTest, ThePollingFallbackNeverClaimsAPush) {
  CommitWatcher watcher(store_.path(), {.push = false});
  EXPECT_FALSE(watcher.pushes());
  store_.append("s-1", ExpectedVersion::any(), {one_event()});
  EXPECT_FALSE(watcher.wait(20ms));  // it sleeps its timeout: the caller polls
}

TEST_F(CommitWatcherTest, TheStoreHandsOutAWatcherOnItsFileThroughTheEventStoreInterface) {
  const EventStore& any_store = store_;
  const auto watcher = any_store.watch_commits();
  ASSERT_NE(watcher, nullptr);
  EXPECT_TRUE(watcher->pushes());
  SqliteEventStore other(store_.path(), testing::fast());
  other.append("s-1", ExpectedVersion::any(), {one_event()});
  EXPECT_TRUE(watcher->wait(60s));
  EXPECT_FALSE(any_store.watch_commits({.push = false})->pushes());
}

TEST(CommitWatcher, AStoreWithoutWakeUpsAcrossProcessesHandsOutNone) {
  const InMemoryEventStore store;
  EXPECT_EQ(store.watch_commits(), nullptr);
}

TEST(CommitWatcher, ANullSourceIsAnInvalidArgument) {
  EXPECT_THROW(CommitWatcher(std::unique_ptr<CommitWatcher::Source>()), InvalidArgument);
}

TEST(CommitWatcher, AMissingDirectoryIsAStorageErrorNamingIt) {
  try {
    CommitWatcher watcher("/no/such/dir/store.db");
    FAIL() << "expected StorageError";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("/no/such/dir"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace annals
