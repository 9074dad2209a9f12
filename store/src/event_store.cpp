#include "annals/store/event_store.hpp"

#include <algorithm>
#include <map>
#include <string>

#include "annals/core/event_hash.hpp"
#include "annals/core/stream_id.hpp"

namespace annals {

bool EventFilter::matches(const RecordedEvent& event) const {
  if (!types.empty() && std::find(types.begin(), types.end(), event.type) == types.end()) {
    return false;
  }
  if (!stream_prefix.empty() && !event.stream_id.starts_with(stream_prefix)) return false;
  if (!category.empty() && stream_category(event.stream_id) != category) return false;
  return true;
}

namespace {

// read_stream_linked() for any store: each event of the stream, then its
// predecessor by position through read_all().
class LinkedSource final : public Cursor<LinkedEvent>::Source {
 public:
  LinkedSource(const EventStore& store, Cursor<RecordedEvent> events)
      : store_(store), events_(std::move(events)) {}

  bool fetch(std::vector<LinkedEvent>& out, std::size_t max) override {
    while (out.size() < max) {
      auto event = events_.next();
      if (!event) return false;
      std::optional<EventHash> previous = EventHash{};
      if (event->position > 1) {
        auto before = store_.read_all(event->position - 1, {}, 1).next();
        previous = before && before->position == event->position - 1
                       ? std::optional<EventHash>(before->hash)
                       : std::nullopt;
      }
      out.push_back(LinkedEvent{std::move(*event), previous});
    }
    return true;
  }

 private:
  const EventStore& store_;
  Cursor<RecordedEvent> events_;
};

}  // namespace

std::unique_ptr<CommitWatcher> EventStore::watch_commits(CommitWatcherOptions) const {
  return nullptr;
}

Cursor<LinkedEvent> EventStore::read_stream_linked(const std::string& stream_id,
                                                   std::int64_t from_version,
                                                   std::uint64_t max_count) const {
  return Cursor<LinkedEvent>(
      std::make_unique<LinkedSource>(
          *this, read_stream(stream_id, from_version, Direction::forward, max_count)),
      256, max_count);
}

VerifyResult EventStore::verify(const VerifyProgress& progress) const {
  // How often the progress callback hears of the walk: often enough for a
  // bar to move, rarely enough to cost nothing.
  constexpr std::int64_t kProgressEvery = 256;
  const std::int64_t total = progress ? head_position() : 0;
  ChainVerifier verifier;
  for (const RecordedEvent& event : read_all()) {
    if (!verifier.feed(event)) break;
    if (progress && verifier.checked() % kProgressEvery == 0) progress(verifier.checked(), total);
  }
  if (progress) progress(verifier.checked(), total);
  VerifyResult result;
  result.ok = verifier.ok();
  result.events_checked = verifier.checked();
  result.first_bad_position = verifier.failed_at();
  result.reason = verifier.reason();
  return result;
}

StoreStats EventStore::stats() const {
  StoreStats stats;
  // Maps keep the names sorted; they grow with distinct names only.
  std::map<std::string, std::int64_t> types;
  std::map<std::string, std::int64_t> categories;
  for (const RecordedEvent& event : read_all()) {
    ++stats.events;
    stats.head_position = event.position;
    if (!stats.first_recorded_at) stats.first_recorded_at = event.recorded_at;
    stats.last_recorded_at = event.recorded_at;
    ++types[event.type];
    ++categories[std::string(stream_category(event.stream_id))];
  }
  for (const std::string& stream : list_streams()) {
    (void)stream;
    ++stats.streams;
  }
  stats.types.assign(types.begin(), types.end());
  stats.categories.assign(categories.begin(), categories.end());
  return stats;
}

}  // namespace annals
