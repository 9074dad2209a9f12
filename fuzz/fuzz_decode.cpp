// Fuzz target: JSON payload and metadata as a hostile writer or a damaged
// store could present them, through validation (validate_json_object),
// parsing (payload_json), upcasting (UpcasterChain) and decoding into a typed
// variant (try_decode / decode).
//
// Input: byte 0 picks the stored type, byte 1 the stored schema version
// (signed), the rest is the JSON text, used as payload and as metadata.
// Properties: only annals::Error escapes; text validate_json_object accepts
// parses to an object and survives EventData::from_json and validation again.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "annals/core/codec.hpp"
#include "annals/core/upcaster.hpp"
#include "fuzz_support.hpp"

namespace annals::fuzz {

// Named namespace, not anonymous: the to_json the macros define must stay
// emittable (the TypedEvent concept requires it) without clang warning.
struct Opened {
  static constexpr std::string_view type_name = "acct.Opened";
  static constexpr int schema_version = 3;
  std::string owner;
  std::int64_t limit = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Opened, owner, limit)

struct Deposited {
  static constexpr std::string_view type_name = "acct.Deposited";
  static constexpr int schema_version = 1;
  std::int64_t amount = 0;
  std::vector<std::string> tags;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, amount, tags)

struct Closed {
  static constexpr std::string_view type_name = "acct.Closed";
  static constexpr int schema_version = 2;
  Json details;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Closed, details)

using AccountEvent = std::variant<Opened, Deposited, Closed>;

namespace {

// Steps that read fields the input may lack or give the wrong type: at() and
// get<>() throw nlohmann exceptions, which the chain must turn into
// SerializationError.
const UpcasterChain& upcasters() {
  static const UpcasterChain chain = [] {
    UpcasterChain c;
    c.add("acct.Opened", 1, [](Json p) {
      p["limit"] = 0;
      return p;
    });
    c.add("acct.Opened", 2, [](Json p) {
      p["owner"] = p.at("name").get<std::string>();
      p.erase("name");
      return p;
    });
    c.add("acct.Created", 1, "acct.Opened", [](Json p) { return p; });  // renamed at v2
    c.add("acct.Closed", 1, [](Json p) {
      // May return a non-object on purpose: the chain must refuse it.
      return p.contains("details") ? p : p.value("replacement", Json::object());
    });
    return c;
  }();
  return chain;
}

constexpr const char* kTypes[] = {"acct.Opened", "acct.Created", "acct.Deposited", "acct.Closed",
                                  "acct.Unknown"};

}  // namespace
}  // namespace annals::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace annals;
  using namespace annals::fuzz;
  if (size < 2) return 0;
  RecordedEvent event;
  event.stream_id = "acct-1";
  event.version = 1;
  event.position = 1;
  event.type = kTypes[data[0] % std::size(kTypes)];
  event.schema_version = static_cast<std::int8_t>(data[1]);
  event.payload.assign(reinterpret_cast<const char*>(data) + 2, size - 2);
  event.metadata = event.payload;

  const bool valid = rejects_only_with_annals_errors(
      "validate_json_object", [&] { validate_json_object(event.payload, "fuzzed payload"); });
  rejects_only_with_annals_errors("payload_json", [&] { (void)event.payload_json(); });
  rejects_only_with_annals_errors("metadata_json", [&] { (void)event.metadata_json(); });
  rejects_only_with_annals_errors("try_decode",
                                  [&] { (void)try_decode<AccountEvent>(event, &upcasters()); });
  rejects_only_with_annals_errors("decode", [&] { (void)decode<AccountEvent>(event); });

  if (valid) {  // accepted text is an object that round-trips through EventData
    Json parsed;
    if (!rejects_only_with_annals_errors("payload_json", [&] { parsed = event.payload_json(); })) {
      fail("validate_json_object accepted text payload_json rejects");
    }
    if (!parsed.is_object()) fail("validate_json_object accepted a non-object");
    EventData data_again;
    if (!rejects_only_with_annals_errors("EventData::from_json", [&] {
          data_again = EventData::from_json(event.type, parsed, parsed, 1);
        })) {
      fail("EventData::from_json rejected a validated object");
    }
    if (!rejects_only_with_annals_errors(
            "validate_json_object", [&] { validate_json_object(data_again.payload, "re-encoded"); })) {
      fail("re-encoded payload no longer validates");
    }
  }
  return 0;
}
