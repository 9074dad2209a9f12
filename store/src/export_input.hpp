#pragma once
// Reading an export (annals/store/event_export.hpp), shared by the imports of
// every backend: the header line and bounded line reading.

#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>
#include <string_view>

namespace annals::detail {

/// How a header line starts; the writer is canonical, so a header read back
/// starts so too.
inline constexpr std::string_view kExportHeaderStart = "{\"annals_export\":";

/// The store id of a header line (see event_export.hpp).
/// Throws: SerializationError (not JSON), InvalidArgument (naming the field).
std::string parse_export_header(std::string_view line);

/// Reads one line into `out` (without its "\n"); false at the end of input.
/// Throws: SerializationError naming `line_number` when a line exceeds `max` bytes.
bool read_line(std::istream& in, std::string& out, std::size_t max, std::int64_t line_number);

}  // namespace annals::detail
