#pragma once
/// The event model: what an append takes (EventData) and what a read gives
/// back (RecordedEvent).
///
/// Payload and metadata travel as JSON text, exactly the bytes that are stored
/// and hashed. Keeping text on the hot paths means an append of pre-serialized
/// events and a replay that only forwards events never parse JSON; call
/// payload_json()/metadata_json() when you want the parsed value, or use the
/// typed codec in annals/core/codec.hpp. See docs/adr/0002-json-as-text.md.
///
/// Thread safety: plain value types.

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "annals/core/clock.hpp"

namespace annals {

using Json = nlohmann::json;

/// An event to append.
struct EventData {
  /// A UUID; generated (UUIDv7) when left empty. Reusing the ids of an earlier
  /// append at the same place, with the same content, makes the append an
  /// idempotent retry; with other content it is a DuplicateEventId.
  std::string event_id;
  /// Stable name, e.g. "bank.AccountOpened"; same rules as a stream id.
  std::string type;
  /// Version of the payload's schema, >= 1; upcasters move old versions forward.
  int schema_version = 1;
  /// A JSON object, as text.
  std::string payload = "{}";
  /// A JSON object, as text: correlation_id, causation_id, actor, and anything else.
  std::string metadata = "{}";

  /// Builds an event from parsed JSON. Throws: InvalidArgument if `payload` or
  /// `metadata` is not an object, is nested deeper than kMaxJsonDepth or holds
  /// invalid UTF-8.
  static EventData from_json(std::string type, const Json& payload,
                             const Json& metadata = Json::object(), int schema_version = 1);
};

/// SHA-256 digest of an event chained to its predecessor (annals/core/event_hash.hpp).
using EventHash = std::array<std::uint8_t, 32>;

/// An event as stored.
struct RecordedEvent {
  std::string stream_id;
  std::int64_t version = 0;   ///< position in its stream; the first event is 1
  std::int64_t position = 0;  ///< global order in the store; the first event is 1
  std::string event_id;
  std::string type;
  int schema_version = 1;
  std::string payload;   ///< JSON object text, byte for byte as appended
  std::string metadata;  ///< JSON object text, byte for byte as appended
  /// When the store wrote it: the store's clock, but never earlier than the
  /// event at the position before (non-decreasing along positions).
  Timestamp recorded_at{};
  EventHash hash{};  ///< chain hash as stored (all zero for stores without one)

  /// Throws: SerializationError naming the event if the stored text is not
  /// JSON or is nested deeper than kMaxJsonDepth.
  Json payload_json() const;
  Json metadata_json() const;

  /// The string under "correlation_id" / "causation_id" in the metadata
  /// (written there by aggregates' CommandContext), for a handler to log or
  /// group by; empty when the key is absent or its value is not a string.
  /// Parses the metadata on each call.
  /// Throws: SerializationError as metadata_json().
  std::string correlation_id() const;
  std::string causation_id() const;
};

/// Deepest nesting of objects and arrays accepted in a payload or metadata,
/// the top-level object counting as 1. Deeper JSON is refused with an error
/// wherever Annals meets it (append, from_json, payload_json, decode): it is
/// never handed to nlohmann's serializer or copy, which recurse once per level
/// and would exhaust the stack on hostile input.
inline constexpr int kMaxJsonDepth = 512;

/// Checks that `text` is a JSON object (valid UTF-8, no byte order mark
/// before it, nothing after it, at most kMaxJsonDepth levels deep). Every
/// text it accepts is also accepted by SQLite's json_valid() (checked by
/// tests/store and the fuzz target fuzz_json_object).
/// `what` names the input in the error ("payload of event 3 for stream 'a-1'").
/// Throws: InvalidArgument.
void validate_json_object(std::string_view text, std::string_view what);

/// The same check without throwing: nullopt when `text` is a JSON object,
/// otherwise what is wrong, phrased to follow the input's name ("is not valid
/// JSON: ...", "must be a JSON object"). For hot paths that name the input
/// only when it is bad. Throws: nothing but std::bad_alloc.
/// Text up to 16 KiB is checked first with simdjson, and whatever simdjson
/// does not accept is decided by nlohmann's parser, so what is accepted (and
/// every message) is nlohmann's; longer text goes to nlohmann's streaming
/// parser alone.
/// Thread safety: safe to call from any number of threads. Each calling
/// thread keeps its own simdjson parser, whose capacity is capped at 16 KiB
/// of text: at most about 250 KB of memory per thread, freed when the thread
/// exits. The same holds for validate_json_object, which calls this.
std::optional<std::string> json_object_problem(std::string_view text);

namespace detail {
/// True if JSON `text` opens more than `max_depth` objects or arrays inside
/// each other. A byte scan (strings and escapes skipped), no parse: cheap
/// enough to run before every parse of stored text. Does not validate.
bool json_text_nested_deeper_than(std::string_view text, int max_depth) noexcept;
}  // namespace detail

}  // namespace annals
