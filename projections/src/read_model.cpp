// The members every ReadModel has, written once over read(): each is one
// read transaction of bookkeeping SQL (projection_tables.cpp) that runs on
// either backend.

#include "annals/projections/read_model.hpp"

#include "projection_tables.hpp"

namespace annals {

std::vector<SqlRow> ReadModel::query(std::string_view sql,
                                     const std::vector<SqlValue>& params) const {
  std::vector<SqlRow> rows;
  read([&](SqlTransaction& tx) { rows = tx.query(sql, params); });
  return rows;
}

std::optional<std::int64_t> ReadModel::query_int(std::string_view sql,
                                                 const std::vector<SqlValue>& params) const {
  std::optional<std::int64_t> value;
  read([&](SqlTransaction& tx) { value = tx.query_int(sql, params); });
  return value;
}

std::int64_t ReadModel::checkpoint(const std::string& name) const {
  std::int64_t position = 0;
  read([&](SqlTransaction& tx) { position = detail::checkpoint_position(tx, name); });
  return position;
}

std::optional<CheckpointRecord> ReadModel::checkpoint_record(const std::string& name) const {
  std::optional<CheckpointRecord> record;
  read([&](SqlTransaction& tx) { record = detail::load_checkpoint(tx, name); });
  return record;
}

std::vector<CheckpointRecord> ReadModel::checkpoint_records() const {
  std::vector<CheckpointRecord> records;
  read([&](SqlTransaction& tx) { records = detail::load_checkpoints(tx); });
  return records;
}

std::vector<ParkedEvent> ReadModel::parked_events(const std::string& name) const {
  std::vector<ParkedEvent> parked;
  read([&](SqlTransaction& tx) { parked = detail::load_parked(tx, name); });
  return parked;
}

std::vector<ParkedEvent> ReadModel::parked_events(const std::string& name,
                                                  std::size_t limit) const {
  std::vector<ParkedEvent> parked;
  read([&](SqlTransaction& tx) { parked = detail::load_parked(tx, name, limit); });
  return parked;
}

std::int64_t ReadModel::parked_count(const std::string& name) const {
  std::int64_t count = 0;
  read([&](SqlTransaction& tx) { count = detail::count_parked(tx, name); });
  return count;
}

}  // namespace annals
