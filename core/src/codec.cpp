#include "annals/core/codec.hpp"

namespace annals::detail {

namespace {
std::string where(const RecordedEvent& event) {
  std::string out = "event '" + event.type + "'";
  if (!event.stream_id.empty()) {
    out += " in stream '" + event.stream_id + "' at version " + std::to_string(event.version);
  }
  return out;
}
}  // namespace

void throw_decode_error(const RecordedEvent& event, std::string_view why) {
  throw SerializationError("cannot decode " + where(event) + ": " + std::string(why));
}

void throw_schema_mismatch(const RecordedEvent& event, std::string_view type, int stored,
                           int expected) {
  throw SerializationError("cannot decode " + where(event) + ": type '" + std::string(type) +
                           "' is at schema version " + std::to_string(stored) +
                           " but the decoder expects " + std::to_string(expected) +
                           " (register an upcaster)");
}

}  // namespace annals::detail
