#pragma once
/// Reading a stream whose events are checked against the hash chain before
/// anything acts on them: what Repository replays (RepositoryOptions::
/// check_history) and what an application reads when it computes from a
/// stream itself (the bank's statement).
///
/// Each event is checked on its own link, with one SHA-256:
///   - its stored hash equals chain_hash(stored hash of the event at
///     position - 1, the event) (annals/core/event_hash.hpp), so a payload,
///     type, version, time or id changed after the append is found, and so is
///     a removed predecessor;
///   - its version is the one after the previous event read (no gap).
/// What one link cannot show, and verify() or a seal does: an event whose
/// hash was recomputed after it was changed (only its successor's link, in
/// whatever stream, breaks), a rewrite of every hash from there to the head,
/// and removed newest events of the stream.
///
/// Thread safety: as EventStore::read_stream_linked(); a cursor belongs to
/// one thread.

#include <cstdint>
#include <functional>
#include <string>

#include "annals/aggregates/errors.hpp"
#include "annals/store/event_store.hpp"

namespace annals {

/// The events of `stream_id` from `from_version`, forward, at most
/// `max_count`, each checked (see above) before the cursor returns it.
/// Throws: as EventStore::read_stream(); from the cursor also
/// HistoryIntegrityError at the first event that does not check (the events
/// before it were returned, none after it is).
Cursor<RecordedEvent> read_stream_checked(const EventStore& store, const std::string& stream_id,
                                          std::int64_t from_version = 1,
                                          std::uint64_t max_count = kNoLimit);

/// Calls `apply` with each event of `stream_id` from `from_version`, forward,
/// at most `max_count`, each checked (see above); `apply` returns false to
/// stop at the event it was given (that event is checked too). This is the
/// replay behind Repository's loads. Unlike the cursor above, it may check a
/// long stream on a second thread while `apply` runs on the calling thread,
/// so `apply` may see events after the first one that does not check before
/// the call fails: use it where nothing `apply` does outlives a failed call
/// (a replay into a fresh aggregate), and read_stream_checked() where each
/// event must be checked before anything sees it.
/// Throws: as EventStore::read_stream(); HistoryIntegrityError for the first
/// event that does not check; what `apply` throws, unless an event at or
/// before the one it was given does not check (that error is thrown instead).
/// The second thread, if one was started, has ended when the call returns or
/// throws.
/// Thread safety: as read_stream_linked(); `apply` is called only on the
/// calling thread.
void for_each_checked(const EventStore& store, const std::string& stream_id,
                      std::int64_t from_version, std::uint64_t max_count,
                      const std::function<bool(const RecordedEvent&)>& apply);

/// Checks one event read with read_stream_linked(): its link in the hash chain
/// and that its version is `expected_version` (0: any version).
/// Throws: HistoryIntegrityError naming the stream, version and position.
void check_history_link(const LinkedEvent& linked, std::int64_t expected_version);

}  // namespace annals
