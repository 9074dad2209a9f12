#pragma once
/// Clang thread-safety annotations, and a mutex clang can reason about.
///
/// The macros say in code which lock guards which member (ANNALS_GUARDED_BY),
/// which functions must be called with it held (ANNALS_REQUIRES) or without
/// it (ANNALS_EXCLUDES); clang's -Wthread-safety then proves the locking (the
/// `clang-tsa` preset). On other compilers they expand to nothing.
///
/// libstdc++'s std::mutex carries no annotations, so guarded members name an
/// annals::detail::Mutex and are locked through annals::detail::MutexLock;
/// both cost exactly what std::mutex and std::unique_lock cost.
///
/// SharedMutex (std::shared_mutex) is locked through WriterLock (exclusive)
/// or ReaderLock (shared); members it guards are read under either.
///
/// Thread safety: Mutex and SharedMutex are mutexes; a lock object is used by
/// one thread.

#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#if defined(__clang__)
#define ANNALS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define ANNALS_THREAD_ANNOTATION(x)
#endif

#define ANNALS_CAPABILITY(name) ANNALS_THREAD_ANNOTATION(capability(name))
#define ANNALS_SCOPED_CAPABILITY ANNALS_THREAD_ANNOTATION(scoped_lockable)
#define ANNALS_GUARDED_BY(mu) ANNALS_THREAD_ANNOTATION(guarded_by(mu))
#define ANNALS_PT_GUARDED_BY(mu) ANNALS_THREAD_ANNOTATION(pt_guarded_by(mu))
#define ANNALS_REQUIRES(...) ANNALS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ANNALS_REQUIRES_SHARED(...) \
  ANNALS_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define ANNALS_EXCLUDES(...) ANNALS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ANNALS_ACQUIRE(...) ANNALS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ANNALS_ACQUIRE_SHARED(...) ANNALS_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define ANNALS_RELEASE(...) ANNALS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define ANNALS_RELEASE_SHARED(...) ANNALS_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define ANNALS_TRY_ACQUIRE(...) ANNALS_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define ANNALS_RETURN_CAPABILITY(x) ANNALS_THREAD_ANNOTATION(lock_returned(x))
#define ANNALS_NO_THREAD_SAFETY_ANALYSIS ANNALS_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace annals::detail {

/// std::mutex, annotated as a capability.
class ANNALS_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ANNALS_ACQUIRE() { mu_.lock(); }
  void unlock() ANNALS_RELEASE() { mu_.unlock(); }
  bool try_lock() ANNALS_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  /// Tells the analysis that the calling thread holds this mutex (checked by
  /// nothing at run time).
  void assert_held() const ANNALS_THREAD_ANNOTATION(assert_capability(this)) {}

 private:
  friend class MutexLock;
  std::mutex mu_;
};

/// std::unique_lock over a Mutex: locks in the constructor, unlocks in the
/// destructor if still held; unlock() and lock() in between, and wait() on a
/// std::condition_variable (which releases and retakes the mutex).
class ANNALS_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ANNALS_ACQUIRE(mu) : lock_(mu.mu_) {}
  ~MutexLock() ANNALS_RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void lock() ANNALS_ACQUIRE() { lock_.lock(); }
  void unlock() ANNALS_RELEASE() { lock_.unlock(); }
  bool owns_lock() const noexcept { return lock_.owns_lock(); }

  /// cv.wait(lock, ...) on the underlying lock: the mutex is held again when
  /// these return.
  void wait(std::condition_variable& cv) { cv.wait(lock_); }
  template <class Predicate>
  void wait(std::condition_variable& cv, Predicate pred) {
    cv.wait(lock_, std::move(pred));
  }
  template <class Clock, class Duration>
  std::cv_status wait_until(std::condition_variable& cv,
                            const std::chrono::time_point<Clock, Duration>& deadline) {
    return cv.wait_until(lock_, deadline);
  }
  template <class Rep, class Period>
  std::cv_status wait_for(std::condition_variable& cv,
                          const std::chrono::duration<Rep, Period>& timeout) {
    return cv.wait_for(lock_, timeout);
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

/// std::shared_mutex, annotated as a capability that can be held shared.
class ANNALS_CAPABILITY("mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void lock() ANNALS_ACQUIRE() { mu_.lock(); }
  void unlock() ANNALS_RELEASE() { mu_.unlock(); }
  void lock_shared() ANNALS_ACQUIRE_SHARED() { mu_.lock_shared(); }
  void unlock_shared() ANNALS_RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

/// Holds a SharedMutex exclusively for its lifetime.
class ANNALS_SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& mu) ANNALS_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~WriterLock() ANNALS_RELEASE() { mu_.unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex& mu_;
};

/// Holds a SharedMutex shared for its lifetime.
class ANNALS_SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& mu) ANNALS_ACQUIRE_SHARED(mu) : mu_(mu) { mu_.lock_shared(); }
  ~ReaderLock() ANNALS_RELEASE() { mu_.unlock_shared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex& mu_;
};

}  // namespace annals::detail
