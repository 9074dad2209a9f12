#pragma once
/// PostgresEventStore: the EventStore and SnapshotStore contracts on a
/// PostgreSQL server (15 or newer), for services that run on several machines
/// and share one store. Same API, same hash chain and same promises as the
/// SQLite store (the conformance kit checks both); see docs/postgres.md and
/// docs/adr/0011-postgres-libpq-and-head-row-lock.md and
/// docs/adr/0012-postgres-group-commit.md.
///
/// Global order: every append transaction takes a row lock on the one row of
/// annals_head and holds it to its commit, so positions are dense and commits
/// happen in position order. A reader following read_all() from a checkpoint
/// therefore never misses an event that commits later with a smaller position.
///
/// Live following: appends NOTIFY at their commit and watch_commits() LISTENs,
/// so followers in any process on any machine wake within milliseconds;
/// polling is the fallback (PostgresStoreOptions::notify).
///
/// Append-only: triggers refuse UPDATE, DELETE and TRUNCATE on the events
/// table for every role, the owner included.
///
/// Group commit: concurrent appends from threads of one store object are
/// written by one of them in one transaction on one connection, under one
/// head-row lock and with one COMMIT (one WAL flush); each keeps its own
/// expected-version check and its own result or error (a failing append is
/// undone alone, to its own savepoint, and does not affect the others). An
/// error of the transaction itself (a failed COMMIT, a dropped connection)
/// fails every append of the group with a StorageError saying the outcome may
/// be unknown; each may be retried with the same event ids. Appends of
/// separate store objects (or processes) still commit one after another at the
/// head row.
///
/// Thread safety: every member may be called concurrently from many threads;
/// the store keeps a small pool of connections. Cursors hold no connection and
/// no transaction between pages, and must not outlive the store.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "annals/core/clock.hpp"
#include "annals/store/event_export.hpp"
#include "annals/store/event_store.hpp"
#include "annals/store/seal.hpp"
#include "annals/store/snapshot_store.hpp"

namespace annals {

struct PostgresStoreOptions {
  /// recorded_at comes from this clock; the system clock when null.
  std::shared_ptr<const Clock> clock;
  /// The schema that holds the store's tables, created if missing (an
  /// identifier of ASCII letters, digits and '_', not starting with a digit,
  /// at most 63 bytes). Several stores can live in one database under
  /// different schemas.
  std::string schema = "public";
  /// Create the tables when the schema holds none. false: opening a schema
  /// without a store throws StorageError naming it, and nothing is created
  /// (for tools that only read). Default: true.
  bool create_if_missing = true;
  /// Events per page of a cursor (at least 1).
  std::size_t read_page_size = 256;
  /// Most idle connections kept open for reuse.
  std::size_t max_idle_connections = 4;
  /// Every append transaction that stores events (one per group commit)
  /// sends NOTIFY on the channel "annals.<schema>" (cut to 63 bytes) with the
  /// new head position as payload, inside the transaction: PostgreSQL
  /// delivers it at the commit.
  /// watch_commits() LISTENs for it. false: no NOTIFY is sent, and this
  /// object's watchers poll (for a connection pooler in transaction mode,
  /// which does not deliver notifications to LISTENing clients). Default: true.
  bool notify = true;
  /// Statements with parameters are prepared once per pooled connection and
  /// then executed by name, so the server parses and plans each one once per
  /// connection rather than on every call. false: every statement is sent
  /// with its text, for a connection pooler in transaction mode that does
  /// not keep a session's prepared statements. Default: true.
  bool prepare_statements = true;
  /// Appends written in one group-commit transaction at most (0 counts as 1;
  /// 1 writes every append in its own transaction). Each append of a group of
  /// several runs in its own subtransaction (a savepoint), and PostgreSQL
  /// tracks at most 64 of them per transaction in shared memory before every
  /// snapshot taken meanwhile must look them up on disk: hence the default.
  /// Default: 64.
  std::size_t max_group_size = 64;
};

class PostgresEventStore final : public EventStore, public SnapshotStore {
 public:
  /// Connects to the server `connection` names (a libpq connection string,
  /// "host=... dbname=..." or "postgresql://user@host/db") and creates the
  /// schema if it is missing (in one transaction under an advisory lock, so
  /// processes opening a new store at once agree).
  /// Throws: InvalidArgument (bad schema name, page size 0), StorageError
  /// (cannot connect, cannot create the tables, tables of another layout, no
  /// store in the schema and create_if_missing off).
  explicit PostgresEventStore(const std::string& connection, PostgresStoreOptions options = {});
  ~PostgresEventStore() override;

  PostgresEventStore(const PostgresEventStore&) = delete;
  PostgresEventStore& operator=(const PostgresEventStore&) = delete;

  using EventStore::append;
  /// As EventStore::append. When the connection fails during the append (the
  /// server restarts, the backend is terminated, the commit gets no answer)
  /// or cannot be opened, it throws StorageError saying the outcome may be
  /// unknown: retry with the same event ids (an idempotent retry never
  /// duplicates). Pooled connections the server closed are replaced, so the
  /// store works again once the server is back, without being reopened.
  std::vector<AppendResult> append(std::vector<StreamAppend> batch) override;
  Cursor<RecordedEvent> read_stream(const std::string& stream_id, std::int64_t from_version = 1,
                                    Direction direction = Direction::forward,
                                    std::uint64_t max_count = kNoLimit) const override;
  Cursor<LinkedEvent> read_stream_linked(const std::string& stream_id,
                                         std::int64_t from_version = 1,
                                         std::uint64_t max_count = kNoLimit) const override;
  Cursor<RecordedEvent> read_all(std::int64_t from_position = 1, const EventFilter& filter = {},
                                 std::uint64_t max_count = kNoLimit) const override;
  std::int64_t stream_version(const std::string& stream_id) const override;
  std::int64_t head_position() const override;
  Cursor<std::string> list_streams(const std::string& prefix = {}) const override;
  std::string store_id() const override;
  /// Listeners hear the appends made through this object (in-process), after
  /// their commit, in position order.
  CommitListenerHandle add_commit_listener(CommitListener listener) override;
  /// A watcher that LISTENs for the NOTIFY of every commit to this store, by
  /// any process, on a connection of its own (opened here). It polls instead
  /// when `options.push` is false or PostgresStoreOptions::notify is off; it
  /// then opens no connection. When its connection drops, pushes() turns
  /// false, wait() polls and reconnects at most once a second, and the wait()
  /// that reconnects returns true (notifications meanwhile are lost, so the
  /// caller should look at the head). A wait() that reconnects may take up to
  /// the connection timeout (10 s unless the connection string sets
  /// connect_timeout) longer than asked.
  /// Throws: StorageError when it cannot connect or LISTEN.
  std::unique_ptr<CommitWatcher> watch_commits(CommitWatcherOptions options = {}) const override;

  /// Loads an export (annals/store/event_export.hpp) into this store, which
  /// must be empty: as annals::import_events() does for an SQLite file, with
  /// the same checks and messages, in one transaction under the head-row lock
  /// (all or nothing), keeping positions, versions, event ids, times and
  /// hashes, and taking the header's store id. Followers are woken (NOTIFY)
  /// at the commit; commit listeners are not called. `options.progress` and
  /// `options.limits` apply; create_if_missing and busy_timeout do not.
  /// Returns the number of events imported.
  /// Throws: as annals::import_events(); InvalidArgument naming the schema
  /// when the store is not empty.
  std::int64_t import_events(std::istream& in, const ImportOptions& options = {});

  void save_snapshot(const Snapshot& snapshot) override;
  std::optional<Snapshot> load_snapshot(const std::string& stream_id,
                                        std::int64_t max_version = kStreamEnd) const override;
  void delete_snapshots(const std::string& stream_id = {}) override;

  class Impl;

 private:
  friend Seal seal(PostgresEventStore& store, const SealKey* key, const Clock& clock);
  std::unique_ptr<Impl> impl_;
};

/// Seals a PostgreSQL store, as seal() does an SQLite one (annals/store/seal.hpp):
/// in one transaction that holds the head-row lock (so no append commits in
/// between), reads the store id, the head position and hash and the event
/// count, signs the statement with `key` (unsigned when null) and records it
/// in the schema's `seals` table, which refuses UPDATE, DELETE and TRUNCATE
/// like `events`. A store made before seals existed gets the table at its
/// first seal (that needs the owner's rights once). verify_seal() checks a
/// seal against either kind of store.
/// Throws: InvalidArgument if `key` holds no private key; StorageError when
/// the store cannot be written or reached; IntegrityError when the head event
/// has no valid hash.
Seal seal(PostgresEventStore& store, const SealKey* key = nullptr,
          const Clock& clock = *SystemClock::shared());

}  // namespace annals
