#pragma once
/// Check requests: how a process that does not have a projection's code (the
/// `annals check NAME` tool) asks the process that runs it to check its read
/// model against the history (check_projection, projection_check.hpp).
///
///   annals::SqliteReadModel views("bank-views.db");
///   const auto at = annals::request_check(views, "balances");
///   // ... the ProjectionRunner of "balances", in whichever process runs it,
///   // runs the check at its next batch or its next poll when idle (or at
///   // start() / catch_up()), between two batches, so the live model does
///   // not move meanwhile, and records the report:
///   auto record = annals::check_record(views, "balances");   // record->checked_at >= at: done
///
/// The request and its last result are a row of the table
///   projection_checks(name TEXT PRIMARY KEY, requested_at INTEGER,  -- microseconds, UTC
///                     checked_at INTEGER,                           -- NULL while pending
///                     result TEXT)                                  -- check_report_json(), or
///                                                                   -- {"error": message}
/// which SqliteReadModel creates.
///
/// Thread safety: as SqliteReadModel (any thread, any process).

#include <cstdint>
#include <optional>
#include <string>

#include "annals/core/event.hpp"
#include "annals/projections/projection_check.hpp"
#include "annals/projections/sqlite_read_model.hpp"

namespace annals {

/// Records that projection `name` must be checked; returns the request's time
/// (microseconds since the epoch, UTC; later than any earlier request's).
/// Throws: InvalidArgument when the read model has no projection `name`;
/// StorageError.
std::int64_t request_check(ReadModel& read_model, const std::string& name);

/// The last check request of `name` and its result, if any.
struct CheckRecord {
  std::int64_t requested_at = 0;
  std::optional<std::int64_t> checked_at;  ///< nullopt while the request is pending
  Json result;                             ///< check_report_json(), or {"error": message}
};

/// Throws: StorageError.
std::optional<CheckRecord> check_record(const ReadModel& read_model, const std::string& name);

/// A report as JSON: projection, checkpoint, equal, tables, live_rows,
/// replay_rows, only_in_live, only_in_replay, differing, schema_differences,
/// replay_failures [{position, message}], samples [{table, kind, columns,
/// live, replay}] (values as JSON null, integer, number or string).
Json check_report_json(const CheckReport& report);

}  // namespace annals
