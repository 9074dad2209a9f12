// Global order across processes: 4 writer processes of 4 connections append
// while 2 follower processes read read_all() from their checkpoint again and
// again with paged cursors. At the end each follower's sequence of (position,
// event id) equals the table's: nothing skipped, nothing twice, nothing out
// of order. Every acknowledged event is stored at the position its append
// returned.
//
// ANNALS_SOAK=1 multiplies the appends by 20; ANNALS_PG_ORDER_APPENDS sets
// the appends per writer thread (default 150).

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
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

TEST(PostgresOrdering, FollowerProcessesSeeEveryEventOnceInPositionOrderWhileFourWriterProcessesAppend) {
  constexpr int kWriters = 4, kFollowers = 2;
  const int appends = env_int("ANNALS_PG_ORDER_APPENDS", 150) * (env_int("ANNALS_SOAK", 0) ? 20 : 1);
  const std::string schema = fresh_schema();
  annals::PostgresStoreOptions options;
  options.schema = schema;
  annals::PostgresEventStore store(postgres_url(), options);  // creates the tables
  TempDir dir;
  const auto done = dir / "done";

  std::vector<pid_t> followers, writers;
  for (int f = 0; f < kFollowers; ++f) {
    followers.push_back(spawn_worker({"follow", postgres_url(), schema,
                                      (dir / ("seen-" + std::to_string(f))).string(), done.string()}));
  }
  for (int w = 0; w < kWriters; ++w) {
    writers.push_back(spawn_worker({"write", postgres_url(), schema,
                                    (dir / ("acks-" + std::to_string(w))).string(),
                                    std::to_string(w), std::to_string(appends)}));
  }
  for (pid_t pid : writers) EXPECT_EQ(wait_for_exit(pid), 0) << "a writer failed (see above)";
  {
    // Written whole, then renamed: a follower never reads half a number.
    std::ofstream(dir / "done.tmp") << store.head_position() << "\n";
    std::filesystem::rename(dir / "done.tmp", done);
  }
  for (pid_t pid : followers) EXPECT_EQ(wait_for_exit(pid), 0) << "a follower failed (see above)";

  std::vector<std::string> table;
  std::map<std::string, std::int64_t> position_of;
  for (const auto& e : store.read_all()) {
    table.push_back(std::to_string(e.position) + " " + e.event_id);
    position_of[e.event_id] = e.position;
  }
  expect_consistent(store);
  std::size_t acked = 0;
  for (int w = 0; w < kWriters; ++w) {
    for (const auto& line : read_lines(dir / ("acks-" + std::to_string(w)))) {
      std::istringstream in(line);
      std::string id;
      std::int64_t position = 0;
      in >> id >> position;
      ++acked;
      const auto it = position_of.find(id);
      ASSERT_NE(it, position_of.end()) << "acknowledged event missing: " << line;
      EXPECT_EQ(it->second, position) << "stored elsewhere than acknowledged: " << line;
    }
  }
  EXPECT_EQ(acked, table.size()) << "events stored that no writer acknowledged";
  EXPECT_GE(table.size(), static_cast<std::size_t>(kWriters * 4 * appends));
  for (int f = 0; f < kFollowers; ++f) {
    const auto seen = read_lines(dir / ("seen-" + std::to_string(f)));
    EXPECT_EQ(seen.size(), table.size()) << "follower " << f;
    // The first difference, rather than two long lists.
    const auto mismatch = std::mismatch(seen.begin(), seen.end(), table.begin(), table.end());
    EXPECT_TRUE(mismatch.first == seen.end() && mismatch.second == table.end())
        << "follower " << f << " differs from the table at line "
        << (mismatch.first - seen.begin()) << ": saw '"
        << (mismatch.first == seen.end() ? std::string("<end>") : *mismatch.first)
        << "', table has '"
        << (mismatch.second == table.end() ? std::string("<end>") : *mismatch.second) << "'";
  }
  std::printf("ordering: %d writer processes x 4 connections, %zu events; %d followers each read "
              "all of them once, in order\n",
              kWriters, table.size(), kFollowers);
}

}  // namespace
