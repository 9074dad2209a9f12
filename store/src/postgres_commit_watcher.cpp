// PostgresEventStore's commit wake-ups: every append NOTIFYs the store's
// channel inside its transaction (postgres_store_write.cpp), so PostgreSQL
// delivers it when, and only when, the append commits. A watcher LISTENs on a
// connection of its own and waits in poll(2) on that connection's socket and
// on an eventfd that interrupt() signals. See docs/postgres.md.
//
// A dropped connection (server restart, pg_terminate_backend, a network cut)
// is noticed when its socket reports the end; the watcher then polls and
// reconnects at most once a second. Notifications sent while it was away are
// lost, so the wait() that reconnects returns true: the caller reads the head
// and misses nothing.

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "annals/core/error.hpp"
#include "postgres_store_impl.hpp"

namespace annals::detail::pg {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kReconnectEvery = std::chrono::seconds(1);

class ListenSource final : public CommitWatcher::Source {
 public:
  ListenSource(std::string connection, std::string channel, bool push)
      : connection_(std::move(connection)),
        channel_(std::move(channel)),
        push_(push),
        wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (wake_ < 0) {
      throw StorageError(std::string("PostgreSQL: cannot watch commits: eventfd: ") +
                         std::strerror(errno));
    }
    if (!push_) return;
    std::string error;
    if (!connect(error)) {
      ::close(wake_);
      throw StorageError("PostgreSQL: cannot watch commits (LISTEN " + channel_ + "): " + error);
    }
  }

  ~ListenSource() override { ::close(wake_); }
  ListenSource(const ListenSource&) = delete;
  ListenSource& operator=(const ListenSource&) = delete;

  bool wait(std::chrono::milliseconds timeout) noexcept override {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      auto now = Clock::now();
      if (push_ && !conn_ && now >= next_reconnect_) {
        std::string ignored;
        if (connect(ignored)) return true;  // notifications may have been lost meanwhile
        next_reconnect_ = now + kReconnectEvery;
      }
      if (conn_ && take_notifications()) return true;
      now = Clock::now();
      if (now >= deadline) return false;
      auto until = deadline;
      if (push_ && !conn_) until = std::min(until, next_reconnect_);
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now);
      std::array<pollfd, 2> fds{pollfd{wake_, POLLIN, 0},
                                pollfd{conn_ ? PQsocket(conn_.get()) : -1, POLLIN, 0}};
      const int n = ::poll(fds.data(), conn_ ? 2 : 1,
                           static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60'000)));
      if (n < 0 && errno != EINTR) return false;
      if (n > 0 && (fds[0].revents & POLLIN) != 0) {
        std::uint64_t count = 0;
        [[maybe_unused]] const auto ignored = ::read(wake_, &count, sizeof count);
        return false;
      }
      if (n > 0 && conn_ && (fds[1].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
        if (PQconsumeInput(conn_.get()) == 0 || PQstatus(conn_.get()) != CONNECTION_OK) {
          drop();  // reconnected at the top of the loop
        }
      }
    }
  }

  void interrupt() noexcept override {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto ignored = ::write(wake_, &one, sizeof one);
  }

  bool pushes() const noexcept override { return listening_.load(); }

 private:
  // Opens the connection and LISTENs; false (with the reason) on failure.
  bool connect(std::string& error) noexcept {
    try {
      // connect_timeout before dbname: a timeout in the URL itself wins.
      const char* keys[] = {"connect_timeout", "dbname", "application_name", nullptr};
      const char* values[] = {"10", connection_.c_str(), "annals-listen", nullptr};
      Conn c(PQconnectdbParams(keys, values, 1));
      if (!c || PQstatus(c.get()) != CONNECTION_OK) {
        error = c ? PQerrorMessage(c.get()) : "cannot allocate a connection";
        while (!error.empty() && error.back() == '\n') error.pop_back();
        return false;
      }
      Result r(PQexec(c.get(), ("LISTEN \"" + channel_ + "\"").c_str()));
      if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
        error = PQerrorMessage(c.get());
        while (!error.empty() && error.back() == '\n') error.pop_back();
        return false;
      }
      conn_ = std::move(c);
      listening_ = true;
      return true;
    } catch (const std::exception& e) {
      error = e.what();
      return false;
    }
  }

  void drop() noexcept {
    conn_.reset();
    listening_ = false;
    next_reconnect_ = Clock::time_point{};  // try again at once
  }

  // Consumes every queued notification; true when there was one.
  bool take_notifications() noexcept {
    bool any = false;
    while (PGnotify* n = PQnotifies(conn_.get())) {
      any = true;
      PQfreemem(n);
    }
    return any;
  }

  const std::string connection_;
  const std::string channel_;
  const bool push_;
  const int wake_;
  Conn conn_;  // null while disconnected, or always when !push_
  std::atomic<bool> listening_{false};
  Clock::time_point next_reconnect_{};
};

}  // namespace

std::unique_ptr<CommitWatcher::Source> make_listen_source(const std::string& connection,
                                                          const std::string& channel, bool push) {
  return std::make_unique<ListenSource>(connection, channel, push);
}

std::string notify_channel(const std::string& schema) {
  // Channel names are identifiers: at most 63 bytes. Two long schema names
  // that share their first 56 bytes share a channel, which costs only
  // wake-ups that find nothing new.
  return ("annals." + schema).substr(0, 63);
}

}  // namespace annals::detail::pg
