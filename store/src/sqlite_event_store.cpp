// SqliteEventStore: one writer connection with group commit, a pool of reader
// connections, and paged reads. The schema is in sqlite_schema.cpp.
//
// Group commit: an appending thread queues its request; the first thread to
// find no leader becomes the leader, waits briefly for appenders about to
// queue (see gather()), takes every queued request (up to max_group_size),
// and writes them in one BEGIN IMMEDIATE transaction, each
// request inside its own savepoint so that one request's WrongExpectedVersion
// rolls back only that request. One COMMIT (and so one fsync) acknowledges the
// whole group. Followers sleep until the leader marks their request done.

#include "annals/store/sqlite_event_store.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/stream_id.hpp"
#include "append_input.hpp"
#include "commit_listeners.hpp"
#include "sqlite_schema.hpp"
#include "sqlite_support.hpp"
#include "transaction_hooks.hpp"

namespace annals {

namespace {

using detail::bind_values;
using detail::fetch_rows;
using detail::ResetOnExit;
using detail::storage_error;

constexpr const char* kColumns =
    "position, stream_id, version, event_id, type, schema_version, payload, metadata, "
    "recorded_at, hash";

using Connection = detail::SqlConnection;

std::string text_column(sqlite3_stmt* st, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, column));
  return text == nullptr
             ? std::string()
             : std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(st, column)));
}

// On the C API: see detail::RawStatement.
RecordedEvent read_row(sqlite3_stmt* st) {
  RecordedEvent e;
  e.position = sqlite3_column_int64(st, 0);
  e.stream_id = text_column(st, 1);
  e.version = sqlite3_column_int64(st, 2);
  e.event_id = text_column(st, 3);
  e.type = text_column(st, 4);
  e.schema_version = sqlite3_column_int(st, 5);
  e.payload = text_column(st, 6);
  e.metadata = text_column(st, 7);
  e.recorded_at = from_micros(sqlite3_column_int64(st, 8));
  const void* hash = sqlite3_column_blob(st, 9);
  if (hash != nullptr && sqlite3_column_bytes(st, 9) == static_cast<int>(e.hash.size())) {
    std::memcpy(e.hash.data(), hash, e.hash.size());
  }
  return e;
}

struct Request {
  std::vector<StreamAppend>* batch = nullptr;
  std::vector<AppendResult> results;
  std::exception_ptr error;
  std::uint64_t ticket = 0;  // of the group's batch for commit listeners
  bool done = false;
};

struct Head {
  std::int64_t position = 0;
  EventHash hash{};
};

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

}  // namespace

class SqliteEventStore::Impl {
 public:
  Impl(const std::filesystem::path& path, SqliteStoreOptions options)
      : path_(path), options_(std::move(options)) {
    if (!options_.clock) options_.clock = SystemClock::shared();
    if (options_.read_page_size == 0) options_.read_page_size = 1;
    if (options_.max_group_size == 0) options_.max_group_size = 1;
    const bool exists = detail::file_exists(path_, "store file");
    if (options_.read_only) {
      open_read_only(exists);
      return;
    }
    if (!exists && !options_.create_if_missing) {
      throw StorageError("store file '" + path_.string() + "' does not exist");
    }
    if (!exists) detail::create_private_file(path_, "store file");
    try {
      writer_.emplace(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, options_.busy_timeout,
                      options_.vfs);
    } catch (const SQLite::Exception& e) {
      throw storage_error(e, "opening '" + path_.string() + "'");
    }
    if (sqlite3_db_readonly(writer_->db().getHandle(), "main") == 1) {
      throw StorageError("store file '" + path_.string() +
                         "' is read-only; an event store needs write access");
    }
    detail::open_schema(writer_->db(), path_);
    try {
      const std::string mode = detail::retry_while_busy(options_.busy_timeout, [&] {
        return writer_->db().execAndGet("PRAGMA journal_mode = WAL").getString();
      });
      if (mode != "wal") {
        throw StorageError("store file '" + path_.string() +
                           "' cannot use write-ahead logging (journal mode is " + mode + ")");
      }
      writer_->db().exec(options_.synchronous == Synchronous::full ? "PRAGMA synchronous = FULL"
                                                                   : "PRAGMA synchronous = NORMAL");
    } catch (const SQLite::Exception& e) {
      throw storage_error(e, "configuring '" + path_.string() + "'");
    }
  }

  // A read-only store has no writer: one read-only connection checks the
  // schema and becomes the first idle reader.
  void open_read_only(bool exists) {
    if (!exists) throw StorageError("store file '" + path_.string() + "' does not exist");
    std::unique_ptr<Connection> conn;
    try {
      conn = std::make_unique<Connection>(path_, reader_flags(), options_.busy_timeout,
                                          options_.vfs);
    } catch (const SQLite::Exception& e) {
      throw storage_error(e, "opening '" + path_.string() + "' read-only");
    }
    detail::check_schema_readable(conn->db(), path_);
    release_reader(std::move(conn));
  }

  int reader_flags() const {
    return (options_.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
           SQLITE_OPEN_NOMUTEX;
  }

  void require_writable(const char* operation) const {
    if (options_.read_only) {
      throw StorageError("cannot " + std::string(operation) + ": store file '" + path_.string() +
                         "' was opened read-only");
    }
  }

  // ---- writing -------------------------------------------------------------

  // Counts an append from its start (before its input is validated) until the
  // leader marks it done, so that a leader knows how many are on their way.
  void begin_append() noexcept { appending_.fetch_add(1, std::memory_order_relaxed); }

  // For an append that failed before it was queued.
  void abandon_append() noexcept {
    std::lock_guard lock(queue_mu_);
    appending_.fetch_sub(1, std::memory_order_relaxed);
    gather_cv_.notify_one();
  }

  std::vector<AppendResult> submit(std::vector<StreamAppend>& batch) {
    Request request;
    request.batch = &batch;
    std::unique_lock lock(queue_mu_);
    queue_.push_back(&request);
    gather_cv_.notify_one();
    while (!request.done) {
      if (leader_active_) {
        queue_cv_.wait(lock);
        continue;
      }
      leader_active_ = true;
      gather(lock);
      const auto started = std::chrono::steady_clock::now();
      std::vector<Request*> group;
      while (!queue_.empty() && group.size() < options_.max_group_size) {
        group.push_back(queue_.front());
        queue_.pop_front();
      }
      lock.unlock();
      write_group(group);
      lock.lock();
      for (Request* r : group) r->done = true;
      appending_.fetch_sub(group.size(), std::memory_order_relaxed);
      // The threads of this group are likely to append again at once, and
      // those queued are waiting: together, the next group's likely size.
      expected_group_ = group.size() + queue_.size();
      last_commit_ = std::chrono::steady_clock::now() - started;
      leader_active_ = false;
      queue_cv_.notify_all();
    }
    lock.unlock();
    // Outside the leader role, so a listener may append without deadlock.
    listeners_->deliver(request.ticket);
    if (request.error) std::rethrow_exception(request.error);
    return std::move(request.results);
  }

  // ---- reading -------------------------------------------------------------

  class Lease {
   public:
    Lease(const Impl& impl, std::unique_ptr<Connection> conn)
        : impl_(impl), conn_(std::move(conn)) {}
    ~Lease() { impl_.release_reader(std::move(conn_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection* operator->() { return conn_.get(); }
    Connection& operator*() { return *conn_; }

   private:
    const Impl& impl_;
    std::unique_ptr<Connection> conn_;
  };

  Lease reader() const {
    {
      std::lock_guard lock(readers_mu_);
      if (!idle_readers_.empty()) {
        auto conn = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return Lease(*this, std::move(conn));
      }
    }
    try {
      auto conn = std::make_unique<Connection>(path_, reader_flags(), options_.busy_timeout,
                                               options_.vfs);
      conn->db().exec("PRAGMA query_only = 1");
      return Lease(*this, std::move(conn));
    } catch (const SQLite::Exception& e) {
      throw storage_error(e, "opening a reader on '" + path_.string() + "'");
    }
  }

  void release_reader(std::unique_ptr<Connection> conn) const {
    std::lock_guard lock(readers_mu_);
    if (idle_readers_.size() < options_.max_idle_readers) idle_readers_.push_back(std::move(conn));
  }

  std::int64_t version_on(Connection& conn, const std::string& stream_id) const {
    auto& st = conn.statement(
        "SELECT version FROM events WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1");
    ResetOnExit reset(st);
    st.bind(1, stream_id);
    return st.executeStep() ? st.getColumn(0).getInt64() : 0;
  }

  // Runs one paged query. `bind` binds everything but the cursor and the limit;
  // `advance` moves the cursor past the last row read.
  class QuerySource final : public Cursor<RecordedEvent>::Source {
   public:
    using Bind = std::function<void(sqlite3_stmt*, std::int64_t cursor, std::int64_t limit)>;
    using Advance = std::function<std::int64_t(const RecordedEvent&)>;

    QuerySource(const Impl& impl, std::string sql, std::int64_t cursor, Bind bind, Advance advance)
        : impl_(impl),
          sql_(std::move(sql)),
          cursor_(cursor),
          bind_(std::move(bind)),
          advance_(std::move(advance)) {}

    bool fetch(std::vector<RecordedEvent>& out, std::size_t max) override {
      auto lease = impl_.reader();
      try {
        sqlite3_stmt* st = lease->raw_statement(sql_);
        detail::RawResetOnExit reset(st);
        bind_(st, cursor_, static_cast<std::int64_t>(max));
        std::size_t got = 0;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
          out.push_back(read_row(st));
          ++got;
        }
        if (rc != SQLITE_DONE) detail::check_rc(st, rc);
        if (got > 0) cursor_ = advance_(out.back());
        return got == max;
      } catch (const SQLite::Exception& e) {
        throw storage_error(e, "reading '" + impl_.path_.string() + "'");
      }
    }

   private:
    const Impl& impl_;
    std::string sql_;
    std::int64_t cursor_;
    Bind bind_;
    Advance advance_;
  };

  const std::filesystem::path path_;
  SqliteStoreOptions options_;
  std::shared_ptr<detail::CommitListeners> listeners_ = std::make_shared<detail::CommitListeners>();
  std::shared_ptr<detail::TransactionHooks<TransactionHook>> hooks_ =
      std::make_shared<detail::TransactionHooks<TransactionHook>>();

 private:
  void exec(const char* sql) { writer_->statement(sql).exec(); }

  // The busy handler covers waiting for another writer, but SQLite returns
  // SQLITE_BUSY without calling it in a few WAL states (another connection
  // running recovery, for one). Those pass quickly: retry them within the same
  // busy_timeout, so a caller never sees SQLITE_BUSY while waiting would do.
  void begin_immediate() {
    detail::retry_while_busy(options_.busy_timeout, [&] { exec("BEGIN IMMEDIATE"); });
  }

  void rollback_quietly() noexcept {
    try {
      if (sqlite3_get_autocommit(writer_->db().getHandle()) == 0) writer_->db().exec("ROLLBACK");
    } catch (...) {
    }
  }

  void load_head() {
    auto& st =
        writer_->statement("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1");
    ResetOnExit reset(st);
    head_ = Head{};
    if (st.executeStep()) {
      head_.position = st.getColumn(0).getInt64();
      const auto hash = st.getColumn(1);
      if (hash.getBytes() == static_cast<int>(head_.hash.size())) {
        std::memcpy(head_.hash.data(), hash.getBlob(), head_.hash.size());
      }
    }
  }

  void write_group(const std::vector<Request*>& group) {
    const auto hooks = hooks_->snapshot();
    const bool collect = !listeners_->empty() || !hooks.empty();
    std::vector<RecordedEvent> committed;
    // With one request there is nothing to isolate: a failure rolls back the
    // whole transaction, which is cheaper than a savepoint.
    const bool savepoints = group.size() > 1;
    std::vector<Request*> pending;
    try {
      begin_immediate();
      load_head();
      for (Request* r : group) {
        const Head saved = head_;
        const std::size_t mark = committed.size();
        if (savepoints) exec("SAVEPOINT annals_append");
        try {
          r->results = apply(*r->batch, collect ? &committed : nullptr);
          run_hooks(*hooks_, hooks, *writer_, committed, mark);
          if (savepoints) exec("RELEASE annals_append");
          pending.push_back(r);
        } catch (const StorageError&) {
          throw;  // the transaction itself is in doubt: fail the group
        } catch (...) {
          r->error = std::current_exception();
          unwrap_hook_failure(r->error);
          if (savepoints) {
            exec("ROLLBACK TO annals_append");
            exec("RELEASE annals_append");
          } else {
            rollback_quietly();
          }
          head_ = saved;
          committed.resize(mark);
        }
      }
      if (pending.empty()) {
        rollback_quietly();
        return;
      }
      exec("COMMIT");
    } catch (const SQLite::Exception& e) {
      fail_group(group, std::make_exception_ptr(storage_error(e, "appending")));
      return;
    } catch (...) {
      fail_group(group, std::current_exception());
      return;
    }
    const std::uint64_t ticket = listeners_->enqueue(std::move(committed));
    for (Request* r : pending) r->ticket = ticket;
  }

  void fail_group(const std::vector<Request*>& group, std::exception_ptr error) {
    rollback_quietly();
    for (Request* r : group) {
      if (!r->error) {
        r->error = error;
        r->results.clear();
      }
    }
  }

  // Writes one request's streams inside the open transaction.
  std::vector<AppendResult> apply(std::vector<StreamAppend>& batch,
                                  std::vector<RecordedEvent>* committed) {
    std::vector<AppendResult> results(batch.size());
    const Timestamp now = options_.clock->now();
    for (std::size_t s = 0; s < batch.size(); ++s) {
      auto& part = batch[s];
      try {
        if (auto retry = retry_of(part)) {
          results[s] = *retry;
          continue;
        }
        const std::int64_t actual = version_on(*writer_, part.stream_id);
        if (!part.expected.matches(actual)) {
          throw WrongExpectedVersion(part.stream_id, part.expected, actual);
        }
        std::int64_t version = actual;
        const std::int64_t first_position = head_.position + 1;
        auto& insert = writer_->statement(
            "INSERT INTO events (position, stream_id, version, event_id, type, schema_version, "
            "payload, metadata, recorded_at, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
            "?10)");
        for (auto& data : part.events) {
          RecordedEvent event = detail::record(std::move(data), part.stream_id, ++version,
                                               head_.position + 1, now, head_.hash);

          insert.reset();
          insert.bind(1, event.position);
          insert.bindNoCopy(2, event.stream_id);
          insert.bind(3, event.version);
          insert.bindNoCopy(4, event.event_id);
          insert.bindNoCopy(5, event.type);
          insert.bind(6, event.schema_version);
          insert.bindNoCopy(7, event.payload);
          insert.bindNoCopy(8, event.metadata);
          insert.bind(9, to_micros(event.recorded_at));
          insert.bindNoCopy(10, event.hash.data(), static_cast<int>(event.hash.size()));
          try {
            insert.exec();
          } catch (const SQLite::Exception& e) {
            insert.tryReset();  // reset() would throw this same error again
            // The schema's INSERT trigger (or, failing it, the UNIQUE index)
            // names the key that is taken.
            const int code = e.getExtendedErrorCode();
            const bool taken =
                code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_TRIGGER;
            if (taken && std::strstr(e.what(), "event_id") != nullptr) {
              throw duplicate_of(event.event_id, part.stream_id);
            }
            if (taken && std::strstr(e.what(), "stream_id") != nullptr) {
              // (stream_id, version) taken: another writer got there first.
              throw WrongExpectedVersion(part.stream_id, part.expected,
                                         version_on(*writer_, part.stream_id));
            }
            throw;
          }
          insert.reset();
          head_ = Head{event.position, event.hash};
          if (committed != nullptr) committed->push_back(std::move(event));
        }
        results[s] = AppendResult{version, first_position, head_.position};
      } catch (const SQLite::Exception& e) {
        throw storage_error(e, "appending to stream '" + part.stream_id + "'");
      }
    }
    return results;
  }

  DuplicateEventId duplicate_of(const std::string& event_id, const std::string& stream_id) {
    auto& st = writer_->statement("SELECT stream_id, version FROM events WHERE event_id = ?1");
    ResetOnExit reset(st);
    st.bind(1, event_id);
    if (st.executeStep()) {
      return DuplicateEventId(event_id, stream_id,
                              "stored in stream '" + st.getColumn(0).getString() + "' at version " +
                                  std::to_string(st.getColumn(1).getInt64()));
    }
    return DuplicateEventId(event_id, stream_id, "stored elsewhere");
  }

  // The first result, if `part` repeats an earlier append; nullopt if its first
  // id is new. Throws DuplicateEventId if the id is stored somewhere else.
  std::optional<AppendResult> retry_of(const StreamAppend& part) {
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
          "SELECT event_id, position FROM events WHERE stream_id = ?1 AND version >= ?2 "
          "ORDER BY version LIMIT ?3");
      ResetOnExit reset(st);
      st.bind(1, part.stream_id);
      st.bind(2, first_version);
      st.bind(3, static_cast<std::int64_t>(part.events.size()));
      while (same_place && st.executeStep()) {
        same_place = st.getColumn(0).getString() == part.events[seen].event_id;
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

  std::optional<Connection> writer_;  // guarded by being the group leader
  Head head_;

  // Group commit, measured (docs/performance.md): with 8 appending threads a
  // leader that takes only what is queued commits about 4 appends per fsync,
  // because the threads of the group before are still on their way back. The
  // leader waits for them, and for appends still validating their input, until
  // as many are queued as the last group and its waiters numbered, for at most
  // half the last commit's duration (capped at kMaxGather): a wait that a
  // larger group more than pays back. A lone appender never waits, and after a
  // wait that timed out the next leader does not wait (the threads are busy
  // elsewhere, not on their way).
  static constexpr std::chrono::microseconds kMaxGather{500};

  void gather(std::unique_lock<std::mutex>& lock) {
    if (gather_timed_out_) {
      gather_timed_out_ = false;
      return;
    }
    const std::size_t want =
        std::min(options_.max_group_size,
                 std::max(expected_group_, appending_.load(std::memory_order_relaxed)));
    if (queue_.size() >= want) return;
    const auto window = std::min<std::chrono::steady_clock::duration>(kMaxGather, last_commit_ / 2);
    const auto deadline = std::chrono::steady_clock::now() + window;
    while (queue_.size() < want) {
      if (gather_cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
        gather_timed_out_ = queue_.size() < want;
        return;
      }
    }
  }

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::condition_variable gather_cv_;  // a gathering leader waits on it
  std::deque<Request*> queue_;
  bool leader_active_ = false;
  std::atomic<std::size_t> appending_{0};
  std::size_t expected_group_ = 1;                    // guarded by queue_mu_
  std::chrono::steady_clock::duration last_commit_{};  // guarded by queue_mu_
  bool gather_timed_out_ = false;                     // guarded by queue_mu_

  mutable std::mutex readers_mu_;
  mutable std::vector<std::unique_ptr<Connection>> idle_readers_;

 public:
  // Snapshots are written on a connection of their own: they are a cache
  // outside the event transactions and must not wait in the group-commit queue.
  template <class Fn>
  auto with_snapshot_writer(Fn&& fn) {
    std::lock_guard lock(snapshot_mu_);
    if (!snapshot_writer_) {
      snapshot_writer_.emplace(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                               options_.busy_timeout, options_.vfs);
    }
    return fn(*snapshot_writer_);
  }

 private:
  std::mutex snapshot_mu_;
  std::optional<Connection> snapshot_writer_;
};

SqliteEventStore::SqliteEventStore(const std::filesystem::path& path, SqliteStoreOptions options)
    : impl_(std::make_unique<Impl>(path, std::move(options))) {}

SqliteEventStore::~SqliteEventStore() = default;

const std::filesystem::path& SqliteEventStore::path() const noexcept { return impl_->path_; }

std::vector<AppendResult> SqliteEventStore::append(std::vector<StreamAppend> batch) {
  impl_->require_writable("append");
  impl_->begin_append();
  try {
    detail::prepare_batch(batch);
  } catch (...) {
    impl_->abandon_append();
    throw;
  }
  return impl_->submit(batch);
}

Cursor<RecordedEvent> SqliteEventStore::read_stream(const std::string& stream_id,
                                                    std::int64_t from_version, Direction direction,
                                                    std::uint64_t max_count) const {
  validate_stream_id(stream_id);
  if (direction == Direction::forward ? from_version < 1 : from_version < 0) {
    throw InvalidArgument("read of stream '" + stream_id + "' from version " +
                          std::to_string(from_version) + ": versions start at 1");
  }
  const bool forward = direction == Direction::forward;
  std::string sql =
      std::string("SELECT ") + kColumns + " FROM events WHERE stream_id = ?1 AND " +
      (forward ? "version >= ?2 ORDER BY version" : "version <= ?2 ORDER BY version DESC") +
      " LIMIT ?3";
  auto bind = [stream_id](sqlite3_stmt* st, std::int64_t cursor, std::int64_t limit) {
    detail::bind_static_text(st, 1, stream_id);
    detail::check_rc(st, sqlite3_bind_int64(st, 2, cursor));
    detail::check_rc(st, sqlite3_bind_int64(st, 3, limit));
  };
  auto advance = [forward](const RecordedEvent& e) {
    return forward ? e.version + 1 : e.version - 1;
  };
  return Cursor<RecordedEvent>(
      std::make_unique<Impl::QuerySource>(*impl_, std::move(sql), from_version, bind, advance),
      impl_->options_.read_page_size, max_count);
}

Cursor<RecordedEvent> SqliteEventStore::read_all(std::int64_t from_position,
                                                 const EventFilter& filter,
                                                 std::uint64_t max_count) const {
  if (from_position < 1) {
    throw InvalidArgument("read_all from position " + std::to_string(from_position) +
                          ": positions start at 1");
  }
  // Filters use unary + on the columns so SQLite walks the primary key in
  // position order instead of an index it would then have to sort: each page
  // then costs the rows it scans, never the whole category.
  std::string sql = std::string("SELECT ") + kColumns + " FROM events WHERE position >= ?1";
  std::string types_json;
  if (!filter.types.empty()) {
    sql += " AND +type IN (SELECT value FROM json_each(?3))";
    types_json = Json(filter.types).dump();
  }
  std::string prefix_low, prefix_high;
  if (!filter.stream_prefix.empty()) {
    prefix_low = filter.stream_prefix;
    prefix_high = detail::prefix_upper_bound(filter.stream_prefix);
    sql += " AND +stream_id >= ?4";
    if (!prefix_high.empty()) sql += " AND +stream_id < ?5";
  }
  std::string category = filter.category;
  if (!category.empty()) {
    sql += " AND (+stream_id = ?6 OR (+stream_id >= ?6 || '-' AND +stream_id < ?6 || '.'))";
  }
  sql += " ORDER BY position LIMIT ?2";
  auto bind = [types_json, prefix_low, prefix_high, category](
                  sqlite3_stmt* st, std::int64_t cursor, std::int64_t limit) {
    detail::check_rc(st, sqlite3_bind_int64(st, 1, cursor));
    detail::check_rc(st, sqlite3_bind_int64(st, 2, limit));
    if (!types_json.empty()) detail::bind_static_text(st, 3, types_json);
    if (!prefix_low.empty()) detail::bind_static_text(st, 4, prefix_low);
    if (!prefix_high.empty()) detail::bind_static_text(st, 5, prefix_high);
    if (!category.empty()) detail::bind_static_text(st, 6, category);
  };
  auto advance = [](const RecordedEvent& e) { return e.position + 1; };
  return Cursor<RecordedEvent>(
      std::make_unique<Impl::QuerySource>(*impl_, std::move(sql), from_position, bind, advance),
      impl_->options_.read_page_size, max_count);
}

std::int64_t SqliteEventStore::stream_version(const std::string& stream_id) const {
  validate_stream_id(stream_id);
  auto lease = impl_->reader();
  try {
    return impl_->version_on(*lease, stream_id);
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "reading the version of stream '" + stream_id + "'");
  }
}

std::int64_t SqliteEventStore::head_position() const {
  auto lease = impl_->reader();
  try {
    auto& st = lease->statement("SELECT coalesce(max(position), 0) FROM events");
    ResetOnExit reset(st);
    st.executeStep();
    return st.getColumn(0).getInt64();
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "reading the head position");
  }
}

Cursor<std::string> SqliteEventStore::list_streams(const std::string& prefix) const {
  // Seeks from one stream id to the next through the (stream_id, version)
  // index: the cost grows with the number of streams, not of events.
  class Source final : public Cursor<std::string>::Source {
   public:
    Source(const Impl& impl, std::string prefix) : impl_(impl), prefix_(std::move(prefix)) {}
    bool fetch(std::vector<std::string>& out, std::size_t max) override {
      auto lease = impl_.reader();
      try {
        auto& first = lease->statement(
            "SELECT stream_id FROM events WHERE stream_id >= ?1 ORDER BY stream_id LIMIT 1");
        auto& next = lease->statement(
            "SELECT stream_id FROM events WHERE stream_id > ?1 ORDER BY stream_id LIMIT 1");
        while (out.size() < max) {
          auto& st = started_ ? next : first;
          ResetOnExit reset(st);
          st.bind(1, started_ ? last_ : prefix_);
          if (!st.executeStep()) return false;
          std::string id = st.getColumn(0).getString();
          if (!id.starts_with(prefix_)) return false;
          started_ = true;
          last_ = id;
          out.push_back(std::move(id));
        }
        return true;
      } catch (const SQLite::Exception& e) {
        throw storage_error(e, "listing streams");
      }
    }

   private:
    const Impl& impl_;
    std::string prefix_;
    std::string last_;
    bool started_ = false;
  };
  return Cursor<std::string>(std::make_unique<Source>(*impl_, prefix),
                             impl_->options_.read_page_size, kNoLimit);
}

CommitListenerHandle SqliteEventStore::add_commit_listener(CommitListener listener) {
  return impl_->listeners_->add(std::move(listener));
}

TransactionHookHandle SqliteEventStore::add_transaction_hook(TransactionHook hook) {
  if (!hook) throw InvalidArgument("add_transaction_hook: the hook is empty");
  return impl_->hooks_->add(std::move(hook));
}

std::int64_t SqlValue::as_int() const {
  if (!is_int()) throw InvalidArgument("SQL value is not an integer");
  return std::get<std::int64_t>(value_);
}

double SqlValue::as_real() const {
  if (is_int()) return static_cast<double>(std::get<std::int64_t>(value_));
  if (!is_real()) throw InvalidArgument("SQL value is not a number");
  return std::get<double>(value_);
}

const std::string& SqlValue::as_text() const {
  if (!is_text()) throw InvalidArgument("SQL value is not text");
  return std::get<std::string>(value_);
}

std::optional<std::int64_t> SqlTransaction::query_int(std::string_view sql,
                                                      const std::vector<SqlValue>& params) {
  const auto rows = query(sql, params);
  if (rows.empty() || rows.front().empty() || rows.front().front().is_null()) return std::nullopt;
  return rows.front().front().as_int();
}

std::optional<std::string> SqlTransaction::query_text(std::string_view sql,
                                                      const std::vector<SqlValue>& params) {
  const auto rows = query(sql, params);
  if (rows.empty() || rows.front().empty() || rows.front().front().is_null()) return std::nullopt;
  return rows.front().front().as_text();
}

void SqliteEventStore::save_snapshot(const Snapshot& snapshot) {
  impl_->require_writable("save a snapshot");
  detail::validate_snapshot(snapshot);
  try {
    impl_->with_snapshot_writer([&](Connection& conn) {
      auto& st = conn.statement(
          "INSERT OR REPLACE INTO snapshots (stream_id, version, schema_version, state, "
          "recorded_at) VALUES (?1, ?2, ?3, ?4, ?5)");
      ResetOnExit reset(st);
      st.bind(1, snapshot.stream_id);
      st.bind(2, snapshot.version);
      st.bind(3, snapshot.schema_version);
      st.bind(4, snapshot.state);
      st.bind(5, to_micros(impl_->options_.clock->now()));
      st.exec();
    });
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "saving a snapshot of stream '" + snapshot.stream_id + "'");
  }
}

std::optional<Snapshot> SqliteEventStore::load_snapshot(const std::string& stream_id,
                                                        std::int64_t max_version) const {
  validate_stream_id(stream_id);
  auto lease = impl_->reader();
  try {
    auto& st = lease->statement(
        "SELECT version, schema_version, state, recorded_at FROM snapshots "
        "WHERE stream_id = ?1 AND version <= ?2 ORDER BY version DESC LIMIT 1");
    ResetOnExit reset(st);
    st.bind(1, stream_id);
    st.bind(2, max_version);
    if (!st.executeStep()) return std::nullopt;
    Snapshot snapshot;
    snapshot.stream_id = stream_id;
    snapshot.version = st.getColumn(0).getInt64();
    snapshot.schema_version = st.getColumn(1).getInt();
    snapshot.state = st.getColumn(2).getString();
    snapshot.recorded_at = from_micros(st.getColumn(3).getInt64());
    return snapshot;
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "loading a snapshot of stream '" + stream_id + "'");
  }
}

void SqliteEventStore::delete_snapshots(const std::string& stream_id) {
  impl_->require_writable("delete snapshots");
  try {
    impl_->with_snapshot_writer([&](Connection& conn) {
      auto& st = conn.statement(stream_id.empty() ? "DELETE FROM snapshots"
                                                  : "DELETE FROM snapshots WHERE stream_id = ?1");
      ResetOnExit reset(st);
      if (!stream_id.empty()) st.bind(1, stream_id);
      st.exec();
    });
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "deleting snapshots");
  }
}

}  // namespace annals
