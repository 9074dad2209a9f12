// Fuzz target: one line of the JSON Lines export format (parse_export_line,
// to_export_line; store/include/annals/store/event_export.hpp), as `annals
// import` reads it from an untrusted file.
//
// Properties: only annals::Error escapes; a line the parser accepts is written
// back by to_export_line as a line that parses to the same event, and writing
// that event again gives the same bytes (the writer is canonical).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "annals/store/event_export.hpp"
#include "fuzz_support.hpp"

namespace {

bool same_event(const annals::RecordedEvent& a, const annals::RecordedEvent& b) {
  return a.stream_id == b.stream_id && a.version == b.version && a.position == b.position &&
         a.event_id == b.event_id && a.type == b.type && a.schema_version == b.schema_version &&
         a.payload == b.payload && a.metadata == b.metadata && a.recorded_at == b.recorded_at &&
         a.hash == b.hash;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace annals;
  using annals::fuzz::fail;
  using annals::fuzz::rejects_only_with_annals_errors;
  const std::string_view line(reinterpret_cast<const char*>(data), size);

  RecordedEvent event;
  if (!rejects_only_with_annals_errors("parse_export_line",
                                       [&] { event = parse_export_line(line, 1); })) {
    return 0;
  }
  std::string written;
  if (!rejects_only_with_annals_errors("to_export_line", [&] { written = to_export_line(event); })) {
    fail("to_export_line rejected an event parse_export_line accepted");
  }
  RecordedEvent again;
  if (!rejects_only_with_annals_errors("parse_export_line",
                                       [&] { again = parse_export_line(written, 2); })) {
    fail("parse_export_line rejected what to_export_line wrote:", written.c_str());
  }
  if (!same_event(event, again)) fail("the written line parses to another event:", written.c_str());
  if (to_export_line(again) != written) fail("to_export_line is not canonical:", written.c_str());
  return 0;
}
