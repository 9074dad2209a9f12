#pragma once
/// Rebuild requests: how a process that does not have a projection's code
/// (the `annals rebuild NAME` tool, an operator's script) asks the process that
/// runs it to rebuild it.
///
///   annals::SqliteReadModel views("bank-views.db");
///   annals::request_rebuild(views, "balances");   // recorded in the read model
///   // ... the ProjectionRunner of "balances", in whichever process runs it,
///   // honours the request at its next batch (or its next poll when idle, or
///   // at start() / catch_up()): it runs the projection's reset(), drops its
///   // parked events and sets its checkpoint to 0 in one transaction, clears
///   // the request, and replays the store from position 1.
///
/// The request is the column projection_checkpoints.rebuild_requested (the
/// time it was made, NULL when none is pending); SqliteReadModel adds the
/// column to read models created before it existed. A runner whose projection
/// has no reset() cannot honour a request and leaves it pending.
/// ProjectionRunner::rebuild() remains the in-process way; it also clears a
/// pending request.
///
/// Thread safety: as SqliteReadModel (any thread, any process).

#include <string>

#include "annals/projections/sqlite_read_model.hpp"

namespace annals {

/// Records that projection `name` must be rebuilt. Requesting again while a
/// request is pending only updates its time.
/// Throws: InvalidArgument naming the projection and the file when the read
/// model has no checkpoint for `name` (no runner ever prepared it there);
/// StorageError.
void request_rebuild(ReadModel& read_model, const std::string& name);

/// Whether a rebuild of `name` was requested and not yet started by a runner.
/// Throws: StorageError.
bool rebuild_requested(const ReadModel& read_model, const std::string& name);

}  // namespace annals
