#pragma once
// The bookkeeping tables of projections, as SQL run through an SqlTransaction
// (a read model's connection, or the store's writer inside an append). The
// schema is described at the top of projection_tables.cpp. Functions that
// stamp a time take it (`now`, from the read model's clock).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/projections/projection_status.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/sqlite_event_store.hpp"

namespace annals::detail {

// `ddl`, written for SQLite, in the transaction's dialect: on PostgreSQL,
// where INTEGER is 32 bits, 64-bit integers, and identity keys where SQLite's
// rowid serves ("id INTEGER PRIMARY KEY"). One text serves both backends.
std::string in_dialect(const SqlTransaction& tx, std::string ddl);

// Creates both tables if missing, and adds the rebuild_requested column to a
// checkpoint table made before it existed.
void create_projection_tables(SqlTransaction& tx);

// Records a rebuild request for `name`; false when `name` has no checkpoint row.
bool request_rebuild(SqlTransaction& tx, const std::string& name, Timestamp now);
// Whether a rebuild of `name` was requested and not yet done.
bool rebuild_requested(SqlTransaction& tx, const std::string& name);
void clear_rebuild_request(SqlTransaction& tx, const std::string& name);

// Inserts the checkpoint row of `name` at position 0 if it has none.
void ensure_checkpoint(SqlTransaction& tx, const std::string& name, Timestamp now);

std::optional<CheckpointRecord> load_checkpoint(SqlTransaction& tx, const std::string& name);

// Every checkpoint row, in name order; none when the database has no
// checkpoint table (a read-only look at a file no projection used). A table
// made before rebuild requests existed reads as none requested.
std::vector<CheckpointRecord> load_checkpoints(SqlTransaction& tx);

// Whether the database has the bookkeeping table `table`.
bool has_table(SqlTransaction& tx, const std::string& table);

// The checkpoint position; 0 without a row.
std::int64_t checkpoint_position(SqlTransaction& tx, const std::string& name);

// Moves the checkpoint and records the state; clears any failure.
void save_checkpoint(SqlTransaction& tx, const std::string& name, std::int64_t position,
                     ProjectionState state, Timestamp now);

// Records the state only (keeps position and failure).
void save_state(SqlTransaction& tx, const std::string& name, ProjectionState state,
                Timestamp now);

// Forgets a recorded failure (keeps the position).
void clear_failure(SqlTransaction& tx, const std::string& name, ProjectionState state,
                   Timestamp now);

// Moves the checkpoint only (inline projections, once per append).
void save_position(SqlTransaction& tx, const std::string& name, std::int64_t position,
                   Timestamp now);

// Records that the projection stopped on `failure`.
void save_failure(SqlTransaction& tx, const std::string& name, const ProjectionFailure& failure,
                  Timestamp now);

void park_event(SqlTransaction& tx, const ParkedEvent& parked);
std::vector<ParkedEvent> load_parked(SqlTransaction& tx, const std::string& name);
// The first `limit` parked events of `name`, in position order.
std::vector<ParkedEvent> load_parked(SqlTransaction& tx, const std::string& name,
                                     std::size_t limit);
std::optional<ParkedEvent> load_parked(SqlTransaction& tx, const std::string& name,
                                       std::int64_t position);
void unpark_event(SqlTransaction& tx, const std::string& name, std::int64_t position);
void update_parked(SqlTransaction& tx, const std::string& name, std::int64_t position,
                   const std::string& error);
void clear_parked(SqlTransaction& tx, const std::string& name);
std::int64_t count_parked(SqlTransaction& tx, const std::string& name);

// The error of projection `name` whose checkpoint is beyond the store's head:
// the store lost its newest events, or the read model belongs to another
// store. Its position() is head + 1, the first position the checkpoint counts
// as handled that the store does not hold.
IntegrityError checkpoint_beyond_head(const std::string& name, std::int64_t checkpoint,
                                      std::int64_t head);

}  // namespace annals::detail
