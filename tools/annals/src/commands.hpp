#pragma once
// One function per annals command. Each takes its parsed options and the
// program's streams, writes results to io.out and progress to io.err, and
// returns an exit code (store_file.hpp); failures throw ToolError or the
// annals::Error of the library that failed, which cli.cpp reports.
//
// Read commands open the store read-only and stream with its cursors, so no
// command holds more than one page of events in memory.
//
// Thread safety: each call opens its own store objects, so calls may run
// concurrently on different Io streams (the tests run `tail --follow` beside
// an appending thread).

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/event_store.hpp"
#include "store_file.hpp"

namespace annals::tool {

/// The program's streams. `err_is_terminal` turns progress bars on.
struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  bool err_is_terminal = false;
};

struct StreamsCommand {
  std::filesystem::path db;
  std::string prefix;
  bool json = false;
};
/// Stream ids (with their versions) in byte order.
int run_streams(const StreamsCommand& c, Io& io);

/// Every projection's checkpoint record in the read model `file`, opened
/// read-only (nothing is created or changed).
/// Throws: ToolError (kExitUnusable when the file cannot be opened or is not
/// a database, kExitFailure when reading it fails).
std::vector<CheckpointRecord> read_checkpoint_records(const std::filesystem::path& file);

/// The read model `projections`, `rebuild` and `check` work on: an SQLite
/// file (--read-model FILE, else the store's own file), or a PostgreSQL
/// schema (--read-model URL, else the store's server when --db is a URL;
/// open_postgres_read_model() says which schema). Found, it has been looked
/// at only: nothing is created or written.
struct CommandReadModel {
  std::filesystem::path location;  ///< the file, or the URL
  /// As messages name it: 'views.db'; schema "views" of 'postgresql://app:***@db/bank'.
  std::string name;
  /// PostgreSQL: the model, opened read-only. SQLite: null (each look opens
  /// the file, so a file that is not a database is reported as one).
  std::unique_ptr<ReadModel> looking;
};
/// Throws: ToolError(kExitUnusable) when the file does not exist or the
/// PostgreSQL read model cannot be opened (a missing schema, an unreachable
/// server); ToolError(kExitUsage) for an invalid schema name.
CommandReadModel find_read_model(const std::filesystem::path& db,
                                 const std::filesystem::path& read_model);
/// Every projection's checkpoint record in it, in name order.
/// Throws: as read_checkpoint_records(); on PostgreSQL ToolError(kExitFailure)
/// when reading fails.
std::vector<CheckpointRecord> checkpoint_records_in(const CommandReadModel& model);
/// The read model opened for recording a request (rebuild, check): an SQLite
/// file must be writable by this process and is not created; a PostgreSQL one
/// is opened writable (open_postgres_read_model()).
/// Throws: ToolError(kExitUnusable) when it cannot be opened or written.
std::unique_ptr<ReadModel> open_for_requests(const CommandReadModel& model);

struct ReadCommand {
  std::filesystem::path db;
  std::string stream;
  std::optional<std::int64_t> from;  ///< default: 1 forward, the last version backward
  bool backward = false;
  std::uint64_t limit = kNoLimit;
  bool json = false;
  std::optional<std::string> correlation;  ///< only events whose metadata has this correlation_id
};
/// One stream's events (with a correlation id: only those carrying it, up to
/// `limit` of them). Throws ToolError(kExitFailure) if the stream does not
/// exist, ToolError(kExitUsage) for an empty correlation id.
int run_read(const ReadCommand& c, Io& io);

struct TailCommand {
  std::filesystem::path db;
  std::optional<std::int64_t> from;  ///< default: the last 10 events
  bool follow = false;
  bool json = false;
  std::optional<std::int64_t> max_events;  ///< stop after printing this many
  double timeout_seconds = 0;              ///< --follow stops after this long; 0: never
  int poll_ms = 200;                       ///< how often --follow looks for new events
  std::optional<std::string> correlation;  ///< only events whose metadata has this correlation_id
};
/// Events in position order from `from`; with follow, new ones as they are
/// committed, by any process (polls the head position). With a correlation
/// id only the events carrying it are printed and counted; without `from`
/// the last 10 of those (found by one streaming pass over the store).
/// Throws ToolError(kExitUsage) for an empty correlation id.
int run_tail(const TailCommand& c, Io& io);

struct StatsCommand {
  std::filesystem::path db;
  bool json = false;
};
/// Counts per type and category, streams, head position, times, file sizes.
int run_stats(const StatsCommand& c, Io& io);

struct VerifyCommand {
  std::filesystem::path db;
  bool json = false;
  std::filesystem::path seal;  ///< empty: the chain only
  std::filesystem::path key;   ///< with seal: the trusted key (private or public PEM)
};
/// Walks the hash chain. kExitOk when intact, else kExitIntegrity naming the
/// first bad position. With a seal, run_verify_seal.
int run_verify(const VerifyCommand& c, Io& io);
/// Checks the store against a seal file (annals/store/seal.hpp): kExitOk when
/// the store has only grown since, kExitIntegrity naming the problem;
/// ToolError(kExitFailure) for an unreadable or malformed seal or key file.
int run_verify_seal(const VerifyCommand& c, Io& io);

struct SealCommand {
  std::filesystem::path db;
  std::filesystem::path key;  ///< empty: an unsigned seal (a warning on stderr)
};
/// Seals the store (recording the seal in it) and writes the seal to io.out.
/// Opens the store writable: a store of an older schema is migrated first.
int run_seal(const SealCommand& c, Io& io);

struct KeygenCommand {
  std::filesystem::path key;         ///< the private key file to create (0600)
  std::filesystem::path public_key;  ///< empty: none
};
/// Creates an Ed25519 seal key; never overwrites a file.
int run_keygen(const KeygenCommand& c, Io& io);

struct ExportCommand {
  std::filesystem::path db;
  std::string output;  ///< empty or "-": io.out
};
/// Every event as JSON Lines (annals/store/event_export.hpp). A file output is
/// written to a temporary file beside it and renamed when complete.
int run_export(const ExportCommand& c, Io& io);

struct ImportCommand {
  std::filesystem::path db;
  std::string input;  ///< "-": io.in
};
/// Loads an export into an empty (or new) store, all or nothing. A store file
/// this command created is removed again when the import fails.
int run_import(const ImportCommand& c, Io& io);

struct ProjectionsCommand {
  std::filesystem::path db;
  std::filesystem::path read_model;  ///< file or URL; empty: the store's own file or server
  bool json = false;
};
/// Each durable projection's checkpoint row with the store's head and lag.
int run_projections(const ProjectionsCommand& c, Io& io);

struct RebuildCommand {
  std::filesystem::path db;
  std::string name;
  std::filesystem::path read_model;  ///< file or URL; empty: the store's own file or server
  bool wait = false;
  double timeout_seconds = 0;  ///< with wait; 0: no limit
  int poll_ms = 200;
};
/// Records a rebuild request (annals/projections/rebuild_request.hpp); with
/// wait, returns once a runner has replayed up to the head.
int run_rebuild(const RebuildCommand& c, Io& io);

struct CheckCommand {
  std::filesystem::path db;
  std::string name;
  std::filesystem::path read_model;  ///< file or URL; empty: the store's own file or server
  bool last = false;                 ///< print the last recorded report; request nothing
  bool json = false;
  double timeout_seconds = 0;  ///< 0: no limit
  int poll_ms = 200;
};
/// Records a check request (annals/projections/check_request.hpp) and waits
/// for a runner of the projection to record the report; prints it. kExitOk
/// when the read model equals the replay, kExitIntegrity when it differs;
/// ToolError(kExitFailure) for an unknown projection, a failed check, a
/// timeout, or no runner running (state "stopped": not waiting).
int run_check(const CheckCommand& c, Io& io);

}  // namespace annals::tool
