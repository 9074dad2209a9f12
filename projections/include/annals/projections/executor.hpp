#pragma once
/// Executors decide where the dispatcher runs handlers.
///
/// - InlineExecutor: at once, on the thread that publishes (after the commit).
/// - ThreadPoolExecutor: on worker threads; the dispatcher still gives each
///   subscriber its events in position order, one at a time.
/// - ManualExecutor: queued until run_pending() is called; for tests.
///
/// Thread safety: submit() may be called from any thread on every executor.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "annals/core/thread_annotations.hpp"

namespace annals {

class Executor {
 public:
  virtual ~Executor() = default;
  /// Runs `task` some time later (or now). Tasks must not throw.
  virtual void submit(std::function<void()> task) = 0;
};

class InlineExecutor final : public Executor {
 public:
  void submit(std::function<void()> task) override { task(); }
};

/// Tasks wait until run_pending().
class ManualExecutor final : public Executor {
 public:
  void submit(std::function<void()> task) override;
  /// Runs queued tasks, including those they queue, until none is left.
  /// Returns how many ran.
  std::size_t run_pending();
  std::size_t pending() const;

 private:
  mutable detail::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ANNALS_GUARDED_BY(mu_);
};

/// A fixed set of worker threads. The destructor runs every task already
/// submitted, then joins the workers.
class ThreadPoolExecutor final : public Executor {
 public:
  /// Throws: InvalidArgument if threads == 0.
  explicit ThreadPoolExecutor(std::size_t threads);
  ~ThreadPoolExecutor() override;
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

  void submit(std::function<void()> task) override;

 private:
  void work();

  detail::Mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_ ANNALS_GUARDED_BY(mu_);
  bool stopping_ ANNALS_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace annals
