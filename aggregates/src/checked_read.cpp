#include "annals/aggregates/checked_read.hpp"

#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include "annals/core/event_hash.hpp"
#include "history_link.hpp"

namespace annals {

namespace {

// Pages through read_stream_linked(), checking each event before handing it on.
class CheckedSource final : public Cursor<RecordedEvent>::Source {
 public:
  CheckedSource(Cursor<LinkedEvent> linked, std::int64_t from_version)
      : linked_(std::move(linked)), next_version_(from_version) {}

  bool fetch(std::vector<RecordedEvent>& out, std::size_t max) override {
    if (failure_) std::rethrow_exception(failure_);
    while (out.size() < max) {
      auto linked = linked_.next();
      if (!linked) return false;
      try {
        // Versions are dense: the first event read is from_version itself.
        check_history_link(*linked, next_version_);
      } catch (const HistoryIntegrityError&) {
        // The events before it are good: hand them out first, fail after.
        if (out.empty()) throw;
        failure_ = std::current_exception();
        return true;
      }
      next_version_ = linked->event.version + 1;
      out.push_back(std::move(linked->event));
    }
    return true;
  }

 private:
  Cursor<LinkedEvent> linked_;
  std::int64_t next_version_;
  std::exception_ptr failure_;
};

}  // namespace

Cursor<RecordedEvent> read_stream_checked(const EventStore& store, const std::string& stream_id,
                                          std::int64_t from_version, std::uint64_t max_count) {
  return Cursor<RecordedEvent>(
      std::make_unique<CheckedSource>(store.read_stream_linked(stream_id, from_version, max_count),
                                      from_version),
      256, max_count);
}

namespace detail {

void check_link_shape(const LinkedEvent& linked, std::int64_t expected_version) {
  const RecordedEvent& e = linked.event;
  if (expected_version != 0 && e.version != expected_version) {
    throw HistoryIntegrityError(e.stream_id, e.version, e.position,
                                "version " + std::to_string(expected_version) + " is missing");
  }
  if (!linked.previous_hash) {
    throw HistoryIntegrityError(
        e.stream_id, e.version, e.position,
        "the event before it (position " + std::to_string(e.position - 1) + ") is missing");
  }
}

HistoryIntegrityError hash_mismatch(const std::string& stream_id, std::int64_t version,
                                    std::int64_t position, const EventHash& stored,
                                    const EventHash& computed) {
  return HistoryIntegrityError(
      stream_id, version, position,
      "its stored hash " + to_hex(stored) + " does not match " + to_hex(computed) +
          ", the hash of its content chained to the event before it (position " +
          std::to_string(position - 1) + ")");
}

}  // namespace detail

void check_history_link(const LinkedEvent& linked, std::int64_t expected_version) {
  detail::check_link_shape(linked, expected_version);
  const RecordedEvent& e = linked.event;
  const EventHash computed = chain_hash(*linked.previous_hash, e);
  if (computed != e.hash) {
    throw detail::hash_mismatch(e.stream_id, e.version, e.position, e.hash, computed);
  }
}

}  // namespace annals
