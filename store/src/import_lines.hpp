#pragma once
// The backend-independent part of importing an export (format in
// annals/store/event_export.hpp): reading bounded lines, the header, and the
// checks every line passes (positions 1, 2, 3, ..., the next version of its
// stream, the recomputed chain hash) before a backend stores it. Used by the
// SQLite import (event_export.cpp) and the PostgreSQL one
// (postgres_import.cpp), so both accept and refuse exactly the same files.

#include <cstdint>
#include <istream>
#include <string>

#include "annals/core/event.hpp"
#include "annals/store/event_export.hpp"

namespace annals::detail {

// Where an import writes, inside the transaction the caller holds.
class ImportTarget {
 public:
  virtual ~ImportTarget() = default;
  // The header line's store id; the target takes it as its own.
  virtual void adopt_store_id(const std::string& id) = 0;
  // The version of `stream_id` so far (0: none).
  virtual std::int64_t stream_version(const std::string& stream_id) = 0;
  // Stores `event`, checked. An event id stored already throws
  // InvalidArgument naming `at` (the line) and the field.
  virtual void insert(const RecordedEvent& event, const std::string& at) = 0;
};

// Reads `in` to its end, checks each line and hands it to `target`. Returns
// the number of events; reports progress every 1024 events (not at the end).
// Throws: as import_events() (event_export.hpp).
std::int64_t import_lines(std::istream& in, const ImportOptions& options, ImportTarget& target);

}  // namespace annals::detail
