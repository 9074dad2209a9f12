#pragma once
// Internal to annals_core, never installed. Tests and fuzz targets reach it
// by linking annals::core_internal, to compare the simdjson fast path of
// json_object_problem with the nlohmann parser that defines it.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace annals::detail {

/// Longest text (bytes) json_object_problem hands to its per-thread simdjson
/// parser; longer text goes only through nlohmann's streaming SAX parser. It
/// is also that parser's maximum capacity, which bounds its memory per thread.
inline constexpr std::size_t kJsonFastPathLimit = 16 * 1024;

/// json_object_problem as decided by nlohmann's SAX parser alone: what is
/// accepted and every message. The fast path must agree with it on every
/// input, verdict and message alike. Throws: nothing but std::bad_alloc.
std::optional<std::string> json_object_problem_nlohmann(std::string_view text);

}  // namespace annals::detail
