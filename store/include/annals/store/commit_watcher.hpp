#pragma once
/// CommitWatcher: wakes a follower soon after any process commits to a store,
/// without polling hot (docs/adr/0009-commit-wake-ups.md). Any store hands out
/// its own kind through EventStore::watch_commits(); this header's constructor
/// makes the SQLite one, and PostgresEventStore's LISTENs for the NOTIFY of
/// every commit (docs/postgres.md).
///
///   auto watcher = store.watch_commits();              // before the first look at the head
///   for (;;) {
///     handle(store.read_all(next));                    // what is there now
///     watcher->wait(std::chrono::milliseconds(500));   // sleeps until a commit, or the timeout
///   }
///
/// On an SQLite store file, directly:
///
///   annals::CommitWatcher watcher(store.path());      // before the first look at the head
///   for (;;) {
///     handle(store.read_all(next));                    // what is there now
///     watcher.wait(std::chrono::milliseconds(500));    // sleeps until a commit, or the timeout
///   }
///
/// How, on SQLite: every commit of a store in WAL mode writes its -wal file, and Linux's
/// inotify reports that write on the watched directory. The writer does
/// nothing special, so commits of any process (another Annals program, the
/// sqlite3 shell) wake the follower. A wake-up means "something may have been
/// committed": a checkpoint writes the files too, so callers read the head
/// and find nothing new now and then. Nothing is lost in between: the watch
/// is in place from construction, so a commit that lands after the caller
/// looked at the head and before it calls wait() makes wait() return at once.
///
/// Where inotify cannot see other machines' writes (NFS, SMB/CIFS, FUSE, 9p
/// mounts), or when the process is out of inotify instances, the watcher
/// falls back to polling: wait() sleeps for its timeout (still cut short by
/// interrupt()), and pushes() is false.
///
/// Thread safety: wait() from one thread at a time; interrupt() and pushes()
/// from any thread, at any time.

#include <chrono>
#include <filesystem>
#include <memory>

namespace annals {

struct CommitWatcherOptions {
  /// Use inotify where it works. false: always poll (for tests, and for file
  /// systems the detection gets wrong). Default: true.
  bool push = true;
};

class CommitWatcher {
 public:
  /// How a watcher learns of commits; one kind per store backend. A source
  /// keeps the contract of the members of the same name below.
  class Source {
   public:
    virtual ~Source() = default;
    virtual bool wait(std::chrono::milliseconds timeout) noexcept = 0;
    virtual void interrupt() noexcept = 0;
    virtual bool pushes() const noexcept = 0;
  };

  /// A watcher on `source` (a store backend's; see EventStore::watch_commits).
  /// Throws: InvalidArgument when `source` is null.
  explicit CommitWatcher(std::unique_ptr<Source> source);

  /// Starts watching the store file `store_file` (which need not exist yet;
  /// its directory must).
  /// Throws: StorageError when the directory does not exist or cannot be read.
  explicit CommitWatcher(const std::filesystem::path& store_file, CommitWatcherOptions options = {});
  ~CommitWatcher();
  CommitWatcher(const CommitWatcher&) = delete;
  CommitWatcher& operator=(const CommitWatcher&) = delete;

  /// Returns true as soon as a commit may have happened since the last wait()
  /// returned true (or since construction), false when `timeout` passed
  /// without one or interrupt() cut the wait short. Never throws.
  bool wait(std::chrono::milliseconds timeout) noexcept;

  /// Makes the wait() in progress, or the next one, return false at once.
  /// Never throws.
  void interrupt() noexcept;

  /// True when commits wake wait(); false when it polls (see above). A
  /// source whose push channel can break (a PostgreSQL connection) answers
  /// for the moment of the call.
  bool pushes() const noexcept;

 private:
  std::unique_ptr<Source> source_;
};

}  // namespace annals
