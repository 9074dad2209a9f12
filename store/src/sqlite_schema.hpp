#pragma once
// The SQLite schema of an Annals store and the checks made when opening a file.
// See sqlite_schema.cpp for the schema itself.

#include <SQLiteCpp/Database.h>

#include <filesystem>

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

}  // namespace annals::detail
