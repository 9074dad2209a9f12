// The SQL write path of SqliteEventStore: what a group-commit leader does in
// its transaction (group_commit.cpp decides who leads and what a group holds).
//
// The leader opens one BEGIN IMMEDIATE transaction at once and writes every
// request of its group into it, taking more as they are queued. A request
// that could fail after some of its rows are written (several events or
// streams, or transaction hooks) runs inside its own savepoint, so that its
// failure rolls back only that request; a single event without hooks needs
// none, because every check comes before its one INSERT and a failed INSERT
// undoes itself (SQLite's ABORT). One COMMIT (and so one fsync) acknowledges
// the whole group.

#include <fcntl.h>
#include <sys/stat.h>

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <span>

#include "annals/core/error.hpp"
#include "append_input.hpp"
#include "sqlite_store_impl.hpp"

namespace annals {

namespace {

using detail::ResetOnExit;
using detail::storage_error;
using Connection = detail::SqlConnection;

std::string truncated_tail_message(const std::filesystem::path& path, std::int64_t head,
                                   std::int64_t high_water) {
  return "store '" + path.string() + "': its newest event is at position " + std::to_string(head) +
         ", but positions up to " + std::to_string(high_water) +
         " were handed out (high-water mark): events at the end were deleted; appends are "
         "refused so that no position is handed out twice";
}

// ---- transaction hooks -------------------------------------------------------

// Carries a hook's exception past write_group's `catch (const StorageError&)`,
// which fails the whole group: a hook's failure, whatever its type, fails only
// its own append, like WrongExpectedVersion.
struct HookFailed {
  std::exception_ptr error;
};

// Replaces a HookFailed by the exception the hook threw.
void unwrap_hook_failure(std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const HookFailed& failed) {
    error = failed.error;
  } catch (...) {
  }
}

// Calls `hooks` on committed[from..] inside the open transaction; throws
// HookFailed for a hook's error.
void run_hooks(detail::TransactionHooks<TransactionHook>& registry,
               const detail::TransactionHooks<TransactionHook>::List& hooks, Connection& conn,
               const std::vector<RecordedEvent>& committed, std::size_t from) {
  if (hooks.empty() || from >= committed.size()) return;
  SqlTransaction& tx = conn;  // inside the append transaction (and its savepoint)
  const std::span<const RecordedEvent> events(committed.data() + from, committed.size() - from);
  try {
    registry.run(hooks, [&](const TransactionHook& hook) { hook(tx, events); });
  } catch (...) {
    throw HookFailed{std::current_exception()};
  }
}

// Whether a failure of this request could leave some of its rows written:
// only a single event without hooks is sure not to (see the file comment).
bool may_fail_after_writing(const std::vector<StreamAppend>& batch,
                            const detail::TransactionHooks<TransactionHook>::List& hooks) {
  return !hooks.empty() || batch.size() != 1 || batch.front().events.size() != 1;
}

// Each appender gets its own StorageError or IntegrityError object, not one
// shared between threads that may rethrow and destroy it at the same time.
// Any other error, or no memory for a copy, is shared.
std::exception_ptr own_copy(const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const StorageError& e) {
    try {
      return std::make_exception_ptr(StorageError(e));
    } catch (...) {
    }
  } catch (const IntegrityError& e) {  // a deleted tail (load_head)
    try {
      return std::make_exception_ptr(IntegrityError(e));
    } catch (...) {
    }
  } catch (...) {
  }
  return error;
}

}  // namespace

// The busy handler covers waiting for another writer, but SQLite returns
// SQLITE_BUSY without calling it in a few WAL states (another connection
// running recovery, for one). Those pass quickly: retry them within the same
// busy_timeout, so a caller never sees SQLITE_BUSY while waiting would do.
void SqliteEventStore::Impl::begin_immediate() {
  detail::retry_while_busy(options_.busy_timeout, [&] { exec("BEGIN IMMEDIATE"); });
}

void SqliteEventStore::Impl::rollback_quietly() noexcept {
  try {
    if (sqlite3_get_autocommit(writer_->db().getHandle()) == 0) writer_->db().exec("ROLLBACK");
  } catch (...) {
  }
}

// Reads the newest event and the high-water mark in one statement (one row
// even when the store is empty). Throws IntegrityError when the head is
// below the mark: the newest events were deleted, and appending would hand
// out their positions again.
void SqliteEventStore::Impl::load_head() {
  auto& st = writer_->statement(
      "SELECT (SELECT position FROM events_high_water), e.position, e.hash, e.recorded_at "
      "FROM (SELECT 1) LEFT JOIN "
      "(SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1) AS e");
  ResetOnExit reset(st);
  head_ = Head{};
  if (!st.executeStep()) return;
  high_water_ = st.getColumn(0).getInt64();  // 0 when its row is gone: restored below
  if (!st.getColumn(1).isNull()) {
    head_.position = st.getColumn(1).getInt64();
    const auto hash = st.getColumn(2);
    if (hash.getBytes() == static_cast<int>(head_.hash.size())) {
      std::memcpy(head_.hash.data(), hash.getBlob(), head_.hash.size());
    }
    head_.recorded_at = from_micros(st.getColumn(3).getInt64());
  }
  if (head_.position < high_water_) {
    throw IntegrityError(truncated_tail_message(path_, head_.position, high_water_),
                         head_.position + 1);
  }
}

// Before COMMIT: the mark follows the head (one statement per transaction).
void SqliteEventStore::Impl::raise_high_water() {
  if (head_.position <= high_water_) return;
  auto& st = writer_->statement(detail::kRaiseHighWaterSql);
  ResetOnExit reset(st);
  st.bind(1, head_.position);
  st.exec();
  high_water_ = head_.position;
}

// Writes the group, and the requests take_more() adds to it, in one
// transaction, and commits those that succeeded. Every request of the group
// ends with its results or its error: nothing escapes.
void SqliteEventStore::Impl::write_group(detail::CommitGroup& round) noexcept {
  std::vector<detail::CommitRequest*>& group = round.requests();
  std::vector<RecordedEvent> committed;
  std::vector<detail::CommitRequest*> pending;
  try {
    const auto hooks = hooks_->snapshot();
    const bool collect = !listeners_->empty() || !hooks.empty();
    begin_immediate();
    load_head();
    bool open = true;  // the transaction can take more requests
    for (std::size_t next = 0; open; open = open && round.take_more()) {
      for (; next < group.size(); ++next) {
        detail::CommitRequest* r = group[next];
        const Head saved = head_;
        const std::size_t mark = committed.size();
        const bool partial = may_fail_after_writing(*r->batch, hooks);
        // A lone appender's request needs no savepoint: when it fails, the
        // whole transaction rolls back, which is cheaper.
        const bool alone = group.size() == 1 && !round.expects_company();
        const bool isolate = partial && !alone;
        if (isolate) exec("SAVEPOINT annals_append");
        sqlite3* db = writer_->db().getHandle();
        const sqlite3_int64 changes_before = sqlite3_total_changes64(db);
        try {
          r->results = apply(*r->batch, *r->generated_first_ids, collect ? &committed : nullptr);
          run_hooks(*hooks_, hooks, *writer_, committed, mark);
          if (isolate) exec("RELEASE annals_append");
          pending.push_back(r);
        } catch (const StorageError&) {
          throw;  // the transaction itself is in doubt: fail the group
        } catch (...) {
          // Without a savepoint, a failure is only this request's own if
          // its one INSERT did not happen (or undid itself): one after the
          // row was written (memory, in the bookkeeping) fails the group.
          if (!partial && sqlite3_total_changes64(db) != changes_before) throw;
          r->error = std::current_exception();
          unwrap_hook_failure(r->error);
          if (isolate) {
            exec("ROLLBACK TO annals_append");
            exec("RELEASE annals_append");
          } else if (partial) {
            rollback_quietly();  // it was alone: nothing else is lost
            open = false;
          }
          head_ = saved;
          committed.resize(mark);
        }
      }
    }
    if (pending.empty()) {
      rollback_quietly();
      return;
    }
    raise_high_water();
    const auto committing = std::chrono::steady_clock::now();
    exec("COMMIT");
    round.commit_took(std::chrono::steady_clock::now() - committing);
    if (metrics_) {
      std::uint64_t events = 0;
      for (const detail::CommitRequest* r : pending) {
        for (const StreamAppend& s : *r->batch) events += s.events.size();
      }
      metrics_->commit_events.observe(static_cast<double>(events));
    }
  } catch (const SQLite::Exception& e) {
    try {
      fail_group(group, std::make_exception_ptr(storage_error(e, "appending")));
    } catch (...) {
      fail_group(group, std::current_exception());  // no memory for the message
    }
    return;
  } catch (...) {
    fail_group(group, std::current_exception());
    return;
  }
  // Committed, and visible to every reader: tell watchers in other processes.
  // inotify saw the -wal writes, but those come before the commit is visible
  // (SQLite publishes it in the -shm index, which is memory-mapped and so
  // reports nothing), so a watcher woken by them can find no new event and
  // sleep through this commit. Setting the database file's times now reports
  // an IN_ATTRIB that comes after (the database file's: SQLite, run as root,
  // chowns the -wal whenever a connection opens it, which readers do too).
  // Best effort: a failure costs a watcher a poll interval, not an event.
  [[maybe_unused]] const int touched = ::utimensat(AT_FDCWD, path_.c_str(), nullptr, 0);
  // Committed: the appends succeeded whatever happens now. Should memory run
  // out while queueing the batch for the commit listeners, they miss it: a
  // ProjectionRunner, which reads the store, only finds it at its next poll,
  // but a Dispatcher's subscribers never see it.
  std::uint64_t ticket = 0;
  try {
    ticket = listeners_->enqueue(std::move(committed));
  } catch (...) {
  }
  for (detail::CommitRequest* r : pending) r->ticket = ticket;
}

void SqliteEventStore::Impl::fail_group(const std::vector<detail::CommitRequest*>& group,
                                        std::exception_ptr error) noexcept {
  rollback_quietly();
  for (detail::CommitRequest* r : group) {
    if (!r->error) {
      r->error = own_copy(error);
      r->results.clear();
    }
  }
}

// Writes one request's streams inside the open transaction.
std::vector<AppendResult> SqliteEventStore::Impl::apply(
    std::vector<StreamAppend>& batch, const std::vector<bool>& generated_first_ids,
    std::vector<RecordedEvent>* committed) {
  std::vector<AppendResult> results(batch.size());
  // Never before the newest stored event: recorded_at does not decrease
  // along positions, even when the wall clock steps back.
  const Timestamp now = std::max(options_.clock->now(), head_.recorded_at);
  for (std::size_t s = 0; s < batch.size(); ++s) {
    auto& part = batch[s];
    try {
      if (auto retry = generated_first_ids[s] ? std::nullopt : retry_of(part)) {
        results[s] = *retry;
        if (metrics_) metrics_->idempotent_retries.add();
        continue;
      }
      const std::int64_t actual = version_on(*writer_, part.stream_id);
      if (!part.expected.matches(actual)) {
        throw WrongExpectedVersion(part.stream_id, part.expected, actual);
      }
      std::int64_t version = actual;
      const std::int64_t first_position = head_.position + 1;
      auto& insert = writer_->statement(detail::kInsertEventSql);
      for (auto& data : part.events) {
        RecordedEvent event = detail::record(std::move(data), part.stream_id, ++version,
                                             head_.position + 1, now, head_.hash);

        insert.reset();
        detail::bind_event(insert, event);
        try {
          insert.exec();
        } catch (const SQLite::Exception& e) {
          insert.tryReset();  // reset() would throw this same error again
          // A key is taken: the schema's INSERT trigger (RAISE(ABORT) gives
          // SQLITE_CONSTRAINT_TRIGGER) or, failing it, a UNIQUE or PRIMARY
          // KEY index refused the row. Which key is told by the table, not
          // by the message text.
          const int code = e.getExtendedErrorCode();
          if (code == SQLITE_CONSTRAINT_TRIGGER || code == SQLITE_CONSTRAINT_UNIQUE ||
              code == SQLITE_CONSTRAINT_PRIMARYKEY) {
            if (auto duplicate = duplicate_of(event.event_id, part.stream_id)) throw *duplicate;
            const std::int64_t stored = version_on(*writer_, part.stream_id);
            if (stored >= version) {
              // (stream_id, version) taken: another writer got there first.
              throw WrongExpectedVersion(part.stream_id, part.expected, stored);
            }
          }
          throw;
        }
        insert.reset();
        head_ = Head{event.position, event.hash, event.recorded_at};
        if (committed != nullptr) committed->push_back(std::move(event));
      }
      results[s] = AppendResult{version, first_position, head_.position};
    } catch (const SQLite::Exception& e) {
      throw storage_error(e, "appending to stream '" + part.stream_id + "'");
    }
  }
  return results;
}

// The error for `event_id` if it is stored already; nullopt if it is not.
std::optional<DuplicateEventId> SqliteEventStore::Impl::duplicate_of(const std::string& event_id,
                                                                     const std::string& stream_id) {
  auto& st = writer_->statement("SELECT stream_id, version FROM events WHERE event_id = ?1");
  ResetOnExit reset(st);
  st.bind(1, event_id);
  if (!st.executeStep()) return std::nullopt;
  return DuplicateEventId(event_id, stream_id,
                          "stored in stream '" + st.getColumn(0).getString() + "' at version " +
                              std::to_string(st.getColumn(1).getInt64()));
}

// The first result, if `part` repeats an earlier append; nullopt if its first
// id is new. Throws DuplicateEventId if the id is stored somewhere else, or
// where this append would put it but with other content.
std::optional<AppendResult> SqliteEventStore::Impl::retry_of(const StreamAppend& part) {
  std::string stored_stream;
  std::int64_t first_version = 0;
  std::int64_t first_position = 0;
  {
    auto& st =
        writer_->statement("SELECT stream_id, version, position FROM events WHERE event_id = ?1");
    ResetOnExit reset(st);
    st.bind(1, part.events.front().event_id);
    if (!st.executeStep()) return std::nullopt;
    stored_stream = st.getColumn(0).getString();
    first_version = st.getColumn(1).getInt64();
    first_position = st.getColumn(2).getInt64();
  }
  bool same_place = stored_stream == part.stream_id && part.expected.matches(first_version - 1);
  std::int64_t last_position = first_position;
  std::size_t seen = 0;
  if (same_place) {
    auto& st = writer_->statement(
        "SELECT event_id, position, version, type, schema_version, payload, metadata "
        "FROM events WHERE stream_id = ?1 AND version >= ?2 ORDER BY version LIMIT ?3");
    ResetOnExit reset(st);
    st.bind(1, part.stream_id);
    st.bind(2, first_version);
    st.bind(3, static_cast<std::int64_t>(part.events.size()));
    while (same_place && st.executeStep()) {
      const EventData& given = part.events[seen];
      same_place = st.getColumn(0).getString() == given.event_id;
      if (!same_place) break;
      const auto text = [&](int column) {
        const SQLite::Column value = st.getColumn(column);
        const char* chars = value.getText();  // before getBytes(), as SQLite asks
        return std::string_view(chars, static_cast<std::size_t>(value.getBytes()));
      };
      if (const char* field =
              detail::differing_field(given, text(3), st.getColumn(4).getInt(), text(5), text(6))) {
        throw detail::content_differs(given.event_id, part.stream_id, st.getColumn(2).getInt64(),
                                      field);
      }
      last_position = st.getColumn(1).getInt64();
      ++seen;
    }
    same_place = same_place && seen == part.events.size();
  }
  if (!same_place) {
    throw DuplicateEventId(part.events.front().event_id, part.stream_id,
                           "stored in stream '" + stored_stream + "' at version " +
                               std::to_string(first_version) +
                               ", which is not a retry of this append");
  }
  return AppendResult{first_version - 1 + static_cast<std::int64_t>(seen), first_position,
                      last_position};
}

std::vector<AppendResult> SqliteEventStore::Impl::append(std::vector<StreamAppend>& batch) {
  require_writable("append");
  if (hooks_->called_from_hook()) {
    throw InvalidArgument("append() called from inside a transaction hook of store '" +
                          path_.string() +
                          "': the hook runs under the store's write lock, so the append "
                          "would wait for itself");
  }
  scheduler_.arrive();
  std::vector<bool> generated_first_ids;
  try {
    detail::prepare_batch(batch, &generated_first_ids, /*unique_index=*/true);
  } catch (...) {
    scheduler_.abandon();
    throw;
  }
  const auto submit = [&] {
    detail::CommitRequest request;
    request.batch = &batch;
    request.generated_first_ids = &generated_first_ids;
    scheduler_.submit(request);
    // Outside the leader role, so a listener may append without deadlock.
    listeners_->deliver(request.ticket);
    if (request.error) std::rethrow_exception(request.error);
    return std::move(request.results);
  };
  if (!metrics_) return submit();
  return metrics_->measure(batch, submit);
}

std::vector<AppendResult> SqliteEventStore::append(std::vector<StreamAppend> batch) {
  return impl_->append(batch);
}

}  // namespace annals
