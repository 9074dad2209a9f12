// CommitWatcher on Linux: an inotify watch on the store's directory, filtered
// to the store's own files, and an eventfd that interrupt() signals; wait()
// polls both. See the header and docs/adr/0009-commit-wake-ups.md.

#include "annals/store/commit_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "annals/core/error.hpp"

namespace annals {
namespace {

// A file descriptor closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  Fd(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_;
};

// File systems whose changes made by other machines inotify does not report
// (statfs(2) magic numbers).
bool remote_file_system(const std::filesystem::path& dir) {
  struct statfs info {};
  if (::statfs(dir.c_str(), &info) != 0) return true;  // unknown: do not trust pushes
  switch (static_cast<unsigned long>(info.f_type)) {
    case 0x6969UL:      // NFS
    case 0x517BUL:      // SMB
    case 0xFF534D42UL:  // CIFS
    case 0xFE534D42UL:  // SMB2
    case 0x65735546UL:  // FUSE
    case 0x01021997UL:  // 9p (v9fs)
    case 0x73757245UL:  // Coda
    case 0x47504653UL:  // GPFS
    case 0x0BD00BD0UL:  // Lustre
      return true;
    default:
      return false;
  }
}

std::chrono::steady_clock::time_point now() { return std::chrono::steady_clock::now(); }

// The SQLite source: inotify on the store's directory.
class InotifySource final : public CommitWatcher::Source {
 public:
  InotifySource(const std::filesystem::path& store_file, CommitWatcherOptions options)
      : name_(store_file.filename().string()), wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    std::filesystem::path dir = store_file.parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      throw StorageError("cannot watch '" + store_file.string() + "': its directory '" +
                         dir.string() + "' does not exist");
    }
    if (!wake_) {
      throw StorageError("cannot watch '" + store_file.string() + "': eventfd: " +
                         std::strerror(errno));
    }
    if (!options.push || remote_file_system(dir)) return;
    Fd inotify(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    // Out of inotify instances (EMFILE) or unsupported: poll instead.
    if (!inotify) return;
    // The directory, not the files: the -wal file is deleted when the last
    // connection closes and created again by the next, and a watch on a
    // deleted file sees nothing of its successor.
    if (::inotify_add_watch(inotify.get(), dir.c_str(),
                            IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) <
        0) {
      return;
    }
    inotify_.emplace(std::move(inotify));
  }

  bool wait(std::chrono::milliseconds timeout) noexcept override {
    const auto deadline = now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now());
      std::array<pollfd, 2> fds{pollfd{wake_.get(), POLLIN, 0},
                                pollfd{inotify_ ? inotify_->get() : -1, POLLIN, 0}};
      const int n = ::poll(fds.data(), inotify_ ? 2 : 1,
                           static_cast<int>(std::max<std::int64_t>(0, left.count())) + 1);
      if (n < 0 && errno != EINTR) return false;
      if (n > 0 && (fds[0].revents & POLLIN) != 0) {
        std::uint64_t count = 0;
        [[maybe_unused]] const auto ignored = ::read(wake_.get(), &count, sizeof count);
        return false;
      }
      if (n > 0 && (fds[1].revents & POLLIN) != 0 && drain()) return true;
      if (now() >= deadline) return false;
    }
  }

  void interrupt() noexcept override {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto ignored = ::write(wake_.get(), &one, sizeof one);
  }

  bool pushes() const noexcept override { return inotify_.has_value(); }

 private:
  // Reads every queued event; true when one concerns the store's files (the
  // database, the writes of its -wal; not -shm, which readers write too).
  bool drain() noexcept {
    bool ours = false;
    alignas(inotify_event) std::array<char, 4096> buf{};
    for (;;) {
      const ssize_t got = ::read(inotify_->get(), buf.data(), buf.size());
      if (got <= 0) break;  // EAGAIN: drained
      for (ssize_t at = 0; at < got;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buf.data() + at);
        if (event->len > 0) {
          const std::string_view name(event->name);
          const bool wal = name.size() == name_.size() + 4 && name.starts_with(name_) &&
                           name.ends_with("-wal");
          // IN_ATTRIB counts on the database file only (a store touches it
          // after each commit); on the -wal it is SQLite's chown of a file a
          // reader opened, when run as root.
          if (name == name_ || (wal && (event->mask & IN_ATTRIB) == 0)) ours = true;
        }
        if ((event->mask & IN_Q_OVERFLOW) != 0) ours = true;  // events lost: assume a commit
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      }
    }
    return ours;
  }

  const std::string name_;
  Fd wake_;
  std::optional<Fd> inotify_;
};

}  // namespace

CommitWatcher::CommitWatcher(std::unique_ptr<Source> source) : source_(std::move(source)) {
  if (!source_) throw InvalidArgument("CommitWatcher: the source is null");
}

CommitWatcher::CommitWatcher(const std::filesystem::path& store_file, CommitWatcherOptions options)
    : source_(std::make_unique<InotifySource>(store_file, options)) {}

CommitWatcher::~CommitWatcher() = default;

bool CommitWatcher::wait(std::chrono::milliseconds timeout) noexcept {
  return source_->wait(timeout);
}

void CommitWatcher::interrupt() noexcept { source_->interrupt(); }

bool CommitWatcher::pushes() const noexcept { return source_->pushes(); }

}  // namespace annals
