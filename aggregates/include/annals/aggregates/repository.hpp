#pragma once
/// Repository<A>: loads aggregates by replaying their streams and saves the
/// events their commands raised, under optimistic concurrency.
///
///   annals::Repository<Account> accounts(store, {.snapshots = &store, .snapshot_every = 100});
///   Account a = accounts.load("42");          // replay (from a snapshot if any)
///   a.withdraw(500);                          // command: check, raise
///   accounts.save(a, {.actor = "alice"});     // append with exactly(version loaded)
///   accounts.update("42", [](Account& a) { a.deposit(100); });   // load-run-save, retried
///   auto [from, to] = accounts.update_together({"42", "43"},     // several, atomically
///                                              [](Account& f, Account& t) { f.send(5, t); });
///
/// Thread safety: a repository holds no mutable state of its own; any number of
/// threads may call it at once if the store allows it (both stores do).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "annals/aggregates/aggregate.hpp"
#include "annals/aggregates/checked_read.hpp"
#include "annals/aggregates/errors.hpp"
#include "annals/core/clock.hpp"
#include "annals/core/personal_data.hpp"
#include "annals/core/upcaster.hpp"
#include "annals/store/event_store.hpp"
#include "annals/store/snapshot_store.hpp"

namespace annals {

/// Who asked for a change and why; copied into every saved event's metadata
/// (keys "correlation_id", "causation_id", "actor"; empty fields are left out).
struct CommandContext {
  std::string correlation_id{};
  std::string causation_id{};
  std::string actor{};

  Json to_metadata() const;
};

struct RepositoryOptions {
  /// Applied to stored events before decoding. Not owned; must outlive the
  /// repository. Default: none.
  const UpcasterChain* upcasters = nullptr;
  /// Skip stored events whose type the aggregate does not list, instead of
  /// throwing UnknownEventType. Default: false.
  bool skip_unknown_events = false;
  /// Where loads look for snapshots and saves put them (both stores are
  /// snapshot stores too). Only for a Snapshottable aggregate. Not owned; must
  /// outlive the repository. Default: none (no snapshots).
  SnapshotStore* snapshots = nullptr;
  /// Save a snapshot whenever a save crosses a multiple of this many versions
  /// (needs `snapshots`). 0: never. Default: 0.
  std::int64_t snapshot_every = 0;
  /// update() and update_together(): how many times to retry after
  /// WrongExpectedVersion. Default: 3.
  int max_retries = 3;
  /// Check every event a load replays against the hash chain (one SHA-256
  /// each; see annals/aggregates/checked_read.hpp for what it finds), so that
  /// no command decides on altered history: a load that replays an event that
  /// does not check fails, and returns no aggregate. A replay of more than a
  /// few hundred events checks on a second thread while this one applies
  /// (for_each_checked), and ends it before returning. A load from a snapshot
  /// checks the events after it, not the snapshot, which is a cache
  /// (docs/aggregates.md). Default: true.
  bool check_history = true;
  /// Keys of data subjects: saves encrypt the personal fields of events under
  /// the key of the aggregate's stream id (or the event's data_subject()),
  /// loads decrypt them, and a forgotten subject's fields load as
  /// placeholders (annals/core/personal_data.hpp). Not owned; must outlive
  /// the repository. Required to save events with personal fields
  /// (InvalidArgument without it). Default: none.
  KeyStore* keys = nullptr;
};

/// Saves several aggregates (of any types) in one atomic multi-stream append:
/// all their pending events or none. Each stream is appended with
/// exactly(version loaded). Aggregates with nothing pending are left out.
/// Returns one result per aggregate appended, in argument order. This form
/// knows no repository and takes no snapshots; the form below does.
/// Throws: WrongExpectedVersion (nothing written, pending events kept),
/// InvalidArgument, StorageError.
template <class... As>
std::vector<AppendResult> save_together(EventStore& store, const CommandContext& context,
                                        As&... aggregates);

/// As above, encrypting personal fields with `keys` (see RepositoryOptions::keys;
/// may be null when no event has personal fields).
template <class... As>
std::vector<AppendResult> save_together(EventStore& store, KeyStore* keys,
                                        const CommandContext& context, As&... aggregates);

template <class A>
class Repository;

/// An aggregate paired with the repository it belongs to, for the
/// save_together() below: Repository::saving(a).
template <class A>
struct Saving {
  Repository<A>& repository;
  A& aggregate;
};

/// As save_together(store, ...), with each aggregate's repository: after the
/// append each repository takes the snapshot its options ask for (as save()
/// does). All repositories must use the same store.
///   save_together(context, accounts.saving(account), ledgers.saving(ledger));
/// Throws: as above; InvalidArgument (nothing written) when the repositories
/// use different stores or different key stores.
template <class... As>
std::vector<AppendResult> save_together(const CommandContext& context, Saving<As>... parts);

template <class A>
class Repository {
 public:
  using Events = typename A::EventType;

  /// Throws: InvalidArgument naming the option when the options contradict
  /// each other or the aggregate: snapshot_every below 0, or above 0 without
  /// `snapshots`; `snapshots` for an aggregate that is not Snapshottable;
  /// max_retries below 0. Nothing is silently ignored.
  explicit Repository(EventStore& store, RepositoryOptions options = {})
      : store_(store), options_(checked(options)) {}

  /// The aggregate with every stored event applied.
  /// Throws: AggregateNotFound (empty stream), UnknownEventType (naming type,
  /// stream and version), SerializationError, StorageError, and with
  /// options.check_history HistoryIntegrityError (an IntegrityError naming the
  /// stream, version and position of the first event that does not check).
  A load(const std::string& id) const { return load_at(id, kStreamEnd); }

  /// As load(), but std::nullopt instead of AggregateNotFound.
  std::optional<A> try_load(const std::string& id) const {
    A a = replay(id, kStreamEnd);
    if (a.version_loaded() == 0) return std::nullopt;
    return a;
  }

  /// The aggregate as it was at `version` (events 1..version applied).
  /// Throws: as load(); AggregateNotFound also when the stream is shorter than
  /// `version`; InvalidArgument when version < 1.
  A load_at(const std::string& id, std::int64_t version) const {
    if (version < 1) {
      throw InvalidArgument("load_at of '" + id + "' at version " + std::to_string(version) +
                            ": versions start at 1");
    }
    A a = replay(id, version);
    if (a.version_loaded() == 0) throw AggregateNotFound(a.stream_id());
    if (version != kStreamEnd && a.version_loaded() < version) {
      throw AggregateNotFound(a.stream_id(), "at version " + std::to_string(version) +
                                                 " (its last version is " +
                                                 std::to_string(a.version_loaded()) + ")");
    }
    return a;
  }

  /// The aggregate as it was at `time`: every event recorded at or before it,
  /// in version order, and none after. Snapshots are not used (their version
  /// says nothing about time).
  /// Throws: as load(); AggregateNotFound when nothing was recorded by then.
  A load_as_of(const std::string& id, Timestamp time) const {
    A a(id);
    for_each_event(a.stream_id(), 1, kNoLimit, time,
                   [&](const RecordedEvent& recorded) { apply_recorded(a, recorded); });
    if (a.version_loaded() == 0) {
      throw AggregateNotFound(a.stream_id(), "as of " + format_timestamp(time));
    }
    return a;
  }

  /// Appends the pending events with exactly(version loaded) and marks them
  /// saved. A no-op returning {version, 0, 0} when nothing is pending.
  /// Throws: WrongExpectedVersion (nothing written; the aggregate is unchanged
  /// and still holds its pending events), InvalidArgument, StorageError.
  AppendResult save(A& a, const CommandContext& context = {}) {
    const std::int64_t before = a.version_loaded();
    if (a.pending_events().empty()) return AppendResult{before, 0, 0};
    auto results = save_together(store_, options_.keys, context, a);
    maybe_snapshot(a, before);
    return results.front();
  }

  /// This repository and `a`, for save_together(context, ...).
  Saving<A> saving(A& a) { return Saving<A>{*this, a}; }

  /// Saves several aggregates of this type in one atomic append (see save_together).
  std::vector<AppendResult> save_all(const std::vector<A*>& aggregates,
                                     const CommandContext& context = {}) {
    std::vector<std::int64_t> before;
    std::vector<StreamAppend> batch;
    for (A* a : aggregates) {
      before.push_back(a->version_loaded());
      if (!a->pending_events().empty()) batch.push_back(to_append(*a, context, options_.keys));
    }
    if (batch.empty()) return {};
    auto results = store_.append(std::move(batch));
    for (std::size_t i = 0; i < aggregates.size(); ++i) {
      if (aggregates[i]->pending_events().empty()) continue;
      detail::AggregateAccess::mark_saved(*aggregates[i]);
      maybe_snapshot(*aggregates[i], before[i]);
    }
    return results;
  }

  /// Loads the aggregate, runs `command` on it and saves; on
  /// WrongExpectedVersion (someone saved in between) starts again from a fresh
  /// load, at most options.max_retries more times. Exceptions thrown by
  /// `command` (the domain's own) propagate at once and are never retried.
  /// Returns the saved aggregate.
  /// Throws: AggregateNotFound, HistoryIntegrityError (never retried),
  /// WrongExpectedVersion (retries exhausted), what
  /// `command` throws, StorageError.
  template <class Command>
  requires std::is_invocable_v<Command&, A&>
  A update(const std::string& id, Command&& command, const CommandContext& context = {}) {
    return update(id, std::forward<Command>(command), options_.max_retries, context);
  }

  /// As update() above, with `max_retries` instead of options.max_retries.
  /// Throws: also InvalidArgument if max_retries < 0.
  template <class Command>
  requires std::is_invocable_v<Command&, A&>
  A update(const std::string& id, Command&& command, int max_retries,
           const CommandContext& context = {}) {
    if (max_retries < 0) {
      throw InvalidArgument("update of '" + id + "': max_retries must be >= 0, got " +
                            std::to_string(max_retries));
    }
    for (int attempt = 0;; ++attempt) {
      A a = load(id);
      command(a);
      try {
        save(a, context);
        return a;
      } catch (const WrongExpectedVersion&) {
        if (attempt >= max_retries) throw;
        pause_before_retry(attempt);
      }
    }
  }

  /// A command over several aggregates of this type, saved atomically: loads
  /// the aggregates with `ids` (distinct), runs `command` with one argument
  /// per id, in order, and saves all their pending events in one append
  /// (save_all). On WrongExpectedVersion (someone saved one of them in
  /// between) it starts again from fresh loads, at most options.max_retries
  /// more times, as update() does. Returns the saved aggregates, in the order
  /// of `ids`:
  ///   auto [from, to] = accounts.update_together({"a", "b"}, [&](Account& f, Account& t) {
  ///     transfer(f, t, amount);
  ///   });
  /// Throws: InvalidArgument (an id given twice), AggregateNotFound (naming the
  /// first missing aggregate's stream; see A::id_from_stream),
  /// HistoryIntegrityError, WrongExpectedVersion (retries exhausted), what
  /// `command` throws (never retried), StorageError. Nothing is written
  /// unless every aggregate's events are.
  template <std::size_t N, class Command>
  auto update_together(const std::string (&ids)[N], Command&& command,
                       const CommandContext& context = {}) {
    return update_together_impl(ids, command, context, std::make_index_sequence<N>{});
  }

  /// The stream an aggregate with this id lives in.
  std::string stream_id(const std::string& id) const { return A(id).stream_id(); }

 private:
  template <class... As>
  friend std::vector<AppendResult> save_together(EventStore&, KeyStore*, const CommandContext&,
                                                 As&...);
  template <class... As>
  friend std::vector<AppendResult> save_together(const CommandContext&, Saving<As>...);

  template <class T, std::size_t>
  using Each = T;

  static RepositoryOptions checked(const RepositoryOptions& options) {
    const std::string what = "repository of '" + std::string(A::category) + "': ";
    if (options.snapshot_every < 0) {
      throw InvalidArgument(what + "snapshot_every must be >= 0, got " +
                            std::to_string(options.snapshot_every));
    }
    if (options.max_retries < 0) {
      throw InvalidArgument(what + "max_retries must be >= 0, got " +
                            std::to_string(options.max_retries));
    }
    if constexpr (!Snapshottable<A>) {
      if (options.snapshots != nullptr || options.snapshot_every > 0) {
        throw InvalidArgument(what +
                              "snapshots or snapshot_every set, but the aggregate cannot be "
                              "snapshotted (it needs snapshot_schema_version, snapshot_state() "
                              "and restore_state())");
      }
    }
    if (options.snapshot_every > 0 && options.snapshots == nullptr) {
      throw InvalidArgument(what + "snapshot_every is " + std::to_string(options.snapshot_every) +
                            " but no snapshot store is set (RepositoryOptions::snapshots)");
    }
    return options;
  }

  template <std::size_t N, class Command, std::size_t... I>
  std::tuple<Each<A, I>...> update_together_impl(const std::string (&ids)[N], Command& command,
                                                 const CommandContext& context,
                                                 std::index_sequence<I...>) {
    static_assert(std::is_invocable_v<Command&, Each<A&, I>...>,
                  "update_together: the command must take one A& per id");
    for (std::size_t i = 0; i < N; ++i) {
      for (std::size_t j = i + 1; j < N; ++j) {
        if (ids[i] == ids[j]) {
          throw InvalidArgument("update_together of '" + std::string(A::category) + "': id '" +
                                ids[i] + "' is given twice");
        }
      }
    }
    for (int attempt = 0;; ++attempt) {
      std::tuple<Each<A, I>...> loaded{load(ids[I])...};
      command(std::get<I>(loaded)...);
      try {
        save_all({&std::get<I>(loaded)...}, context);
        return loaded;
      } catch (const WrongExpectedVersion&) {
        if (attempt >= options_.max_retries) throw;
        pause_before_retry(attempt);
      }
    }
  }

  // A short, growing pause spreads out writers that keep colliding.
  static void pause_before_retry(int attempt) {
    std::this_thread::sleep_for(std::chrono::microseconds(100 << std::min(attempt, 6)));
  }

  A replay(const std::string& id, std::int64_t version) const {
    A a(id);
    std::int64_t from = 1;
    if constexpr (Snapshottable<A>) {
      if (options_.snapshots != nullptr) from = restore_snapshot(a, version) + 1;
    }
    if (version != kStreamEnd && from > version) return a;
    const std::uint64_t count =
        version == kStreamEnd ? kNoLimit : static_cast<std::uint64_t>(version - from + 1);
    for_each_event(a.stream_id(), from, count, std::nullopt,
                   [&](const RecordedEvent& recorded) { apply_recorded(a, recorded); });
    return a;
  }

  // Calls `f` with each event of the stream from `from`, at most `count`,
  // stopping before the first one recorded after `until` (when given). With
  // check_history every event read is checked (for_each_checked, which checks
  // a long replay on a second thread), the one that ends a load_as_of too,
  // since its recorded_at decides where the load ends.
  template <class F>
  void for_each_event(const std::string& stream_id, std::int64_t from, std::uint64_t count,
                      std::optional<Timestamp> until, F&& f) const {
    if (options_.check_history) {
      for_each_checked(store_, stream_id, from, count, [&](const RecordedEvent& recorded) {
        if (until && recorded.recorded_at > *until) return false;
        f(recorded);
        return true;
      });
      return;
    }
    for (const RecordedEvent& recorded :
         store_.read_stream(stream_id, from, Direction::forward, count)) {
      if (until && recorded.recorded_at > *until) return;
      f(recorded);
    }
  }

  // Restores the newest usable snapshot at or below `version` into `a`;
  // returns its version, or 0 when there is none to use. A snapshot is only a
  // cache: one of another schema version, or one that fails to restore, is
  // ignored and the aggregate is replayed from the start.
  std::int64_t restore_snapshot(A& a, std::int64_t version) const requires Snapshottable<A> {
    const auto snapshot = options_.snapshots->load_snapshot(a.stream_id(), version);
    if (!snapshot || snapshot->schema_version != A::snapshot_schema_version) return 0;
    try {
      A restored(a.id());
      restored.restore_state(Json::parse(snapshot->state));
      detail::AggregateAccess::skip_to(restored, snapshot->version);
      a = std::move(restored);
      return snapshot->version;
    } catch (const std::exception&) {
      return 0;
    }
  }

  void apply_recorded(A& a, const RecordedEvent& recorded) const {
    auto event = options_.keys != nullptr
                     ? try_decode<Events>(recorded, *options_.keys, options_.upcasters)
                     : try_decode<Events>(recorded, options_.upcasters);
    if (event) {
      detail::AggregateAccess::replay(a, *event, recorded.version);
    } else if (options_.skip_unknown_events) {
      detail::AggregateAccess::skip_to(a, recorded.version);
    } else {
      throw UnknownEventType(recorded.type, recorded.stream_id, recorded.version);
    }
  }

  // Snapshots after a save that crossed a multiple of snapshot_every. Saving
  // a snapshot is best effort: the events are committed, and a snapshot that
  // could not be written only makes later loads replay more.
  void maybe_snapshot(const A& a, std::int64_t before) {
    if constexpr (Snapshottable<A>) {
      const auto every = options_.snapshot_every;
      if (options_.snapshots == nullptr || every <= 0) return;
      if (a.version_loaded() / every == before / every) return;
      try {
        options_.snapshots->save_snapshot(Snapshot{a.stream_id(),
                                           a.version_loaded(),
                                           A::snapshot_schema_version,
                                           Json(a.snapshot_state()).dump(),
                                           {}});
      } catch (const std::exception&) {
      }
    }
  }

  static StreamAppend to_append(const A& a, const CommandContext& context, KeyStore* keys) {
    const Json metadata = context.to_metadata();
    StreamAppend part{a.stream_id(), ExpectedVersion::exactly(a.version_loaded()), {}};
    part.events.reserve(a.pending_events().size());
    for (const auto& event : a.pending_events()) {
      part.events.push_back(std::visit(
          [&]<class E>(const E& e) {
            if constexpr (detail::HasPersonalFields<E>) {
              if (keys == nullptr) {
                throw InvalidArgument("cannot save event of type '" + std::string(E::type_name) +
                                      "' to '" + a.stream_id() +
                                      "': it has personal fields and the repository has no "
                                      "KeyStore (RepositoryOptions::keys)");
              }
              return encode(e, *keys, a.stream_id(), metadata);
            } else {
              return encode(e, metadata);
            }
          },
          event));
    }
    return part;
  }

  EventStore& store_;
  RepositoryOptions options_;
};

template <class... As>
std::vector<AppendResult> save_together(EventStore& store, const CommandContext& context,
                                        As&... aggregates) {
  return save_together(store, static_cast<KeyStore*>(nullptr), context, aggregates...);
}

template <class... As>
std::vector<AppendResult> save_together(EventStore& store, KeyStore* keys,
                                        const CommandContext& context, As&... aggregates) {
  std::vector<StreamAppend> batch;
  (
      [&] {
        if (!aggregates.pending_events().empty()) {
          batch.push_back(Repository<As>::to_append(aggregates, context, keys));
        }
      }(),
      ...);
  if (batch.empty()) return {};
  auto results = store.append(std::move(batch));
  (detail::AggregateAccess::mark_saved(aggregates), ...);
  return results;
}

template <class... As>
std::vector<AppendResult> save_together(const CommandContext& context, Saving<As>... parts) {
  static_assert(sizeof...(As) > 0, "save_together: nothing to save");
  const auto& first = std::get<0>(std::tie(parts...)).repository;
  const bool same_store = ((&parts.repository.store_ == &first.store_) && ...);
  const bool same_keys = ((parts.repository.options_.keys == first.options_.keys) && ...);
  if (!same_store) {
    throw InvalidArgument("save_together: the repositories use different stores; one atomic "
                          "append needs one store");
  }
  if (!same_keys) {
    throw InvalidArgument("save_together: the repositories use different key stores "
                          "(RepositoryOptions::keys); one append encrypts with one");
  }
  const std::tuple before{parts.aggregate.version_loaded()...};
  auto results = save_together(first.store_, first.options_.keys, context, parts.aggregate...);
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (std::get<I>(std::tie(parts...)).repository.maybe_snapshot(
         std::get<I>(std::tie(parts...)).aggregate, std::get<I>(before)),
     ...);
  }(std::index_sequence_for<As...>{});
  return results;
}

}  // namespace annals
