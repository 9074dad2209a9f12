// Every annals command, run in-process through cli.hpp: results, exit codes,
// bad input, and files that must be left untouched.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "annals/projections/consumer_group.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/projections/rebuild_request.hpp"
#include "annals/store/event_export.hpp"
#include "tool_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;
using namespace std::chrono_literals;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class AnnalsTool : public ::testing::Test {
 protected:
  void SetUp() override { fill_sample(db()); }
  std::filesystem::path db() const { return dir_ / "store.db"; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  TempDir dir_;
};

// ---- streams ----------------------------------------------------------------------

TEST_F(AnnalsTool, StreamsListsEveryStreamWithItsVersion) {
  const auto r = annals_run({"streams", "--db", db().string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "account-1\t3\naccount-2\t1\naudit-1\t1\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(AnnalsTool, StreamsWithAPrefixAndJsonListsOnlyThoseAsJsonLines) {
  const auto r = annals_run({"streams", "--db", db().string(), "--prefix", "acc", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(Json::parse(lines[0]), (Json{{"stream_id", "account-1"}, {"version", 3}}));
  EXPECT_EQ(Json::parse(lines[1])["stream_id"], "account-2");
}

// ---- read -------------------------------------------------------------------------

TEST_F(AnnalsTool, ReadPrintsOneStreamInOrder) {
  const auto r = annals_run({"read", "account-1", "--db", db().string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].substr(0, 14), "1\taccount-1@1\t");
  EXPECT_NE(lines[0].find("bank.Opened\t{\"owner\":\"Ada\"}"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[2].substr(0, 14), "4\taccount-1@3\t");
}

TEST_F(AnnalsTool, ReadBackwardFromAVersionWithALimitGivesExportLinesWithJson) {
  const auto r = annals_run(
      {"read", "account-1", "--db", db().string(), "--backward", "--from", "2", "--limit", "1", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 1u);
  const RecordedEvent e = parse_export_line(lines[0], 1);
  EXPECT_EQ(e.version, 2);
  EXPECT_EQ(e.type, "bank.Deposited");
}

TEST_F(AnnalsTool, ReadOfAStreamThatDoesNotExistFailsNamingIt) {
  const auto r = annals_run({"read", "account-9", "--db", db().string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("'account-9' does not exist"), std::string::npos) << r.err;
}

TEST_F(AnnalsTool, ReadOfAnInvalidStreamIdOrLimitIsAUsageError) {
  EXPECT_EQ(annals_run({"read", std::string("bad\x01id"), "--db", db().string()}).code, 2);
  const auto r = annals_run({"read", "account-1", "--db", db().string(), "--limit", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--limit"), std::string::npos) << r.err;
}

// ---- tail -------------------------------------------------------------------------

TEST_F(AnnalsTool, TailPrintsTheLastEventsOrFromAPosition) {
  auto r = annals_run({"tail", "--db", db().string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines_of(r.out).size(), 5u);  // fewer than 10 in all
  r = annals_run({"tail", "--db", db().string(), "--from", "4", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(parse_export_line(lines[0], 1).position, 4);
  EXPECT_EQ(parse_export_line(lines[1], 2).position, 5);
}

TEST_F(AnnalsTool, TailFollowPrintsEventsAnotherStoreObjectAppends) {
  Outcome follow;
  std::thread tail([&] {
    follow = annals_run({"tail", "--db", db().string(), "--from", "5", "--follow", "--json",
                         "--max-events", "4", "--poll-interval", "10", "--timeout", "60"});
  });
  {
    SqliteEventStore writer(db(), quick());  // as another process would
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(30ms);
      writer.append("late-1", ExpectedVersion::any(), {tool_event("test.Late")});
    }
  }
  tail.join();
  ASSERT_EQ(follow.code, 0) << follow.err;
  const auto lines = lines_of(follow.out);
  ASSERT_EQ(lines.size(), 4u) << follow.out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(parse_export_line(lines[i], 1).position, static_cast<std::int64_t>(5 + i));
  }
  EXPECT_EQ(parse_export_line(lines[3], 1).stream_id, "late-1");
}

TEST_F(AnnalsTool, TailFollowStopsAtItsTimeout) {
  const auto r = annals_run({"tail", "--db", db().string(), "--follow", "--timeout", "0.2",
                             "--poll-interval", "10"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines_of(r.out).size(), 5u);
}

// ---- stats ------------------------------------------------------------------------

TEST_F(AnnalsTool, StatsCountsEventsPerTypeAndCategory) {
  const auto r = annals_run({"stats", "--db", db().string(), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["events"], 5);
  EXPECT_EQ(j["streams"], 3);
  EXPECT_EQ(j["head_position"], 5);
  EXPECT_EQ(j["types"], (Json{{"audit.Checked", 1}, {"bank.Deposited", 1}, {"bank.Opened", 2},
                              {"bank.Withdrawn", 1}}));
  EXPECT_EQ(j["categories"], (Json{{"account", 4}, {"audit", 1}}));
  EXPECT_GT(j["file_bytes"].get<std::int64_t>(), 0);
  const auto text = annals_run({"stats", "--db", db().string()});
  ASSERT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("head position  5"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("  account\t4"), std::string::npos) << text.out;
}

// ---- verify -----------------------------------------------------------------------

TEST_F(AnnalsTool, VerifySaysOkOnAnIntactStore) {
  const auto r = annals_run({"verify", "--db", db().string()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "ok: 5 events, hash chain intact\n");
}

TEST_F(AnnalsTool, VerifyNamesTheFirstBadPositionOfATamperedCopy) {
  {
    SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);
    raw.exec("DROP TRIGGER events_append_only_update");
    raw.exec("UPDATE events SET payload = '{\"amount\":900}' WHERE position = 2");
  }
  auto r = annals_run({"verify", "--db", db().string()});
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.err.find("first bad position 2"), std::string::npos) << r.err;
  r = annals_run({"verify", "--db", db().string(), "--json"});
  EXPECT_EQ(r.code, 4);
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["first_bad_position"], 2);
}

// Issue 12, items 2 and 5: what the hash chain cannot show.
TEST_F(AnnalsTool, VerifyReportsDroppedGuardsAsAFailureWithTheirNames) {
  SQLite::Database(db().string(), SQLite::OPEN_READWRITE)
      .exec("DROP TRIGGER events_append_only_delete");
  auto r = annals_run({"verify", "--db", db().string()});
  EXPECT_EQ(r.code, 4) << r.out;
  EXPECT_NE(r.err.find("events_append_only_delete (missing)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("first bad position"), std::string::npos) << r.err;
  r = annals_run({"verify", "--db", db().string(), "--json"});
  EXPECT_EQ(r.code, 4);
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["events_checked"], 5);
  EXPECT_NE(j["reason"].get<std::string>().find("append-only guards"), std::string::npos);
}

TEST_F(AnnalsTool, VerifyReportsADeletedTailNamingTheHeadAndTheHighWaterMark) {
  SQLite::Database(db().string(), SQLite::OPEN_READWRITE)
      .exec("DROP TRIGGER events_append_only_delete; DELETE FROM events WHERE position >= 4;"
            "CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events BEGIN "
            "SELECT RAISE(ABORT, 'annals: the events table is append-only; DELETE is not allowed'); "
            "END");
  auto r = annals_run({"verify", "--db", db().string()});
  EXPECT_EQ(r.code, 4) << r.out;
  EXPECT_NE(r.err.find("first bad position 4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("position 3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("up to 5"), std::string::npos) << r.err;
}

// ---- export / import ----------------------------------------------------------------

TEST_F(AnnalsTool, ExportImportExportIsByteIdenticalAndTheCopyVerifies) {
  auto r = annals_run({"export", "--db", db().string(), "--output", path("dump.jsonl")});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string dump = file_bytes(dir_ / "dump.jsonl");
  EXPECT_EQ(lines_of(dump).size(), 6u) << "a header and 5 events";
  r = annals_run({"import", "--db", path("copy.db"), path("dump.jsonl")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("imported 5 events"), std::string::npos) << r.err;
  r = annals_run({"export", "--db", path("copy.db")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, dump);
  EXPECT_EQ(annals_run({"verify", "--db", path("copy.db")}).code, 0);
}

TEST_F(AnnalsTool, ImportReadsStandardInputForADash) {
  const std::string dump = annals_run({"export", "--db", db().string()}).out;
  const auto r = annals_run({"import", "--db", path("copy.db"), "-"}, dump);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(annals_run({"export", "--db", path("copy.db")}).out, dump);
}

TEST_F(AnnalsTool, ImportIntoANonEmptyStoreIsRefusedAndLeavesItUnchanged) {
  const std::string dump = annals_run({"export", "--db", db().string()}).out;
  const std::string before = file_bytes(db());
  const auto r = annals_run({"import", "--db", db().string(), "-"}, dump);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not empty"), std::string::npos) << r.err;
  EXPECT_EQ(file_bytes(db()), before);
}

TEST_F(AnnalsTool, ImportOfABadLineNamesItAndLeavesNoStoreBehind) {
  std::string dump = annals_run({"export", "--db", db().string()}).out;
  dump.replace(dump.find("\"amount\":200"), 12, "\"amount\":201");  // line 5, after the header
  auto r = annals_run({"import", "--db", path("copy.db"), "-"}, dump);
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.err.find("line 5"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "copy.db"));
  r = annals_run({"import", "--db", path("copy.db"), "-"}, "{\"position\":1}\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("line 1: field 'stream_id' is missing"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "copy.db"));
}

TEST_F(AnnalsTool, ImportOfAMissingInputFileFailsNamingIt) {
  const auto r = annals_run({"import", "--db", path("copy.db"), path("nope.jsonl")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("nope.jsonl"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "copy.db"));
}

// ---- projections / rebuild ----------------------------------------------------------

Projection counter_projection() {
  Projection p;
  p.name = "counter";
  p.setup = [](SqlTransaction& tx) {
    tx.exec_script("CREATE TABLE IF NOT EXISTS counted (position INTEGER PRIMARY KEY)");
  };
  p.apply = [](SqlTransaction& tx, const RecordedEvent& e) {
    tx.exec("INSERT INTO counted (position) VALUES (?1)", {e.position});
  };
  p.reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM counted"); };
  return p;
}

TEST_F(AnnalsTool, ProjectionsListsCheckpointHeadLagAndState) {
  std::string stored_state;
  {
    SqliteEventStore store(db(), quick());
    SqliteReadModel views(dir_ / "views.db");
    ProjectionRunner runner(store, views, counter_projection());
    ASSERT_EQ(runner.catch_up(), 5);
    store.append("account-2", ExpectedVersion::any(), {tool_event("bank.Closed")});
    stored_state = std::string(to_string(views.checkpoint_record("counter")->state));
  }
  auto r = annals_run({"projections", "--db", db().string(), "--read-model", path("views.db"), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["name"], "counter");
  EXPECT_EQ(j["checkpoint"], 5);
  EXPECT_EQ(j["head_position"], 6);
  EXPECT_EQ(j["lag"], 1);
  EXPECT_EQ(j["state"], stored_state);  // as the last runner recorded it
  EXPECT_TRUE(j["failure"].is_null());
  r = annals_run({"projections", "--db", db().string(), "--read-model", path("views.db")});
  EXPECT_EQ(r.out, "counter\tcheckpoint 5\thead 6\tlag 1\t" + stored_state + "\n");
  // The store file itself has no checkpoint table: nothing to list.
  r = annals_run({"projections", "--db", db().string()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(AnnalsTool, ProjectionsListsEachPartitionOfAConsumerGroup) {
  {
    SqliteEventStore store(db(), quick());
    SqliteReadModel views(dir_ / "views.db");
    ConsumerGroupOptions o;
    o.worker_id = "worker-1";
    o.partitions = 4;
    o.lease_duration = std::chrono::hours(1);  // still held when the tool looks
    ConsumerGroupWorker worker(store, views, counter_projection(), o);
    ASSERT_EQ(worker.poll(), 5u);
    store.append("account-2", ExpectedVersion::any(), {tool_event("bank.Closed")});
    auto r = annals_run({"projections", "--db", db().string(), "--read-model", path("views.db"), "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const Json j = Json::parse(r.out);
    EXPECT_EQ(j["name"], "counter");
    EXPECT_EQ(j["checkpoint"], 5);
    ASSERT_EQ(j["partitions"].size(), 4u);
    for (int p = 0; p < 4; ++p) {
      const Json& part = j["partitions"][static_cast<std::size_t>(p)];
      EXPECT_EQ(part["partition"], p);
      EXPECT_EQ(part["checkpoint"], 5);
      EXPECT_EQ(part["lag"], 1);
      EXPECT_EQ(part["owner"], "worker-1");
      EXPECT_EQ(part["fencing_token"], 1);
    }
    EXPECT_EQ(j["workers"], Json::array({"worker-1"}));
    r = annals_run({"projections", "--db", db().string(), "--read-model", path("views.db")});
    EXPECT_NE(r.out.find("  partition 3\tcheckpoint 5\tlag 1\ttoken 1\towner worker-1\n"),
              std::string::npos)
        << r.out;
    worker.stop();  // gives the leases back
  }
  const auto r = annals_run({"projections", "--db", db().string(), "--read-model", path("views.db")});
  EXPECT_NE(r.out.find("  partition 0\tcheckpoint 5\tlag 1\ttoken 1\tno owner\n"), std::string::npos)
      << r.out;
}

TEST_F(AnnalsTool, RebuildOfAConsumerGroupResetsEveryPartition) {
  SqliteEventStore store(db(), quick());
  SqliteReadModel views(dir_ / "views.db");
  ConsumerGroupOptions o;
  o.renew_interval = std::chrono::milliseconds(1);
  ConsumerGroupWorker worker(store, views, counter_projection(), o);
  ASSERT_EQ(worker.poll(), 5u);
  const auto r = annals_run({"rebuild", "counter", "--db", db().string(), "--read-model", path("views.db")});
  ASSERT_EQ(r.code, 0) << r.err;
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the next renewal is due
  EXPECT_EQ(worker.poll(), 5u);  // everything again, once
  EXPECT_EQ(views.query_int("SELECT count(*) FROM counted"), 5);
  EXPECT_FALSE(rebuild_requested(views, "counter"));
  // Token 1 at the first start, 2 for the reset, 3 when taken again.
  for (const auto& p : worker.status().partition_status) EXPECT_EQ(p.fencing_token, 3);
}

TEST_F(AnnalsTool, ProjectionsReportsACheckpointBeyondTheHeadAsAnIntegrityProblem) {
  {
    SqliteEventStore store(db(), quick());
    SqliteReadModel views(dir_ / "views.db");
    ProjectionRunner runner(store, views, counter_projection());
    ASSERT_EQ(runner.catch_up(), 5);
  }
  // The read model, pointed at a store with fewer events (as after its tail
  // was removed): checkpoint 5, head 2.
  {
    SqliteEventStore other(dir_ / "other.db", quick());
    other.append("account-1", ExpectedVersion::any(), {tool_event("bank.Opened")});
    other.append("account-2", ExpectedVersion::any(), {tool_event("bank.Opened")});
  }
  const std::string before = file_bytes(dir_ / "views.db");
  auto r = annals_run({"projections", "--db", path("other.db"), "--read-model", path("views.db")});
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_EQ(r.out.find("lag"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("counter\tcheckpoint 5\thead 2\tcheckpoint beyond the head"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.err.rfind("annals projections: ", 0), 0u) << r.err;
  for (const char* part : {"views.db", "other.db", "projection 'counter' at position 5",
                           "head (position 2"}) {
    EXPECT_NE(r.err.find(part), std::string::npos) << part << " in: " << r.err;
  }
  r = annals_run({"projections", "--db", path("other.db"), "--read-model", path("views.db"),
                  "--json"});
  EXPECT_EQ(r.code, 4) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["checkpoint"], 5);
  EXPECT_EQ(j["head_position"], 2);
  EXPECT_TRUE(j["lag"].is_null());
  EXPECT_TRUE(j.value("checkpoint_beyond_head", false));
  EXPECT_EQ(file_bytes(dir_ / "views.db"), before);  // a read command: nothing written
  // The store it belongs to: no problem.
  r = annals_run({"projections", "--db", db().string(), "--read-model", path("views.db")});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(AnnalsTool, RebuildWaitReturnsOnceTheRunnerReplayedToTheHead) {
  SqliteEventStore store(db(), quick());
  SqliteReadModel views(db());  // the read model in the store's own file
  ProjectionRunnerOptions options;
  options.poll_interval = 10ms;
  ProjectionRunner runner(store, views, counter_projection(), options);
  runner.start();
  ASSERT_TRUE(runner.wait_for(5, 10s));
  views.write([](SqlTransaction& tx) { tx.exec("INSERT INTO counted (position) VALUES (999)"); });

  const auto r = annals_run({"rebuild", "counter", "--db", db().string(), "--wait", "--timeout",
                             "60", "--poll-interval", "10"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("done"), std::string::npos) << r.err;
  EXPECT_FALSE(rebuild_requested(views, "counter"));
  // reset() ran: the row no event made is gone, every event's row is back.
  EXPECT_EQ(views.query_int("SELECT count(*) FROM counted"), 5);
  EXPECT_EQ(views.query_int("SELECT max(position) FROM counted"), 5);
}

TEST_F(AnnalsTool, RebuildWithoutARunningRunnerRecordsTheRequestAndWaitTimesOut) {
  {
    SqliteEventStore store(db(), quick());
    SqliteReadModel views(dir_ / "views.db");
    ProjectionRunner runner(store, views, counter_projection());
    runner.catch_up();
  }
  // The runner has stopped (its row says so): --wait, even without a
  // timeout, says no runner is running and returns at once.
  auto r = annals_run({"rebuild", "counter", "--db", db().string(), "--read-model",
                       path("views.db"), "--wait", "--poll-interval", "10"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no runner of 'counter' is running"), std::string::npos) << r.err;
  r = annals_run({"projections", "--db", db().string(), "--read-model", path("views.db")});
  EXPECT_NE(r.out.find("rebuild requested"), std::string::npos) << r.out;
  // The next runner of it carries the request out.
  {
    SqliteEventStore store(db(), quick());
    SqliteReadModel views(dir_ / "views.db");
    ProjectionRunner runner(store, views, counter_projection());
    runner.catch_up();
  }
  r = annals_run({"projections", "--db", db().string(), "--read-model", path("views.db")});
  EXPECT_EQ(r.out.find("rebuild requested"), std::string::npos) << r.out;
}

// A runner marked live that is not running (killed, say): --wait waits until
// its timeout, naming what it waits for.
TEST_F(AnnalsTool, RebuildWaitOnARunnerThatLooksLiveStopsAtItsTimeout) {
  {
    SqliteEventStore store(db(), quick());
    SqliteReadModel views(dir_ / "views.db");
    ProjectionRunner runner(store, views, counter_projection());
    runner.catch_up();
  }
  {
    SQLite::Database raw(path("views.db"), SQLite::OPEN_READWRITE);
    raw.exec("UPDATE projection_checkpoints SET state = 'live'");
  }
  auto r = annals_run({"rebuild", "counter", "--db", db().string(), "--read-model",
                       path("views.db"), "--wait", "--timeout", "0.1", "--poll-interval", "10"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("still pending"), std::string::npos) << r.err;
}

TEST_F(AnnalsTool, AReadModelThatIsNotADatabaseIsRefusedAndLeftUntouched) {
  write_file(dir_ / "views.db", "not a database\n" + std::string(4096, '-'));
  const std::string before = file_bytes(dir_ / "views.db");
  for (const auto& command : {"projections", "rebuild"}) {
    std::vector<std::string> args{command, "--db", db().string(), "--read-model", path("views.db")};
    if (std::string(command) == "rebuild") args.insert(args.begin() + 1, "counter");
    const auto r = annals_run(args);
    EXPECT_EQ(r.code, 3) << command << ": " << r.err;
    EXPECT_NE(r.err.find("views.db"), std::string::npos) << r.err;
  }
  EXPECT_EQ(file_bytes(dir_ / "views.db"), before);
  const auto r = annals_run({"projections", "--db", db().string(), "--read-model", path("none.db")});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("none.db' does not exist"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "none.db"));
}

TEST_F(AnnalsTool, RebuildOfAnUnknownProjectionIsRefusedNamingTheKnownOnes) {
  {
    SqliteEventStore store(db(), quick());
    SqliteReadModel views(dir_ / "views.db");
    ProjectionRunner runner(store, views, counter_projection());
  }
  const std::string before = file_bytes(dir_ / "views.db");
  const auto r = annals_run({"rebuild", "countr", "--db", db().string(), "--read-model", path("views.db")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no projection named 'countr'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("counter"), std::string::npos) << r.err;
  EXPECT_EQ(file_bytes(dir_ / "views.db"), before);
}

// ---- files that cannot be used --------------------------------------------------------

// Every read command on `file` exits 3 naming it and leaves it as it was.
void expect_every_read_command_refuses(const std::filesystem::path& file, const std::string& needle) {
  const bool existed = std::filesystem::exists(file);
  const std::string before = existed ? file_bytes(file) : "";
  const std::string f = file.string();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"streams", "--db", f}, {"read", "a-1", "--db", f}, {"tail", "--db", f},
           {"stats", "--db", f}, {"verify", "--db", f}, {"export", "--db", f},
           {"projections", "--db", f}, {"rebuild", "x", "--db", f}}) {
    const auto r = annals_run(args);
    EXPECT_EQ(r.code, 3) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find(f), std::string::npos) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args[0] << ": " << r.err;
    EXPECT_EQ(r.out, "") << args[0];
    ASSERT_EQ(std::filesystem::exists(file), existed) << args[0];
    if (existed) {
      EXPECT_EQ(file_bytes(file), before) << args[0] << " changed the file";
    }
  }
}

TEST_F(AnnalsTool, AMissingFileIsRefusedAndNotCreated) {
  expect_every_read_command_refuses(dir_ / "missing.db", "does not exist");
}

TEST_F(AnnalsTool, AFileThatIsNotAStoreIsRefusedAndLeftUntouched) {
  write_file(dir_ / "notes.txt", "these are notes, not a database\n" + std::string(5000, 'x'));
  expect_every_read_command_refuses(dir_ / "notes.txt", "not an SQLite database");
  {
    SQLite::Database other(path("other.db"), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    other.exec("CREATE TABLE orders (id INTEGER PRIMARY KEY)");
  }
  expect_every_read_command_refuses(dir_ / "other.db", "not an Annals store");
  write_file(dir_ / "empty.db", "");
  expect_every_read_command_refuses(dir_ / "empty.db", "not an Annals store");
}

TEST_F(AnnalsTool, AStoreOfANewerSchemaIsRefusedAndLeftUntouched) {
  {
    SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA user_version = 99");
  }
  expect_every_read_command_refuses(db(), "newer");
  const std::string before = file_bytes(db());
  const auto r = annals_run({"import", "--db", db().string(), "-"}, "");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(file_bytes(db()), before);
}

TEST_F(AnnalsTool, AReadOnlyStoreIsReadAndNotChanged) {
  ASSERT_EQ(::chmod(db().c_str(), 0444), 0);
  const std::string before = file_bytes(db());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"streams", "--db", db().string()}, {"read", "account-1", "--db", db().string()},
           {"tail", "--db", db().string()}, {"stats", "--db", db().string()},
           {"verify", "--db", db().string()}, {"export", "--db", db().string()},
           {"projections", "--db", db().string()}}) {
    const auto r = annals_run(args);
    EXPECT_EQ(r.code, 0) << args[0] << ": " << r.err;
    if (args[0] != "projections") {  // it has none to list
      EXPECT_NE(r.out, "") << args[0];
    }
  }
  EXPECT_EQ(file_bytes(db()), before);
  // Root may write a 0444 file: the refusal is observed as the user nobody.
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  const auto r = annals_exec(dir_.path(), {"import", "--db", db().string(), "-"}, "/dev/null",
                             as_unprivileged_user());
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("not writable"), std::string::npos) << r.err;
  EXPECT_EQ(file_bytes(db()), before);
}

// ---- progress and usage ------------------------------------------------------------------

TEST(AnnalsToolProgress, LongCommandsAreQuietWhenStderrIsNotATerminal) {
  TempDir dir;
  fill_many(dir / "big.db", 5000);
  const std::string db = (dir / "big.db").string();
  auto r = annals_run({"export", "--db", db});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  r = annals_run({"verify", "--db", db});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  // The same on a terminal draws a bar, and erases it at the end.
  r = annals_run({"export", "--db", db}, "", /*terminal=*/true);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("export ["), std::string::npos) << r.err;
  EXPECT_EQ(r.err.back(), '\r');
}

// ---- issue 12, item 14 ------------------------------------------------------------

TEST_F(AnnalsTool, DbBeforeTheCommandWorksAsAfterIt) {
  const auto after = annals_run({"stats", "--db", db().string()});
  ASSERT_EQ(after.code, 0) << after.err;
  auto before = annals_run({"--db", db().string(), "stats"});
  EXPECT_EQ(before.code, 0) << before.err;
  EXPECT_EQ(before.out, after.out);
  before = annals_run({"--db=" + db().string(), "read", "account-1"});
  EXPECT_EQ(before.code, 0) << before.err;
  EXPECT_EQ(before.out, annals_run({"read", "account-1", "--db", db().string()}).out);
}

TEST(AnnalsToolUsage, AnUnknownCommandIsNamedAndUsageErrorsStartWithTheProgramName) {
  auto r = annals_run({"frobnicate", "--db", "x.db"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("annals: unknown command 'frobnicate' (commands: streams, ", 0), 0u)
      << r.err;
  r = annals_run({"--db", "x.db", "frobnicate"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos) << r.err;
  r = annals_run({"streams"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("annals: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("--db"), std::string::npos) << r.err;
}

TEST(AnnalsToolUsage, OutOfRangeNumbersAreRefusedInWords) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"read", "a-1", "--db", "x.db", "--limit", "0"}, "--limit: must be a whole number of at least 1, got '0'"},
      {{"tail", "--db", "x.db", "--max-events", "-3"}, "--max-events: must be a whole number of at least 1, got '-3'"},
      {{"tail", "--db", "x.db", "--timeout", "-1"}, "--timeout: must be a number of seconds, 0 or more, got '-1'"},
      {{"rebuild", "p", "--db", "x.db", "--poll-interval", "abc"}, "--poll-interval: must be a whole number of at least 1, got 'abc'"}};
  for (const auto& [args, message] : cases) {
    const auto r = annals_run(args);
    EXPECT_EQ(r.code, 2) << args[0];
    EXPECT_NE(r.err.find("annals: " + message), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("1.79"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("not in range"), std::string::npos) << r.err;
  }
}

TEST_F(AnnalsTool, VerifyOfAStoreWithoutAnEventsTableExitsThreeNamingTheFile) {
  {
    SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);
    raw.exec("DROP TABLE events");
  }
  std::string expected(1, '\'');  // appended: a false -Wrestrict of GCC 12 at -O2
  expected += db().string();
  expected += "' is not a usable Annals store: it has no events table";
  for (const std::string command : {"verify", "stats", "export", "streams"}) {
    const auto r = annals_run({command, "--db", db().string()});
    EXPECT_EQ(r.code, 3) << command << ": " << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << command;
  }
}

TEST_F(AnnalsTool, ExportToAFileCreatesItWithModeSixHundred) {
  const auto r = annals_run({"export", "--db", db().string(), "--output", path("dump.jsonl")});
  ASSERT_EQ(r.code, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(::stat(path("dump.jsonl").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(file_bytes(path("dump.jsonl")), annals_run({"export", "--db", db().string()}).out);
}

// Issue 12, item 9.
TEST_F(AnnalsTool, AFailedImportIntoAnExistingEmptyFileLeavesItEmpty) {
  write_file(path("empty.db"), "");
  const auto r = annals_run({"import", "--db", path("empty.db"), "-"}, "this is not an export\n");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(std::filesystem::exists(path("empty.db")));
  EXPECT_EQ(std::filesystem::file_size(path("empty.db")), 0u);
  EXPECT_FALSE(std::filesystem::exists(path("empty.db-wal")));
  EXPECT_FALSE(std::filesystem::exists(path("empty.db-shm")));
  // A good import into it still works.
  const auto dump = annals_run({"export", "--db", db().string()});
  EXPECT_EQ(annals_run({"import", "--db", path("empty.db"), "-"}, dump.out).code, 0);
}

// Issue 12, item 11.
TEST_F(AnnalsTool, TablesPrintControlBytesOfStoredDataEscaped) {
  // Event types and stream ids cannot hold control bytes (the store refuses
  // them), but a read model's rows can: a projection's failure message
  // quotes whatever the failing event or handler said.
  {
    SqliteEventStore store(db(), quick());
    SqliteReadModel views(dir_ / "views.db");
    ProjectionRunner runner(store, views, counter_projection());
    runner.catch_up();
  }
  {
    SQLite::Database raw(path("views.db"), SQLite::OPEN_READWRITE);
    raw.exec("UPDATE projection_checkpoints SET error = 'x' || char(10) || 'forged line' || "
             "char(27) || '[2J', error_position = 1, attempts = 3");
  }
  const auto r = annals_run({"projections", "--db", db().string(), "--read-model",
                             path("views.db")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("x\\nforged line\\x1b[2J"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\nforged line"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
}

TEST_F(AnnalsTool, AnErrorEchoingAHugeInputStaysShort) {
  // An error echoing a huge input stays short.
  const auto r = annals_run({"read", std::string(100000, 'y'), "--db", db().string()});
  EXPECT_NE(r.code, 0);
  EXPECT_LT(r.err.size(), 1000u) << r.err.size();
}

TEST(AnnalsToolUsage, BadCommandLinesExitWithTwo) {
  EXPECT_EQ(annals_run({}).code, 2);
  EXPECT_EQ(annals_run({"frobnicate", "--db", "x.db"}).code, 2);
  EXPECT_EQ(annals_run({"streams"}).code, 2);  // --db is required
  EXPECT_EQ(annals_run({"read", "--db", "x.db"}).code, 2);  // no stream
  EXPECT_EQ(annals_run({"--help"}).code, 0);
}

}  // namespace
}  // namespace annals
