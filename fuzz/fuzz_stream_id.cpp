// Fuzz target: stream ids and event type names (validate_stream_id,
// validate_event_type, stream_category, is_valid_utf8).
//
// Properties: only InvalidArgument escapes and its message names the kind of
// input; an accepted id is non-empty, at most 255 bytes, valid UTF-8, free of
// control characters; the category is a prefix without '-'; is_valid_utf8
// agrees with nlohmann's JSON lexer (an independent UTF-8 decoder) on the
// same bytes inside a JSON string.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "annals/core/stream_id.hpp"
#include "fuzz_support.hpp"

namespace {

// `bytes` as a JSON string literal, escaping only what JSON requires, so the
// lexer sees every other byte as it is.
std::string json_string_of(std::string_view bytes) {
  std::string out = "\"";
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (b < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[b >> 4];
      out += kHex[b & 0x0F];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void check_name(std::string_view text, bool valid, const char* kind) {
  using annals::fuzz::fail;
  if (!valid) return;
  if (text.empty()) fail(kind, "accepted an empty name");
  if (text.size() > annals::kMaxStreamIdBytes) fail(kind, "accepted more than 255 bytes");
  if (!annals::is_valid_utf8(text)) fail(kind, "accepted invalid UTF-8");
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F) fail(kind, "accepted a control character");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace annals;
  using annals::fuzz::fail;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto named = [](const char* kind, auto validate) {
    try {
      validate();
      return true;
    } catch (const InvalidArgument& e) {
      if (std::string_view(e.what()).find(kind) == std::string_view::npos) {
        fail("the error does not name the input's kind:", e.what());
      }
      return false;
    } catch (const std::exception& e) {
      fail("not an InvalidArgument:", e.what());
    }
  };
  const bool id_ok = named("stream id", [&] { validate_stream_id(text); });
  const bool type_ok = named("event type", [&] { validate_event_type(text); });
  check_name(text, id_ok, "validate_stream_id");
  check_name(text, type_ok, "validate_event_type");
  if (id_ok != type_ok) fail("stream ids and event types follow different rules");

  const std::string_view category = stream_category(text);
  if (text.substr(0, category.size()) != category) fail("the category is not a prefix");
  if (category.find('-') != std::string_view::npos) fail("the category holds a '-'");

  const bool utf8 = is_valid_utf8(text);
  const bool lexer_utf8 = nlohmann::json::accept(json_string_of(text));
  if (utf8 != lexer_utf8) {
    fail("is_valid_utf8 disagrees with nlohmann's lexer:", utf8 ? "accepted" : "rejected");
  }
  return 0;
}
