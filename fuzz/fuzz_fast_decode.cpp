// Fuzz target: decode's fast path (ANNALS_EVENT_FIELDS, simdjson) against the
// nlohmann path that defines it (docs/adr/0006-typed-decode-fast-path.md).
//
// Input: the payload text of a stored "fuzz.Everything" event at schema
// version 1. The same struct is declared twice, once with ANNALS_EVENT_FIELDS
// and once with NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE.
// Properties: only annals::Error escapes; both declarations decode to the
// same value (floating fields bit for bit) or fail with the same message.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "annals/core/codec.hpp"
#include "fuzz_support.hpp"

namespace annals::fuzz {

#define ANNALS_FUZZ_EVENT_BODY                                      \
  static constexpr std::string_view type_name = "fuzz.Everything";  \
  static constexpr int schema_version = 1;                          \
  bool flag = false;                                                \
  int count = 0;                                                    \
  std::int64_t amount = 0;                                          \
  std::uint64_t big = 0;                                            \
  std::uint16_t small = 0;                                          \
  double ratio = 0;                                                 \
  float rough = 0;                                                  \
  std::string text;

struct FastEverything {
  ANNALS_FUZZ_EVENT_BODY
};
ANNALS_EVENT_FIELDS(FastEverything, flag, count, amount, big, small, ratio, rough, text)

struct SlowEverything {
  ANNALS_FUZZ_EVENT_BODY
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SlowEverything, flag, count, amount, big, small, ratio, rough,
                                   text)

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

}  // namespace annals::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace annals;
  using namespace annals::fuzz;
  RecordedEvent event;
  event.stream_id = "fuzz-1";
  event.version = 1;
  event.position = 1;
  event.type = "fuzz.Everything";
  event.schema_version = 1;
  event.payload.assign(reinterpret_cast<const char*>(data), size);

  std::optional<FastEverything> fast;
  std::optional<SlowEverything> slow;
  std::string fast_error;
  std::string slow_error;
  try {
    fast = std::get<FastEverything>(decode<std::variant<FastEverything>>(event));
  } catch (const Error& e) {
    fast_error = e.what();
  } catch (const std::exception& e) {
    fail("fast decode threw a non-annals exception", e.what());
  }
  // A number with a fraction or exponent outside an integer field's range
  // would make nlohmann's own conversion undefined: the fast path refuses it
  // (detail::double_fits), and the reference is not asked.
  {
    const Json doc = Json::parse(event.payload, nullptr, /*allow_exceptions=*/false);
    bool out_of_range = false;
    if (doc.is_object()) {
      const auto check = [&]<class M>(const char* name, M) {
        const auto it = doc.find(name);
        if (it != doc.end() && it->is_number_float() &&
            !detail::double_fits<M>(it->get<double>())) {
          out_of_range = true;
        }
      };
      check("count", int{});
      check("amount", std::int64_t{});
      check("big", std::uint64_t{});
      check("small", std::uint16_t{});
    }
    if (out_of_range) {
      if (fast || fast_error.find("outside the range of its integer type") == std::string::npos) {
        fail("an out-of-range integer field was not refused", fast_error.c_str());
      }
      return 0;
    }
  }
  try {
    slow = std::get<SlowEverything>(decode<std::variant<SlowEverything>>(event));
  } catch (const Error& e) {
    slow_error = e.what();
  } catch (const std::exception& e) {
    fail("nlohmann decode threw a non-annals exception", e.what());
  }
  if (fast_error != slow_error) fail("the two paths fail differently", fast_error.c_str());
  if (fast.has_value() != slow.has_value()) fail("one path decoded, the other did not");
  if (fast) {
    const bool same = fast->flag == slow->flag && fast->count == slow->count &&
                      fast->amount == slow->amount && fast->big == slow->big &&
                      fast->small == slow->small && same_bits(fast->ratio, slow->ratio) &&
                      same_bits(fast->rough, slow->rough) && fast->text == slow->text;
    if (!same) fail("the two paths decoded different values");
  }
  return 0;
}
