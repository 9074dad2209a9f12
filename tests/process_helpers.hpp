#pragma once
// Helpers shared by the tests that use several processes (store, projections,
// reliability): knobs from the environment, child processes, a start line that releases children together, acknowledgement
// logs that survive SIGKILL, and the store-wide consistency check every test
// ends with.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/store/event_store.hpp"

namespace annals::testing {

// An integer knob from the environment (ANNALS_CRASH_KILLS, ...), or `fallback`.
inline int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
}

// Runs `body` in a child process and returns its pid; the child exits with
// what body returns, 10 for a StorageError, 11 for any other exception. The
// child must open its own stores: nothing SQLite of the parent crosses fork().
template <class Body>
pid_t spawn_child(Body body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 0;
    try {
      code = body();
    } catch (const StorageError& e) {
      std::fprintf(stderr, "child %d: StorageError (code %d): %s\n", ::getpid(), e.code(), e.what());
      code = 10;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child %d: %s\n", ::getpid(), e.what());
      code = 11;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  return pid;
}

// Exit code of a child; 100 + signal number when a signal ended it.
inline int wait_for_exit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

// Children block in wait() until the parent calls release(): they start together.
class StartLine {
 public:
  StartLine() {
    if (::pipe(fds_) != 0) throw std::runtime_error("pipe failed");
  }
  ~StartLine() {
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
  }
  StartLine(const StartLine&) = delete;
  StartLine& operator=(const StartLine&) = delete;
  void wait() {  // in a child
    ::close(fds_[1]);
    fds_[1] = -1;
    char c;
    while (::read(fds_[0], &c, 1) < 0 && errno == EINTR) {
    }
  }
  void release() {  // in the parent, after forking every child
    ::close(fds_[1]);
    fds_[1] = -1;
  }

 private:
  int fds_[2] = {-1, -1};
};

// One line per acknowledged item, one write(2) per call, so what was written
// before the process died is never lost or torn.
class AckLog {
 public:
  explicit AckLog(const std::filesystem::path& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) {
    if (fd_ < 0) throw std::runtime_error("cannot open " + path.string());
  }
  ~AckLog() { ::close(fd_); }
  AckLog(const AckLog&) = delete;
  AckLog& operator=(const AckLog&) = delete;
  void ack(const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& line : lines) text += line + "\n";
    if (::write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      throw std::runtime_error("short write to the ack log");
    }
  }

 private:
  int fd_;
};

inline std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// PRAGMA integrity_check of an SQLite file, from a fresh connection ("ok" when sound).
// Read-write only so that SQLite may recover a log a killed process left; nothing is written.
inline std::string integrity_check(const std::filesystem::path& db) {
  SQLite::Database raw(db.string(), SQLite::OPEN_READWRITE);
  raw.setBusyTimeout(30'000);
  std::string result;
  SQLite::Statement q(raw, "PRAGMA integrity_check");
  while (q.executeStep()) result += (result.empty() ? "" : "; ") + q.getColumn(0).getString();
  return result;
}

// Dense positions from 1, versions dense from 1 in every stream, no event id
// twice, head, stream versions and hash chain in agreement. Returns the
// number of events stored in each stream.
inline std::map<std::string, std::int64_t> expect_consistent(const EventStore& store,
                                                             const std::string& when = {}) {
  std::set<std::string> ids;
  std::map<std::string, std::int64_t> last_version;
  std::int64_t expected_position = 1;
  for (const auto& e : store.read_all()) {
    EXPECT_EQ(e.position, expected_position) << "positions are not dense " << when;
    expected_position = e.position + 1;
    EXPECT_EQ(e.version, ++last_version[e.stream_id]) << e.stream_id << " " << when;
    EXPECT_TRUE(ids.insert(e.event_id).second) << "event id twice: " << e.event_id << " " << when;
  }
  EXPECT_EQ(store.head_position(), expected_position - 1) << when;
  for (const auto& [stream, version] : last_version) {
    EXPECT_EQ(store.stream_version(stream), version) << stream << " " << when;
  }
  const auto check = store.verify();
  EXPECT_TRUE(check.ok) << "at " << check.first_bad_position << ": " << check.reason << " " << when;
  return last_version;
}

}  // namespace annals::testing
