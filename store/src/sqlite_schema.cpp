// Schema of an Annals SQLite store (PRAGMA user_version = 2,
// PRAGMA application_id = 0x414E4C53, "ANLS").
//
//   events(position INTEGER PRIMARY KEY,  -- global order, dense from 1
//          stream_id TEXT, version INTEGER, -- UNIQUE(stream_id, version)
//          event_id TEXT UNIQUE,            -- canonical lowercase UUID
//          type TEXT, schema_version INTEGER,
//          payload TEXT, metadata TEXT,     -- JSON objects, byte for byte as appended
//          recorded_at INTEGER,             -- microseconds since the Unix epoch, UTC
//          hash BLOB)                       -- SHA-256 chain, see annals/core/event_hash.hpp
//   snapshots(stream_id, version, schema_version, state TEXT, recorded_at)
//
// JSON stays text so that the sqlite3 shell and json_extract() read a store
// without Annals. Triggers make the events table append-only for every
// connection, not just for this library: UPDATE and DELETE are refused, and so
// is an INSERT that collides with a stored row, because INSERT OR REPLACE
// deletes the row it collides with without firing DELETE triggers (SQLite fires
// them for REPLACE only under PRAGMA recursive_triggers). The INSERT trigger
// names the key that collided, and the store maps that back to
// DuplicateEventId or WrongExpectedVersion. Positions are assigned by the writer
// inside its write transaction as max(position)+1, so they are dense and a
// reader paging by position never skips a row committed later.
//
// Migrations: each schema version has a step below that moves a store from the
// version before; open_schema runs the missing steps in one transaction.
//   1: the tables and the UPDATE/DELETE triggers.
//   2: the INSERT trigger against REPLACE (stores of version 1 had none).

#include "sqlite_schema.hpp"

#include <sqlite3.h>

#include <cstdio>

#include "annals/core/error.hpp"
#include "annals/store/sqlite_event_store.hpp"

namespace annals::detail {

namespace {

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE events (
  position       INTEGER PRIMARY KEY,
  stream_id      TEXT    NOT NULL,
  version        INTEGER NOT NULL CHECK (version >= 1),
  event_id       TEXT    NOT NULL UNIQUE,
  type           TEXT    NOT NULL,
  schema_version INTEGER NOT NULL CHECK (schema_version >= 1),
  payload        TEXT    NOT NULL,
  metadata       TEXT    NOT NULL,
  recorded_at    INTEGER NOT NULL,
  hash           BLOB    NOT NULL,
  UNIQUE (stream_id, version)
) STRICT;

CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN
  SELECT RAISE(ABORT, 'annals: the events table is append-only; UPDATE is not allowed');
END;

CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN
  SELECT RAISE(ABORT, 'annals: the events table is append-only; DELETE is not allowed');
END;

CREATE TABLE snapshots (
  stream_id      TEXT    NOT NULL,
  version        INTEGER NOT NULL,
  schema_version INTEGER NOT NULL,
  state          TEXT    NOT NULL,
  recorded_at    INTEGER NOT NULL,
  PRIMARY KEY (stream_id, version)
) STRICT;
)sql";

constexpr const char* kSchemaV2 = R"sql(
CREATE TRIGGER events_append_only_insert BEFORE INSERT ON events
BEGIN
  SELECT RAISE(ABORT, 'annals: the events table is append-only; this event_id is already stored')
   WHERE EXISTS (SELECT 1 FROM events WHERE event_id = NEW.event_id);
  SELECT RAISE(ABORT, 'annals: the events table is append-only; this (stream_id, version) is already stored')
   WHERE EXISTS (SELECT 1 FROM events WHERE stream_id = NEW.stream_id AND version = NEW.version);
  SELECT RAISE(ABORT, 'annals: the events table is append-only; this position is already stored')
   WHERE EXISTS (SELECT 1 FROM events WHERE position = NEW.position);
END;
)sql";

// The step that moves a store from version `to - 1` to version `to`.
const char* migration_to(int to) {
  switch (to) {
    case 1:
      return kSchemaV1;
    case 2:
      return kSchemaV2;
    default:
      return nullptr;
  }
}

std::string hex32(int v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", static_cast<unsigned>(v));
  return buf;
}

struct Identity {
  int application_id = 0;
  int user_version = 0;
  int objects = 0;
};

// One statement, so the three values come from one snapshot: read one by one,
// they could straddle another process's commit of a new schema and look like
// a foreign database (application_id 0 but tables present).
Identity read_identity(SQLite::Database& db) {
  SQLite::Statement st(db,
                       "SELECT (SELECT application_id FROM pragma_application_id), "
                       "(SELECT user_version FROM pragma_user_version), "
                       "(SELECT count(*) FROM sqlite_schema)");
  st.executeStep();
  return Identity{st.getColumn(0).getInt(), st.getColumn(1).getInt(), st.getColumn(2).getInt()};
}

// Reads the identity of `db` and refuses what is not an Annals store this build
// can read (a foreign database, a newer schema). An empty database passes.
Identity checked_identity(SQLite::Database& db, const std::string& name) {
  Identity id;
  try {
    id = read_identity(db);
  } catch (const SQLite::Exception& e) {
    if (e.getErrorCode() == SQLITE_NOTADB) {
      throw StorageError(name + " is not an Annals store: it is not an SQLite database",
                         e.getErrorCode(), e.getExtendedErrorCode());
    }
    throw StorageError("cannot read " + name + ": " + e.what(), e.getErrorCode(),
                       e.getExtendedErrorCode());
  }
  const bool empty = id.application_id == 0 && id.user_version == 0 && id.objects == 0;
  if (!empty && id.application_id != SqliteEventStore::kApplicationId) {
    throw StorageError(name + " is an SQLite database but not an Annals store (application_id " +
                       hex32(id.application_id) + ", " + std::to_string(id.objects) +
                       " schema objects)");
  }
  if (id.user_version > SqliteEventStore::kSchemaVersion) {
    throw StorageError(name + " was written by a newer Annals: schema version " +
                       std::to_string(id.user_version) + ", this build reads up to " +
                       std::to_string(SqliteEventStore::kSchemaVersion));
  }
  return id;
}

// "'path'", built by appending: `"'" + std::string` trips a false
// -Wrestrict of GCC 12 at -O2 (GCC bug 105329).
std::string quoted(const std::filesystem::path& path) {
  std::string name(1, '\'');
  name += path.string();
  name += '\'';
  return name;
}

}  // namespace

void check_schema_readable(SQLite::Database& db, const std::filesystem::path& path) {
  const std::string name = quoted(path);
  const Identity id = checked_identity(db, name);
  if (id.user_version < 1) {
    throw StorageError(name + " is not an Annals store: it holds no Annals schema yet");
  }
}

void open_schema(SQLite::Database& db, const std::filesystem::path& path) {
  const std::string name = quoted(path);
  Identity id = checked_identity(db, name);
  if (id.user_version == SqliteEventStore::kSchemaVersion) return;

  // Creating or migrating: take the write lock, then look again, since another
  // process may have done it while we were deciding.
  try {
    db.exec("BEGIN IMMEDIATE");
    try {
      id = read_identity(db);
      const bool still_empty = id.application_id == 0 && id.user_version == 0 && id.objects == 0;
      if (still_empty) {
        db.exec("PRAGMA application_id = " + std::to_string(SqliteEventStore::kApplicationId));
      } else if (id.user_version < 1) {
        throw StorageError(name + " has Annals schema version " + std::to_string(id.user_version) +
                           ", which this build cannot migrate");
      }
      for (int to = id.user_version + 1; to <= SqliteEventStore::kSchemaVersion; ++to) {
        db.exec(migration_to(to));
        db.exec("PRAGMA user_version = " + std::to_string(to));
      }
      db.exec("COMMIT");
    } catch (...) {
      try {
        db.exec("ROLLBACK");
      } catch (...) {
      }
      throw;
    }
  } catch (const SQLite::Exception& e) {
    throw StorageError("cannot create the Annals schema in " + name + ": " + e.what(),
                       e.getErrorCode(), e.getExtendedErrorCode());
  }
}

void bind_event(SQLite::Statement& insert, const RecordedEvent& event) {
  insert.bind(1, event.position);
  insert.bindNoCopy(2, event.stream_id);
  insert.bind(3, event.version);
  insert.bindNoCopy(4, event.event_id);
  insert.bindNoCopy(5, event.type);
  insert.bind(6, event.schema_version);
  insert.bindNoCopy(7, event.payload);
  insert.bindNoCopy(8, event.metadata);
  insert.bind(9, to_micros(event.recorded_at));
  insert.bindNoCopy(10, event.hash.data(), static_cast<int>(event.hash.size()));
}

}  // namespace annals::detail
