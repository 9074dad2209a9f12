#pragma once
// Which thread is inside a read model's write() or read(): set for the
// scope of one call and cleared when it ends, however it ends, so that a
// nested call on the same thread is recognized (a write cannot nest; a read
// joins the transaction already open). Private to the projections module.

#include <atomic>
#include <thread>

namespace annals::detail {

class ThreadInside {
 public:
  explicit ThreadInside(std::atomic<std::thread::id>& slot) noexcept : slot_(slot) {
    slot_.store(std::this_thread::get_id());
  }
  ~ThreadInside() { slot_.store(std::thread::id()); }
  ThreadInside(const ThreadInside&) = delete;
  ThreadInside& operator=(const ThreadInside&) = delete;

  // True when the calling thread is the one marked in `slot`.
  static bool is_current(const std::atomic<std::thread::id>& slot) noexcept {
    return slot.load() == std::this_thread::get_id();
  }

 private:
  std::atomic<std::thread::id>& slot_;
};

}  // namespace annals::detail
