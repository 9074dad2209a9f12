#pragma once
/// InlineProjection: a projection applied inside every append transaction of a
/// SqliteEventStore, for read models that must never lag, and for checks that
/// must hold across every append (a uniqueness rule, for instance):
///
///   annals::InlineProjection usernames(store, annals::Projection{
///       .name = "usernames",
///       .filter = annals::EventFilter::for_types({"user.Registered"}),
///       .setup = [](annals::SqlTransaction& tx) {
///         tx.exec_script("CREATE TABLE IF NOT EXISTS usernames (name TEXT PRIMARY KEY, "
///                        "user TEXT NOT NULL)");
///       },
///       .apply = [](annals::SqlTransaction& tx, const annals::RecordedEvent& e) {
///         const std::string name = e.payload_json().at("name");
///         if (tx.query_int("SELECT 1 FROM usernames WHERE name = ?1", {name}))
///           throw UsernameTaken(name);                  // rejects the whole append
///         tx.exec("INSERT INTO usernames VALUES (?1, ?2)", {name, e.stream_id});
///       },
///       .reset = [](annals::SqlTransaction& tx) { tx.exec("DELETE FROM usernames"); },
///   });
///   store.append("user-7", ExpectedVersion::no_stream(), {registered("ada")});  // may throw UsernameTaken
///
/// The projection's tables and its checkpoint live in the store's own file and
/// are written on the store's writer connection, inside the append's
/// transaction: the events and their effect commit together, or neither does.
/// When apply() throws, the append is rolled back and append() throws what
/// apply() threw; other appends in the same group commit are unaffected.
///
/// Catch-up: on construction the projection applies the events already stored
/// after its checkpoint. Events appended without it (by another store object
/// or process that did not attach it) are applied at the start of the next
/// append made through a store it is attached to, in that append's
/// transaction; so the rows always match the events up to the checkpoint, and
/// every writer that attaches it sees them complete. Attach it in every
/// process that appends when a rule must hold for every append.
///
/// A checkpoint beyond the store's head (the store lost its newest events, or
/// hands out their positions again) is never skipped over: the constructor
/// and every append throw IntegrityError naming both positions (the append is
/// rejected) until a rebuild replays the store from position 1: rebuild(), or,
/// when construction refuses, a rebuild requested through the store's file
/// (request_rebuild() in rebuild_request.hpp, or `annals rebuild NAME`),
/// which the constructor honours before it catches up.
///
/// Keep apply() short: it runs while the store holds its write lock. It must
/// not append to the store: such an append throws InvalidArgument, which
/// rejects the append being written.
///
/// Thread safety: apply() runs on the appending thread that leads the group
/// commit, one append at a time. The members may be called from any thread.
/// The store must outlive the InlineProjection.

#include <cstdint>
#include <memory>
#include <string>

#include "annals/projections/projection.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/sqlite_event_store.hpp"

namespace annals {

class InlineProjection {
 public:
  /// Runs the projection's setup(), creates its checkpoint, honours a pending
  /// rebuild request (reset(), checkpoint 0; needs reset()), applies the
  /// events stored after the checkpoint, and attaches it to `store`'s appends.
  /// Throws: InvalidArgument (no name or no apply); StorageError; what setup()
  /// or apply() throws (then nothing is attached); IntegrityError, naming both
  /// positions, when its stored checkpoint is beyond the store's head.
  InlineProjection(SqliteEventStore& store, Projection projection,
                   SqliteReadModelOptions options = {});
  /// Detaches from the store; waits for an apply() in progress. Never throws.
  ~InlineProjection();
  InlineProjection(const InlineProjection&) = delete;
  InlineProjection& operator=(const InlineProjection&) = delete;

  const std::string& name() const noexcept;

  /// The last position applied (0: none). Throws: StorageError.
  std::int64_t checkpoint() const;

  /// Empties the read model (reset()), clears a pending rebuild request, and
  /// replays every stored event, in one
  /// transaction that holds the store's write lock (appends wait for it).
  /// Throws: InvalidArgument without reset(); StorageError, or what reset() or
  /// apply() throws (then nothing changed).
  void rebuild();

  /// The database connection this projection uses outside appends (for
  /// reading its tables). Shares the store's file.
  SqliteReadModel& read_model() noexcept;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace annals
