#include "commit_listeners.hpp"

#include <algorithm>

namespace annals::detail {

CommitListenerHandle CommitListeners::add(CommitListener listener) {
  std::uint64_t id;
  {
    MutexLock lock(mu_);
    id = next_listener_id_++;
    listeners_.emplace_back(id, std::make_shared<CommitListener>(std::move(listener)));
  }
  std::weak_ptr<CommitListeners> weak = shared_from_this();
  return CommitListenerHandle([weak, id] {
    if (auto self = weak.lock()) self->remove(id);
  });
}

void CommitListeners::remove(std::uint64_t id) {
  MutexLock lock(mu_);
  std::erase_if(listeners_, [id](const auto& entry) { return entry.first == id; });
  // Wait for a listener call in flight, unless it is the one removing itself.
  if (deliverer_ == std::this_thread::get_id()) return;
  while (in_call_) lock.wait(cv_);
}

bool CommitListeners::empty() const {
  MutexLock lock(mu_);
  return listeners_.empty();
}

std::uint64_t CommitListeners::enqueue(std::vector<RecordedEvent> events) {
  if (events.empty()) return 0;
  MutexLock lock(mu_);
  if (listeners_.empty()) return 0;
  queue_.emplace_back(++last_ticket_, std::move(events));
  return last_ticket_;
}

void CommitListeners::deliver(std::uint64_t ticket) noexcept {
  if (ticket == 0) return;  // nothing was enqueued: no lock for every append
  MutexLock lock(mu_);
  while (delivered_ < ticket) {
    if (delivering_) {
      if (deliverer_ == std::this_thread::get_id()) return;  // nested: delivered after us
      lock.wait(cv_);
      continue;
    }
    delivering_ = true;
    deliverer_ = std::this_thread::get_id();
    while (!queue_.empty()) {
      auto [batch_ticket, events] = std::move(queue_.front());
      queue_.pop_front();
      auto listeners = listeners_;
      for (const auto& [id, listener] : listeners) {
        // Skip a listener removed by an earlier one in this same round.
        if (std::none_of(listeners_.begin(), listeners_.end(),
                         [id = id](const auto& entry) { return entry.first == id; })) {
          continue;
        }
        in_call_ = true;
        lock.unlock();
        try {
          (*listener)(std::span<const RecordedEvent>(events));
        } catch (...) {
          // Listeners must not throw (see CommitListener); the commit stands.
        }
        lock.lock();
        in_call_ = false;
        cv_.notify_all();
      }
      delivered_ = batch_ticket;
      cv_.notify_all();
    }
    delivering_ = false;
    deliverer_ = {};
    cv_.notify_all();
  }
}

}  // namespace annals::detail
