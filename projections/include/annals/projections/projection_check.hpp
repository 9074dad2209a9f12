#pragma once
/// check_projection: is a live read model what its history says it should be?
///
///   annals::CheckReport r = annals::check_projection(store, views, make_balances_projection());
///   if (!r.equal()) std::cerr << r.only_in_live << " rows only in the live model\n";
///
/// How it works: the projection is replayed from position 1 up to the live
/// model's checkpoint into shadow tables (a temporary SQLite file beside the
/// read model, removed afterwards), then each table the projection's setup()
/// creates is compared row by row with the live table of that name, at that
/// same checkpoint: the comparison runs in one read transaction of the live
/// model that re-reads the checkpoint, and when a running runner moved it
/// meanwhile the replay is extended and the comparison made again.
///
/// Rows of a table with a primary key are matched by it: a key only in the
/// live table, a key only in the replay, or a key in both with some column
/// different. Rows of a table without one are compared as a multiset of whole
/// rows (a row the live model holds twice and the replay once counts once as
/// "only in live"). Values compare as SQLite's IS does (1 and 1.0 are equal,
/// 1 and '1' are not).
///
/// An event whose apply() throws during the replay is left out of the shadow
/// (as a parked event is left out of the live model) and listed in
/// replay_failures; the check goes on.
///
/// The live model is only read: nothing in it changes.
///
/// Thread safety: may run from any thread while runners of the same read model
/// run. The projection's functions are called on the calling thread, possibly
/// while a runner's thread calls them too: functions that keep state of their
/// own outside the transaction must not be checked this way while their
/// runner runs; ask that runner with request_check() (check_request.hpp),
/// which it serves on its own thread.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "annals/projections/projection.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/event_store.hpp"

namespace annals {

struct CheckOptions {
  /// Differences kept as samples in CheckReport::samples (all are counted).
  /// Default: 10.
  std::size_t max_samples = 10;
  /// Events read and applied per shadow transaction. Default: 1024.
  std::size_t batch_size = 1024;
};

/// One row that differs between the live model and the replay.
struct RowDifference {
  enum class Kind { only_in_live, only_in_replay, differing };
  std::string table;
  Kind kind = Kind::differing;
  std::vector<std::string> columns;  ///< the names of the values below
  SqlRow live;                       ///< empty for only_in_replay
  SqlRow replay;                     ///< empty for only_in_live
};

/// "only in live", "only in replay", "differing".
std::string to_string(RowDifference::Kind kind);

/// An event the replay could not apply.
struct ReplayFailure {
  std::int64_t position = 0;
  std::string message;
};

struct CheckReport {
  std::string projection;
  /// The position both models were compared at (the live checkpoint).
  std::int64_t checkpoint = 0;
  /// The tables compared, in name order.
  std::vector<std::string> tables;
  /// Rows in each side, all tables together.
  std::int64_t live_rows = 0;
  std::int64_t replay_rows = 0;
  std::int64_t only_in_live = 0;
  std::int64_t only_in_replay = 0;
  std::int64_t differing = 0;
  /// The first CheckOptions::max_samples differences, table by table.
  std::vector<RowDifference> samples;
  /// Tables whose shape differs (missing from the live model, other columns);
  /// their rows are not compared.
  std::vector<std::string> schema_differences;
  /// Events left out of the replay because apply() threw (at most 100 kept).
  std::vector<ReplayFailure> replay_failures;

  /// No row and no table differs.
  bool equal() const noexcept {
    return only_in_live == 0 && only_in_replay == 0 && differing == 0 &&
           schema_differences.empty();
  }
};

/// Replays `projection` up to the live checkpoint in `read_model` into shadow
/// tables and compares them with the live tables (see above).
/// Throws: InvalidArgument when the projection has no name or apply(), or the
/// read model has no checkpoint row for it (it never ran there);
/// IntegrityError when the live checkpoint is beyond the store's head;
/// StorageError when the store, the read model or the shadow file fails, or
/// the live checkpoint kept moving through 10 comparisons.
CheckReport check_projection(EventStore& store, const ReadModel& read_model,
                             const Projection& projection, const CheckOptions& options = {});

}  // namespace annals
