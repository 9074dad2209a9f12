// `annals check NAME`: a check request recorded in the read model, served by
// the projection's runner, its report printed; exit 0 equal, 4 differing.

#include <gtest/gtest.h>

#include <thread>

#include "annals/projections/check_request.hpp"
#include "annals/projections/projection_runner.hpp"
#include "tool_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

// One row per stream with its event count.
Projection counter() {
  Projection p;
  p.name = "counter";
  p.setup = [](SqlTransaction& tx) {
    tx.exec_script("CREATE TABLE IF NOT EXISTS counts (stream_id TEXT PRIMARY KEY, n INTEGER)");
  };
  p.apply = [](SqlTransaction& tx, const RecordedEvent& e) {
    tx.exec("INSERT INTO counts VALUES (?1, 1) ON CONFLICT(stream_id) DO UPDATE SET n = n + 1",
            {e.stream_id});
  };
  p.reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM counts"); };
  return p;
}

// Waits (bounded) until a started runner has recorded a state other than
// "stopped", which is what the tool looks at.
bool recorded_running(const SqliteReadModel& views) {
  for (int i = 0; i < 30'000; ++i) {
    const auto r = views.checkpoint_record("counter");
    if (r && r->state != ProjectionState::stopped) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

struct CheckTool : ::testing::Test {
  TempDir dir;
  std::filesystem::path db = dir / "store.db";
  std::filesystem::path views_file = dir / "views.db";
  void SetUp() override { fill_sample(db); }
  std::vector<std::string> args(std::vector<std::string> more = {}) {
    std::vector<std::string> a{"check", "counter", "--db", db.string(), "--read-model",
                               views_file.string(), "--timeout", "60", "--poll-interval", "5"};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
};

TEST_F(CheckTool, ARunningRunnerAnswersAndAnEqualModelExitsZero) {
  SqliteEventStore store(db, quick());
  SqliteReadModel views(views_file);
  ProjectionRunnerOptions options;
  options.poll_interval = std::chrono::milliseconds(5);
  ProjectionRunner runner(store, views, counter(), options);
  runner.start();
  ASSERT_TRUE(recorded_running(views));
  const auto r = annals_run(args());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("check of 'counter' at position 5: ok (3 live rows, 3 replayed; 0 only in "
                       "live, 0 only in replay, 0 differing)"),
            std::string::npos)
      << r.out;
}

TEST_F(CheckTool, ATamperedModelIsReportedWithTheRowAndExitsFour) {
  SqliteEventStore store(db, quick());
  SqliteReadModel views(views_file);
  ProjectionRunnerOptions options;
  options.poll_interval = std::chrono::milliseconds(5);
  ProjectionRunner runner(store, views, counter(), options);
  runner.catch_up();
  views.write([](SqlTransaction& tx) {
    tx.exec("UPDATE counts SET n = 7 WHERE stream_id = 'account-1'");
    tx.exec("DELETE FROM counts WHERE stream_id = 'audit-1'");
  });
  runner.start();
  // A runner started at the head records its state with its next batch.
  store.append("audit-2", ExpectedVersion::no_stream(), {tool_event("audit.Checked")});
  ASSERT_TRUE(recorded_running(views));
  const auto r = annals_run(args());
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.out.find("DIFFERS (3 live rows, 4 replayed; 0 only in live, 1 only in replay, 1 "
                       "differing)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("counts differing: stream_id=account-1 n=7 (replay: 3)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("counts only in replay: stream_id=audit-1 n=1"), std::string::npos) << r.out;
  runner.stop();
  EXPECT_EQ(views.query_int("SELECT n FROM counts WHERE stream_id = 'account-1'"), 7)
      << "the check changes nothing";
  const auto json = annals_run(args({"--last", "--json"}));
  EXPECT_EQ(json.code, 4);
  const Json report = Json::parse(json.out);
  EXPECT_EQ(report.at("differing"), 1);
  EXPECT_EQ(report.at("only_in_replay"), 1);
  EXPECT_EQ(report.at("equal"), false);
}

TEST_F(CheckTool, AStoppedProjectionIsNotWaitedForAndLastShowsTheReportOnceARunnerServedIt) {
  SqliteEventStore store(db, quick());
  SqliteReadModel views(views_file);
  ProjectionRunner runner(store, views, counter());
  runner.catch_up();
  auto r = annals_run(args({"--last"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no check of 'counter' has been recorded yet"), std::string::npos) << r.err;
  r = annals_run(args());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not waiting: no runner of 'counter' is running"), std::string::npos)
      << r.err;
  runner.catch_up();  // serves the pending request
  r = annals_run(args({"--last"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("at position 5: ok"), std::string::npos) << r.out;
}

TEST_F(CheckTool, AnUnknownProjectionIsRefusedNamingTheKnownOnes) {
  SqliteEventStore store(db, quick());
  SqliteReadModel views(views_file);
  ProjectionRunner runner(store, views, counter());
  auto a = args();
  a[1] = "countr";
  const auto r = annals_run(a);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no projection named 'countr'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(it has: counter)"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace annals
