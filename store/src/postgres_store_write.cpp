// PostgresEventStore::append: one transaction per call, holding the row lock
// on annals_head to its commit, so positions are dense and commit in order
// (docs/adr/0011-postgres-libpq-and-head-row-lock.md).

#include <algorithm>
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
// is not stored; throws DuplicateEventId if stored elsewhere or otherwise.
std::optional<AppendResult> PostgresEventStore::Impl::retry_of(PGconn* c,
                                                               const StreamAppend& part) const {
  const auto& events = part.events;
  auto first = exec(c, "look up an event id",
                    "SELECT stream_id, version, position FROM events WHERE event_id = $1",
                    Params().text(events.front().event_id));
  if (PQntuples(first.get()) == 0) return std::nullopt;
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

void PostgresEventStore::Impl::insert_event(PGconn* c, const RecordedEvent& e) {
  exec(c, "insert an event",
       "INSERT INTO events (position, stream_id, version, event_id, type, schema_version, "
       "payload, metadata, recorded_at, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
       Params()
           .i8(e.position)
           .text(e.stream_id)
           .i8(e.version)
           .text(e.event_id)
           .text(e.type)
           .i4(e.schema_version)
           .bytes(e.payload)
           .bytes(e.metadata)
           .i8(to_micros(e.recorded_at))
           .bytes(hash_bytes(e.hash)));
}

void PostgresEventStore::Impl::set_stream_version(PGconn* c, const std::string& stream_id,
                                                  std::int64_t version) {
  exec(c, "update a stream version",
       "INSERT INTO streams (stream_id, version) VALUES ($1, $2) "
       "ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version",
       Params().text(stream_id).i8(version));
}

std::vector<AppendResult> PostgresEventStore::append(std::vector<StreamAppend> batch) {
  detail::prepare_batch(batch, nullptr, true);
  std::vector<AppendResult> results(batch.size());
  std::uint64_t ticket = 0;
  std::optional<Impl::Lease> lease;  // outlives the handler below, which asks if it broke
  try {
    detail::MutexLock order(impl_->append_mu_);
    auto& l = lease.emplace(impl_->lease());
    PGconn* c = l.get();
    Impl::exec(c, "begin an append", "BEGIN");
    // Held to the commit: appends commit one at a time, in position order.
    auto head = Impl::exec(c, "lock the head row",
                           "SELECT position FROM annals_head WHERE id = 1 FOR UPDATE");
    std::int64_t position = get_i8(head.get(), 0, 0);
    const std::int64_t head_before = position;
    EventHash previous{};
    Timestamp last_time{};
    bool have_last = false;
    if (position > 0) {
      auto last = Impl::exec(c, "read the newest event",
                             "SELECT hash, recorded_at FROM events WHERE position = $1",
                             Params().i8(position));
      if (PQntuples(last.get()) == 1) {
        previous = to_hash(get_bytes(last.get(), 0, 0));
        last_time = from_micros(get_i8(last.get(), 0, 1));
        have_last = true;
      }
    }
    std::vector<bool> is_retry(batch.size(), false);
    std::vector<std::int64_t> current(batch.size(), 0);
    for (std::size_t s = 0; s < batch.size(); ++s) {
      const auto& part = batch[s];
      if (auto retry = impl_->retry_of(c, part)) {
        results[s] = *retry;
        is_retry[s] = true;
        continue;
      }
      auto v = Impl::exec(c, "read a stream version",
                          "SELECT version FROM streams WHERE stream_id = $1",
                          Params().text(part.stream_id));
      current[s] = PQntuples(v.get()) == 0 ? 0 : get_i8(v.get(), 0, 0);
      if (!part.expected.matches(current[s])) {
        throw WrongExpectedVersion(part.stream_id, part.expected, current[s]);
      }
      for (const auto& event : part.events) {
        auto dup = Impl::exec(c, "look up an event id",
                              "SELECT stream_id, version FROM events WHERE event_id = $1",
                              Params().text(event.event_id));
        if (PQntuples(dup.get()) != 0) {
          throw DuplicateEventId(event.event_id, part.stream_id,
                                 "stored in stream '" + get_bytes(dup.get(), 0, 0) +
                                     "' at version " + std::to_string(get_i8(dup.get(), 0, 1)));
        }
      }
    }
    Timestamp now = impl_->options_.clock->now();
    if (have_last) now = std::max(now, last_time);
    const bool collect = !impl_->listeners_->empty();
    std::vector<RecordedEvent> committed;
    for (std::size_t s = 0; s < batch.size(); ++s) {
      if (is_retry[s]) continue;
      auto& part = batch[s];
      std::int64_t version = current[s];
      const std::int64_t first_position = position + 1;
      for (auto& data : part.events) {
        RecordedEvent e =
            detail::record(std::move(data), part.stream_id, ++version, ++position, now, previous);
        Impl::insert_event(c, e);
        previous = e.hash;
        if (collect) committed.push_back(std::move(e));
      }
      Impl::set_stream_version(c, part.stream_id, version);
      results[s] = AppendResult{version, first_position, position};
    }
    impl_->move_head(c, position, position > head_before);
    Result commit(PQexec(c, "COMMIT"));
    if (commit == nullptr || PQresultStatus(commit.get()) != PGRES_COMMAND_OK) {
      std::string msg = commit ? PQresultErrorMessage(commit.get()) : PQerrorMessage(c);
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      throw StorageError("PostgreSQL: commit of an append failed, its outcome may be unknown "
                         "(retry with the same event ids): " + msg);
    }
    ticket = impl_->listeners_->enqueue(std::move(committed));
  } catch (const StorageError& e) {
    // A connection that failed (or never opened) during an append leaves the
    // caller not knowing whether it committed; a retry with the same ids tells.
    const std::string what = e.what();
    const bool lost = !lease || PQstatus(lease->get()) != CONNECTION_OK;
    if (!lost || what.find("outcome may be unknown") != std::string::npos) throw;
    throw StorageError("PostgreSQL: an append's connection failed, its outcome may be unknown "
                       "(retry with the same event ids): " +
                       what.substr(what.rfind("PostgreSQL: ", 0) == 0 ? 12 : 0));
  }
  impl_->listeners_->deliver(ticket);
  return results;
}

}  // namespace annals
