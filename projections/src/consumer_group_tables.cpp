// Bookkeeping tables of consumer groups, in the read model's database so that
// leases, fencing checks and checkpoints commit with the rows they guard:
//
//   projection_groups(
//     name TEXT PRIMARY KEY,             -- Projection::name
//     partitions INTEGER NOT NULL,       -- fixed at the group's first start
//     created_at INTEGER NOT NULL)       -- microseconds since the epoch, UTC
//
//   projection_partitions(
//     name TEXT, partition INTEGER,      -- PRIMARY KEY (name, partition)
//     position INTEGER NOT NULL,         -- the partition's checkpoint
//     owner TEXT,                        -- worker holding the lease; NULL: free
//     lease_expires_at INTEGER NOT NULL, -- microseconds; free once passed
//     fencing_token INTEGER NOT NULL,    -- + 1 at every change of hands
//     error TEXT, error_position INTEGER, attempts INTEGER,  -- why its worker stopped
//     updated_at INTEGER NOT NULL)
//
//   projection_group_members(name TEXT, worker TEXT, expires_at INTEGER,
//                            PRIMARY KEY (name, worker))  -- who counts for the share
//
//   projection_partition_leases(id INTEGER PRIMARY KEY, name, partition,
//     fencing_token, worker, position, acquired_at)       -- one row per change of hands
//
//   projection_partition_writes(id INTEGER PRIMARY KEY, name, partition,
//     fencing_token, worker, from_position, to_position, written_at)
//                                        -- one row per batch, with record_writes
//
// Every change goes through the read model's write transaction (BEGIN
// IMMEDIATE), so a lease round and a batch never interleave.

#include "consumer_group_tables.hpp"

#include <algorithm>

#include "annals/core/error.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "projection_tables.hpp"

namespace annals::detail {

namespace {

std::int64_t micros(Timestamp t) { return to_micros(t); }

}  // namespace

void create_group_tables(SqlTransaction& tx) {
  tx.exec_script(in_dialect(tx, R"sql(
CREATE TABLE IF NOT EXISTS projection_groups (name TEXT PRIMARY KEY,
  partitions INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS projection_partitions (name TEXT NOT NULL,
  partition INTEGER NOT NULL, position INTEGER NOT NULL DEFAULT 0, owner TEXT,
  lease_expires_at INTEGER NOT NULL DEFAULT 0, fencing_token INTEGER NOT NULL DEFAULT 0,
  error TEXT, error_position INTEGER, attempts INTEGER, updated_at INTEGER NOT NULL,
  PRIMARY KEY (name, partition));
CREATE TABLE IF NOT EXISTS projection_group_members (name TEXT NOT NULL,
  worker TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (name, worker));
CREATE TABLE IF NOT EXISTS projection_partition_leases (id INTEGER PRIMARY KEY,
  name TEXT NOT NULL, partition INTEGER NOT NULL, fencing_token INTEGER NOT NULL,
  worker TEXT NOT NULL, position INTEGER NOT NULL, acquired_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS projection_partition_writes (id INTEGER PRIMARY KEY,
  name TEXT NOT NULL, partition INTEGER NOT NULL, fencing_token INTEGER NOT NULL,
  worker TEXT NOT NULL, from_position INTEGER NOT NULL, to_position INTEGER NOT NULL,
  written_at INTEGER NOT NULL);
)sql"));
}

void ensure_group(SqlTransaction& tx, const std::string& name, int partitions, Timestamp now) {
  const auto recorded =
      tx.query_int("SELECT partitions FROM projection_groups WHERE name = $1", {name});
  if (recorded && *recorded != partitions) {
    throw InvalidArgument("consumer group '" + name + "' was created with " +
                          std::to_string(*recorded) + " partitions; this worker asks for " +
                          std::to_string(partitions) +
                          " (the count is fixed: rebuild under a new name to change it)");
  }
  if (recorded) return;
  tx.exec("INSERT INTO projection_groups (name, partitions, created_at) VALUES ($1, $2, $3)",
          {name, partitions, micros(now)});
  for (int p = 0; p < partitions; ++p) {
    tx.exec("INSERT INTO projection_partitions (name, partition, updated_at) VALUES ($1, $2, $3)",
            {name, p, micros(now)});
  }
}

std::int64_t live_members(SqlTransaction& tx, const std::string& name, Timestamp now) {
  return tx
      .query_int("SELECT count(*) FROM projection_group_members WHERE name = $1 AND expires_at > $2",
                 {name, micros(now)})
      .value_or(0);
}

HeldPartitions renew_leases(SqlTransaction& tx, const std::string& name, int partitions,
                            const HeldPartitions& held, const LeaseTerms& terms) {
  const std::int64_t now = micros(terms.now);
  const std::int64_t until = micros(terms.now + terms.lease);
  tx.exec("INSERT INTO projection_group_members (name, worker, expires_at) VALUES ($1, $2, $3) "
          "ON CONFLICT (name, worker) DO UPDATE SET expires_at = excluded.expires_at",
          {name, terms.worker, until});
  tx.exec("DELETE FROM projection_group_members WHERE name = $1 AND expires_at <= $2",
          {name, now});
  const std::int64_t live = std::max<std::int64_t>(1, live_members(tx, name, terms.now));
  const auto share = static_cast<std::size_t>((partitions + live - 1) / live);

  HeldPartitions kept;
  std::vector<SqlRow> free;
  for (auto& row : tx.query("SELECT partition, owner, lease_expires_at, fencing_token, position "
                            "FROM projection_partitions WHERE name = $1 ORDER BY partition",
                            {name})) {
    const int p = static_cast<int>(row[0].as_int());
    const bool owned = !row[1].is_null() && row[1].as_text() == terms.worker;
    const auto mine = held.find(p);
    if (owned && mine != held.end() && mine->second.token == row[3].as_int()) {
      kept[p] = HeldPartition{row[3].as_int(), row[4].as_int()};
    } else if (row[1].is_null() || row[2].as_int() <= now) {
      free.push_back(std::move(row));
    }
  }
  while (kept.size() > share) {  // more than a fair share: give the highest back
    const auto last = std::prev(kept.end());
    tx.exec("UPDATE projection_partitions SET owner = NULL, lease_expires_at = 0 "
            "WHERE name = $1 AND partition = $2",
            {name, last->first});
    kept.erase(last);
  }
  for (const auto& [p, h] : kept) {
    tx.exec("UPDATE projection_partitions SET lease_expires_at = $3 "
            "WHERE name = $1 AND partition = $2",
            {name, p, until});
  }
  for (const SqlRow& row : free) {
    if (kept.size() >= share) break;
    const int p = static_cast<int>(row[0].as_int());
    const std::int64_t token = row[3].as_int() + 1;
    tx.exec("UPDATE projection_partitions SET owner = $3, lease_expires_at = $4, "
            "fencing_token = $5 WHERE name = $1 AND partition = $2",
            {name, p, terms.worker, until, token});
    tx.exec("INSERT INTO projection_partition_leases (name, partition, fencing_token, worker, "
            "position, acquired_at) VALUES ($1, $2, $3, $4, $5, $6)",
            {name, p, token, terms.worker, row[4].as_int(), now});
    kept[p] = HeldPartition{token, row[4].as_int()};
  }
  return kept;
}

void leave_group(SqlTransaction& tx, const std::string& name, const std::string& worker) {
  tx.exec("UPDATE projection_partitions SET owner = NULL, lease_expires_at = 0 "
          "WHERE name = $1 AND owner = $2",
          {name, worker});
  tx.exec("DELETE FROM projection_group_members WHERE name = $1 AND worker = $2", {name, worker});
}

bool holds(SqlTransaction& tx, const std::string& name, int partition, const std::string& worker,
           std::int64_t token, Timestamp now) {
  return tx
             .query_int("SELECT count(*) FROM projection_partitions WHERE name = $1 AND "
                        "partition = $2 AND owner = $3 AND fencing_token = $4 AND "
                        "lease_expires_at > $5",
                        {name, partition, worker, token, micros(now)})
             .value_or(0) == 1;
}

void save_partition(SqlTransaction& tx, const std::string& name, int partition,
                    std::int64_t from, std::int64_t to, const std::string& worker,
                    std::int64_t token, Timestamp now, bool record) {
  tx.exec("UPDATE projection_partitions SET position = $3, error = NULL, error_position = NULL, "
          "attempts = NULL, updated_at = $4 WHERE name = $1 AND partition = $2",
          {name, partition, to, micros(now)});
  if (!record) return;
  tx.exec("INSERT INTO projection_partition_writes (name, partition, fencing_token, worker, "
          "from_position, to_position, written_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
          {name, partition, token, worker, from, to, micros(now)});
}

void save_partition_failure(SqlTransaction& tx, const std::string& name, int partition,
                            const ProjectionFailure& failure, Timestamp now) {
  tx.exec("UPDATE projection_partitions SET error = $3, error_position = $4, attempts = $5, "
          "updated_at = $6 WHERE name = $1 AND partition = $2",
          {name, partition, failure.message, failure.position, failure.attempts, micros(now)});
}

void save_group_checkpoint(SqlTransaction& tx, const std::string& name, ProjectionState state,
                           Timestamp now) {
  const std::int64_t low =
      tx.query_int("SELECT min(position) FROM projection_partitions WHERE name = $1", {name})
          .value_or(0);
  save_checkpoint(tx, name, low, state, now);
}

void reset_partitions(SqlTransaction& tx, const std::string& name, Timestamp now) {
  tx.exec("UPDATE projection_partitions SET position = 0, owner = NULL, lease_expires_at = 0, "
          "fencing_token = fencing_token + 1, error = NULL, error_position = NULL, "
          "attempts = NULL, updated_at = $2 WHERE name = $1",
          {name, micros(now)});
}

std::vector<ConsumerGroupStatus> load_groups(SqlTransaction& tx, std::int64_t head,
                                             Timestamp now) {
  std::vector<ConsumerGroupStatus> groups;
  if (!has_table(tx, "projection_groups") || !has_table(tx, "projection_partitions")) {
    return groups;
  }
  for (const auto& g :
       tx.query("SELECT name, partitions FROM projection_groups ORDER BY name")) {
    ConsumerGroupStatus s;
    s.name = g[0].as_text();
    s.partitions = static_cast<int>(g[1].as_int());
    s.head_position = head;
    for (const auto& r : tx.query(
             "SELECT partition, position, owner, lease_expires_at, fencing_token, error, "
             "error_position, attempts FROM projection_partitions WHERE name = $1 "
             "ORDER BY partition",
             {s.name})) {
      PartitionStatus p;
      p.partition = static_cast<int>(r[0].as_int());
      p.checkpoint = r[1].as_int();
      p.lag = std::max<std::int64_t>(0, head - p.checkpoint);
      if (!r[2].is_null() && r[3].as_int() > micros(now)) p.owner = r[2].as_text();
      p.lease_expires_at = from_micros(r[3].as_int());
      p.fencing_token = r[4].as_int();
      if (!r[5].is_null()) {
        p.failure = ProjectionFailure{r[6].is_null() ? 0 : r[6].as_int(), r[5].as_text(),
                                      r[7].is_null() ? 0 : static_cast<int>(r[7].as_int())};
      }
      s.partition_status.push_back(std::move(p));
    }
    if (has_table(tx, "projection_group_members")) {
      for (const auto& m : tx.query("SELECT worker FROM projection_group_members WHERE name = $1 "
                                    "AND expires_at > $2 ORDER BY worker",
                                    {s.name, micros(now)})) {
        s.live_workers.push_back(m[0].as_text());
      }
    }
    groups.push_back(std::move(s));
  }
  return groups;
}

}  // namespace annals::detail

namespace annals {

std::vector<ConsumerGroupStatus> ReadModel::consumer_groups(std::int64_t head_position) const {
  std::vector<ConsumerGroupStatus> groups;
  read([&](SqlTransaction& tx) { groups = detail::load_groups(tx, head_position, clock().now()); });
  return groups;
}

}  // namespace annals
