// Fuzz target: a seal file (parse_seal, to_seal_json, seal_message;
// store/include/annals/store/seal.hpp), as `annals verify --seal` reads it
// from an untrusted file.
//
// Properties: only annals::Error escapes; a seal the parser accepts is
// written back by to_seal_json as text that parses to the same seal (the
// same signed message), and writing that seal again gives the same bytes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "annals/store/seal.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace annals;
  using annals::fuzz::fail;
  using annals::fuzz::rejects_only_with_annals_errors;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  Seal seal;
  if (!rejects_only_with_annals_errors("parse_seal", [&] { seal = parse_seal(text, "fuzz"); })) {
    return 0;
  }
  std::string written;
  if (!rejects_only_with_annals_errors("to_seal_json", [&] { written = to_seal_json(seal); })) {
    fail("to_seal_json rejected a seal parse_seal accepted");
  }
  Seal again;
  if (!rejects_only_with_annals_errors("parse_seal", [&] { again = parse_seal(written, "fuzz"); })) {
    fail("parse_seal rejected what to_seal_json wrote:", written.c_str());
  }
  if (seal_message(again) != seal_message(seal) || again.signature != seal.signature) {
    fail("the written seal parses to another seal:", written.c_str());
  }
  if (to_seal_json(again) != written) fail("to_seal_json is not canonical:", written.c_str());
  return 0;
}
