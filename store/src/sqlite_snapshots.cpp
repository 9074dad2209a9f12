// SqliteEventStore's snapshots: the snapshots table (sqlite_schema.cpp),
// written on a connection of their own (Impl::with_snapshot_writer) and read
// through the reader pool.

#include <SQLiteCpp/Statement.h>

#include "annals/core/error.hpp"
#include "annals/core/stream_id.hpp"
#include "append_input.hpp"
#include "sqlite_store_impl.hpp"

namespace annals {

using detail::ResetOnExit;
using detail::storage_error;

void SqliteEventStore::save_snapshot(const Snapshot& snapshot) {
  impl_->require_writable("save a snapshot");
  detail::validate_snapshot(snapshot);
  try {
    impl_->with_snapshot_writer([&](Impl::Connection& conn) {
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
    impl_->with_snapshot_writer([&](Impl::Connection& conn) {
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
