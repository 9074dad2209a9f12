// Contention across processes: 4 processes of 4 threads append to 3 shared
// streams with exactly(version) and retry on WrongExpectedVersion. No other
// error may reach a caller who retries, no version is given twice, versions
// and positions stay dense, and every acknowledged event is stored at the
// stream and version its append returned.
//
// ANNALS_SOAK=1 multiplies the appends by 20; ANNALS_PG_CONTENTION_APPENDS
// sets the appends per thread (default 75).

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "annals/store/postgres_event_store.hpp"
#include "postgres/postgres_server.hpp"
#include "postgres/postgres_worker.hpp"
#include "process_helpers.hpp"
#include "store/store_fixtures.hpp"

namespace {

[[maybe_unused]] ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new annals::testing::PostgresEnvironment);

using namespace annals::testing;

TEST(PostgresContention, FourProcessesOfFourThreadsRetryingOnSharedStreamsNeverGetADuplicateVersionOrAnotherError) {
  constexpr int kProcesses = 4, kThreads = 4;
  const int appends =
      env_int("ANNALS_PG_CONTENTION_APPENDS", 75) * (env_int("ANNALS_SOAK", 0) ? 20 : 1);
  const std::string schema = fresh_schema();
  annals::PostgresStoreOptions options;
  options.schema = schema;
  annals::PostgresEventStore store(postgres_url(), options);
  TempDir dir;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(spawn_worker({"contend", postgres_url(), schema,
                                     (dir / ("acks-" + std::to_string(p))).string(),
                                     std::to_string(p), std::to_string(appends)}));
  }
  // 5: a caller saw an error other than WrongExpectedVersion (printed above).
  for (pid_t pid : children) EXPECT_EQ(wait_for_exit(pid), 0) << "a process saw errors";

  const auto versions = expect_consistent(store);  // dense positions and versions, unique ids
  std::map<std::string, std::pair<std::string, std::int64_t>> where;  // id -> (stream, version)
  for (const auto& e : store.read_all()) where[e.event_id] = {e.stream_id, e.version};
  std::set<std::pair<std::string, std::int64_t>> acknowledged;
  for (int p = 0; p < kProcesses; ++p) {
    for (const auto& line : read_lines(dir / ("acks-" + std::to_string(p)))) {
      std::istringstream in(line);
      std::string id, stream;
      std::int64_t version = 0;
      in >> id >> stream >> version;
      EXPECT_TRUE(acknowledged.emplace(stream, version).second)
          << "version acknowledged twice: " << line;
      const auto it = where.find(id);
      ASSERT_NE(it, where.end()) << "acknowledged event missing: " << line;
      EXPECT_EQ(it->second, std::make_pair(stream, version)) << line;
    }
  }
  const auto total = static_cast<std::size_t>(kProcesses * kThreads * appends);
  EXPECT_EQ(acknowledged.size(), total);
  EXPECT_EQ(static_cast<std::size_t>(store.head_position()), total);
  EXPECT_EQ(versions.size(), 3u);
  std::printf("contention: %d processes x %d threads x %d appends on %zu shared streams, "
              "%zu events, each version given once\n",
              kProcesses, kThreads, appends, versions.size(), acknowledged.size());
}

}  // namespace
