#pragma once
// Registry of commit listeners shared by the stores.
//
// A store enqueues each committed batch while it still orders commits (so the
// queue is in position order), releases its own locks, then calls deliver().
// One thread at a time delivers the queue; other appenders wait until their
// batch was delivered, so append() returns after its listeners ran. An append
// made from inside a listener only queues its batch: the delivering thread (up
// the same stack) delivers it next, instead of deadlocking on itself.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "annals/core/thread_annotations.hpp"
#include "annals/store/event_store.hpp"

namespace annals::detail {

class CommitListeners : public std::enable_shared_from_this<CommitListeners> {
 public:
  CommitListenerHandle add(CommitListener listener);

  // Cheap check so stores can skip building notification batches.
  bool empty() const ANNALS_EXCLUDES(mu_);

  // Queues a committed batch; returns its ticket for deliver() (0 when there
  // is nothing to deliver). Call in commit order.
  std::uint64_t enqueue(std::vector<RecordedEvent> events);

  // Returns once the batch with this ticket has been delivered, delivering
  // queued batches itself if no other thread is; returns at once when called
  // from inside a listener. Listener exceptions are dropped.
  void deliver(std::uint64_t ticket) noexcept;

 private:
  void remove(std::uint64_t id) ANNALS_EXCLUDES(mu_);

  mutable Mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::uint64_t, std::shared_ptr<CommitListener>>> listeners_
      ANNALS_GUARDED_BY(mu_);
  std::uint64_t next_listener_id_ ANNALS_GUARDED_BY(mu_) = 1;
  std::deque<std::pair<std::uint64_t, std::vector<RecordedEvent>>> queue_ ANNALS_GUARDED_BY(mu_);
  std::uint64_t last_ticket_ ANNALS_GUARDED_BY(mu_) = 0;
  std::uint64_t delivered_ ANNALS_GUARDED_BY(mu_) = 0;
  bool delivering_ ANNALS_GUARDED_BY(mu_) = false;
  bool in_call_ ANNALS_GUARDED_BY(mu_) = false;  // a listener is running right now
  std::thread::id deliverer_ ANNALS_GUARDED_BY(mu_);
};

}  // namespace annals::detail
