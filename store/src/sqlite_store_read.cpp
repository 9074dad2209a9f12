// SqliteEventStore's reads: a pool of reader connections (each read takes one
// for a page and gives it back, so a cursor never pins a snapshot between
// pages) and paged queries on the C API, which the read hot path uses (see
// detail::RawStatement).

#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <cstring>
#include <functional>

#include "annals/core/error.hpp"
#include "annals/core/stream_id.hpp"
#include "append_input.hpp"
#include "sqlite_store_impl.hpp"

namespace annals {

namespace {

using detail::ResetOnExit;
using detail::storage_error;

constexpr const char* kColumns =
    "position, stream_id, version, event_id, type, schema_version, payload, metadata, "
    "recorded_at, hash";

// Overwrites `out` with a text column, reusing its buffer.
void assign_text(std::string& out, sqlite3_stmt* st, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, column));
  if (text == nullptr) {
    out.clear();
  } else {
    out.assign(text, static_cast<std::size_t>(sqlite3_column_bytes(st, column)));
  }
}

// A hash column; all zeros when NULL or not 32 bytes (which then does not check).
EventHash column_hash(sqlite3_stmt* st, int column) {
  EventHash h{};
  const void* bytes = sqlite3_column_blob(st, column);
  if (bytes != nullptr && sqlite3_column_bytes(st, column) == static_cast<int>(h.size())) {
    std::memcpy(h.data(), bytes, h.size());
  }
  return h;
}

// On the C API: see detail::RawStatement. Writes every member of `e`, into
// the buffers it already has (QuerySource::refill reuses a page's events).
void read_row(sqlite3_stmt* st, RecordedEvent& e) {
  e.position = sqlite3_column_int64(st, 0);
  assign_text(e.stream_id, st, 1);
  e.version = sqlite3_column_int64(st, 2);
  assign_text(e.event_id, st, 3);
  assign_text(e.type, st, 4);
  e.schema_version = sqlite3_column_int(st, 5);
  assign_text(e.payload, st, 6);
  assign_text(e.metadata, st, 7);
  e.recorded_at = from_micros(sqlite3_column_int64(st, 8));
  e.hash = column_hash(st, 9);
}

// Reads rows of a stream as linked events: each with the stored hash of the
// event at position - 1 (whatever its stream), or none when no event is
// stored there. An aggregate's events are mostly appended in runs, so the
// predecessor is often the row read just before: its hash is taken from
// there. Only the first event of a run is looked up, by primary key, in the
// read transaction of the row itself. (A LEFT JOIN looking up every row's
// predecessor cost a checked load a third of its time.)
class LinkedRowReader {
 public:
  void operator()(detail::SqlConnection& conn, sqlite3_stmt* st, LinkedEvent& linked) {
    RecordedEvent& e = linked.event;
    read_row(st, e);
    linked.previous_hash.reset();
    if (e.position == 1) {
      linked.previous_hash = EventHash{};
    } else if (e.position - 1 == last_position_) {  // 0 before the first row: position > 1 here
      linked.previous_hash = last_hash_;
    } else {
      sqlite3_stmt* lookup = conn.raw_statement("SELECT hash FROM events WHERE position = ?1");
      detail::RawResetOnExit reset(lookup);
      detail::check_rc(lookup, sqlite3_bind_int64(lookup, 1, e.position - 1));
      const int rc = sqlite3_step(lookup);
      if (rc == SQLITE_ROW) {
        linked.previous_hash = column_hash(lookup, 0);
      } else if (rc != SQLITE_DONE) {
        detail::check_rc(lookup, rc);
      }
    }
    last_position_ = e.position;
    last_hash_ = e.hash;
  }

 private:
  std::int64_t last_position_ = 0;  // of the row read before, in this cursor
  EventHash last_hash_{};
};

// Reads plain rows.
struct RowReader {
  void operator()(detail::SqlConnection&, sqlite3_stmt* st, RecordedEvent& e) const {
    read_row(st, e);
  }
};

// Runs one paged query. `bind` binds everything but the cursor and the limit;
// `advance` moves the cursor past the last row read; `Reader` overwrites a T
// with a row (it may run statements of its own on the same connection, inside
// the row's read transaction).
// `Owner` is SqliteEventStore::Impl (private to the store, so not named here).
template <class Owner, class T = RecordedEvent, class Reader = RowReader>
class QuerySource final : public Cursor<T>::Source {
 public:
  using Bind = std::function<void(sqlite3_stmt*, std::int64_t cursor, std::int64_t limit)>;
  using Advance = std::function<std::int64_t(const T&)>;

  QuerySource(const Owner& impl, std::string sql, std::int64_t cursor, Bind bind, Advance advance)
      : impl_(impl),
        sql_(std::move(sql)),
        cursor_(cursor),
        bind_(std::move(bind)),
        advance_(std::move(advance)) {}

  bool fetch(std::vector<T>& out, std::size_t max) override {
    const std::size_t first = out.size();
    return read_page(out, first, max);
  }

  // Rows overwrite the previous page's items in place, so a page's strings
  // keep their buffers from one page to the next instead of being freed and
  // allocated again for every row (docs/performance.md).
  bool refill(std::vector<T>& page, std::size_t max) override { return read_page(page, 0, max); }

 private:
  // Reads at most `max` rows into out[first...], reusing the items there and
  // dropping those left over. On a throw, `out` is left with its first
  // `first` items.
  bool read_page(std::vector<T>& out, std::size_t first, std::size_t max) {
    auto lease = impl_.reader();
    try {
      sqlite3_stmt* st = lease->raw_statement(sql_);
      detail::RawResetOnExit reset(st);
      bind_(st, cursor_, static_cast<std::int64_t>(max));
      std::size_t got = 0;
      int rc;
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (first + got == out.size()) out.emplace_back();
        read_(*lease, st, out[first + got]);
        ++got;
      }
      if (rc != SQLITE_DONE) detail::check_rc(st, rc);
      out.resize(first + got);
      if (got > 0) cursor_ = advance_(out.back());
      return got == max;
    } catch (const SQLite::Exception& e) {
      out.resize(first);
      throw storage_error(e, "reading '" + impl_.path_.string() + "'");
    } catch (...) {
      out.resize(first);
      throw;
    }
  }

 private:
  const Owner& impl_;
  std::string sql_;
  std::int64_t cursor_;
  Bind bind_;
  Advance advance_;
  Reader read_;
};

}  // namespace

SqliteEventStore::Impl::Lease SqliteEventStore::Impl::reader() const {
  {
    detail::MutexLock lock(readers_mu_);
    if (!idle_readers_.empty()) {
      auto conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return Lease(*this, std::move(conn));
    }
  }
  try {
    auto conn = std::make_unique<Connection>(reader_target(), reader_flags(), options_.busy_timeout,
                                             options_.vfs);
    conn->db().exec("PRAGMA query_only = 1");
    return Lease(*this, std::move(conn));
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "opening a reader on '" + path_.string() + "'");
  }
}

void SqliteEventStore::Impl::release_reader(std::unique_ptr<Connection> conn) const {
  detail::MutexLock lock(readers_mu_);
  if (idle_readers_.size() < options_.max_idle_readers) idle_readers_.push_back(std::move(conn));
}

std::int64_t SqliteEventStore::Impl::version_on(Connection& conn, const std::string& stream_id) {
  auto& st = conn.statement(
      "SELECT version FROM events WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1");
  ResetOnExit reset(st);
  st.bind(1, stream_id);
  return st.executeStep() ? st.getColumn(0).getInt64() : 0;
}

Cursor<RecordedEvent> SqliteEventStore::read_stream(const std::string& stream_id,
                                                    std::int64_t from_version, Direction direction,
                                                    std::uint64_t max_count) const {
  detail::validate_read_stream(stream_id, from_version, direction);
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
      std::make_unique<QuerySource<Impl>>(*impl_, std::move(sql), from_version, bind, advance),
      impl_->options_.read_page_size, max_count);
}

Cursor<LinkedEvent> SqliteEventStore::read_stream_linked(const std::string& stream_id,
                                                         std::int64_t from_version,
                                                         std::uint64_t max_count) const {
  detail::validate_read_stream(stream_id, from_version, Direction::forward);
  // Positions are dense, so the predecessor is the row at position - 1
  // (LinkedRowReader).
  std::string sql = std::string("SELECT ") + kColumns +
                    " FROM events WHERE stream_id = ?1 AND version >= ?2 ORDER BY version LIMIT ?3";
  auto bind = [stream_id](sqlite3_stmt* st, std::int64_t cursor, std::int64_t limit) {
    detail::bind_static_text(st, 1, stream_id);
    detail::check_rc(st, sqlite3_bind_int64(st, 2, cursor));
    detail::check_rc(st, sqlite3_bind_int64(st, 3, limit));
  };
  auto advance = [](const LinkedEvent& e) { return e.event.version + 1; };
  return Cursor<LinkedEvent>(std::make_unique<QuerySource<Impl, LinkedEvent, LinkedRowReader>>(
                                 *impl_, std::move(sql), from_version, bind, advance),
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
  // The bounds come from the rule itself (stream_category_bounds), so the
  // SQL cannot drift from stream_category().
  CategoryBounds category;
  if (!filter.category.empty()) {
    category = stream_category_bounds(filter.category);
    sql += category.none ? " AND 0"
                         : " AND (+stream_id = ?6 OR (+stream_id >= ?7 AND +stream_id < ?8))";
  }
  sql += " ORDER BY position LIMIT ?2";
  auto bind = [types_json, prefix_low, prefix_high, category](sqlite3_stmt* st, std::int64_t cursor,
                                                              std::int64_t limit) {
    detail::check_rc(st, sqlite3_bind_int64(st, 1, cursor));
    detail::check_rc(st, sqlite3_bind_int64(st, 2, limit));
    if (!types_json.empty()) detail::bind_static_text(st, 3, types_json);
    if (!prefix_low.empty()) detail::bind_static_text(st, 4, prefix_low);
    if (!prefix_high.empty()) detail::bind_static_text(st, 5, prefix_high);
    if (!category.exact.empty()) {
      detail::bind_static_text(st, 6, category.exact);
      detail::bind_static_text(st, 7, category.from);
      detail::bind_static_text(st, 8, category.to);
    }
  };
  auto advance = [](const RecordedEvent& e) { return e.position + 1; };
  return Cursor<RecordedEvent>(
      std::make_unique<QuerySource<Impl>>(*impl_, std::move(sql), from_position, bind, advance),
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

}  // namespace annals
