#pragma once
// Registry of transaction hooks, shared by the stores (the SQLite store's hooks
// take an SqlTransaction, the in-memory store's do not).
//
// The appending thread takes a snapshot of the list per transaction and calls
// each hook that is still registered, in the order they were added. Removing a
// hook waits for a call in flight, so once its handle is reset the hook is not
// running and will not run again; a hook that removes itself does not wait.
// A store asks called_from_hook() before appending: a hook runs under the
// store's write lock, so an append from inside it would wait for itself.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "annals/core/thread_annotations.hpp"
#include "annals/store/event_store.hpp"

namespace annals::detail {

template <class Hook>
class TransactionHooks : public std::enable_shared_from_this<TransactionHooks<Hook>> {
 public:
  using List = std::vector<std::pair<std::uint64_t, std::shared_ptr<Hook>>>;

  CommitListenerHandle add(Hook hook) {
    std::uint64_t id;
    {
      MutexLock lock(mu_);
      id = next_id_++;
      hooks_.emplace_back(id, std::make_shared<Hook>(std::move(hook)));
    }
    std::weak_ptr<TransactionHooks> weak = this->shared_from_this();
    return CommitListenerHandle([weak, id] {
      if (auto self = weak.lock()) self->remove(id);
    });
  }

  // Whether the calling thread is inside one of these hooks (lock-free: a
  // store asks on every append).
  bool called_from_hook() const noexcept {
    return caller_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }

  List snapshot() const {
    MutexLock lock(mu_);
    return hooks_;
  }

  // Calls `call(hook)` for each hook of `hooks` that is still registered, in
  // order, without holding the registry's lock. The first exception stops the
  // round and propagates.
  template <class Call>
  void run(const List& hooks, Call&& call) {
    MutexLock lock(mu_);
    for (const auto& [id, hook] : hooks) {
      if (std::none_of(hooks_.begin(), hooks_.end(),
                       [id = id](const auto& entry) { return entry.first == id; })) {
        continue;  // removed since the snapshot
      }
      in_call_ = true;
      caller_.store(std::this_thread::get_id(), std::memory_order_relaxed);
      lock.unlock();
      std::exception_ptr error;
      try {
        call(*hook);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      in_call_ = false;
      caller_.store(std::thread::id(), std::memory_order_relaxed);
      idle_.notify_all();
      if (error) std::rethrow_exception(error);
    }
  }

 private:
  void remove(std::uint64_t id) {
    MutexLock lock(mu_);
    std::erase_if(hooks_, [id](const auto& entry) { return entry.first == id; });
    if (in_call_ && called_from_hook()) return;
    while (in_call_) lock.wait(idle_);
  }

  mutable Mutex mu_;
  std::condition_variable idle_;
  List hooks_ ANNALS_GUARDED_BY(mu_);
  std::uint64_t next_id_ ANNALS_GUARDED_BY(mu_) = 1;
  bool in_call_ ANNALS_GUARDED_BY(mu_) = false;
  // The thread running a hook; set and cleared under mu_. Only that thread
  // can find its own id here, so a relaxed read answers called_from_hook().
  std::atomic<std::thread::id> caller_{};
};

}  // namespace annals::detail
