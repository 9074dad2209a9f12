#pragma once
/// Projection: what turns events into a read model kept in SQLite tables.
///
///   annals::Projection balances{
///       .name = "balances",
///       .filter = annals::EventFilter::for_category("account"),
///       .setup = [](annals::SqlTransaction& tx) {
///         tx.exec_script("CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, "
///                        "cents INTEGER NOT NULL)");
///       },
///       .apply = [](annals::SqlTransaction& tx, const annals::RecordedEvent& e) {
///         tx.exec("INSERT INTO balances VALUES (?1, ?2) ON CONFLICT(account) DO UPDATE "
///                 "SET cents = cents + excluded.cents", {e.stream_id, cents_of(e)});
///       },
///       .reset = [](annals::SqlTransaction& tx) { tx.exec("DELETE FROM balances"); },
///   };
///
/// The same description runs durably, behind the store, with a
/// ProjectionRunner (projection_runner.hpp), or inside every append
/// transaction with an InlineProjection (inline_projection.hpp).
///
/// Each function receives an SqlTransaction open on the read model's database:
/// what it writes commits together with the projection's checkpoint, so each
/// event's effect on those tables is applied exactly once. Effects outside the
/// transaction (a message sent, a file written) happen at least once: after a
/// crash or a retry the same event may be applied again.
///
/// Thread safety: the runner calls the functions from one thread at a time,
/// never concurrently with each other, events in position order (except a
/// parked event retried later, see ProjectionRunner::retry_parked).

#include <functional>
#include <string>

#include "annals/store/event_store.hpp"
#include "annals/store/sqlite_event_store.hpp"

namespace annals {

struct Projection {
  /// Identifies the projection's checkpoint and parked events; unique per read
  /// model database. Required (non-empty).
  std::string name;
  /// The events apply() receives; the checkpoint still advances past the others.
  /// Default: every event.
  EventFilter filter;
  /// Creates the projection's tables (idempotently: CREATE TABLE IF NOT EXISTS).
  /// Called once per runner before anything else. Optional.
  std::function<void(SqlTransaction&)> setup;
  /// Applies one event. Throwing fails the event: its writes are rolled back
  /// and the runner retries it, then applies its poison policy; an inline
  /// projection rejects the append instead. Required.
  std::function<void(SqlTransaction&, const RecordedEvent&)> apply;
  /// Empties the read model for rebuild(); runs in the same transaction that
  /// resets the checkpoint. Required only by rebuild().
  std::function<void(SqlTransaction&)> reset;
};

}  // namespace annals
