#include "annals/projections/executor.hpp"

#include "annals/core/error.hpp"

namespace annals {

void ManualExecutor::submit(std::function<void()> task) {
  detail::MutexLock lock(mu_);
  tasks_.push_back(std::move(task));
}

std::size_t ManualExecutor::run_pending() {
  std::size_t ran = 0;
  for (;;) {
    std::function<void()> task;
    {
      detail::MutexLock lock(mu_);
      if (tasks_.empty()) return ran;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
    ++ran;
  }
}

std::size_t ManualExecutor::pending() const {
  detail::MutexLock lock(mu_);
  return tasks_.size();
}

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t threads) {
  if (threads == 0) throw InvalidArgument("a thread pool needs at least one thread");
  workers_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

ThreadPoolExecutor::~ThreadPoolExecutor() {
  {
    detail::MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPoolExecutor::submit(std::function<void()> task) {
  {
    detail::MutexLock lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void ThreadPoolExecutor::work() {
  for (;;) {
    std::function<void()> task;
    {
      detail::MutexLock lock(mu_);
      while (!stopping_ && tasks_.empty()) lock.wait(cv_);
      if (tasks_.empty()) return;  // stopping, and everything submitted has run
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace annals
