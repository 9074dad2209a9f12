#include "annals/store/internal/group_commit.hpp"

#include <algorithm>
#include <thread>

#include "annals/core/error.hpp"

namespace annals::detail {

bool CommitGroup::take_more() { return scheduler_.take_more(*this); }

void CommitGroup::commit_took(std::chrono::steady_clock::duration d) noexcept {
  scheduler_.last_commit_ = d;
}

CommitScheduler::CommitScheduler(GroupWriter& writer, std::size_t max_group_size)
    : writer_(writer), max_group_size_(std::max<std::size_t>(max_group_size, 1)) {}

void CommitScheduler::submit(CommitRequest& request) {
  MutexLock lock(mu_);
  if (closed_) {
    lock.unlock();
    abandon();
    throw StorageError("cannot append: the store is shutting down");
  }
  queue_.push_back(&request);
  if (leader_waiting_) gather_cv_.notify_one();
  while (!request.done.load(std::memory_order_acquire)) {
    if (leader_active_) {
      // Sleeps on the round counter, not on a condition variable: woken, a
      // follower whose request is done returns without the mutex, so seven
      // of them do not file through it one by one after a commit.
      const std::uint32_t round = rounds_.load(std::memory_order_relaxed);
      lock.unlock();
      rounds_.wait(round, std::memory_order_acquire);
      if (request.done.load(std::memory_order_acquire)) return;
      lock.lock();
      continue;
    }
    leader_active_ = true;
    CommitGroup group = plan_group(std::chrono::steady_clock::now());
    std::exception_ptr error;
    try {
      take_queued(group.requests_);
    } catch (...) {
      error = std::current_exception();  // no memory for the group
    }
    if (!error) {
      lock.unlock();
      writer_.write_group(group);
      lock.lock();
    } else {
      // Nothing was written: the requests taken so far, and this thread's
      // own if it is still queued, get the error, so that no appender waits
      // for a round that will not happen.
      for (CommitRequest* r : group.requests_) r->error = error;
      if (const auto own = std::find(queue_.begin(), queue_.end(), &request); own != queue_.end()) {
        queue_.erase(own);
        request.error = error;
        request.done.store(true, std::memory_order_release);
        arriving_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    for (CommitRequest* r : group.requests_) r->done.store(true, std::memory_order_release);
    arriving_.fetch_sub(group.requests_.size(), std::memory_order_relaxed);
    // The threads of this group are likely to append again at once, and
    // those queued are waiting: together, the next group's likely size.
    expected_group_ = group.requests_.size() + queue_.size();
    leader_active_ = false;
    rounds_.fetch_add(1, std::memory_order_release);
    lock.unlock();
    rounds_.notify_all();
    lock.lock();
  }
}

void CommitScheduler::shutdown() {
  MutexLock lock(mu_);
  closed_ = true;
  while (!queue_.empty() || leader_active_) {
    // A queued request's thread leads the next round once this one ends.
    const std::uint32_t round = rounds_.load(std::memory_order_relaxed);
    lock.unlock();
    rounds_.wait(round, std::memory_order_acquire);
    lock.lock();
  }
}

std::size_t CommitScheduler::queued() const {
  MutexLock lock(mu_);
  return queue_.size();
}

CommitGroup CommitScheduler::plan_group(std::chrono::steady_clock::time_point now) {
  if (gather_timed_out_) {
    gather_timed_out_ = false;
    return CommitGroup(*this, 0, now);
  }
  const std::size_t want = std::min(
      max_group_size_, std::max(expected_group_, arriving_.load(std::memory_order_relaxed)));
  const auto window = std::min<std::chrono::steady_clock::duration>(kMaxGather, last_commit_ / 2);
  return CommitGroup(*this, want, now + window);
}

void CommitScheduler::take_queued(std::vector<CommitRequest*>& group) {
  while (!queue_.empty() && group.size() < max_group_size_) {
    group.push_back(queue_.front());
    queue_.pop_front();
  }
}

bool CommitScheduler::take_more(CommitGroup& group) {
  const auto poll_until = std::chrono::steady_clock::now() + kMaxPoll;
  MutexLock lock(mu_);
  for (;;) {
    const std::size_t before = group.requests_.size();
    take_queued(group.requests_);
    if (group.requests_.size() > before) return true;
    if (group.requests_.size() >= std::min(group.want_, max_group_size_)) return false;
    if (std::chrono::steady_clock::now() >= group.deadline_) {
      gather_timed_out_ = true;
      return false;
    }
    if (std::chrono::steady_clock::now() < poll_until) {
      lock.unlock();
      std::this_thread::yield();  // to an appender on its way, if one shares this core
      lock.lock();
    } else {
      leader_waiting_ = true;
      lock.wait_until(gather_cv_, group.deadline_);
      leader_waiting_ = false;
    }
  }
}

}  // namespace annals::detail
