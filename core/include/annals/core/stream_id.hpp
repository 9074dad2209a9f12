#pragma once
/// Rules for stream ids and event type names.
///
/// A stream id is non-empty, at most 255 bytes, valid UTF-8 and free of control
/// characters (U+0000..U+001F, U+007F..U+009F). Its category is the text before
/// the first '-' ("account-42" -> "account"), or the whole id when it has none.

#include <cstddef>
#include <string>
#include <string_view>

namespace annals {

inline constexpr std::size_t kMaxStreamIdBytes = 255;
inline constexpr std::size_t kMaxEventTypeBytes = 255;

/// Throws: InvalidArgument naming the id and what is wrong with it.
void validate_stream_id(std::string_view stream_id);

/// Event type names follow the same rules as stream ids.
/// Throws: InvalidArgument naming the type and what is wrong with it.
void validate_event_type(std::string_view type);

/// The category of a stream id (see above). Does not validate.
std::string_view stream_category(std::string_view stream_id) noexcept;

/// The stream ids of one category as byte ranges, so that a store can find
/// them through an index on stream_id and agree with stream_category(): an id
/// has category `category` exactly when it equals `exact`, or lies in
/// [`from`, `to`) (`category` + "-" up to `category` + ".", '.' being the byte
/// after '-'). `none` is set when no id can have this category (it is empty
/// or contains '-'); the other fields are then empty.
struct CategoryBounds {
  bool none = false;
  std::string exact;
  std::string from;
  std::string to;
};
/// Throws: std::bad_alloc only.
CategoryBounds stream_category_bounds(std::string_view category);

/// True if `text` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace annals
