// `annals read --correlation ID` and `annals tail --correlation ID`: only the
// events whose metadata carries that correlation_id.

#include <gtest/gtest.h>

#include <sstream>
#include <thread>

#include "annals/store/event_export.hpp"
#include "tool_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;
using namespace std::chrono_literals;

std::vector<std::int64_t> positions(const std::string& json_lines) {
  std::vector<std::int64_t> out;
  std::istringstream in(json_lines);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) out.push_back(parse_export_line(line, ++n).position);
  return out;
}

EventData correlated(const std::string& type, const std::string& correlation) {
  EventData e = tool_event(type);
  e.metadata = R"({"actor":"clerk","correlation_id":")" + correlation + R"(","causation_id":"cmd-1"})";
  return e;
}

class Correlation : public ::testing::Test {
 protected:
  // Positions 1..14: "t-1" at 2, 3 (account-1) and 5 (account-2); "t-2" at
  // every position from 6 to 14 but 10 (stream other-1), 10 carries no id,
  // 1 and 4 carry a non-string id and "t-10" (a longer id starting like t-1).
  void SetUp() override {
    SqliteEventStore store(db(), quick());
    EventData numeric = tool_event("bank.Opened");
    numeric.metadata = R"({"correlation_id":1})";
    store.append("account-1", ExpectedVersion::any(),
                 {numeric, correlated("bank.Withdrawn", "t-1"), correlated("bank.Noted", "t-1")});
    store.append("account-2", ExpectedVersion::any(),
                 {correlated("bank.Opened", "t-10"), correlated("bank.Deposited", "t-1")});
    for (int i = 6; i <= 14; ++i) {
      store.append("other-1", ExpectedVersion::any(),
                   {i == 10 ? tool_event("x.Plain") : correlated("x.Linked", "t-2")});
    }
  }
  std::filesystem::path db() const { return dir_ / "store.db"; }
  TempDir dir_;
};

TEST_F(Correlation, ReadPrintsOnlyTheStreamsEventsWithThatCorrelationId) {
  auto r = annals_run({"read", "account-1", "--db", db().string(), "--correlation", "t-1", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(positions(r.out), (std::vector<std::int64_t>{2, 3}));
  r = annals_run({"read", "account-1", "--db", db().string(), "--correlation", "t-2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(Correlation, ReadLimitCountsTheMatchingEventsInEitherDirection) {
  auto r = annals_run({"read", "other-1", "--db", db().string(), "--correlation", "t-2", "--limit", "5",
                       "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(positions(r.out), (std::vector<std::int64_t>{6, 7, 8, 9, 11}));
  r = annals_run({"read", "other-1", "--db", db().string(), "--correlation", "t-2", "--backward",
                  "--limit", "6", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(positions(r.out), (std::vector<std::int64_t>{14, 13, 12, 11, 9, 8}));
}

TEST_F(Correlation, TailWithoutFromPrintsTheLastTenMatchingEvents) {
  auto r = annals_run({"tail", "--db", db().string(), "--correlation", "t-1", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(positions(r.out), (std::vector<std::int64_t>{2, 3, 5}));
  r = annals_run({"tail", "--db", db().string(), "--correlation", "t-2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(positions(r.out), (std::vector<std::int64_t>{6, 7, 8, 9, 11, 12, 13, 14}));
  r = annals_run({"tail", "--db", db().string(), "--correlation", "nobody", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(Correlation, TailKeepsTheLastTenWhenMoreMatch) {
  {
    SqliteEventStore store(db(), quick());
    for (int i = 0; i < 4; ++i) store.append("other-2", ExpectedVersion::any(), {correlated("x.Linked", "t-2")});
  }
  // t-2 now at 6-9, 11-18: the last ten start at 8.
  const auto r = annals_run({"tail", "--db", db().string(), "--correlation", "t-2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(positions(r.out), (std::vector<std::int64_t>{8, 9, 11, 12, 13, 14, 15, 16, 17, 18}));
}

TEST_F(Correlation, TailFromAPositionWithMaxEventsCountsOnlyMatches) {
  const auto r = annals_run({"tail", "--db", db().string(), "--from", "3", "--correlation", "t-1",
                             "--max-events", "1", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(positions(r.out), (std::vector<std::int64_t>{3}));
}

TEST_F(Correlation, TailFollowPrintsOnlyNewMatchingEventsAnotherWriterAppends) {
  Outcome follow;
  std::thread tail([&] {
    follow = annals_run({"tail", "--db", db().string(), "--from", "15", "--follow", "--json",
                         "--correlation", "t-9", "--max-events", "2", "--poll-interval", "10",
                         "--timeout", "60"});
  });
  {
    SqliteEventStore writer(db(), quick());
    for (const char* id : {"t-8", "t-9", "t-8", "t-9"}) {
      std::this_thread::sleep_for(20ms);
      writer.append("late-1", ExpectedVersion::any(), {correlated("test.Late", id)});
    }
  }
  tail.join();
  ASSERT_EQ(follow.code, 0) << follow.err;
  EXPECT_EQ(positions(follow.out), (std::vector<std::int64_t>{16, 18}));
}

TEST_F(Correlation, AnEmptyCorrelationIdIsAUsageError) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"read", "account-1", "--db", db().string(), "--correlation", ""},
        std::vector<std::string>{"tail", "--db", db().string(), "--correlation", ""}}) {
    const auto r = annals_run(args);
    EXPECT_EQ(r.code, 2) << r.err;  // usage
    EXPECT_NE(r.err.find("--correlation"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

}  // namespace
}  // namespace annals
