// Bookkeeping tables of projections, kept in the read model's database so
// that they commit in the same transaction as the rows they describe:
//
//   projection_checkpoints(
//     name           TEXT PRIMARY KEY,   -- Projection::name
//     position       INTEGER NOT NULL,   -- last store position handled; 0: none
//     state          TEXT NOT NULL,      -- last known: stopped | catching_up | live
//     error          TEXT,               -- why it stopped on a failure; NULL otherwise
//     error_position INTEGER,            -- the position that failed
//     attempts       INTEGER,            -- tries made on it
//     updated_at     INTEGER NOT NULL,   -- microseconds since the epoch, UTC
//     rebuild_requested INTEGER)         -- when a rebuild was requested (see
//                                        -- annals/projections/rebuild_request.hpp); NULL: none
//
//   projection_parked_events(
//     name TEXT, position INTEGER,       -- PRIMARY KEY (name, position)
//     stream_id TEXT, type TEXT,         -- of the event, for people reading the table
//     error TEXT, attempts INTEGER,      -- last error, tries so far
//     parked_at INTEGER)                 -- microseconds since the epoch, UTC
//
//   projection_checks(name TEXT PRIMARY KEY, requested_at INTEGER, checked_at INTEGER,
//                     result TEXT)       -- check requests (check_request.hpp)
//
// rebuild_requested was added after the first release of these tables:
// create_projection_tables adds it to a table that lacks it (ALTER TABLE ADD
// COLUMN keeps every row; the new column is NULL, "no request").
//
// The state column is what the last runner wrote: a process killed while live
// leaves "live" behind. Only error/error_position say for sure that it stopped.

#include "projection_tables.hpp"

#include <algorithm>
#include <limits>

#include "sql_connection.hpp"

namespace annals::detail {

namespace {

ProjectionState parse_state(const std::string& text) {
  if (text == "live") return ProjectionState::live;
  if (text == "catching_up") return ProjectionState::catching_up;
  return ProjectionState::stopped;
}

ParkedEvent parked_from(const std::string& name, const SqlRow& row) {
  ParkedEvent p;
  p.projection = name;
  p.position = row[0].as_int();
  p.stream_id = row[1].as_text();
  p.type = row[2].as_text();
  p.error = row[3].as_text();
  p.attempts = static_cast<int>(row[4].as_int());
  p.parked_at = from_micros(row[5].as_int());
  return p;
}

constexpr const char* kParkedColumns = "position, stream_id, type, error, attempts, parked_at";

}  // namespace

std::string in_dialect(const SqlTransaction& tx, std::string ddl) {
  if (tx.dialect() != SqlDialect::postgresql) return ddl;
  const auto replace_all = [&](const std::string& from, const std::string& to) {
    for (auto at = ddl.find(from); at != std::string::npos; at = ddl.find(from, at + to.size())) {
      ddl.replace(at, from.size(), to);
    }
  };
  replace_all("id INTEGER PRIMARY KEY", "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY");
  replace_all(" INTEGER", " BIGINT");
  return ddl;
}

void create_projection_tables(SqlTransaction& tx) {
  tx.exec_script(in_dialect(tx, R"sql(
CREATE TABLE IF NOT EXISTS projection_checkpoints (
  name           TEXT    PRIMARY KEY,
  position       INTEGER NOT NULL,
  state          TEXT    NOT NULL,
  error          TEXT,
  error_position INTEGER,
  attempts       INTEGER,
  updated_at     INTEGER NOT NULL,
  rebuild_requested INTEGER
);
CREATE TABLE IF NOT EXISTS projection_parked_events (
  name      TEXT    NOT NULL,
  position  INTEGER NOT NULL,
  stream_id TEXT    NOT NULL,
  type      TEXT    NOT NULL,
  error     TEXT    NOT NULL,
  attempts  INTEGER NOT NULL,
  parked_at INTEGER NOT NULL,
  PRIMARY KEY (name, position)
);
CREATE TABLE IF NOT EXISTS projection_checks (
  name         TEXT    PRIMARY KEY,
  requested_at INTEGER NOT NULL,
  checked_at   INTEGER,
  result       TEXT
);
)sql"));
  // PostgreSQL read models were made with rebuild_requested from the start;
  // SQLite files made before it existed get it here.
  if (tx.dialect() == SqlDialect::postgresql) return;
  const bool has_request_column =
      tx.query_int("SELECT count(*) FROM pragma_table_info('projection_checkpoints') "
                   "WHERE name = 'rebuild_requested'")
          .value_or(0) > 0;
  if (!has_request_column) {
    tx.exec("ALTER TABLE projection_checkpoints ADD COLUMN rebuild_requested INTEGER");
  }
}

bool request_rebuild(SqlTransaction& tx, const std::string& name, Timestamp now) {
  return tx.exec("UPDATE projection_checkpoints SET rebuild_requested = $2 WHERE name = $1",
                 {name, to_micros(now)}) > 0;
}

bool rebuild_requested(SqlTransaction& tx, const std::string& name) {
  return tx
      .query_int("SELECT rebuild_requested FROM projection_checkpoints WHERE name = $1", {name})
      .has_value();
}

void clear_rebuild_request(SqlTransaction& tx, const std::string& name) {
  tx.exec("UPDATE projection_checkpoints SET rebuild_requested = NULL WHERE name = $1", {name});
}

void ensure_checkpoint(SqlTransaction& tx, const std::string& name, Timestamp now) {
  tx.exec(
      "INSERT INTO projection_checkpoints (name, position, state, updated_at) "
      "VALUES ($1, 0, 'stopped', $2) ON CONFLICT(name) DO NOTHING",
      {name, to_micros(now)});
}

namespace {

// SQLite only: PostgreSQL read models never lacked a column.
bool has_column(SqlTransaction& tx, const std::string& table, const std::string& column) {
  return tx.query_int("SELECT count(*) FROM pragma_table_info($1) WHERE name = $2", {table, column})
             .value_or(0) > 0;
}

// The columns checkpoint_from() reads; `requested` is the rebuild request's
// expression (the column, or 0 for a table made before it existed).
std::string checkpoint_columns(const std::string& requested) {
  return "name, position, state, error, error_position, attempts, updated_at, " + requested;
}

CheckpointRecord checkpoint_from(const SqlRow& row) {
  CheckpointRecord record;
  record.name = row[0].as_text();
  record.position = row[1].as_int();
  record.state = parse_state(row[2].as_text());
  if (!row[3].is_null()) {
    record.failure = ProjectionFailure{row[4].is_null() ? 0 : row[4].as_int(), row[3].as_text(),
                                       row[5].is_null() ? 0 : static_cast<int>(row[5].as_int())};
  }
  record.updated_at = from_micros(row[6].as_int());
  record.rebuild_requested = !row[7].is_null() && row[7].as_int() != 0;
  return record;
}

std::string requested_expression(SqlTransaction& tx) {
  constexpr const char* kRequested = "CASE WHEN rebuild_requested IS NULL THEN 0 ELSE 1 END";
  // PostgreSQL read models have had the column from the start: no catalog
  // query there on every status look.
  if (tx.dialect() == SqlDialect::postgresql) return kRequested;
  return has_column(tx, "projection_checkpoints", "rebuild_requested") ? kRequested : "0";
}

}  // namespace

bool has_table(SqlTransaction& tx, const std::string& table) {
  if (tx.dialect() == SqlDialect::postgresql) {
    return tx.query_int(
                 "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() "
                 "AND tablename = $1",
                 {table})
               .value_or(0) > 0;
  }
  return tx.query_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = $1",
                      {table})
             .value_or(0) > 0;
}

std::optional<CheckpointRecord> load_checkpoint(SqlTransaction& tx, const std::string& name) {
  if (!has_table(tx, "projection_checkpoints")) return std::nullopt;
  const auto rows = tx.query("SELECT " + checkpoint_columns(requested_expression(tx)) +
                                 " FROM projection_checkpoints WHERE name = $1",
                             {name});
  if (rows.empty()) return std::nullopt;
  return checkpoint_from(rows.front());
}

std::vector<CheckpointRecord> load_checkpoints(SqlTransaction& tx) {
  std::vector<CheckpointRecord> records;
  if (!has_table(tx, "projection_checkpoints")) return records;
  for (const SqlRow& row : tx.query("SELECT " + checkpoint_columns(requested_expression(tx)) +
                                    " FROM projection_checkpoints ORDER BY name")) {
    records.push_back(checkpoint_from(row));
  }
  return records;
}

std::int64_t checkpoint_position(SqlTransaction& tx, const std::string& name) {
  return tx.query_int("SELECT position FROM projection_checkpoints WHERE name = $1", {name})
      .value_or(0);
}

void save_checkpoint(SqlTransaction& tx, const std::string& name, std::int64_t position,
                     ProjectionState state, Timestamp now) {
  tx.exec(
      "INSERT INTO projection_checkpoints (name, position, state, updated_at) "
      "VALUES ($1, $2, $3, $4) ON CONFLICT(name) DO UPDATE SET position = excluded.position, "
      "state = excluded.state, error = NULL, error_position = NULL, attempts = NULL, "
      "updated_at = excluded.updated_at",
      {name, position, std::string(to_string(state)), to_micros(now)});
}

void save_state(SqlTransaction& tx, const std::string& name, ProjectionState state,
                Timestamp now) {
  tx.exec("UPDATE projection_checkpoints SET state = $2, updated_at = $3 WHERE name = $1",
          {name, std::string(to_string(state)), to_micros(now)});
}

void clear_failure(SqlTransaction& tx, const std::string& name, ProjectionState state,
                   Timestamp now) {
  tx.exec(
      "UPDATE projection_checkpoints SET state = $2, error = NULL, error_position = NULL, "
      "attempts = NULL, updated_at = $3 WHERE name = $1",
      {name, std::string(to_string(state)), to_micros(now)});
}

void save_position(SqlTransaction& tx, const std::string& name, std::int64_t position,
                   Timestamp now) {
  tx.exec("UPDATE projection_checkpoints SET position = $2, updated_at = $3 WHERE name = $1",
          {name, position, to_micros(now)});
}

void save_failure(SqlTransaction& tx, const std::string& name, const ProjectionFailure& failure,
                  Timestamp now) {
  tx.exec(
      "UPDATE projection_checkpoints SET state = 'stopped', error = $2, error_position = $3, "
      "attempts = $4, updated_at = $5 WHERE name = $1",
      {name, failure.message, failure.position, failure.attempts, to_micros(now)});
}

void park_event(SqlTransaction& tx, const ParkedEvent& parked) {
  tx.exec(
      "INSERT INTO projection_parked_events (name, position, stream_id, type, error, attempts, "
      "parked_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT(name, position) DO UPDATE SET "
      "error = excluded.error, attempts = projection_parked_events.attempts + excluded.attempts",
      {parked.projection, parked.position, parked.stream_id, parked.type, parked.error,
       parked.attempts, to_micros(parked.parked_at)});
}

std::vector<ParkedEvent> load_parked(SqlTransaction& tx, const std::string& name) {
  std::vector<ParkedEvent> out;
  if (!has_table(tx, "projection_parked_events")) return out;
  for (const auto& row : tx.query(std::string("SELECT ") + kParkedColumns +
                                      " FROM projection_parked_events WHERE name = $1 "
                                      "ORDER BY position",
                                  {name})) {
    out.push_back(parked_from(name, row));
  }
  return out;
}

std::vector<ParkedEvent> load_parked(SqlTransaction& tx, const std::string& name,
                                     std::size_t limit) {
  std::vector<ParkedEvent> out;
  if (!has_table(tx, "projection_parked_events")) return out;
  for (const auto& row : tx.query(std::string("SELECT ") + kParkedColumns +
                                      " FROM projection_parked_events WHERE name = $1 "
                                      "ORDER BY position LIMIT $2",
                                  {name, static_cast<std::int64_t>(std::min<std::size_t>(
                                             limit, std::numeric_limits<std::int64_t>::max()))})) {
    out.push_back(parked_from(name, row));
  }
  return out;
}

std::optional<ParkedEvent> load_parked(SqlTransaction& tx, const std::string& name,
                                       std::int64_t position) {
  const auto rows = tx.query(std::string("SELECT ") + kParkedColumns +
                                 " FROM projection_parked_events WHERE name = $1 AND position = $2",
                             {name, position});
  if (rows.empty()) return std::nullopt;
  return parked_from(name, rows.front());
}

void unpark_event(SqlTransaction& tx, const std::string& name, std::int64_t position) {
  tx.exec("DELETE FROM projection_parked_events WHERE name = $1 AND position = $2",
          {name, position});
}

void update_parked(SqlTransaction& tx, const std::string& name, std::int64_t position,
                   const std::string& error) {
  tx.exec(
      "UPDATE projection_parked_events SET error = $3, attempts = attempts + 1 "
      "WHERE name = $1 AND position = $2",
      {name, position, error});
}

void clear_parked(SqlTransaction& tx, const std::string& name) {
  tx.exec("DELETE FROM projection_parked_events WHERE name = $1", {name});
}

std::int64_t count_parked(SqlTransaction& tx, const std::string& name) {
  if (!has_table(tx, "projection_parked_events")) return 0;
  return tx.query_int("SELECT count(*) FROM projection_parked_events WHERE name = $1", {name})
      .value_or(0);
}

IntegrityError checkpoint_beyond_head(const std::string& name, std::int64_t checkpoint,
                                      std::int64_t head) {
  return IntegrityError("projection '" + name + "': its checkpoint (position " +
                            std::to_string(checkpoint) + ") is beyond the store's head (position " +
                            std::to_string(head) +
                            "): events were removed from the store's tail, or the read model "
                            "belongs to another store; nothing was applied (check the store, "
                            "then rebuild the projection)",
                        head + 1);
}

}  // namespace annals::detail
