#include "annals/core/stream_id.hpp"

#include <string>

#include "annals/core/error.hpp"

namespace annals {

namespace {

// Renders untrusted text for an error message: printable ASCII as is, anything
// else as \xNN, and long text cut, so a message never carries control bytes.
std::string shown(std::string_view text) {
  std::string out;
  const std::size_t limit = 80;
  for (std::size_t i = 0; i < text.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F) {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0F]);
    }
  }
  if (text.size() > limit) out += "...";
  return out;
}

// Decodes one UTF-8 sequence at text[i]; returns its length, or 0 if malformed.
std::size_t utf8_sequence(std::string_view text, std::size_t i, char32_t& cp) noexcept {
  const auto b0 = static_cast<unsigned char>(text[i]);
  std::size_t len;
  char32_t min;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

void validate_name(std::string_view value, std::string_view what, std::size_t max_bytes) {
  if (value.empty()) throw InvalidArgument(std::string(what) + " must not be empty");
  if (value.size() > max_bytes) {
    throw InvalidArgument(std::string(what) + " '" + shown(value) + "' is " +
                          std::to_string(value.size()) + " bytes; at most " +
                          std::to_string(max_bytes) + " are allowed");
  }
  for (std::size_t i = 0; i < value.size();) {
    char32_t cp = 0;
    const std::size_t len = utf8_sequence(value, i, cp);
    if (len == 0) {
      throw InvalidArgument(std::string(what) + " '" + shown(value) +
                            "' is not valid UTF-8 (byte " + std::to_string(i) + ")");
    }
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
      throw InvalidArgument(std::string(what) + " '" + shown(value) +
                            "' contains a control character at byte " + std::to_string(i));
    }
    i += len;
  }
}

}  // namespace

bool is_valid_utf8(std::string_view text) noexcept {
  for (std::size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    const std::size_t len = utf8_sequence(text, i, cp);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

void validate_stream_id(std::string_view stream_id) {
  validate_name(stream_id, "stream id", kMaxStreamIdBytes);
}

void validate_event_type(std::string_view type) {
  validate_name(type, "event type", kMaxEventTypeBytes);
}

std::string_view stream_category(std::string_view stream_id) noexcept {
  const auto dash = stream_id.find('-');
  return dash == std::string_view::npos ? stream_id : stream_id.substr(0, dash);
}

CategoryBounds stream_category_bounds(std::string_view category) {
  CategoryBounds bounds;
  if (category.empty() || category.find('-') != std::string_view::npos) {
    bounds.none = true;
    return bounds;
  }
  bounds.exact = std::string(category);
  bounds.from = bounds.exact + '-';
  bounds.to = bounds.exact + '.';
  return bounds;
}

}  // namespace annals
