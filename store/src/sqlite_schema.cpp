// Schema of an Annals SQLite store (PRAGMA user_version = 4,
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
//   events_high_water(singleton = 1, position) -- highest position ever written
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
// Positions are never handed out twice: events_high_water holds one row, the
// highest position ever written, raised in the transaction of every append
// that writes (one statement per group commit) and by imports. Deleting the
// newest events (after dropping the triggers) leaves it where it was: appends
// are then refused and verify() fails, naming the head and the mark, instead
// of a new event taking a position a projection already passed. Its own
// triggers refuse lowering it (UPDATE, a REPLACE through INSERT) and DELETE.
//
// Every trigger is an append-only guard. Opening a store compares them with
// the ones its migrations create (name and SQL text): a writable open
// restores a missing or altered guard (and a missing high-water row), and the
// store reports that it did; a read-only open only reports it (see
// guard_problems and SqliteEventStore::verify).
//
// Migrations: each schema version has a step below that moves a store from the
// version before; open_schema runs the missing steps in one transaction.
//   1: the tables and the UPDATE/DELETE triggers.
//   2: the INSERT trigger against REPLACE (stores of version 1 had none).
//   3: the high-water mark of positions and its triggers.
//   4: the store's identity and its seals (see below and annals/store/seal.hpp).
//
//   store_identity(singleton = 1, store_id TEXT, assigned_at INTEGER)
//     One row: a random UUID (version 4) given when the step runs, at creation
//     or on the first writable open of an older store. Fixed once the store
//     holds events or seals; until then an import may replace it with the id
//     its export carries (annals/store/event_export.hpp).
//   seals(seal_number INTEGER PRIMARY KEY, head_position, head_hash BLOB,
//         event_count, sealed_at, key_id TEXT, seal TEXT)
//     Every seal the store issued, the signed statement as issued in `seal`
//     (JSON); key_id is NULL for an unsigned seal. Append-only like events.
//   Step 4 only adds what is missing, so a store whose user_version was set
//   back by hand migrates again without losing its id or seals.

#include "sqlite_schema.hpp"

#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

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

constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE events_high_water (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  position  INTEGER NOT NULL CHECK (position >= 0)
) STRICT;

INSERT INTO events_high_water (singleton, position)
  SELECT 1, coalesce(max(position), 0) FROM events;

CREATE TRIGGER events_high_water_update BEFORE UPDATE ON events_high_water
WHEN NEW.position < OLD.position OR NEW.singleton IS NOT OLD.singleton
BEGIN
  SELECT RAISE(ABORT, 'annals: the high-water mark of positions never decreases');
END;

CREATE TRIGGER events_high_water_insert BEFORE INSERT ON events_high_water
WHEN NEW.position < (SELECT max(position) FROM events_high_water)
BEGIN
  SELECT RAISE(ABORT, 'annals: the high-water mark of positions never decreases');
END;

CREATE TRIGGER events_high_water_delete BEFORE DELETE ON events_high_water
BEGIN
  SELECT RAISE(ABORT, 'annals: the high-water mark of positions cannot be deleted');
END;
)sql";

constexpr const char* kSchemaV4Seals = R"sql(
CREATE TABLE IF NOT EXISTS store_identity (
  singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
  store_id    TEXT    NOT NULL,
  assigned_at INTEGER NOT NULL
) STRICT;

INSERT INTO store_identity (singleton, store_id, assigned_at) SELECT 1,
  lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
  substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (random() & 3), 1) ||
  substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
  CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)
  WHERE NOT EXISTS (SELECT 1 FROM store_identity);

CREATE TABLE IF NOT EXISTS seals (
  seal_number   INTEGER PRIMARY KEY,
  head_position INTEGER NOT NULL CHECK (head_position >= 0),
  head_hash     BLOB    NOT NULL,
  event_count   INTEGER NOT NULL CHECK (event_count >= 0),
  sealed_at     INTEGER NOT NULL,
  key_id        TEXT,
  seal          TEXT    NOT NULL
) STRICT;

CREATE TRIGGER IF NOT EXISTS store_identity_fixed_update BEFORE UPDATE ON store_identity
  WHEN EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM seals)
BEGIN
  SELECT RAISE(ABORT, 'annals: the store id is fixed once the store holds events or seals');
END;

CREATE TRIGGER IF NOT EXISTS store_identity_fixed_delete BEFORE DELETE ON store_identity
BEGIN
  SELECT RAISE(ABORT, 'annals: the store id cannot be deleted');
END;

CREATE TRIGGER IF NOT EXISTS store_identity_fixed_insert BEFORE INSERT ON store_identity
  WHEN EXISTS (SELECT 1 FROM store_identity)
BEGIN
  SELECT RAISE(ABORT, 'annals: the store already has an id');
END;

CREATE TRIGGER IF NOT EXISTS seals_append_only_update BEFORE UPDATE ON seals
BEGIN
  SELECT RAISE(ABORT, 'annals: the seals table is append-only; UPDATE is not allowed');
END;

CREATE TRIGGER IF NOT EXISTS seals_append_only_delete BEFORE DELETE ON seals
BEGIN
  SELECT RAISE(ABORT, 'annals: the seals table is append-only; DELETE is not allowed');
END;

CREATE TRIGGER IF NOT EXISTS seals_append_only_insert BEFORE INSERT ON seals
  WHEN EXISTS (SELECT 1 FROM seals WHERE seal_number = NEW.seal_number)
BEGIN
  SELECT RAISE(ABORT, 'annals: the seals table is append-only; this seal_number is already stored');
END;
)sql";

// The step that moves a store from version `to - 1` to version `to`.
const char* migration_to(int to) {
  switch (to) {
    case 1:
      return kSchemaV1;
    case 2:
      return kSchemaV2;
    case 3:
      return kSchemaV3;
    case 4:
      return kSchemaV4Seals;
    default:
      return nullptr;
  }
}

struct Guard {
  std::string name;
  std::string sql;
};

// The triggers the migrations up to `version` create, as sqlite_schema holds
// them: built in an in-memory database, so the guards are defined once, by the
// migrations themselves.
std::vector<Guard> guards_of_version(int version) {
  SQLite::Database scratch(":memory:", SQLite::OPEN_READWRITE);
  for (int to = 1; to <= version; ++to) scratch.exec(migration_to(to));
  std::vector<Guard> guards;
  SQLite::Statement st(scratch,
                       "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name");
  while (st.executeStep()) guards.push_back({st.getColumn(0).getString(), st.getColumn(1).getString()});
  return guards;
}

int user_version(SQLite::Database& db) {
  return db.execAndGet("PRAGMA user_version").getInt();
}

bool has_table(SQLite::Database& db, const char* name) {
  SQLite::Statement st(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1");
  st.bind(1, name);
  return st.executeStep();
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
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    {
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
      tx.commit();
    }
  } catch (const SQLite::Exception& e) {
    throw StorageError("cannot create the Annals schema in " + name + ": " + e.what(),
                       e.getErrorCode(), e.getExtendedErrorCode());
  }
}

std::vector<GuardProblem> guard_problems(SQLite::Database& db) {
  std::vector<GuardProblem> problems;
  try {
    const int version = user_version(db);
    if (version < 1) return problems;
    SQLite::Statement st(db, "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = ?1");
    for (const Guard& guard : guards_of_version(version)) {
      st.reset();
      st.bind(1, guard.name);
      if (!st.executeStep()) {
        problems.push_back({guard.name, "missing"});
      } else if (st.getColumn(0).getString() != guard.sql) {
        problems.push_back({guard.name, "altered"});
      }
    }
    if (version >= 3 && has_table(db, "events_high_water") &&
        !db.execAndGet("SELECT count(*) FROM events_high_water").getInt()) {
      problems.push_back({"events_high_water", "its row is missing"});
    }
  } catch (const SQLite::Exception& e) {
    throw StorageError("cannot read the append-only guards: " + std::string(e.what()),
                       e.getErrorCode(), e.getExtendedErrorCode());
  }
  return problems;
}

std::vector<GuardProblem> restore_guards(SQLite::Database& db, const std::filesystem::path& path) {
  if (guard_problems(db).empty()) return {};
  const std::string name = "'" + path.string() + "'";
  std::vector<GuardProblem> restored;
  try {
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    {
      restored = guard_problems(db);  // again, under the write lock
      const int version = user_version(db);
      for (const Guard& guard : guards_of_version(version)) {
        const bool broken = std::any_of(restored.begin(), restored.end(),
                                        [&](const GuardProblem& p) { return p.guard == guard.name; });
        if (!broken) continue;
        db.exec("DROP TRIGGER IF EXISTS \"" + guard.name + "\"");
        db.exec(guard.sql);
      }
      if (version >= 3) {
        // A lost mark restarts from the head: the positions handed out beyond
        // it cannot be known any more, which is why this is reported.
        db.exec(
            "INSERT INTO events_high_water (singleton, position) "
            "SELECT 1, (SELECT coalesce(max(position), 0) FROM events) "
            "WHERE NOT EXISTS (SELECT 1 FROM events_high_water)");
      }
      tx.commit();
    }
  } catch (const SQLite::Exception& e) {
    throw StorageError("cannot restore the append-only guards of " + name + ": " + e.what(),
                       e.getErrorCode(), e.getExtendedErrorCode());
  }
  return restored;
}

std::string describe(const std::vector<GuardProblem>& problems) {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty()) out += ", ";
    out += p.guard + " (" + p.what + ")";
  }
  return out;
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
