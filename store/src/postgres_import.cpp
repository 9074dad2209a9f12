// PostgresEventStore::import_events: an export loaded in one transaction under
// the head-row lock, with the checks of every import (import_lines.hpp), so a
// store moves between SQLite and PostgreSQL with the same positions, times
// and hashes.

#include <istream>
#include <string>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "import_lines.hpp"
#include "postgres_store_impl.hpp"

namespace annals {

using namespace detail::pg;

namespace {

class PostgresImportTarget final : public detail::ImportTarget {
 public:
  explicit PostgresImportTarget(PGconn* c) : c_(c) {}

  void adopt_store_id(const std::string& id) override {
    PostgresEventStore::Impl::exec(c_, "adopt the export's store id",
                                   "UPDATE annals_meta SET value = $1 WHERE key = 'store_id'",
                                   Params().text(id));
  }

  std::int64_t stream_version(const std::string& stream_id) override {
    auto v = PostgresEventStore::Impl::exec(c_, "read a stream version",
                                            "SELECT version FROM streams WHERE stream_id = $1",
                                            Params().text(stream_id));
    return PQntuples(v.get()) == 0 ? 0 : get_i8(v.get(), 0, 0);
  }

  void insert(const RecordedEvent& e, const std::string& at) override {
    auto taken = PostgresEventStore::Impl::exec(c_, "look up an event id",
                                                "SELECT 1 FROM events WHERE event_id = $1",
                                                Params().text(e.event_id));
    if (PQntuples(taken.get()) != 0) {
      throw InvalidArgument(at + ": field 'event_id' " + e.event_id +
                            " is already used by an earlier line");
    }
    PostgresEventStore::Impl::insert_event(c_, e);
    PostgresEventStore::Impl::set_stream_version(c_, e.stream_id, e.version);
  }

 private:
  PGconn* c_;
};

}  // namespace

std::int64_t PostgresEventStore::import_events(std::istream& in, const ImportOptions& options) {
  detail::MutexLock order(impl_->append_mu_);
  auto l = impl_->lease();
  PGconn* c = l.get();
  const std::string name = "schema '" + impl_->options_.schema + "'";
  // Leaving this scope by an exception drops the connection inside its
  // transaction (the lease does not pool it), which rolls the import back.
  Impl::exec(c, "begin an import", "BEGIN");
  auto head = Impl::exec(c, "lock the head row",
                         "SELECT position FROM annals_head WHERE id = 1 FOR UPDATE");
  const std::int64_t stored = get_i8(head.get(), 0, 0);
  if (stored != 0) {
    throw InvalidArgument("store in " + name + " is not empty (head position " +
                          std::to_string(stored) + "): import needs an empty store");
  }
  PostgresImportTarget target(c);
  const std::int64_t imported = detail::import_lines(in, options, target);
  if (imported > 0) impl_->move_head(c, imported, true);
  Impl::exec(c, "commit the import", "COMMIT");
  if (options.progress) options.progress(imported, 0);
  return imported;
}

}  // namespace annals
