#pragma once
/// SqliteReadModel: the SQLite database a projection writes its tables and its
/// checkpoint to, so both commit in one transaction.
///
///   annals::SqliteEventStore store("bank.db");
///   annals::SqliteReadModel views("bank-views.db");   // or "bank.db": the store's own file
///   views.write([](annals::SqlTransaction& tx) { tx.exec("DELETE FROM cache"); });
///   auto rows = views.query("SELECT account, cents FROM balances ORDER BY account");
///
/// The file may be a file of its own or the store's file (open the store
/// first, so the file becomes an Annals store). A separate file keeps read
/// model writes from taking the store's write lock.
///
/// Tables the read model creates and owns (besides the projections' own):
///
///   projection_checkpoints(name TEXT PRIMARY KEY, position INTEGER,  -- last position handled
///                          state TEXT,                               -- last known ProjectionState
///                          error TEXT, error_position INTEGER, attempts INTEGER, -- why it stopped
///                          updated_at INTEGER,                       -- microseconds, UTC
///                          rebuild_requested INTEGER)                -- when a rebuild was asked
///                                                                    -- for (request_rebuild), or NULL
///   projection_parked_events(name, position, stream_id, type, error, attempts, parked_at,
///                            PRIMARY KEY (name, position))
///
/// Durability: WAL. A commit is atomic whatever happens to the process, so a
/// checkpoint never disagrees with the rows written with it. The default
/// synchronous=NORMAL may lose the last commits on power loss; they are lost
/// together with their checkpoint, and the runner applies those events again.
///
/// Thread safety: one object may be used from many threads. write() calls are
/// serialized on one writer connection; read() calls on one reader connection
/// of their own, and see committed data only; a read() nested in a read() on
/// the same thread joins it, a write() nested in a write() throws. Other
/// processes may open the same file.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "annals/core/clock.hpp"
#include "annals/projections/projection_status.hpp"
#include "annals/projections/read_model.hpp"
#include "annals/store/sqlite_event_store.hpp"

namespace annals {

struct SqliteReadModelOptions {
  /// Durability of commits. Default: Synchronous::normal (see above: safe for
  /// read models, whose lost commits are replayed).
  Synchronous synchronous = Synchronous::normal;
  /// How long a write waits for another connection's write lock before failing
  /// with StorageError (SQLITE_BUSY). Default: 30 s.
  std::chrono::milliseconds busy_timeout{30'000};
  /// Create the file (mode 0600) if it does not exist. Default: true.
  bool create_if_missing = true;
  /// Only look: the file must exist, nothing is created or written (not even
  /// the bookkeeping tables; a file without them reads as having no
  /// projections), and write() throws. For tools and web pages that show a
  /// read model. A file in WAL mode in a directory this process may not write
  /// is read as it is on disk (SQLite's immutable mode) when it has no
  /// write-ahead log to replay. Default: false.
  bool read_only = false;
  /// What the bookkeeping is stamped with: checkpoint updated_at, parked_at,
  /// rebuild requests (of runners and inline projections on this read model;
  /// tests and audits fix or step it). Default: the system clock.
  std::shared_ptr<const Clock> clock{};
};

class SqliteReadModel final : public ReadModel {
 public:
  /// Opens (or creates) the database at `path` and creates the checkpoint and
  /// parked-event tables if they are missing.
  /// Throws: StorageError when the file cannot be opened, created, switched to
  /// WAL, or is not an SQLite database.
  explicit SqliteReadModel(const std::filesystem::path& path, SqliteReadModelOptions options = {});
  ~SqliteReadModel() override;

  const std::filesystem::path& path() const noexcept;

  /// Runs `fn` in one write transaction (BEGIN IMMEDIATE) and commits it; if
  /// `fn` throws, rolls everything back and rethrows.
  /// Throws: what `fn` throws; StorageError when SQLite fails (busy past the
  /// timeout, disk full, ...); InvalidArgument when called from inside a
  /// write() on the same thread (transactions do not nest).
  void write(const std::function<void(SqlTransaction&)>& fn) override;

  /// Runs `fn` in one read transaction: every query sees the same committed
  /// state. Statements that write fail with StorageError. A read() (or
  /// query(), checkpoint(), ...) called from inside `fn` on the same thread
  /// joins that transaction: it runs at once and sees the same state; an
  /// exception it throws propagates to the outer `fn`, which may catch it.
  /// write() may be called from inside `fn` (another connection; the reads
  /// do not see its changes).
  /// Throws: what `fn` throws; StorageError.
  void read(const std::function<void(SqlTransaction&)>& fn) const override;

  /// The clock of SqliteReadModelOptions::clock (the system clock if none
  /// was given).
  const Clock& clock() const noexcept override;

  /// "read model '<path>'".
  std::string describe() const override;

 private:
  std::unique_ptr<detail::ShadowModel> open_shadow() const override;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals
