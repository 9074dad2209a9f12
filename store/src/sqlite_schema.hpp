#pragma once
// The SQLite schema of an Annals store and the checks made when opening a file.
// See sqlite_schema.cpp for the schema itself.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <filesystem>

#include "annals/core/event.hpp"

namespace annals::detail {

// Checks that `db` is an empty database or an Annals store this build can
// read, then creates or migrates the schema. Reads only, until it has decided
// the file is ours: a foreign file is left byte for byte as it was.
// Throws: StorageError naming `path` and what is wrong.
void open_schema(SQLite::Database& db, const std::filesystem::path& path);

// The same checks for a read-only open: the file must already hold an Annals
// schema this build can read (the current version or an older one, whose
// events table reads the same). Never writes.
// Throws: StorageError naming `path` and what is wrong.
void check_schema_readable(SQLite::Database& db, const std::filesystem::path& path);

// The statement that writes one row of the events table, every column bound
// by bind_event(). Appends and imports both write through it.
inline constexpr const char* kInsertEventSql =
    "INSERT INTO events (position, stream_id, version, event_id, type, schema_version, "
    "payload, metadata, recorded_at, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

// Binds `event` to a statement prepared from kInsertEventSql, without copying
// its text: `event` must outlive the statement's next step.
void bind_event(SQLite::Statement& insert, const RecordedEvent& event);

}  // namespace annals::detail
