#pragma once
/// Export and import of recorded events as JSON Lines: one event per line, in
/// position order, every field of the RecordedEvent kept, so that a store can be
/// copied, archived, diffed or inspected with line tools (grep, jq) and loaded
/// back into an empty store with the same positions, versions, event ids,
/// times and hashes.
///
/// One line (shown wrapped; on disk it is one line, fields in this order):
///
///   {"position":1,"stream_id":"account-1","version":1,
///    "event_id":"01890a5d-ac96-774b-bcce-b302099a8057","type":"bank.Opened",
///    "schema_version":1,"recorded_at":"2026-03-01T12:00:00.000000Z",
///    "payload":{"owner":"Ada"},"metadata":{},
///    "hash":"<64 lowercase hex digits of the stored chain hash>"}
///
/// An export of a store that has an id (EventStore::store_id) begins with one
/// header line before the events:
///
///   {"annals_export":1,"store_id":"<the store's id, a UUID>"}
///
/// Import gives the new store that id, so seals of the original
/// (annals/store/seal.hpp) also verify against the copy. Exports without a
/// header (older ones, or of a store without an id) import as before; the new
/// store then keeps the id it was created with.
///
/// payload and metadata are the stored JSON text, byte for byte, embedded as
/// JSON objects (never re-serialized: the hash covers those exact bytes). A
/// stored text that cannot sit on one line as it is (it contains a line break,
/// or whitespace before its '{' or after its '}') is written instead as a JSON
/// string holding the text, under "payload_text" / "metadata_text". The writer
/// is canonical: writing what the parser read gives the same bytes again.
///
/// Thread safety: the functions are reentrant; export_events and import_events
/// may run concurrently with other users of the same store or file.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

#include "annals/core/event.hpp"
#include "annals/store/event_store.hpp"

namespace annals {

/// Bounds on one line of an export, so a hostile file cannot exhaust memory.
struct ExportLineLimits {
  /// Longest accepted line, in bytes, without its newline. Default: 64 MiB.
  std::size_t max_line_bytes = 64u << 20;
  /// Deepest accepted nesting of objects and arrays, the line's own object
  /// counting as 1. Default: 256. (Payloads are also held to the 512 levels
  /// every stored JSON text is held to, so larger values act as 512.)
  int max_depth = 256;
};

/// The export line of `event`, without a trailing newline.
/// Throws: InvalidArgument if event.payload or event.metadata is not a JSON
/// object (a RecordedEvent read from a store always has objects there).
std::string to_export_line(const RecordedEvent& event);

/// Parses one export line (with or without a trailing "\n" or "\r\n").
/// `line_number` (1-based, 0: unknown) is named in every error message, as is
/// the offending field. A pure function of its arguments.
/// Throws: SerializationError when the line is not one JSON object or exceeds
/// `limits`; InvalidArgument when a field is missing, repeated, unknown, of the
/// wrong JSON type or holds an invalid value (stream id, event type, event id,
/// timestamp, hash, payload or metadata that is not a JSON object).
RecordedEvent parse_export_line(std::string_view line, std::int64_t line_number = 0,
                                const ExportLineLimits& limits = {});

/// Called now and then during a long export or import: events done so far,
/// and for export the total (the head position when it started; 0 for import,
/// whose total is not known in advance).
using ExportProgress = std::function<void(std::int64_t done, std::int64_t total)>;

/// Writes the header line when `store` has an id, then every event of `store`
/// up to its head position at the time of the call, in position order, one
/// line each ("\n"-terminated). Streams from a
/// cursor: memory stays bounded whatever the store's size. Returns how many
/// events it wrote.
/// Throws: StorageError from the store; std::ios_base::failure is not used:
/// a failing `out` is reported as StorageError naming what was written.
std::int64_t export_events(const EventStore& store, std::ostream& out,
                           const ExportProgress& progress = {});

struct ImportOptions {
  /// Create the store file if it does not exist. Default: true.
  bool create_if_missing = true;
  /// How long to wait for another writer's lock. Default: 30 s.
  std::chrono::milliseconds busy_timeout{30'000};
  /// Line bounds (see ExportLineLimits).
  ExportLineLimits limits;
  /// Progress reports (see ExportProgress). Default: none.
  ExportProgress progress;
};

/// Loads an export into the EMPTY SQLite store at `store_file`: every line is
/// checked and appended in one transaction, keeping its position, version,
/// event id and recorded_at; each event's chain hash is recomputed and must
/// equal the exported one. All or nothing: on any error the transaction is
/// rolled back and the store holds no event afterwards (the schema of a file
/// the call created stays). Events restored this way are not announced to
/// commit listeners or transaction hooks of SqliteEventStore objects open on
/// the file (there is no append); projections see them when they next read.
///
/// Why not SqliteEventStore::append: an append stamps recorded_at from the
/// store's clock and commits per call; a restore must keep the exported times
/// and be all-or-nothing, which one transaction on the file gives directly.
/// The file is first opened as a SqliteEventStore, so the same checks apply
/// (not a store, newer schema, read-only: StorageError, file untouched).
///
/// A header line (first line only) gives the store the exported store id.
/// Returns the number of events imported.
/// Throws: InvalidArgument when the store is not empty, holds seals of
/// another id than the header's, the header is malformed, or a line's position
/// is not the next one (1, 2, 3, ...) or its version is not the next of its
/// stream; SerializationError / InvalidArgument from parse_export_line;
/// IntegrityError (position() set) when a recomputed hash differs from the
/// exported one; StorageError. Messages about a line name its line number.
std::int64_t import_events(const std::filesystem::path& store_file, std::istream& in,
                           const ImportOptions& options = {});

}  // namespace annals
