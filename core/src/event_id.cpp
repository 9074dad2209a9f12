#include "annals/core/event_id.hpp"

#include <pthread.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

#include "annals/core/error.hpp"
#include "annals/core/thread_annotations.hpp"

namespace annals {

namespace {

constexpr char kHex[] = "0123456789abcdef";

// Monotonic state shared by all threads: the last millisecond used and a
// 12-bit counter within it (RFC 9562, method 1: "fixed bit-length dedicated
// counter"). When the counter overflows we borrow the next millisecond, which
// keeps ids strictly increasing at the cost of running slightly ahead of the
// clock under extreme load.
struct V7State {
  detail::Mutex mu;
  std::uint64_t last_ms ANNALS_GUARDED_BY(mu) = 0;
  std::uint32_t counter ANNALS_GUARDED_BY(mu) = 0;
};

V7State& state() {
  static V7State s;
  return s;
}

// A forked child inherits its parent's generator state, and would then make
// the very ids its parent (or a sibling) makes next: the store would take the
// second append as an idempotent retry of the first and drop it. Every fork
// bumps this generation, and each thread reseeds when it sees a new one.
std::atomic<unsigned> fork_generation{0};

void after_fork_in_child() { fork_generation.fetch_add(1, std::memory_order_relaxed); }

std::mt19937_64& rng() {
  static const bool registered = [] {
    ::pthread_atfork(nullptr, nullptr, &after_fork_in_child);
    return true;
  }();
  (void)registered;
  struct Seeded {
    std::mt19937_64 engine;
    unsigned generation = 0;
    bool seeded = false;
  };
  thread_local Seeded state;
  const unsigned generation = fork_generation.load(std::memory_order_relaxed);
  if (!state.seeded || state.generation != generation) {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    state.engine.seed(seq);
    state.generation = generation;
    state.seeded = true;
  }
  return state.engine;
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

std::string new_event_id() {
  const auto now_ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  std::uint64_t ms;
  std::uint32_t counter;
  {
    auto& s = state();
    detail::MutexLock lock(s.mu);
    if (now_ms > s.last_ms) {
      s.last_ms = now_ms;
      // Start each millisecond at a random point in the lower half, leaving
      // room to count up without overflowing.
      s.counter = static_cast<std::uint32_t>(rng()() & 0x7FF);
    } else if (++s.counter > 0xFFF) {
      ++s.last_ms;
      s.counter = 0;
    }
    ms = s.last_ms;
    counter = s.counter;
  }
  const std::uint64_t rand_b = rng()();

  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  b[6] = static_cast<std::uint8_t>(0x70 | ((counter >> 8) & 0x0F));
  b[7] = static_cast<std::uint8_t>(counter & 0xFF);
  for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<std::uint8_t>(rand_b >> (56 - 8 * i));
  b[8] = static_cast<std::uint8_t>(0x80 | (b[8] & 0x3F));

  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0x0F]);
  }
  return out;
}

bool is_valid_event_id(std::string_view text) noexcept {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dash_place = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_place ? text[i] != '-' : !is_hex(text[i])) return false;
  }
  return true;
}

std::string normalize_event_id(std::string_view text) {
  if (!is_valid_event_id(text)) {
    std::string shown(text.substr(0, 64));
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) c = '?';
    }
    throw InvalidArgument("event id '" + shown +
                          "' is not a UUID (want 8-4-4-4-12 hex digits, e.g. "
                          "0190a6e4-7c1e-7a3b-9f00-1234567890ab)");
  }
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace annals
