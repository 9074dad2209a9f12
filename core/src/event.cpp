#include "annals/core/event.hpp"

#include <simdjson.h>

#include <utility>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/internal/json_validation.hpp"

namespace annals {

namespace {
// Walks `root` with an explicit stack (no recursion, whatever the depth).
bool nested_deeper_than(const Json& root, int max_depth) {
  std::vector<std::pair<const Json*, int>> todo{{&root, 1}};
  while (!todo.empty()) {
    const auto [value, depth] = todo.back();
    todo.pop_back();
    if (!value->is_structured()) continue;
    if (depth > max_depth) return true;
    for (const auto& child : *value) {
      if (child.is_structured()) todo.emplace_back(&child, depth + 1);
    }
  }
  return false;
}
}  // namespace

namespace detail {
bool json_text_nested_deeper_than(std::string_view text, int max_depth) noexcept {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}
}  // namespace detail

EventData EventData::from_json(std::string type, const Json& payload, const Json& metadata,
                               int schema_version) {
  if (!payload.is_object()) {
    throw InvalidArgument("payload of event type '" + type + "' must be a JSON object, got " +
                          payload.type_name());
  }
  if (!metadata.is_object()) {
    throw InvalidArgument("metadata of event type '" + type + "' must be a JSON object, got " +
                          metadata.type_name());
  }
  // Before dump(), which recurses once per level.
  for (const auto& [value, field] : {std::pair{&payload, "payload"}, std::pair{&metadata, "metadata"}}) {
    if (nested_deeper_than(*value, kMaxJsonDepth)) {
      throw InvalidArgument(std::string(field) + " of event type '" + type +
                            "' is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
  }
  EventData data;
  data.type = std::move(type);
  data.schema_version = schema_version;
  try {
    // error_handler_t::strict: invalid UTF-8 inside a string is an error, not
    // silently replaced, so what is stored is what was given.
    data.payload = payload.dump();
    data.metadata = metadata.dump();
  } catch (const Json::exception& e) {
    throw InvalidArgument("cannot serialize event of type '" + data.type + "': " + e.what());
  }
  return data;
}

namespace {
Json parse_stored(const RecordedEvent& event, const std::string& text, const char* field) {
  if (detail::json_text_nested_deeper_than(text, kMaxJsonDepth)) {
    throw SerializationError(std::string(field) + " of event at position " +
                             std::to_string(event.position) + " (stream '" + event.stream_id +
                             "', version " + std::to_string(event.version) +
                             ") is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    throw SerializationError(std::string(field) + " of event at position " +
                             std::to_string(event.position) + " (stream '" + event.stream_id +
                             "', version " + std::to_string(event.version) +
                             ") is not valid JSON: " + e.what());
  }
}
}  // namespace

Json RecordedEvent::payload_json() const { return parse_stored(*this, payload, "payload"); }
Json RecordedEvent::metadata_json() const { return parse_stored(*this, metadata, "metadata"); }

namespace {
std::string metadata_string(const RecordedEvent& event, const char* key) {
  const Json metadata = event.metadata_json();
  if (!metadata.is_object()) return {};
  const auto it = metadata.find(key);
  return it != metadata.end() && it->is_string() ? it->get<std::string>() : std::string();
}
}  // namespace

std::string RecordedEvent::correlation_id() const { return metadata_string(*this, "correlation_id"); }
std::string RecordedEvent::causation_id() const { return metadata_string(*this, "causation_id"); }

namespace {

// A SAX consumer that accepts everything and records only the kind of the
// top-level value; validating this way builds no DOM. Not derived from
// nlohmann::json_sax: sax_parse is a template, so the calls per token are
// direct instead of virtual (validation is a large part of an append's CPU).
struct TopLevelKind {
  using number_integer_t = Json::number_integer_t;
  using number_unsigned_t = Json::number_unsigned_t;
  using number_float_t = Json::number_float_t;
  using string_t = Json::string_t;
  using binary_t = Json::binary_t;

  int depth = 0;
  bool top_is_object = false;
  std::string error;

  bool null() { return scalar(); }
  bool boolean(bool) { return scalar(); }
  bool number_integer(number_integer_t) { return scalar(); }
  bool number_unsigned(number_unsigned_t) { return scalar(); }
  bool number_float(number_float_t, const string_t&) { return scalar(); }
  bool string(string_t&) { return scalar(); }
  bool binary(binary_t&) { return scalar(); }
  bool start_object(std::size_t) {
    if (depth == 0) top_is_object = true;
    return nest();
  }
  bool key(string_t&) { return true; }
  bool end_object() { return --depth, true; }
  bool start_array(std::size_t) { return nest(); }
  bool end_array() { return --depth, true; }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) {
    error = ex.what();
    return false;
  }

 private:
  bool scalar() { return true; }
  bool nest() {
    if (++depth > kMaxJsonDepth) {
      error = "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    return true;
  }
};

constexpr std::string_view kNotAnObject = "must be a JSON object";

}  // namespace

std::optional<std::string> detail::json_object_problem_nlohmann(std::string_view text) {
  // JSON text never holds a raw NUL byte (inside a string it must be escaped
  // as \u0000), but nlohmann's lexer takes one as the end of its input and
  // would accept `{"a":1}` followed by a NUL and anything at all: stored, the
  // rest would reach every reader and export that does not stop there.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    std::string problem = "is not valid JSON: a NUL byte at offset ";
    problem += std::to_string(nul);
    return problem;
  }
  // nlohmann skips a UTF-8 byte order mark at the start of its input, but
  // JSON text does not begin with one (RFC 8259, section 8.1) and SQLite's
  // JSON functions refuse it: stored, it would make json_valid() 0 and every
  // json_extract() over the events table fail.
  if (text.starts_with("\xEF\xBB\xBF")) {
    return std::string("is not valid JSON: it starts with a UTF-8 byte order mark (EF BB BF)");
  }
  TopLevelKind sax;
  if (!Json::sax_parse(text.begin(), text.end(), &sax)) {
    // Appended, not `"literal" + string`: g++ 12 warns falsely (-Wrestrict) on that at -O2.
    std::string problem = "is not valid JSON: ";
    problem += sax.error.empty() ? std::string_view("parse error") : std::string_view(sax.error);
    return problem;
  }
  if (!sax.top_is_object) return std::string(kNotAnObject);
  return std::nullopt;
}

namespace {

// simdjson validates a small payload about ten times faster than nlohmann's
// SAX parser (docs/adr/0005-simdjson-validation.md), but it is trusted only
// when it succeeds: every text it parses, nlohmann parses too, with the same
// top-level kind and within kMaxJsonDepth (checked by tests/core and by the
// differential fuzz target fuzz_json_object). Any simdjson error, including
// the ones nlohmann does not share (integers beyond 64 bits), is left to
// nlohmann, so what is accepted and every message stay nlohmann's. A text
// starting with a UTF-8 byte order mark never reaches simdjson (some of its
// versions skip one): the reference refuses it.
enum class FastVerdict { kObject, kNotAnObject, kUndecided };

// One parser per thread: a parser is not thread-safe, and building one per
// call would cost more than the parse. Its maximum capacity is
// kJsonFastPathLimit, so its buffers never grow past about 250 KB per thread
// (tape 128 KiB, structural indexes 64 KiB, strings 27 KiB, the padded copy
// of the input 16 KiB, depth stacks 4.5 KiB): some taken at the thread's
// first call, the rest grown up to the longest text seen, all freed when the
// thread exits.
struct ThreadParser {
  simdjson::dom::parser parser{detail::kJsonFastPathLimit};
  // simdjson counts only non-empty containers against max_depth and refuses
  // a text where they reach it: 511 of them, plus an empty one innermost,
  // pass, so never more than the 512 levels nlohmann allows (512 non-empty
  // levels are refused here and then accepted by the fallback). Had the
  // allocation failed, the parser would allocate later with simdjson's
  // default depth (1024), looser than kMaxJsonDepth: it is then never used.
  bool ready = parser.allocate(detail::kJsonFastPathLimit, kMaxJsonDepth) == simdjson::SUCCESS;
};

FastVerdict simdjson_verdict(std::string_view text) noexcept {
  // Empty text is invalid either way, and its data() may be null, which
  // simdjson would hand to memcpy.
  if (text.empty() || text.size() > detail::kJsonFastPathLimit) return FastVerdict::kUndecided;
  thread_local ThreadParser local;
  if (!local.ready) return FastVerdict::kUndecided;
  simdjson::dom::element root;
  // realloc_if_needed: a string_view promises no readable padding after the
  // text, so simdjson copies it into its own padded buffer (reused per thread).
  if (local.parser.parse(text.data(), text.size(), true).get(root) != simdjson::SUCCESS) {
    return FastVerdict::kUndecided;
  }
  return root.is_object() ? FastVerdict::kObject : FastVerdict::kNotAnObject;
}

}  // namespace

std::optional<std::string> json_object_problem(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) return detail::json_object_problem_nlohmann(text);
  switch (simdjson_verdict(text)) {
    case FastVerdict::kObject:
      return std::nullopt;
    case FastVerdict::kNotAnObject:
      return std::string(kNotAnObject);
    case FastVerdict::kUndecided:
      break;
  }
  return detail::json_object_problem_nlohmann(text);
}

void validate_json_object(std::string_view text, std::string_view what) {
  if (auto problem = json_object_problem(text)) {
    throw InvalidArgument(std::string(what) + " " + *problem);
  }
}

}  // namespace annals
