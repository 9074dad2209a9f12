// Inline projections: applied inside the append transaction, so the read model
// never lags and a rule it checks holds for every append (unique usernames).

#include "annals/projections/inline_projection.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "annals/core/error.hpp"
#include "projection_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

struct UsernameTaken : Error {
  explicit UsernameTaken(const std::string& name) : Error("username '" + name + "' is taken") {}
};

// Written as in docs/projections.md and inline_projection.hpp, so the snippet compiles.
Projection usernames() {
  return Projection{
      .name = "usernames",
      .filter = EventFilter::for_types({"user.Registered"}),
      .setup =
          [](SqlTransaction& tx) {
            tx.exec_script(
                "CREATE TABLE IF NOT EXISTS usernames (name TEXT PRIMARY KEY, user TEXT NOT NULL)");
          },
      .apply =
          [](SqlTransaction& tx, const RecordedEvent& e) {
            const std::string name = e.payload_json().at("name");
            if (tx.query_int("SELECT 1 FROM usernames WHERE name = ?1", {name}))
              throw UsernameTaken(name);
            tx.exec("INSERT INTO usernames VALUES (?1, ?2)", {name, e.stream_id});
          },
      .reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM usernames"); },
  };
}

EventData registered(const std::string& name) {
  return event("user.Registered", R"({"name":")" + name + R"("})");
}

TEST(InlineProjection, RejectingAnAppendRollsTheAppendBack) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  InlineProjection names(store, usernames());
  store.append("user-1", ExpectedVersion::no_stream(), {registered("ada")});
  store.append("user-2", ExpectedVersion::no_stream(), {registered("bob")});
  EXPECT_THROW(store.append("user-3", ExpectedVersion::no_stream(),
                            {registered("cy"), registered("ada")}),
               UsernameTaken);
  // Nothing of the rejected append is stored: not its events, not its rows.
  EXPECT_EQ(store.head_position(), 2);
  EXPECT_EQ(store.stream_version("user-3"), 0);
  EXPECT_EQ(names.checkpoint(), 2);
  EXPECT_EQ(dump(names.read_model(), "SELECT name, user FROM usernames ORDER BY name"),
            (std::vector<std::string>{"ada|user-1|", "bob|user-2|"}));
  // A multi-stream append is rejected as a whole, too.
  std::vector<StreamAppend> both;
  both.push_back({"user-4", ExpectedVersion::no_stream(), {registered("dee")}});
  both.push_back({"user-5", ExpectedVersion::no_stream(), {registered("bob")}});
  EXPECT_THROW(store.append(std::move(both)), UsernameTaken);
  EXPECT_EQ(store.head_position(), 2);
  store.append("user-3", ExpectedVersion::no_stream(), {registered("cy")});
  EXPECT_EQ(names.checkpoint(), 3);
  EXPECT_EQ(names.read_model().query_int("SELECT count(*) FROM usernames"), 3);
}

TEST(InlineProjection, UniqueUsernamesHoldAcrossEightAppendingThreads) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  InlineProjection names(store, usernames());
  constexpr int kThreads = 8, kNames = 60;
  std::atomic<int> taken{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kNames; ++i) {
        const int n = (i * 7 + t * 13) % kNames;  // every thread tries every name, in its own order
        try {
          store.append("user-" + std::to_string(t) + "-" + std::to_string(n),
                       ExpectedVersion::no_stream(), {registered("name" + std::to_string(n))});
        } catch (const UsernameTaken&) {
          ++taken;
        } catch (...) {
          ++other;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(taken.load(), kThreads * kNames - kNames);
  EXPECT_EQ(store.head_position(), kNames);
  std::map<std::string, int> stored;
  for (const auto& e : store.read_all()) ++stored[e.payload_json().at("name").get<std::string>()];
  EXPECT_EQ(stored.size(), static_cast<std::size_t>(kNames));
  for (const auto& [name, count] : stored) EXPECT_EQ(count, 1) << name;
  EXPECT_EQ(names.read_model().query_int("SELECT count(*) FROM usernames"), kNames);
  EXPECT_EQ(names.checkpoint(), kNames);
}

TEST(InlineProjection, CatchesUpOnAttachAndAfterWritersThatDoNotAttachIt) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  store.append("user-1", ExpectedVersion::no_stream(), {registered("ada")});
  store.append("other-1", ExpectedVersion::no_stream(), events(3));
  InlineProjection names(store, usernames());
  EXPECT_EQ(names.checkpoint(), 4);
  EXPECT_EQ(names.read_model().query_int("SELECT count(*) FROM usernames"), 1);

  // Another writer (another store object, as another process would be) appends
  // without the projection; the next append through this store applies it first.
  {
    SqliteEventStore other(dir / "store.db", fast_store());
    other.append("user-2", ExpectedVersion::no_stream(), {registered("bob")});
  }
  EXPECT_EQ(names.checkpoint(), 4);
  EXPECT_THROW(store.append("user-3", ExpectedVersion::no_stream(), {registered("bob")}),
               UsernameTaken);
  // The rejected append rolled back the catch-up too; the next one keeps it.
  EXPECT_EQ(names.checkpoint(), 4);
  store.append("user-3", ExpectedVersion::no_stream(), {registered("cy")});
  EXPECT_EQ(names.checkpoint(), 6);
  EXPECT_EQ(dump(names.read_model(), "SELECT name, user FROM usernames ORDER BY name"),
            (std::vector<std::string>{"ada|user-1|", "bob|user-2|", "cy|user-3|"}));
}

TEST(InlineProjection, RebuildGivesTheSameRowsAsAppendTimeProcessing) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  InlineProjection names(store, usernames());
  for (int i = 0; i < 50; ++i) {
    store.append("user-" + std::to_string(i), ExpectedVersion::no_stream(),
                 {registered("n" + std::to_string(i)), event("user.Renamed")});
  }
  const auto before = dump(names.read_model(), "SELECT name, user FROM usernames ORDER BY name");
  ASSERT_EQ(before.size(), 50u);
  names.rebuild();
  EXPECT_EQ(dump(names.read_model(), "SELECT name, user FROM usernames ORDER BY name"), before);
  EXPECT_EQ(names.checkpoint(), 100);
  // Detached: appends no longer check anything.
  InlineProjection* gone = nullptr;
  {
    auto ledger = std::make_unique<InlineProjection>(store, ledger_projection());
    gone = ledger.get();
    EXPECT_EQ(gone->read_model().query_int("SELECT count(*) FROM ledger_rows"), 100);
  }
  store.append("user-x", ExpectedVersion::no_stream(), {event("user.Renamed")});
  SqliteReadModel reader(store.path());
  EXPECT_EQ(reader.query_int("SELECT count(*) FROM ledger_rows"), 100);
  EXPECT_EQ(reader.checkpoint("ledger"), 100);
}

}  // namespace
}  // namespace annals
