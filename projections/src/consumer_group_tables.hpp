#pragma once
// The bookkeeping tables of consumer groups (consumer_group.hpp), as SQL run
// through a read model's SqlTransaction. The schema is described at the top of
// consumer_group_tables.cpp. Private to the projections module.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "annals/core/clock.hpp"
#include "annals/projections/projection_status.hpp"
#include "annals/store/sql_transaction.hpp"

namespace annals::detail {

// What a worker holds of one partition: the fencing token it acquired it
// with and the partition's checkpoint as of its last write.
struct HeldPartition {
  std::int64_t token = 0;
  std::int64_t position = 0;
};
using HeldPartitions = std::map<int, HeldPartition>;

void create_group_tables(SqlTransaction& tx);

// Records the group with `partitions` partitions and creates their rows, or
// checks the count recorded earlier.
// Throws: InvalidArgument naming both counts when they differ.
void ensure_group(SqlTransaction& tx, const std::string& name, int partitions, Timestamp now);

struct LeaseTerms {
  std::string worker;
  Timestamp now;
  std::chrono::milliseconds lease;
};

// One renewal round: refreshes the worker's membership, counts live members,
// keeps and renews what it still holds (same owner and token), releases what
// it holds beyond ceil(partitions / live), takes free or expired partitions up
// to that share (fencing token + 1, a row in projection_partition_leases).
// Returns what it holds afterwards.
HeldPartitions renew_leases(SqlTransaction& tx, const std::string& name, int partitions,
                            const HeldPartitions& held, const LeaseTerms& terms);

// Gives up every lease of `worker` and its membership.
void leave_group(SqlTransaction& tx, const std::string& name, const std::string& worker);

// Whether `worker` still holds `partition` with `token` and an unexpired lease.
bool holds(SqlTransaction& tx, const std::string& name, int partition, const std::string& worker,
           std::int64_t token, Timestamp now);

// Moves a partition's checkpoint; clears its failure. With `record`, also
// appends the write to projection_partition_writes.
void save_partition(SqlTransaction& tx, const std::string& name, int partition,
                    std::int64_t from, std::int64_t to, const std::string& worker,
                    std::int64_t token, Timestamp now, bool record);

void save_partition_failure(SqlTransaction& tx, const std::string& name, int partition,
                            const ProjectionFailure& failure, Timestamp now);

// Sets the group's row in projection_checkpoints to its lowest partition checkpoint.
void save_group_checkpoint(SqlTransaction& tx, const std::string& name, ProjectionState state,
                           Timestamp now);

// Rebuild: every partition back to 0, owners cleared, each token + 1.
void reset_partitions(SqlTransaction& tx, const std::string& name, Timestamp now);

// Members whose lease is current at `now`.
std::int64_t live_members(SqlTransaction& tx, const std::string& name, Timestamp now);

// Every group in the database (none without the tables), lag against `head`.
std::vector<ConsumerGroupStatus> load_groups(SqlTransaction& tx, std::int64_t head, Timestamp now);

}  // namespace annals::detail
