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

Json parse_payload(const RecordedEvent& event) {
  // Checked before parsing: the parse itself copes, but what a caller does
  // with the result (copy, dump) recurses once per level.
  if (json_text_nested_deeper_than(event.payload, kMaxJsonDepth)) {
    throw_decode_error(event, "payload is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  try {
    return Json::parse(event.payload);
  } catch (const std::exception& e) {
    throw_decode_error(event, e.what());
  }
}

}  // namespace annals::detail
