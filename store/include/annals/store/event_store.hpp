#pragma once
/// The EventStore contract, shared by every store (SQLite, in-memory) and
/// checked by one conformance suite (tests/store/conformance_test.cpp).
///
/// Versions count events within a stream from 1; positions order every event
/// in the store from 1. An append is atomic: all its events are stored and
/// become visible together, or none is.
///
/// Thread safety: every member may be called concurrently from many threads on
/// one store object. Cursors returned by reads belong to the calling thread and
/// must not outlive the store that made them.

#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "annals/core/event.hpp"
#include "annals/core/expected_version.hpp"
#include "annals/core/registration.hpp"
#include "annals/store/commit_watcher.hpp"
#include "annals/store/cursor.hpp"

namespace annals {

/// What an append did: the stream's version after it, and the positions of its
/// first and last events.
struct AppendResult {
  std::int64_t stream_version = 0;
  std::int64_t first_position = 0;
  std::int64_t last_position = 0;
  friend bool operator==(const AppendResult&, const AppendResult&) = default;
};

/// One stream's part of an append.
struct StreamAppend {
  std::string stream_id;
  ExpectedVersion expected = ExpectedVersion::any();
  std::vector<EventData> events;
};

enum class Direction { forward, backward };

inline constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();
/// read_stream(..., backward) from this version starts at the stream's end.
inline constexpr std::int64_t kStreamEnd = std::numeric_limits<std::int64_t>::max();

/// Which events read_all returns; empty fields do not filter. All given fields
/// must match (types OR-ed among themselves).
struct EventFilter {
  std::vector<std::string> types;  ///< event type is one of these
  std::string stream_prefix;       ///< stream id starts with this
  std::string category;            ///< stream category (text before the first '-') equals this

  static EventFilter for_types(std::vector<std::string> types) {
    return EventFilter{std::move(types), {}, {}};
  }
  static EventFilter for_category(std::string category) {
    return EventFilter{{}, {}, std::move(category)};
  }
  static EventFilter for_prefix(std::string prefix) { return EventFilter{{}, std::move(prefix), {}}; }
  bool empty() const noexcept {
    return types.empty() && stream_prefix.empty() && category.empty();
  }
  /// Does `event` pass this filter? (What read_all applies, for in-process use.)
  bool matches(const RecordedEvent& event) const;
};

/// Told how far verify() has come: events checked so far, and the head
/// position when the walk began (the total to expect). Called every few
/// hundred events and once at the end, on the calling thread; must not throw.
using VerifyProgress = std::function<void(std::int64_t checked, std::int64_t total)>;

/// What a store holds, in figures (stats()).
struct StoreStats {
  std::int64_t events = 0;
  std::int64_t streams = 0;
  std::int64_t head_position = 0;
  /// recorded_at of the first and the last event; empty for an empty store.
  std::optional<Timestamp> first_recorded_at;
  std::optional<Timestamp> last_recorded_at;
  /// Events per type and per category (annals/core/stream_id.hpp), in
  /// ascending byte order of the name.
  std::vector<std::pair<std::string, std::int64_t>> types;
  std::vector<std::pair<std::string, std::int64_t>> categories;
};

/// The result of verify(): ok, or the first position that does not match.
struct VerifyResult {
  bool ok = true;
  std::int64_t events_checked = 0;
  std::int64_t first_bad_position = 0;  ///< 0 when ok
  std::string reason;                   ///< empty when ok
};

/// An event of a stream read with the stored hash of the event just before it
/// in the store (position - 1, whatever its stream), so that a reader can check
/// the event's link in the hash chain (annals/core/event_hash.hpp) without
/// reading the rest of the store.
struct LinkedEvent {
  RecordedEvent event;
  /// The stored hash of the event at event.position - 1: all zero for position
  /// 1, std::nullopt when no event is stored there (a removed row). Taken as
  /// stored, not checked.
  std::optional<EventHash> previous_hash;
};

/// Receives each committed append (or group of appends), in position order,
/// after the commit, one batch at a time. Called on one of the appending
/// threads; append() returns after its own events were delivered. A listener
/// may append to the same store: that batch is delivered right after the
/// current one (the nested append() returns before its own delivery).
/// Listeners must not throw (what they throw is dropped).
using CommitListener = std::function<void(std::span<const RecordedEvent>)>;

class EventStore;

/// Keeps a commit listener registered; unregisters it when destroyed or on
/// reset(). Once reset() returns, the listener is not running and will not run
/// again (unless reset() is called from inside the listener itself).
using CommitListenerHandle = Registration;

class EventStore {
 public:
  virtual ~EventStore() = default;

  /// Appends `events` to `stream_id` if its version matches `expected`.
  /// Event ids left empty are generated (UUIDv7). If every event id is already
  /// stored, in this stream, in this order, at versions consistent with
  /// `expected`, with the same type, schema version, payload and metadata
  /// (byte for byte), the call is an idempotent retry and returns the first
  /// result.
  /// recorded_at is the store's clock at the append, but never earlier than
  /// the recorded_at of the event before it: it does not decrease along
  /// positions, even when the clock steps back (the events then share the
  /// newest time already stored).
  /// Throws: InvalidArgument (bad stream id, type, schema version, event id or
  /// JSON; no events), WrongExpectedVersion, DuplicateEventId (an id stored
  /// anywhere else, or stored there with other content; see error.hpp),
  /// StorageError. On any throw nothing is written.
  AppendResult append(const std::string& stream_id, ExpectedVersion expected,
                      std::vector<EventData> events) {
    std::vector<StreamAppend> batch;
    batch.push_back(StreamAppend{stream_id, expected, std::move(events)});
    return append(std::move(batch)).front();
  }

  /// Appends one event: as append() above with a one-event list, without the
  /// caller building a std::vector. A template so that a braced list
  /// (`append(s, e, {a})`, `append(s, e, {})`) still means the list overload.
  /// Throws: as append().
  template <std::same_as<EventData> E>
  AppendResult append(const std::string& stream_id, ExpectedVersion expected, E event) {
    std::vector<StreamAppend> batch(1);
    batch.front().stream_id = stream_id;
    batch.front().expected = expected;
    batch.front().events.push_back(std::move(event));
    return append(std::move(batch)).front();
  }

  /// Appends to several streams in one transaction: every stream's events or
  /// none. Results are in the order of `batch`. A stream may appear only once.
  /// Throws: as append(); the first failing stream's error is thrown.
  virtual std::vector<AppendResult> append(std::vector<StreamAppend> batch) = 0;

  /// Events of one stream from `from_version` (inclusive): forward in ascending
  /// versions, backward in descending versions (kStreamEnd: from the last).
  /// At most `max_count` events. A stream that does not exist reads as empty.
  /// Throws: InvalidArgument (bad stream id, from_version < 1 forward or < 0),
  /// StorageError (also later, while iterating).
  virtual Cursor<RecordedEvent> read_stream(const std::string& stream_id,
                                            std::int64_t from_version = 1,
                                            Direction direction = Direction::forward,
                                            std::uint64_t max_count = kNoLimit) const = 0;

  /// As read_stream(stream_id, from_version, Direction::forward, max_count),
  /// each event with the stored hash of its predecessor in the store (see
  /// LinkedEvent). This reads, it does not check: the check is the caller's
  /// (annals/aggregates/checked_read.hpp).
  /// The default implementation reads each predecessor with read_all(): one
  /// more read per event. The SQLite and in-memory stores override it to fetch
  /// both in the same page.
  /// Throws: as read_stream().
  virtual Cursor<LinkedEvent> read_stream_linked(const std::string& stream_id,
                                                 std::int64_t from_version = 1,
                                                 std::uint64_t max_count = kNoLimit) const;

  /// Every event from `from_position` (inclusive) in ascending position order,
  /// restricted by `filter`, at most `max_count`.
  virtual Cursor<RecordedEvent> read_all(std::int64_t from_position = 1,
                                         const EventFilter& filter = {},
                                         std::uint64_t max_count = kNoLimit) const = 0;

  /// Last version of the stream; 0 if it does not exist.
  virtual std::int64_t stream_version(const std::string& stream_id) const = 0;

  /// Position of the newest event; 0 for an empty store.
  virtual std::int64_t head_position() const = 0;

  /// Stream ids starting with `prefix`, in ascending byte order.
  virtual Cursor<std::string> list_streams(const std::string& prefix = {}) const = 0;

  /// Walks the hash chain from position 1 and reports the first event whose
  /// position or hash does not match. `progress`, when given, is told how far
  /// the walk has come (for a progress bar on a large store).
  /// Throws: StorageError.
  virtual VerifyResult verify(const VerifyProgress& progress = {}) const;

  /// Counts what the store holds: events, streams, the time span, events per
  /// type and per category. Reads every event once, streaming; memory grows
  /// with the number of distinct types and categories, not of events.
  /// Throws: StorageError.
  virtual StoreStats stats() const;

  /// The store's identity: a random UUID given when the store was created
  /// (for a SqliteEventStore, kept in its file, carried by its exports, named
  /// by its seals: annals/store/seal.hpp). Empty for a store without one (the
  /// in-memory store; an SQLite store written before stores had ids, opened
  /// read-only).
  /// Throws: StorageError.
  virtual std::string store_id() const { return {}; }

  /// Registers a listener for committed events (see CommitListener).
  virtual CommitListenerHandle add_commit_listener(CommitListener listener) = 0;

  /// A watcher that wakes a follower soon after any process (or machine)
  /// commits to this store (annals/store/commit_watcher.hpp). Make it before
  /// the follower first looks at the head: a commit after that is not missed.
  /// `options.push` false gives a watcher that only polls. The default
  /// implementation returns null: the store has no wake-ups across processes
  /// (the in-memory store, whose commit listeners see every commit); callers
  /// then poll. SqliteEventStore watches its file with inotify,
  /// PostgresEventStore LISTENs for its commits' NOTIFY.
  /// Throws: StorageError when the watch cannot be set up.
  virtual std::unique_ptr<CommitWatcher> watch_commits(CommitWatcherOptions options = {}) const;
};

}  // namespace annals
