// Fuzz target: json_object_problem (simdjson first, nlohmann for whatever
// simdjson refuses) against the nlohmann-only reference it must equal
// (core/src/json_validation.hpp, never installed).
//
// Input: the JSON text, as is (texts over 16 KiB take the nlohmann-only path).
// Property: both give the same verdict and, when they refuse, the same message.
// A mismatch aborts with both answers, which libFuzzer reports as a crash.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "annals/core/event.hpp"
#include "fuzz_support.hpp"
#include "json_validation.hpp"

namespace {

std::string describe(const std::optional<std::string>& verdict) {
  return verdict ? "refused: " + *verdict : std::string("accepted");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto fast = annals::json_object_problem(text);
  const auto reference = annals::detail::json_object_problem_nlohmann(text);
  if (fast != reference) {
    std::string detail = "fast path ";
    detail += describe(fast);
    detail += "; nlohmann ";
    detail += describe(reference);
    annals::fuzz::fail("json_object_problem disagrees with nlohmann:", detail.c_str());
  }
  return 0;
}
