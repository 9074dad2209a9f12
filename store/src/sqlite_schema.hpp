#pragma once
// The SQLite schema of an Annals store and the checks made when opening a file.
// See sqlite_schema.cpp for the schema itself.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <filesystem>
#include <string>
#include <vector>

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

// An append-only guard (a trigger of the schema, or the row of the
// high-water mark) that is not as the schema creates it.
struct GuardProblem {
  std::string guard;  // trigger or table name
  std::string what;   // "missing", "altered", "its row is missing"
};

// The guards of `db` (for its own schema version) that are missing or
// altered. Reads only. Throws: StorageError.
std::vector<GuardProblem> guard_problems(SQLite::Database& db);

// Recreates every guard guard_problems() finds, in one transaction (the write
// lock is taken only when one is missing); returns what it restored.
// Throws: StorageError naming `path`.
std::vector<GuardProblem> restore_guards(SQLite::Database& db, const std::filesystem::path& path);

// "events_append_only_delete (missing), ...".
std::string describe(const std::vector<GuardProblem>& problems);

// The highest position ever written (schema 3 on): read at the start of an
// append transaction, raised before its COMMIT.
inline constexpr const char* kReadHighWaterSql = "SELECT position FROM events_high_water";
inline constexpr const char* kRaiseHighWaterSql =
    "INSERT INTO events_high_water (singleton, position) VALUES (1, ?1) "
    "ON CONFLICT (singleton) DO UPDATE SET position = excluded.position "
    "WHERE excluded.position > events_high_water.position";

// The statement that writes one row of the events table, every column bound
// by bind_event(). Appends and imports both write through it.
inline constexpr const char* kInsertEventSql =
    "INSERT INTO events (position, stream_id, version, event_id, type, schema_version, "
    "payload, metadata, recorded_at, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

// Binds `event` to a statement prepared from kInsertEventSql, without copying
// its text: `event` must outlive the statement's next step.
void bind_event(SQLite::Statement& insert, const RecordedEvent& event);

}  // namespace annals::detail
