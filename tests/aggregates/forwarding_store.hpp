#pragma once
// A store that forwards everything to an in-memory store: tests derive from
// it and change what some reads hand out, as a tampered or failing backend
// would.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "annals/store/in_memory_event_store.hpp"

namespace annals::test_domain {

class ForwardingStore : public EventStore {
 public:
  InMemoryEventStore& inner() { return inner_; }

  std::vector<AppendResult> append(std::vector<StreamAppend> batch) override {
    return inner_.append(std::move(batch));
  }
  Cursor<RecordedEvent> read_stream(const std::string& stream_id, std::int64_t from_version,
                                    Direction direction, std::uint64_t max_count) const override {
    return inner_.read_stream(stream_id, from_version, direction, max_count);
  }
  Cursor<LinkedEvent> read_stream_linked(const std::string& stream_id, std::int64_t from_version,
                                         std::uint64_t max_count) const override {
    return inner_.read_stream_linked(stream_id, from_version, max_count);
  }
  Cursor<RecordedEvent> read_all(std::int64_t from_position, const EventFilter& filter,
                                 std::uint64_t max_count) const override {
    return inner_.read_all(from_position, filter, max_count);
  }
  std::int64_t stream_version(const std::string& stream_id) const override {
    return inner_.stream_version(stream_id);
  }
  std::int64_t head_position() const override { return inner_.head_position(); }
  Cursor<std::string> list_streams(const std::string& prefix) const override {
    return inner_.list_streams(prefix);
  }
  CommitListenerHandle add_commit_listener(CommitListener listener) override {
    return inner_.add_commit_listener(std::move(listener));
  }

 protected:
  InMemoryEventStore inner_;
};

}  // namespace annals::test_domain
