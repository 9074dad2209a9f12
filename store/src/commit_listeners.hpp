#pragma once
// Registry of commit listeners shared by the stores. Notifications are
// serialized (one batch at a time, in the order the stores call notify), and
// removing a listener waits for a notification in flight so that a listener's
// owner can be destroyed right after its handle is reset.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "annals/store/event_store.hpp"

namespace annals::detail {

class CommitListeners : public std::enable_shared_from_this<CommitListeners> {
 public:
  CommitListenerHandle add(CommitListener listener);
  // Calls every listener with `events`; exceptions from listeners are dropped.
  void notify(std::span<const RecordedEvent> events) noexcept;
  // Cheap check so stores can skip building notification batches.
  bool empty() const noexcept { return count_.load(std::memory_order_acquire) == 0; }

 private:
  void remove(std::uint64_t id);

  std::mutex notify_mu_;  // held for the whole of one notification
  std::atomic<std::thread::id> notifying_thread_{};
  std::mutex list_mu_;
  std::vector<std::pair<std::uint64_t, std::shared_ptr<CommitListener>>> listeners_;
  std::uint64_t next_id_ = 1;
  std::atomic<std::size_t> count_{0};
};

}  // namespace annals::detail
