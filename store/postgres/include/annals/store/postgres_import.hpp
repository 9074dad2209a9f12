#pragma once
/// Import of an export (annals/store/event_export.hpp) into a PostgreSQL
/// store, the counterpart of import_events() for SQLite: a store moves
/// between the backends byte for byte, with the same positions, versions,
/// event ids, times, hashes and store id. (Export needs nothing of its own:
/// export_events() reads any EventStore, a PostgresEventStore included.)

#include <cstdint>
#include <istream>
#include <string>

#include "annals/store/event_export.hpp"
#include "annals/store/postgres_event_store.hpp"

namespace annals {

/// Loads an export into the EMPTY PostgreSQL store that `connection` and
/// `options.schema` name (created if missing, as PostgresEventStore does):
/// every line is checked and inserted in one transaction, keeping its
/// position, version, event id and recorded_at; each event's chain hash is
/// recomputed and must equal the exported one. All or nothing: on any error
/// the transaction is rolled back and the store holds no event afterwards. A
/// header line gives the store the exported store id (which needs UPDATE on
/// annals_meta: import as the owner, not as the append-only application role).
/// Only `limits` of ImportOptions applies; `progress` is called as for SQLite.
/// Runs under the head-row lock, so appends made meanwhile wait for it, and
/// find the store no longer empty.
/// Returns the number of events imported.
/// Throws: InvalidArgument when the store is not empty, the header is
/// malformed, or a line's position is not the next one (1, 2, 3, ...), its
/// version not the next of its stream, or its event id already used by an
/// earlier line; SerializationError / InvalidArgument from parse_export_line;
/// IntegrityError (position() set) when a recomputed hash differs from the
/// exported one; StorageError from the server. Messages about a line name its
/// line number.
/// Thread safety: may run concurrently with any other use of the store.
std::int64_t import_events(const std::string& connection, const PostgresStoreOptions& options,
                           std::istream& in, const ImportOptions& import_options = {});

}  // namespace annals
