// PostgresEventStore's reads: one query per page on a pooled connection, no
// transaction held between pages; and snapshots.

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/stream_id.hpp"
#include "append_input.hpp"
#include "postgres_store_impl.hpp"

namespace annals {

using namespace detail::pg;

namespace {

// A page source that runs one query per page on a borrowed connection.
template <class T>
class QuerySource final : public Cursor<T>::Source {
 public:
  using Step = std::function<bool(std::vector<T>&, std::size_t)>;
  explicit QuerySource(Step step) : step_(std::move(step)) {}
  bool fetch(std::vector<T>& out, std::size_t max) override { return step_(out, max); }

 private:
  Step step_;
};

}  // namespace

Cursor<RecordedEvent> PostgresEventStore::read_stream(const std::string& stream_id,
                                                      std::int64_t from_version,
                                                      Direction direction,
                                                      std::uint64_t max_count) const {
  detail::validate_read_stream(stream_id, from_version, direction);
  const Impl* impl = impl_.get();
  auto step = [impl, stream_id, next = from_version, direction](std::vector<RecordedEvent>& out,
                                                               std::size_t max) mutable {
    if (direction == Direction::backward && next < 1) return false;
    auto l = impl->lease();
    const bool fwd = direction == Direction::forward;
    auto r = Impl::exec(
        l.get(), "read a stream",
        std::string("SELECT ") + kEventColumns + " FROM events WHERE stream_id = $1 AND version " +
            (fwd ? ">= $2 ORDER BY version" : "<= $2 ORDER BY version DESC") + " LIMIT $3",
        Params().text(stream_id).i8(next).i8(static_cast<std::int64_t>(max)), Impl::Send::text);
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) out.push_back(event_at(r.get(), i));
    if (n == 0) return false;
    next = fwd ? out.back().version + 1 : out.back().version - 1;
    return static_cast<std::size_t>(n) == max && (fwd || next >= 1);
  };
  return Cursor<RecordedEvent>(std::make_unique<QuerySource<RecordedEvent>>(std::move(step)),
                               impl_->options_.read_page_size, max_count);
}

Cursor<LinkedEvent> PostgresEventStore::read_stream_linked(const std::string& stream_id,
                                                           std::int64_t from_version,
                                                           std::uint64_t max_count) const {
  detail::validate_read_stream(stream_id, from_version, Direction::forward);
  const Impl* impl = impl_.get();
  auto step = [impl, stream_id, next = from_version](std::vector<LinkedEvent>& out,
                                                     std::size_t max) mutable {
    auto l = impl->lease();
    auto r = Impl::exec(l.get(), "read a stream with its links",
                        "SELECT e.position, e.stream_id, e.version, e.event_id, e.type, "
                        "e.schema_version, e.payload, e.metadata, e.recorded_at, e.hash, p.hash "
                        "FROM events e LEFT JOIN events p ON p.position = e.position - 1 "
                        "WHERE e.stream_id = $1 AND e.version >= $2 ORDER BY e.version LIMIT $3",
                        Params().text(stream_id).i8(next).i8(static_cast<std::int64_t>(max)),
                        Impl::Send::text);
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) {
      LinkedEvent linked{event_at(r.get(), i), std::nullopt};
      if (linked.event.position == 1) {
        linked.previous_hash = EventHash{};
      } else if (!is_null(r.get(), i, 10)) {
        linked.previous_hash = to_hash(get_bytes(r.get(), i, 10));
      }
      out.push_back(std::move(linked));
    }
    if (n == 0) return false;
    next = out.back().event.version + 1;
    return static_cast<std::size_t>(n) == max;
  };
  return Cursor<LinkedEvent>(std::make_unique<QuerySource<LinkedEvent>>(std::move(step)),
                             impl_->options_.read_page_size, max_count);
}

Cursor<RecordedEvent> PostgresEventStore::read_all(std::int64_t from_position,
                                                   const EventFilter& filter,
                                                   std::uint64_t max_count) const {
  if (from_position < 1) {
    throw InvalidArgument("read_all from position " + std::to_string(from_position) +
                          ": positions start at 1");
  }
  const Impl* impl = impl_.get();
  // The filter is applied here, page by page of positions: memory stays one
  // page, whatever share of the events the filter keeps.
  auto step = [impl, filter, next = from_position](std::vector<RecordedEvent>& out,
                                                   std::size_t max) mutable {
    auto l = impl->lease();
    while (out.size() < max) {
      auto r = Impl::exec(l.get(), "read all events",
                          std::string("SELECT ") + kEventColumns +
                              " FROM events WHERE position >= $1 ORDER BY position LIMIT $2",
                          Params().i8(next).i8(static_cast<std::int64_t>(max)), Impl::Send::text);
      const int n = PQntuples(r.get());
      for (int i = 0; i < n; ++i) {
        RecordedEvent e = event_at(r.get(), i);
        next = e.position + 1;
        if (filter.matches(e)) out.push_back(std::move(e));
      }
      if (static_cast<std::size_t>(n) < max) return false;
    }
    return true;
  };
  return Cursor<RecordedEvent>(std::make_unique<QuerySource<RecordedEvent>>(std::move(step)),
                               impl_->options_.read_page_size, max_count);
}

std::int64_t PostgresEventStore::stream_version(const std::string& stream_id) const {
  validate_stream_id(stream_id);
  auto l = impl_->lease();
  auto r = Impl::exec(l.get(), "read a stream version",
                      "SELECT version FROM streams WHERE stream_id = $1",
                      Params().text(stream_id));
  return PQntuples(r.get()) == 0 ? 0 : get_i8(r.get(), 0, 0);
}

std::int64_t PostgresEventStore::head_position() const {
  auto l = impl_->lease();
  auto r = Impl::exec(l.get(), "read the head", "SELECT position FROM annals_head WHERE id = 1");
  return get_i8(r.get(), 0, 0);
}

Cursor<std::string> PostgresEventStore::list_streams(const std::string& prefix) const {
  const Impl* impl = impl_.get();
  auto step = [impl, prefix, last = std::string(), started = false](
                  std::vector<std::string>& out, std::size_t max) mutable {
    auto l = impl->lease();
    auto r = Impl::exec(
        l.get(), "list streams",
        std::string("SELECT stream_id FROM streams WHERE starts_with(stream_id, $1) ") +
            (started ? "AND stream_id > $2 " : "AND $2 = $2 ") + "ORDER BY stream_id LIMIT $3",
        Params().text(prefix).text(last).i8(static_cast<std::int64_t>(max)), Impl::Send::text);
    started = true;
    const int n = PQntuples(r.get());
    for (int i = 0; i < n; ++i) out.push_back(get_bytes(r.get(), i, 0));
    if (n > 0) last = out.back();
    return static_cast<std::size_t>(n) == max;
  };
  return Cursor<std::string>(std::make_unique<QuerySource<std::string>>(std::move(step)),
                             impl_->options_.read_page_size, kNoLimit);
}

void PostgresEventStore::save_snapshot(const Snapshot& snapshot) {
  detail::validate_snapshot(snapshot);
  auto l = impl_->lease();
  Impl::exec(l.get(), "save a snapshot",
             "INSERT INTO snapshots (stream_id, version, schema_version, state, recorded_at) "
             "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_id, version) DO UPDATE SET "
             "schema_version = EXCLUDED.schema_version, state = EXCLUDED.state, "
             "recorded_at = EXCLUDED.recorded_at",
             Params()
                 .text(snapshot.stream_id)
                 .i8(snapshot.version)
                 .i4(snapshot.schema_version)
                 .bytes(snapshot.state)
                 .i8(to_micros(impl_->options_.clock->now())));
}

std::optional<Snapshot> PostgresEventStore::load_snapshot(const std::string& stream_id,
                                                          std::int64_t max_version) const {
  validate_stream_id(stream_id);
  auto l = impl_->lease();
  auto r = Impl::exec(l.get(), "load a snapshot",
                      "SELECT version, schema_version, state, recorded_at FROM snapshots "
                      "WHERE stream_id = $1 AND version <= $2 ORDER BY version DESC LIMIT 1",
                      Params().text(stream_id).i8(max_version));
  if (PQntuples(r.get()) == 0) return std::nullopt;
  Snapshot s;
  s.stream_id = stream_id;
  s.version = get_i8(r.get(), 0, 0);
  s.schema_version = get_i4(r.get(), 0, 1);
  s.state = get_bytes(r.get(), 0, 2);
  s.recorded_at = from_micros(get_i8(r.get(), 0, 3));
  return s;
}

void PostgresEventStore::delete_snapshots(const std::string& stream_id) {
  auto l = impl_->lease();
  if (stream_id.empty()) {
    Impl::exec(l.get(), "delete snapshots", "DELETE FROM snapshots");
  } else {
    Impl::exec(l.get(), "delete snapshots", "DELETE FROM snapshots WHERE stream_id = $1",
               Params().text(stream_id));
  }
}

}  // namespace annals
