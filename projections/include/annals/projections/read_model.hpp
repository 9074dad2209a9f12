#pragma once
/// ReadModel: the database a projection writes its tables and its checkpoint
/// to, so both commit in one transaction. Two kinds exist:
///
///   annals::SqliteReadModel views("bank-views.db");                 // sqlite_read_model.hpp
///   annals::PostgresReadModel views("dbname=bank", {.schema = "views"});  //
///   postgres_read_model.hpp
///
/// ProjectionRunner, check_projection, request_rebuild and request_check take
/// either as a ReadModel&. Projections reach it only through SqlTransaction
/// (annals/store/sql_transaction.hpp), so one projection serves both.
///
/// Tables each read model creates and owns, besides the projections' own
/// (the same columns on both; integers are BIGINT on PostgreSQL):
///
///   projection_checkpoints(name PRIMARY KEY, position,  -- last position handled
///                          state,                       -- last known ProjectionState
///                          error, error_position, attempts, -- why it stopped
///                          updated_at,                  -- microseconds, UTC
///                          rebuild_requested)           -- when a rebuild was asked for, or NULL
///   projection_parked_events(name, position, stream_id, type, error, attempts, parked_at,
///                            PRIMARY KEY (name, position))
///   projection_checks(name PRIMARY KEY, requested_at, checked_at, result)
///
/// Only Annals implements this interface: rebuild and check reach each kind's
/// shadow tables through a private hook.
///
/// Thread safety: every member may be called from many threads; write() calls
/// are serialized (across processes too), read() calls see committed data
/// only. Each implementation's header says more.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "annals/core/clock.hpp"
#include "annals/projections/projection_status.hpp"
#include "annals/store/sql_transaction.hpp"

namespace annals {

namespace detail {
class ShadowModel;
struct ReadModelAccess;
}  // namespace detail

/// A projection's checkpoint row, as stored.
struct CheckpointRecord {
  std::string name;
  std::int64_t position = 0;
  ProjectionState state = ProjectionState::stopped;
  std::optional<ProjectionFailure> failure;
  Timestamp updated_at{};
  /// A rebuild was requested (annals/projections/rebuild_request.hpp) and
  /// not yet done.
  bool rebuild_requested = false;
};

class ReadModel {
 public:
  virtual ~ReadModel() = default;
  ReadModel(const ReadModel&) = delete;
  ReadModel& operator=(const ReadModel&) = delete;

  /// Runs `fn` in one write transaction and commits it; if `fn` throws, rolls
  /// everything back and rethrows. Write transactions of one read model are
  /// serialized, across processes too.
  /// Throws: what `fn` throws; StorageError when the database fails;
  /// InvalidArgument when called from inside a write() on the same thread
  /// (transactions do not nest) or on a read model opened read-only.
  virtual void write(const std::function<void(SqlTransaction&)>& fn) = 0;

  /// Runs `fn` in one read transaction: every query sees the same committed
  /// state. Statements that write fail with StorageError. A read() called
  /// from inside `fn` on the same thread joins that transaction.
  /// Throws: what `fn` throws; StorageError.
  virtual void read(const std::function<void(SqlTransaction&)>& fn) const = 0;

  /// What stamps the bookkeeping (checkpoint updated_at, parked_at, rebuild
  /// requests). Never throws.
  virtual const Clock& clock() const noexcept = 0;

  /// Names this read model in messages: "read model 'views.db'",
  /// "PostgreSQL read model (schema \"views\")". Never throws.
  virtual std::string describe() const = 0;

  /// One query on committed data. Throws: StorageError.
  std::vector<SqlRow> query(std::string_view sql, const std::vector<SqlValue>& params = {}) const;
  /// The first column of the first row; nullopt for no row or NULL. Throws: StorageError.
  std::optional<std::int64_t> query_int(std::string_view sql,
                                        const std::vector<SqlValue>& params = {}) const;

  /// The checkpoint of projection `name`; 0 when it has none.
  /// Throws: StorageError.
  std::int64_t checkpoint(const std::string& name) const;
  /// The stored checkpoint row of `name`, if any. Throws: StorageError.
  std::optional<CheckpointRecord> checkpoint_record(const std::string& name) const;
  /// Every projection's checkpoint row, in name order (one read transaction).
  /// Throws: StorageError.
  std::vector<CheckpointRecord> checkpoint_records() const;
  /// Events parked by projection `name`, in position order. Throws: StorageError.
  std::vector<ParkedEvent> parked_events(const std::string& name) const;
  /// The first `limit` of them (a page for a screen). Throws: StorageError.
  std::vector<ParkedEvent> parked_events(const std::string& name, std::size_t limit) const;
  /// How many events projection `name` parked. Throws: StorageError.
  std::int64_t parked_count(const std::string& name) const;
  /// Every consumer group (consumer_group.hpp) in the database, in name order,
  /// with each partition's checkpoint, owner, fencing token and failure, and
  /// its lag against `head_position` (pass the store's head); leases are
  /// judged current by clock(). None when no group ever ran here.
  /// Throws: StorageError.
  std::vector<ConsumerGroupStatus> consumer_groups(std::int64_t head_position) const;

 protected:
  ReadModel() = default;

 private:
  friend struct detail::ReadModelAccess;
  /// Shadow tables for a replay beside this read model (rebuild, check):
  /// a new, empty read model whose tables the live model's transactions can
  /// reach. Throws: StorageError.
  virtual std::unique_ptr<detail::ShadowModel> open_shadow() const = 0;
};

}  // namespace annals
