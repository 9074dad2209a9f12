// PostgresEventStore::append: appends of one store object are gathered by the
// group-commit scheduler (group_commit.cpp) and written by one leader in one
// transaction, which holds the row lock on annals_head to its commit, so
// positions are dense and commit in order
// (docs/adr/0011-postgres-libpq-and-head-row-lock.md) and a group shares one
// COMMIT and its WAL flush (docs/adr/0012-postgres-group-commit.md).
//
// Every check of a request (idempotent retry, expected versions, taken event
// ids) reads and precedes its first write, and one that fails leaves the
// transaction usable: the request fails alone with nothing to undo. A
// statement that fails on the server aborts the whole transaction, though, so
// in a group of several each request runs under its own savepoint, and such a
// failure rolls back to it: that request gets the error, the others go on. A
// lone appender's request takes no savepoint (one round trip less): its
// failure rolls back the transaction.

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "append_input.hpp"
#include "postgres_store_impl.hpp"

namespace annals {

using namespace detail::pg;

// The first result if `part` is an idempotent retry; nullopt if its first id
// is not stored, with the stream's version in `version`; throws
// DuplicateEventId if stored elsewhere or otherwise. The stream's version
// comes with the id's lookup: one round trip for both.
std::optional<AppendResult> PostgresEventStore::Impl::retry_of(PGconn* c, const StreamAppend& part,
                                                               std::int64_t& version) const {
  const auto& events = part.events;
  auto first = exec(c, "look up an event id",
                    "SELECT e.stream_id, e.version, e.position, s.version FROM (SELECT 1) AS one "
                    "LEFT JOIN events e ON e.event_id = $1 "
                    "LEFT JOIN streams s ON s.stream_id = $2",
                    Params().text(events.front().event_id).text(part.stream_id));
  if (is_null(first.get(), 0, 0)) {
    version = is_null(first.get(), 0, 3) ? 0 : get_i8(first.get(), 0, 3);
    return std::nullopt;
  }
  const std::string stored_stream = get_bytes(first.get(), 0, 0);
  const std::int64_t first_version = get_i8(first.get(), 0, 1);
  const std::int64_t first_position = get_i8(first.get(), 0, 2);
  const auto n = static_cast<std::int64_t>(events.size());
  auto stored = exec(c, "read a retried append",
                     std::string("SELECT ") + kEventColumns +
                         " FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version "
                         "LIMIT $3",
                     Params().text(part.stream_id).i8(first_version).i8(n));
  bool same_place = stored_stream == part.stream_id && part.expected.matches(first_version - 1) &&
                    PQntuples(stored.get()) == static_cast<int>(n);
  for (int i = 0; same_place && i < static_cast<int>(n); ++i) {
    same_place = get_bytes(stored.get(), i, 3) == events[static_cast<std::size_t>(i)].event_id;
  }
  if (!same_place) {
    throw DuplicateEventId(events.front().event_id, part.stream_id,
                           "stored in stream '" + stored_stream + "' at version " +
                               std::to_string(first_version) +
                               ", which is not a retry of this append");
  }
  std::int64_t last_position = first_position;
  for (int i = 0; i < static_cast<int>(n); ++i) {
    const RecordedEvent kept = event_at(stored.get(), i);
    if (const char* field =
            detail::differing_field(events[static_cast<std::size_t>(i)], kept.type,
                                    kept.schema_version, kept.payload, kept.metadata)) {
      throw detail::content_differs(kept.event_id, part.stream_id, kept.version, field);
    }
    last_position = kept.position;
  }
  return AppendResult{first_version - 1 + n, first_position, last_position};
}

void PostgresEventStore::Impl::move_head(PGconn* c, std::int64_t position, bool moved) const {
  if (options_.notify && moved) {
    // Delivered by PostgreSQL at the commit, never before it nor for a rollback.
    exec(c, "move the head",
         "WITH moved AS (UPDATE annals_head SET position = $1 WHERE id = 1 "
         "RETURNING position) SELECT pg_notify($2, position::text) FROM moved",
         Params().i8(position).text(channel_));
  } else {
    exec(c, "move the head", "UPDATE annals_head SET position = $1 WHERE id = 1",
         Params().i8(position));
  }
}

namespace {

constexpr const char* kInsertEventSql =
    "INSERT INTO events (position, stream_id, version, event_id, type, schema_version, "
    "payload, metadata, recorded_at, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

// An event's row as the parameters of kInsertEventSql.
Params event_row(const RecordedEvent& e) {
  Params p;
  p.i8(e.position)
      .text(e.stream_id)
      .i8(e.version)
      .text(e.event_id)
      .text(e.type)
      .i4(e.schema_version)
      .bytes(e.payload)
      .bytes(e.metadata)
      .i8(to_micros(e.recorded_at))
      .bytes(hash_bytes(e.hash));
  return p;
}

// The last new event of a stream and the stream's new version ($2, $3) in one
// statement: one round trip less per stream than insert_event() and
// set_stream_version().
void insert_last_event(PGconn* c, const RecordedEvent& e) {
  static const std::string sql = std::string("WITH event AS (") + kInsertEventSql +
                                 ") INSERT INTO streams (stream_id, version) VALUES ($2, $3) "
                                 "ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version";
  PostgresEventStore::Impl::exec(c, "insert an event", sql, event_row(e));
}

}  // namespace

void PostgresEventStore::Impl::insert_event(PGconn* c, const RecordedEvent& e) {
  exec(c, "insert an event", kInsertEventSql, event_row(e));
}

void PostgresEventStore::Impl::set_stream_version(PGconn* c, const std::string& stream_id,
                                                  std::int64_t version) {
  exec(c, "update a stream version",
       "INSERT INTO streams (stream_id, version) VALUES ($1, $2) "
       "ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version",
       Params().text(stream_id).i8(version));
}

namespace {

// The newest event as the group's transaction has written it so far.
struct Head {
  std::int64_t position = 0;
  EventHash hash{};
  Timestamp recorded_at{};
};

// What one request's checks found, per stream of its batch: the first result
// of an idempotent retry, or the stream's current version.
struct Checked {
  std::vector<std::optional<AppendResult>> retries;
  std::vector<std::int64_t> current;
  bool writes = false;  // some stream is not a retry
};

// Reads only. Throws WrongExpectedVersion and DuplicateEventId without any
// statement failing on the server, so the transaction stays usable;
// StorageError when a statement fails.
Checked check_request(const PostgresEventStore::Impl& impl, PGconn* c,
                      const std::vector<StreamAppend>& batch) {
  using Impl = PostgresEventStore::Impl;
  Checked out;
  out.retries.resize(batch.size());
  out.current.resize(batch.size(), 0);
  for (std::size_t s = 0; s < batch.size(); ++s) {
    const auto& part = batch[s];
    if ((out.retries[s] = impl.retry_of(c, part, out.current[s]))) continue;
    out.writes = true;
    if (!part.expected.matches(out.current[s])) {
      throw WrongExpectedVersion(part.stream_id, part.expected, out.current[s]);
    }
    // The first id was looked up by retry_of(), in this same transaction.
    for (std::size_t i = 1; i < part.events.size(); ++i) {
      const EventData& event = part.events[i];
      auto dup = Impl::exec(c, "look up an event id",
                            "SELECT stream_id, version FROM events WHERE event_id = $1",
                            Params().text(event.event_id));
      if (PQntuples(dup.get()) != 0) {
        throw DuplicateEventId(event.event_id, part.stream_id,
                               "stored in stream '" + get_bytes(dup.get(), 0, 0) + "' at version " +
                                   std::to_string(get_i8(dup.get(), 0, 1)));
      }
    }
  }
  return out;
}

// Inserts the events of the streams `checked` found new after `head`, which
// it moves; moves the events into `committed` when given. `consume`: the
// events are moved out of `batch`; else copied, so that the request can be
// written again after a rollback.
std::vector<AppendResult> write_request(const PostgresEventStore::Impl& impl, PGconn* c,
                                        std::vector<StreamAppend>& batch, const Checked& checked,
                                        Head& head, std::vector<RecordedEvent>* committed,
                                        bool consume) {
  using Impl = PostgresEventStore::Impl;
  std::vector<AppendResult> results(batch.size());
  // Never before the newest stored event: recorded_at does not decrease
  // along positions, even when the wall clock steps back.
  const Timestamp now = std::max(impl.options_.clock->now(), head.recorded_at);
  for (std::size_t s = 0; s < batch.size(); ++s) {
    if (checked.retries[s]) {
      results[s] = *checked.retries[s];
      continue;
    }
    auto& part = batch[s];
    std::int64_t version = checked.current[s];
    const std::int64_t first_position = head.position + 1;
    for (std::size_t i = 0; i < part.events.size(); ++i) {
      RecordedEvent e =
          detail::record(consume ? std::move(part.events[i]) : EventData(part.events[i]),
                         part.stream_id, ++version, head.position + 1, now, head.hash);
      if (i + 1 < part.events.size()) {
        Impl::insert_event(c, e);
      } else {
        insert_last_event(c, e);
      }
      head = Head{e.position, e.hash, e.recorded_at};
      if (committed != nullptr) committed->push_back(std::move(e));
    }
    results[s] = AppendResult{version, first_position, head.position};
  }
  return results;
}

// The error every request of a failed group gets (but those that failed on
// their own before): a connection that failed (or never opened) leaves the
// callers not knowing whether their appends committed; a retry with the same
// ids tells.
StorageError group_error(const StorageError& e, PGconn* c) {
  const std::string what = e.what();
  const bool lost = c == nullptr || PQstatus(c) != CONNECTION_OK;
  if (!lost || what.find("outcome may be unknown") != std::string::npos) return e;
  return StorageError(
      "PostgreSQL: an append's connection failed, its outcome may be unknown "
      "(retry with the same event ids): " +
      what.substr(what.rfind("PostgreSQL: ", 0) == 0 ? 12 : 0));
}

// BEGIN, then the head row's lock, held to the commit (transactions commit
// one at a time, in position order), and the newest event it names.
Head begin_locked(PGconn* c) {
  using Impl = PostgresEventStore::Impl;
  Impl::exec(c, "begin an append", "BEGIN");
  auto locked = Impl::exec(c, "lock the head row",
                           "SELECT position FROM annals_head WHERE id = 1 FOR UPDATE");
  Head head;
  head.position = get_i8(locked.get(), 0, 0);
  if (head.position > 0) {
    auto last = Impl::exec(c, "read the newest event",
                           "SELECT hash, recorded_at FROM events WHERE position = $1",
                           Params().i8(head.position));
    if (PQntuples(last.get()) == 1) {
      head.hash = to_hash(get_bytes(last.get(), 0, 0));
      head.recorded_at = from_micros(get_i8(last.get(), 0, 1));
    }
  }
  return head;
}

// Thrown out of a group's optimistic attempt (no savepoints) when a statement
// failed on the server: the whole transaction is lost, and the group is
// written again with a savepoint per request.
struct IsolateRequests {};

}  // namespace

void PostgresEventStore::Impl::write_group(detail::CommitGroup& round) noexcept {
  std::vector<detail::CommitRequest*>& group = round.requests();
  // The requests written, each with its events for the listeners.
  std::vector<std::pair<detail::CommitRequest*, std::vector<RecordedEvent>>> pending;
  std::optional<Lease> held;  // outlives the handlers below, which ask if it broke
  std::exception_ptr failure;
  try {
    detail::MutexLock order(append_mu_);
    PGconn* c = held.emplace(lease()).get();
    Head head = begin_locked(c);
    std::int64_t head_before = head.position;
    const bool collect = !listeners_->empty();
    // A group is first written without savepoints, which cost a round trip
    // per request: the checks that fail for a request alone (expected
    // versions, taken ids) only read, so they leave the transaction usable.
    // Should a statement fail on the server (rare: a trigger, a constraint,
    // the disk), PostgreSQL aborts the whole transaction: it is rolled back
    // and the group written again, each request under its own savepoint, so
    // that only the failing one fails. The optimistic pass copies the events
    // for that second pass (a lone appender's too: company may come while it
    // writes). A lone appender's failure is its own: no second pass.
    bool isolate = false;
    bool savepoint = false;  // one is open: the next request releases it
    std::size_t next = 0;
    const auto restart_isolated = [&] {
      exec(c, "roll back an append", "ROLLBACK");
      pending.clear();
      for (detail::CommitRequest* r : group) {
        r->results.clear();
        r->error = nullptr;
      }
      isolate = true;
      savepoint = false;
      next = 0;
      head = begin_locked(c);
      head_before = head.position;  // others may have appended meanwhile
    };
    for (;;) {
      try {
        do {
          for (; next < group.size(); ++next) {
            detail::CommitRequest* r = group[next];
            const bool alone = group.size() == 1 && !round.expects_company();
            const Head saved = head;
            bool wrote = false;  // rows of it may be in the transaction
            if (isolate) {
              // One round trip: the previous request's savepoint has served.
              exec_script(c, "open a savepoint",
                          savepoint ? "RELEASE annals_append; SAVEPOINT annals_append"
                                    : "SAVEPOINT annals_append");
              savepoint = true;
            }
            try {
              const Checked checked = check_request(*this, c, *r->batch);
              std::vector<RecordedEvent> events;
              wrote = checked.writes;
              r->results = write_request(*this, c, *r->batch, checked, head,
                                         collect ? &events : nullptr, isolate);
              pending.emplace_back(r, std::move(events));
              continue;
            } catch (const StorageError&) {
              // A statement failed on the server, which aborted the transaction.
              // Alone, or with the connection gone, the group fails; else only
              // a savepoint can save the others.
              if (alone || PQstatus(c) != CONNECTION_OK) throw;
              if (!isolate) throw IsolateRequests{};
              exec_script(c, "roll back to a savepoint", "ROLLBACK TO SAVEPOINT annals_append");
              r->error = std::current_exception();
            } catch (...) {
              // A check failed before anything was written, or memory ran out;
              // rows written are undone by the savepoint, by the isolated pass,
              // or (alone) by failing the group of one.
              if (wrote && alone) throw;
              if (wrote && !isolate) throw IsolateRequests{};
              if (wrote) {
                exec_script(c, "roll back to a savepoint", "ROLLBACK TO SAVEPOINT annals_append");
              }
              r->error = std::current_exception();
            }
            r->results.clear();
            head = saved;
          }
        } while (round.take_more());
        break;
      } catch (const IsolateRequests&) {
        restart_isolated();
      }
    }
    if (pending.empty()) {
      exec(c, "roll back an append", "ROLLBACK");  // the connection goes back to the pool
      return;
    }
    move_head(c, head.position, head.position > head_before);
    const auto committing = std::chrono::steady_clock::now();
    Result commit(PQexec(c, "COMMIT"));
    if (commit == nullptr || PQresultStatus(commit.get()) != PGRES_COMMAND_OK) {
      std::string msg = commit ? PQresultErrorMessage(commit.get()) : PQerrorMessage(c);
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      throw StorageError("PostgreSQL: commit of an append failed, its outcome may be unknown "
                         "(retry with the same event ids): " + msg);
    }
    round.commit_took(std::chrono::steady_clock::now() - committing);
    // Committed: the appends succeeded whatever happens now. Each keeps its
    // own batch for the listeners, as when it committed alone; queued while
    // this thread still leads, so in position order. Should memory run out
    // here, the listeners miss the batch.
    for (auto& [r, events] : pending) {
      try {
        r->ticket = listeners_->enqueue(std::move(events));
      } catch (...) {
      }
    }
    return;
  } catch (const StorageError& e) {
    try {
      failure = std::make_exception_ptr(group_error(e, held ? held->get() : nullptr));
    } catch (...) {
      failure = std::current_exception();  // no memory for the message
    }
  } catch (...) {
    failure = std::current_exception();
  }
  // Nothing of the group committed (or nobody knows): every request that
  // did not fail on its own gets the error, each its own copy, not one
  // object that several threads would rethrow and destroy at once. A copy of
  // its message, too: a copied std::runtime_error shares its message's
  // buffer through a reference count inside libstdc++, which ThreadSanitizer
  // cannot see, so it reports the last owner's free as a race.
  for (detail::CommitRequest* r : group) {
    if (r->error) continue;
    r->results.clear();
    try {
      std::rethrow_exception(failure);
    } catch (const StorageError& e) {
      try {
        r->error = std::make_exception_ptr(
            StorageError(std::string(e.what()), e.code(), e.extended_code()));
      } catch (...) {
        r->error = failure;
      }
    } catch (...) {
      r->error = failure;
    }
  }
}

std::vector<AppendResult> PostgresEventStore::Impl::append(std::vector<StreamAppend>& batch) {
  scheduler_.arrive();
  try {
    detail::prepare_batch(batch, nullptr, true);
  } catch (...) {
    scheduler_.abandon();
    throw;
  }
  detail::CommitRequest request;
  request.batch = &batch;
  scheduler_.submit(request);
  // Outside the leader role, so a listener may append without deadlock.
  listeners_->deliver(request.ticket);
  if (request.error) std::rethrow_exception(request.error);
  return std::move(request.results);
}

std::vector<AppendResult> PostgresEventStore::append(std::vector<StreamAppend> batch) {
  return impl_->append(batch);
}

}  // namespace annals
