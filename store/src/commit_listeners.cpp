#include "commit_listeners.hpp"

#include <algorithm>

namespace annals::detail {

CommitListenerHandle CommitListeners::add(CommitListener listener) {
  std::uint64_t id;
  {
    std::lock_guard lock(list_mu_);
    id = next_id_++;
    listeners_.emplace_back(id, std::make_shared<CommitListener>(std::move(listener)));
    count_.store(listeners_.size(), std::memory_order_release);
  }
  std::weak_ptr<CommitListeners> weak = shared_from_this();
  return CommitListenerHandle([weak, id] {
    if (auto self = weak.lock()) self->remove(id);
  });
}

void CommitListeners::remove(std::uint64_t id) {
  {
    std::lock_guard lock(list_mu_);
    std::erase_if(listeners_, [id](const auto& entry) { return entry.first == id; });
    count_.store(listeners_.size(), std::memory_order_release);
  }
  // Wait for a notification in flight, unless we are inside it.
  if (notifying_thread_.load(std::memory_order_acquire) != std::this_thread::get_id()) {
    std::lock_guard wait(notify_mu_);
  }
}

void CommitListeners::notify(std::span<const RecordedEvent> events) noexcept {
  if (events.empty()) return;
  std::lock_guard serial(notify_mu_);
  notifying_thread_.store(std::this_thread::get_id(), std::memory_order_release);
  std::vector<std::pair<std::uint64_t, std::shared_ptr<CommitListener>>> snapshot;
  {
    std::lock_guard lock(list_mu_);
    snapshot = listeners_;
  }
  for (const auto& [id, listener] : snapshot) {
    {
      // Skip a listener removed by an earlier one in this same round.
      std::lock_guard lock(list_mu_);
      if (std::none_of(listeners_.begin(), listeners_.end(),
                       [id = id](const auto& entry) { return entry.first == id; })) {
        continue;
      }
    }
    try {
      (*listener)(events);
    } catch (...) {
      // Listeners must not throw (see CommitListener); the commit stands.
    }
  }
  notifying_thread_.store(std::thread::id{}, std::memory_order_release);
}

}  // namespace annals::detail
