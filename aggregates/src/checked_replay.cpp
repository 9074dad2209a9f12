// for_each_checked(): the checked replay behind Repository's loads.
//
// Checking a link costs one SHA-256 of the event's chained bytes, about half
// of what reading the row costs. So a long replay splits the check: the
// caller's thread checks each event's version and predecessor, writes the
// bytes to hash into a batch, and applies the event; a second thread digests
// the batches and compares. Every event is still checked, and the call still
// fails with the first event that does not check. The second thread sees only
// the batches' bytes, never the events: sharing the events themselves between
// the two cores cost more than the hashing it saved (docs/performance.md).
// A short replay never starts the thread: that would cost more than the
// hashing it takes over.

#include <algorithm>
#include <array>
#include <cstring>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "annals/aggregates/checked_read.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/thread_annotations.hpp"
#include "history_link.hpp"

namespace annals {

namespace {

using detail::Mutex;
using detail::MutexLock;

// Events checked wholly on the caller's thread before a second thread is
// started: starting one costs about what checking a hundred events does.
constexpr std::size_t kCheckedInline = 256;
// Events handed over at a time, and how many batches may be in flight:
// enough that neither thread waits for the other in a steady replay.
constexpr std::size_t kBatchSize = 1024;
constexpr std::size_t kBatches = 3;
// Bytes a batch may hold before it is handed over, so that a stream of large
// events keeps at most about kBatches * kBatchBytes in flight.
constexpr std::size_t kBatchBytes = 256 * 1024;

constexpr std::uint64_t kNone = std::numeric_limits<std::uint64_t>::max();

// The bytes to hash of up to kBatchSize consecutive events (or kBatchBytes,
// whichever comes first), and what the hash of each must be.
struct Batch {
  struct Link {
    std::size_t end;  // of its bytes in `bytes`
    std::int64_t version;
    std::int64_t position;
    EventHash stored;
  };
  // Grows to the largest batch, never shrinks, and is not zeroed; kept from
  // one replay to the next (BatchPool): fresh memory on every load cost more
  // in page faults than the hashing saved.
  std::unique_ptr<char[]> bytes;
  std::size_t capacity = 0;
  std::size_t used = 0;
  std::vector<Link> links;

  void clear() noexcept {
    used = 0;
    links.clear();
  }
  bool full() const noexcept { return links.size() == kBatchSize || used >= kBatchBytes; }
  void add(const LinkedEvent& linked) {
    const RecordedEvent& e = linked.event;
    const std::size_t size = chained_bytes_size(e);
    if (capacity < used + size) {
      const std::size_t grown = std::max(capacity * 2, used + size);
      auto larger = std::make_unique_for_overwrite<char[]>(grown);
      if (used > 0) std::memcpy(larger.get(), bytes.get(), used);
      bytes = std::move(larger);
      capacity = grown;
    }
    write_chained_bytes(bytes.get() + used, *linked.previous_hash, e);
    used += size;
    links.push_back(Link{used, e.version, e.position, e.hash});
  }
};

using Batches = std::array<Batch, kBatches>;

// Batches kept between replays (see Batch::bytes), at most kKeptBatches sets
// for the whole process: replays running at once beyond that allocate their
// own and free them at the end, so what is kept stays a few MiB however many
// threads load.
constexpr std::size_t kKeptBatches = 2;
// A set grown past this (a replay of events of hundreds of KiB) is not kept.
constexpr std::size_t kKeptBytes = 4 * 1024 * 1024;

class BatchPool {
 public:
  std::unique_ptr<Batches> take() {
    {
      MutexLock lock(mu_);
      if (!kept_.empty()) {
        auto batches = std::move(kept_.back());
        kept_.pop_back();
        return batches;
      }
    }
    return std::make_unique<Batches>();
  }
  void give_back(std::unique_ptr<Batches> batches) noexcept {
    std::size_t bytes = 0;
    for (const Batch& b : *batches) bytes += b.capacity;
    if (bytes > kKeptBytes) return;  // grown by very large events: freed here
    MutexLock lock(mu_);
    if (kept_.size() >= kKeptBatches) return;  // freed here
    try {
      kept_.push_back(std::move(batches));
    } catch (...) {
      // no room to keep it: freed here
    }
  }

 private:
  Mutex mu_;
  std::vector<std::unique_ptr<Batches>> kept_ ANNALS_GUARDED_BY(mu_);
};

BatchPool& batch_pool() {
  static BatchPool pool;
  return pool;
}

// Lends a set of batches for one replay.
class LentBatches {
 public:
  LentBatches() : batches_(batch_pool().take()) {}
  ~LentBatches() { batch_pool().give_back(std::move(batches_)); }
  LentBatches(const LentBatches&) = delete;
  LentBatches& operator=(const LentBatches&) = delete;
  Batches& operator*() noexcept { return *batches_; }

 private:
  std::unique_ptr<Batches> batches_;
};

// Digests batches, in order, on a thread of its own. Events are counted from
// 0, the first event of the first batch posted. Used by one caller thread
// (post, wait_until) and its own.
class HashChecker {
 public:
  explicit HashChecker(std::string stream_id)
      : stream_id_(std::move(stream_id)), thread_([this] { run(); }) {}

  // Stops the thread; batches still queued are not checked (nobody waits for
  // them any more).
  ~HashChecker() {
    {
      MutexLock lock(mu_);
      stopping_ = true;
    }
    work_cv_.notify_one();
    thread_.join();
  }

  HashChecker(const HashChecker&) = delete;
  HashChecker& operator=(const HashChecker&) = delete;

  // Queues `batch`, whose links are events [first, first + links.size()). The
  // caller must not change it until wait_until() has covered them.
  void post(const Batch& batch, std::uint64_t first) {
    {
      MutexLock lock(mu_);
      queue_.push_back(Work{&batch, first});
    }
    work_cv_.notify_one();
  }

  // Waits until the first `n` events are checked. Throws the failure of the
  // first of them whose hash does not check.
  void wait_until(std::uint64_t n) {
    MutexLock lock(mu_);
    while (checked_ < n && failed_at_ >= n) lock.wait(done_cv_);
    if (failed_at_ < n) std::rethrow_exception(failure_);
  }

 private:
  struct Work {
    const Batch* batch;
    std::uint64_t first;
  };

  void run() {
    for (;;) {
      Work work{};
      {
        MutexLock lock(mu_);
        while (queue_.empty() && !stopping_) lock.wait(work_cv_);
        if (stopping_) return;
        work = queue_.front();
        queue_.pop_front();
      }
      std::uint64_t index = work.first;
      std::exception_ptr failure;
      std::size_t begin = 0;
      for (const Batch::Link& link : work.batch->links) {
        try {
          const EventHash computed = sha256(work.batch->bytes.get() + begin, link.end - begin);
          if (computed != link.stored) {
            throw detail::hash_mismatch(stream_id_, link.version, link.position, link.stored,
                                        computed);
          }
        } catch (...) {
          failure = std::current_exception();
          break;
        }
        begin = link.end;
        ++index;
      }
      {
        MutexLock lock(mu_);
        if (failure) {
          failure_ = failure;
          failed_at_ = index;
        } else {
          checked_ = index;
        }
      }
      done_cv_.notify_all();
      if (failure) return;  // every wait past it ends with this failure
    }
  }

  const std::string stream_id_;
  Mutex mu_;
  std::condition_variable work_cv_;  // work queued, or stopping
  std::condition_variable done_cv_;  // checked_ or failed_at_ moved
  std::deque<Work> queue_ ANNALS_GUARDED_BY(mu_);
  std::uint64_t checked_ ANNALS_GUARDED_BY(mu_) = 0;  // events [0, checked_) check
  std::uint64_t failed_at_ ANNALS_GUARDED_BY(mu_) = kNone;
  std::exception_ptr failure_ ANNALS_GUARDED_BY(mu_);
  bool stopping_ ANNALS_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once everything above is initialized
};

// Checks and applies up to `limit` more events of the cursor on this thread.
// Returns false once `apply` has stopped.
bool check_here(Cursor<LinkedEvent>& cursor, Cursor<LinkedEvent>::iterator& it,
                std::int64_t& next_version, const std::function<bool(const RecordedEvent&)>& apply,
                std::uint64_t limit = kNoLimit) {
  for (std::uint64_t n = 0; it != cursor.end() && n < limit; ++it, ++n) {
    check_history_link(*it, next_version);
    next_version = it->event.version + 1;
    if (!apply(it->event)) return false;
  }
  return true;
}

// Whether a second thread can run beside this one at all.
bool can_check_beside() {
  static const bool many = std::thread::hardware_concurrency() >= 2;
  return many;
}

}  // namespace

void for_each_checked(const EventStore& store, const std::string& stream_id,
                      std::int64_t from_version, std::uint64_t max_count,
                      const std::function<bool(const RecordedEvent&)>& apply) {
  Cursor<LinkedEvent> cursor = store.read_stream_linked(stream_id, from_version, max_count);
  auto it = cursor.begin();
  std::int64_t next_version = from_version;
  if (!check_here(cursor, it, next_version, apply, kCheckedInline) || it == cursor.end()) return;
  if (!can_check_beside()) {
    check_here(cursor, it, next_version, apply);
    return;
  }

  // Declared before the checker, so that they outlive its thread.
  LentBatches lent;
  Batches& batches = *lent;
  std::array<std::uint64_t, kBatches> batch_end{};  // 1 + the last event a batch held
  std::optional<HashChecker> checker;
  try {
    checker.emplace(stream_id);
  } catch (const std::system_error&) {
    check_here(cursor, it, next_version, apply);  // no thread to be had
    return;
  }

  std::uint64_t added = 0;   // events written into batches
  std::uint64_t posted = 0;  // of them, handed to the checker
  std::size_t b = 0;         // the batch being filled
  bool reclaim = true;       // batches[b] may still be the checker's
  const auto post = [&] {
    if (added == posted) return;
    checker->post(batches[b], posted);
    posted = added;
    batch_end[b] = added;
    b = (b + 1) % kBatches;
    reclaim = true;
  };
  try {
    for (; it != cursor.end(); ++it) {
      if (reclaim) {
        checker->wait_until(batch_end[b]);  // the checker is done with what it held
        batches[b].clear();
        reclaim = false;
      }
      detail::check_link_shape(*it, next_version);
      next_version = it->event.version + 1;
      batches[b].add(*it);
      ++added;
      if (!apply(it->event)) break;  // the event it stopped at is checked too
      if (batches[b].full()) post();
    }
  } catch (...) {
    // Whatever failed here (a version, a predecessor, the read, `apply`),
    // an event before it whose hash does not check fails the call instead,
    // as it would have in a replay that checked each event before the next:
    // a changed event is reported as changed, not as whatever its changed
    // content made `apply` throw.
    const std::exception_ptr error = std::current_exception();
    post();
    checker->wait_until(added);
    std::rethrow_exception(error);
  }
  post();
  checker->wait_until(added);
}

}  // namespace annals
