// Running out of memory in the middle of a group commit. A program of its own:
// it replaces the global operator new to fail one chosen allocation.
//
// A single-event append runs without a savepoint of its own in a group
// (nothing it checks can fail after its INSERT). Memory can, in the
// bookkeeping after the row is written: the store must then fail the whole
// group rather than commit a row whose append reported an error.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>

#include "annals/core/clock.hpp"
#include "annals/core/event_id.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "store_fixtures.hpp"

namespace {

// Set on one thread: its next allocation of exactly `fail_size` bytes fails.
thread_local bool armed = false;
std::atomic<std::size_t> fail_size{0};

}  // namespace

// g++ 12 at -O2 takes the replacements' own free() for a mismatch with the
// operator new they replace.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
// Every plain form is replaced, so that whatever one allocates another frees
// (a sanitizer reports a mismatch otherwise); the aligned forms are left alone.
void* operator new(std::size_t size) {
  if (armed && size == fail_size.load()) {
    armed = false;
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return operator new(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return operator new(size, std::nothrow);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace annals {
namespace {

// The store reads the clock once per request, on the leader's thread. The
// first request (A) holds the leader there long enough for B to queue behind
// it; the second (B, in the same transaction) arms the allocation failure.
class GateClock final : public Clock {
 public:
  Timestamp now() const override {
    const int call = ++calls_;
    if (call == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (call == 2) armed = true;
    return SystemClock::shared()->now();
  }
  void reset() { calls_ = 0; }

 private:
  mutable std::atomic<int> calls_{0};
};

EventData event_with_id(std::string id) {
  EventData e;
  e.event_id = std::move(id);
  e.type = "test.Happened";
  return e;
}

class SqliteStoreOutOfMemory : public ::testing::Test {
 protected:
  std::filesystem::path db() const { return dir_ / "store.db"; }
  testing::TempDir dir_;
};

TEST_F(SqliteStoreOutOfMemory, AFailureAfterASingleEventsRowIsWrittenFailsItsWholeGroup) {
  auto clock = std::make_shared<GateClock>();
  SqliteStoreOptions options;
  options.clock = clock;
  SqliteEventStore store(db(), options);
  store.append("warm-up", ExpectedVersion::any(), {event_with_id(new_event_id())});
  clock->reset();
  // With a listener the leader collects the committed events: B's is the
  // second, and the vector growing to hold it is the allocation that fails.
  std::atomic<std::size_t> heard{0};
  auto listening = store.add_commit_listener(
      [&](std::span<const RecordedEvent> batch) { heard += batch.size(); });
  fail_size = 2 * sizeof(RecordedEvent);
  const std::int64_t head_before = store.head_position();

  std::string a_outcome, b_outcome;
  const auto append = [&](const char* stream, std::string& outcome) {
    try {
      store.append(stream, ExpectedVersion::no_stream(), {event_with_id(new_event_id())});
      outcome = "ok";
    } catch (const std::bad_alloc&) {
      outcome = "bad_alloc";
    } catch (const std::exception& e) {
      outcome = e.what();
    }
  };
  std::thread a([&] { append("a", a_outcome); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // A leads, inside its clock
  std::thread b([&] { append("b", b_outcome); });
  a.join();
  b.join();

  // B's row was written when memory ran out: the group (A and B) rolled back.
  EXPECT_EQ(b_outcome, "bad_alloc");
  EXPECT_EQ(a_outcome, "bad_alloc") << "B did not share A's transaction: the test proved less";
  EXPECT_EQ(store.stream_version("b"), 0);
  EXPECT_EQ(store.stream_version("a"), 0);
  EXPECT_EQ(store.head_position(), head_before);
  EXPECT_EQ(heard.load(), 0u);
  EXPECT_TRUE(store.verify().ok);

  // And the store carries on.
  fail_size = 0;
  store.append("b", ExpectedVersion::no_stream(), {event_with_id(new_event_id())});
  EXPECT_EQ(store.stream_version("b"), 1);
  EXPECT_TRUE(store.verify().ok);
}

}  // namespace
}  // namespace annals
