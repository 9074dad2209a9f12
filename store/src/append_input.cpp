#include "append_input.hpp"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/event_id.hpp"
#include "annals/core/stream_id.hpp"

namespace annals::detail {

void prepare_batch(std::vector<StreamAppend>& batch, std::vector<bool>* generated_first_ids,
                   bool unique_index) {
  if (batch.empty()) throw InvalidArgument("append needs at least one stream");
  if (generated_first_ids != nullptr) generated_first_ids->assign(batch.size(), false);
  std::size_t part_index = 0;
  std::unordered_set<std::string_view> streams;
  std::unordered_map<std::string_view, std::string_view> ids;  // id -> stream
  // The events of one command usually carry the same metadata (Repository
  // gives each the command's context), and parsing JSON is the largest cost of
  // an append after SQLite's own: each distinct metadata text is validated
  // once per append, not once per event (docs/performance.md).
  std::optional<std::string_view> valid_metadata;
  // With a unique index behind it, only given ids need the duplicate check
  // below (see the header), which for a large batch of generated ids cost a
  // map node per event.
  std::vector<bool> checked;
  std::size_t checked_count = 0;
  for (auto& part : batch) {
    validate_stream_id(part.stream_id);
    if (!streams.insert(part.stream_id).second) {
      throw InvalidArgument("stream '" + part.stream_id +
                            "' appears more than once in one append; put its events together");
    }
    if (part.events.empty()) {
      throw InvalidArgument("append to stream '" + part.stream_id + "' has no events");
    }
    for (std::size_t i = 0; i < part.events.size(); ++i) {
      auto& event = part.events[i];
      const auto what = [&](const char* field) {
        return std::string(field) + " of event " + std::to_string(i + 1) + " for stream '" +
               part.stream_id + "'";
      };
      try {
        validate_event_type(event.type);
      } catch (const InvalidArgument& e) {
        throw InvalidArgument(what("type") + ": " + e.what());
      }
      if (event.schema_version < 1) {
        throw InvalidArgument(what("schema version") + " must be >= 1, got " +
                              std::to_string(event.schema_version));
      }
      const bool check = !unique_index || !event.event_id.empty();
      checked.push_back(check);
      if (check) ++checked_count;
      if (event.event_id.empty()) {
        event.event_id = new_event_id();
        if (i == 0 && generated_first_ids != nullptr) (*generated_first_ids)[part_index] = true;
      } else {
        try {
          event.event_id = normalize_event_id(event.event_id);
        } catch (const InvalidArgument& e) {
          throw InvalidArgument(what("event id") + ": " + e.what());
        }
      }
      // The input's name is built only when it is bad: it costs an allocation.
      if (auto problem = json_object_problem(event.payload)) {
        throw InvalidArgument(what("payload") + " " + *problem);
      }
      if (valid_metadata != std::string_view(event.metadata)) {
        if (auto problem = json_object_problem(event.metadata)) {
          throw InvalidArgument(what("metadata") + " " + *problem);
        }
        valid_metadata = event.metadata;  // not modified again before the append
      }
    }
    ++part_index;
  }
  // Ids are final now (no more reallocation of the strings), so views are safe.
  if (checked_count < 2) return;
  ids.reserve(checked_count);  // no rehashing while a batch of thousands is checked
  std::size_t index = 0;
  for (const auto& part : batch) {
    for (const auto& event : part.events) {
      if (!checked[index++]) continue;
      auto [it, inserted] = ids.emplace(event.event_id, part.stream_id);
      if (!inserted) {
        throw DuplicateEventId(event.event_id, part.stream_id,
                               "it appears twice in the same append");
      }
    }
  }
}

const char* differing_field(const EventData& given, std::string_view type, int schema_version,
                            std::string_view payload, std::string_view metadata) noexcept {
  if (given.type != type) return "type";
  if (given.schema_version != schema_version) return "schema version";
  if (given.payload != payload) return "payload";
  if (given.metadata != metadata) return "metadata";
  return nullptr;
}

DuplicateEventId content_differs(const std::string& event_id, const std::string& stream_id,
                                 std::int64_t version, const char* field) {
  return DuplicateEventId(event_id, stream_id,
                          "stored in stream '" + stream_id + "' at version " +
                              std::to_string(version) + ", but the content differs (" + field +
                              "), so this is not a retry of that append");
}

void validate_snapshot(const Snapshot& snapshot) {
  validate_stream_id(snapshot.stream_id);
  const std::string what = "snapshot of stream '" + snapshot.stream_id + "'";
  if (snapshot.version < 1) {
    throw InvalidArgument(what + ": version must be >= 1, got " + std::to_string(snapshot.version));
  }
  if (snapshot.schema_version < 1) {
    throw InvalidArgument(what + ": schema version must be >= 1, got " +
                          std::to_string(snapshot.schema_version));
  }
  if (!Json::accept(snapshot.state)) throw InvalidArgument(what + ": state is not valid JSON");
}

RecordedEvent record(EventData&& data, const std::string& stream_id, std::int64_t version,
                     std::int64_t position, Timestamp recorded_at, const EventHash& previous) {
  RecordedEvent event;
  event.stream_id = stream_id;
  event.version = version;
  event.position = position;
  event.event_id = std::move(data.event_id);
  event.type = std::move(data.type);
  event.schema_version = data.schema_version;
  event.payload = std::move(data.payload);
  event.metadata = std::move(data.metadata);
  event.recorded_at = recorded_at;
  event.hash = chain_hash(previous, event);
  return event;
}

std::string prefix_upper_bound(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xFF) prefix.pop_back();
  if (!prefix.empty())
    prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

void validate_read_stream(const std::string& stream_id, std::int64_t from_version,
                          Direction direction) {
  validate_stream_id(stream_id);
  if (direction == Direction::forward ? from_version < 1 : from_version < 0) {
    throw InvalidArgument("read of stream '" + stream_id + "' from version " +
                          std::to_string(from_version) + ": versions start at 1");
  }
}

}  // namespace annals::detail
