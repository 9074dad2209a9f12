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

void create_projection_tables(SqlTransaction& tx) {
  tx.exec_script(R"sql(
CREATE TABLE IF NOT EXISTS projection_checkpoints (
  name           TEXT    PRIMARY KEY,
  position       INTEGER NOT NULL,
  state          TEXT    NOT NULL,
  error          TEXT,
  error_position INTEGER,
  attempts       INTEGER,
  updated_at     INTEGER NOT NULL
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
)sql");
  const bool has_request_column =
      tx.query_int("SELECT count(*) FROM pragma_table_info('projection_checkpoints') "
                   "WHERE name = 'rebuild_requested'")
          .value_or(0) > 0;
  if (!has_request_column) {
    tx.exec("ALTER TABLE projection_checkpoints ADD COLUMN rebuild_requested INTEGER");
  }
}

bool request_rebuild(SqlTransaction& tx, const std::string& name) {
  return tx.exec("UPDATE projection_checkpoints SET rebuild_requested = ?2 WHERE name = ?1",
                 {name, now_micros()}) > 0;
}

bool rebuild_requested(SqlTransaction& tx, const std::string& name) {
  return tx.query_int("SELECT rebuild_requested FROM projection_checkpoints WHERE name = ?1",
                      {name})
      .has_value();
}

void clear_rebuild_request(SqlTransaction& tx, const std::string& name) {
  tx.exec("UPDATE projection_checkpoints SET rebuild_requested = NULL WHERE name = ?1", {name});
}

void ensure_checkpoint(SqlTransaction& tx, const std::string& name) {
  tx.exec(
      "INSERT INTO projection_checkpoints (name, position, state, updated_at) "
      "VALUES (?1, 0, 'stopped', ?2) ON CONFLICT(name) DO NOTHING",
      {name, now_micros()});
}

std::optional<CheckpointRecord> load_checkpoint(SqlTransaction& tx, const std::string& name) {
  const auto rows = tx.query(
      "SELECT position, state, error, error_position, attempts, updated_at "
      "FROM projection_checkpoints WHERE name = ?1",
      {name});
  if (rows.empty()) return std::nullopt;
  const SqlRow& row = rows.front();
  CheckpointRecord record;
  record.name = name;
  record.position = row[0].as_int();
  record.state = parse_state(row[1].as_text());
  if (!row[2].is_null()) {
    record.failure = ProjectionFailure{row[3].is_null() ? 0 : row[3].as_int(), row[2].as_text(),
                                       row[4].is_null() ? 0 : static_cast<int>(row[4].as_int())};
  }
  record.updated_at = from_micros(row[5].as_int());
  return record;
}

std::int64_t checkpoint_position(SqlTransaction& tx, const std::string& name) {
  return tx.query_int("SELECT position FROM projection_checkpoints WHERE name = ?1", {name})
      .value_or(0);
}

void save_checkpoint(SqlTransaction& tx, const std::string& name, std::int64_t position,
                     ProjectionState state) {
  tx.exec(
      "INSERT INTO projection_checkpoints (name, position, state, updated_at) "
      "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(name) DO UPDATE SET position = excluded.position, "
      "state = excluded.state, error = NULL, error_position = NULL, attempts = NULL, "
      "updated_at = excluded.updated_at",
      {name, position, std::string(to_string(state)), now_micros()});
}

void save_state(SqlTransaction& tx, const std::string& name, ProjectionState state) {
  tx.exec("UPDATE projection_checkpoints SET state = ?2, updated_at = ?3 WHERE name = ?1",
          {name, std::string(to_string(state)), now_micros()});
}

void clear_failure(SqlTransaction& tx, const std::string& name, ProjectionState state) {
  tx.exec(
      "UPDATE projection_checkpoints SET state = ?2, error = NULL, error_position = NULL, "
      "attempts = NULL, updated_at = ?3 WHERE name = ?1",
      {name, std::string(to_string(state)), now_micros()});
}

void save_position(SqlTransaction& tx, const std::string& name, std::int64_t position) {
  tx.exec("UPDATE projection_checkpoints SET position = ?2, updated_at = ?3 WHERE name = ?1",
          {name, position, now_micros()});
}

void save_failure(SqlTransaction& tx, const std::string& name, const ProjectionFailure& failure) {
  tx.exec(
      "UPDATE projection_checkpoints SET state = 'stopped', error = ?2, error_position = ?3, "
      "attempts = ?4, updated_at = ?5 WHERE name = ?1",
      {name, failure.message, failure.position, failure.attempts, now_micros()});
}

void park_event(SqlTransaction& tx, const ParkedEvent& parked) {
  tx.exec(
      "INSERT INTO projection_parked_events (name, position, stream_id, type, error, attempts, "
      "parked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(name, position) DO UPDATE SET "
      "error = excluded.error, attempts = projection_parked_events.attempts + excluded.attempts",
      {parked.projection, parked.position, parked.stream_id, parked.type, parked.error,
       parked.attempts, to_micros(parked.parked_at)});
}

std::vector<ParkedEvent> load_parked(SqlTransaction& tx, const std::string& name) {
  std::vector<ParkedEvent> out;
  for (const auto& row : tx.query(std::string("SELECT ") + kParkedColumns +
                                      " FROM projection_parked_events WHERE name = ?1 "
                                      "ORDER BY position",
                                  {name})) {
    out.push_back(parked_from(name, row));
  }
  return out;
}

std::optional<ParkedEvent> load_parked(SqlTransaction& tx, const std::string& name,
                                       std::int64_t position) {
  const auto rows = tx.query(std::string("SELECT ") + kParkedColumns +
                                 " FROM projection_parked_events WHERE name = ?1 AND position = ?2",
                             {name, position});
  if (rows.empty()) return std::nullopt;
  return parked_from(name, rows.front());
}

void unpark_event(SqlTransaction& tx, const std::string& name, std::int64_t position) {
  tx.exec("DELETE FROM projection_parked_events WHERE name = ?1 AND position = ?2",
          {name, position});
}

void update_parked(SqlTransaction& tx, const std::string& name, std::int64_t position,
                   const std::string& error) {
  tx.exec(
      "UPDATE projection_parked_events SET error = ?3, attempts = attempts + 1 "
      "WHERE name = ?1 AND position = ?2",
      {name, position, error});
}

void clear_parked(SqlTransaction& tx, const std::string& name) {
  tx.exec("DELETE FROM projection_parked_events WHERE name = ?1", {name});
}

std::int64_t count_parked(SqlTransaction& tx, const std::string& name) {
  return tx.query_int("SELECT count(*) FROM projection_parked_events WHERE name = ?1", {name})
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
