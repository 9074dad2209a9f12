#include "annals/core/codec.hpp"

#include <simdjson.h>

#include "annals/core/internal/json_validation.hpp"

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

namespace {

// The decoder's own parser per thread, configured as the validator's in
// event.cpp (docs/adr/0005-simdjson-validation.md): capacity kJsonFastPathLimit,
// so its buffers stay under about 250 KB per thread, and max_depth
// kMaxJsonDepth, so whatever it accepts nlohmann accepts too. It is separate
// from the validator's because a member visitor runs while the document is
// alive and must be free to validate other text.
struct DecodeParser {
  simdjson::dom::parser parser{kJsonFastPathLimit};
  bool ready = parser.allocate(kJsonFastPathLimit, kMaxJsonDepth) == simdjson::SUCCESS;
};

ScalarView scalar_of(simdjson::dom::element value) {
  ScalarView out;
  using Type = simdjson::dom::element_type;
  switch (value.type()) {
    case Type::NULL_VALUE:
      out.kind = ScalarView::Kind::kNull;
      break;
    case Type::BOOL:
      out.kind = ScalarView::Kind::kBool;
      out.boolean = value.get_bool().value_unsafe();
      break;
    case Type::INT64:
      out.kind = ScalarView::Kind::kInt64;
      out.int64 = value.get_int64().value_unsafe();
      break;
    case Type::UINT64:
      out.kind = ScalarView::Kind::kUint64;
      out.uint64 = value.get_uint64().value_unsafe();
      break;
    case Type::DOUBLE:
      out.kind = ScalarView::Kind::kDouble;
      out.number = value.get_double().value_unsafe();
      break;
    case Type::STRING:
      out.kind = ScalarView::Kind::kString;
      out.string = value.get_string().value_unsafe();
      break;
    case Type::ARRAY:
    case Type::OBJECT:
      out.kind = ScalarView::Kind::kOther;
      break;
  }
  return out;
}

}  // namespace

bool visit_object_members(std::string_view text, MemberVisitor visit, void* context) {
  // Empty text is invalid anyway, and its data() may be null, which simdjson
  // would hand to memcpy.
  if (text.empty() || text.size() > kJsonFastPathLimit) return false;
  thread_local DecodeParser local;
  if (!local.ready) return false;
  simdjson::dom::element root;
  // realloc_if_needed: a string_view promises no readable padding after the
  // text, so simdjson copies it into its own padded buffer.
  if (local.parser.parse(text.data(), text.size(), true).get(root) != simdjson::SUCCESS) {
    return false;
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) return false;
  for (const simdjson::dom::key_value_pair member : object) {
    if (!visit(context, member.key, scalar_of(member.value))) return false;
  }
  return true;
}

}  // namespace annals::detail
