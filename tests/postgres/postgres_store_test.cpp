// What only the PostgreSQL store promises: followers that never skip an event
// while appenders commit concurrently, triggers that keep the events table
// append-only, options checked, a store id kept in the database.

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "postgres/postgres_server.hpp"

namespace {

[[maybe_unused]] ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new annals::testing::PostgresEnvironment);

using annals::EventData;
using annals::ExpectedVersion;
using annals::PostgresEventStore;
using annals::PostgresStoreOptions;

EventData event(int i) {
  EventData e;
  e.type = "test.Happened";
  e.payload = R"({"i":)" + std::to_string(i) + "}";
  return e;
}

PostgresStoreOptions in_schema(const std::string& schema) {
  PostgresStoreOptions options;
  options.schema = schema;
  options.read_page_size = 16;
  return options;
}

// Runs `sql` on its own connection as the owner; returns the error message
// (empty when it succeeded).
std::string run_sql(const std::string& schema, const std::string& sql) {
  const std::string path = "-c search_path=" + schema;
  const char* keys[] = {"dbname", "options", nullptr};
  const char* values[] = {annals::testing::postgres_url().c_str(), path.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 1);
  std::string error;
  if (PQstatus(c) != CONNECTION_OK) {
    error = PQerrorMessage(c);
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    const auto status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) error = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(c);
  return error;
}

TEST(PostgresStore, FollowersNeverSkipAnEventWhileWritersCommitConcurrently) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresEventStore setup(annals::testing::postgres_url(), in_schema(schema));
  constexpr int kWriters = 4;
  constexpr int kAppendsEach = 60;
  std::atomic<int> writers_left{kWriters};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      // Its own store object: its own connections, so the writers meet only
      // in the database, at the head row.
      PostgresEventStore store(annals::testing::postgres_url(), in_schema(schema));
      for (int i = 0; i < kAppendsEach; ++i) {
        std::vector<EventData> batch{event(i)};
        if (i % 3 == 0) batch.push_back(event(i + 1000));
        store.append("writer-" + std::to_string(w), ExpectedVersion::any(), std::move(batch));
      }
      --writers_left;
    });
  }
  // The follower reads from its checkpoint again and again, as a projection
  // runner does, until the writers are done and it has caught up.
  PostgresEventStore follower(annals::testing::postgres_url(), in_schema(schema));
  std::vector<std::int64_t> seen;
  std::int64_t checkpoint = 0;
  while (true) {
    const bool done = writers_left.load() == 0;
    for (const auto& e : follower.read_all(checkpoint + 1)) {
      seen.push_back(e.position);
      checkpoint = e.position;
    }
    if (done && checkpoint == follower.head_position()) break;
  }
  for (auto& t : writers) t.join();
  std::vector<std::int64_t> table;
  for (const auto& e : setup.read_all()) table.push_back(e.position);
  EXPECT_EQ(table.size(), static_cast<std::size_t>(kWriters * (kAppendsEach + kAppendsEach / 3)));
  EXPECT_EQ(seen, table);
  EXPECT_TRUE(setup.verify().ok);
}

TEST(PostgresStore, UpdateDeleteAndTruncateOfEventsFailForTheOwner) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresEventStore store(annals::testing::postgres_url(), in_schema(schema));
  store.append("account-1", ExpectedVersion::any(), {event(1), event(2)});
  EXPECT_NE(run_sql(schema, "UPDATE events SET type = 'x'").find("append-only"), std::string::npos);
  EXPECT_NE(run_sql(schema, "DELETE FROM events WHERE position = 2").find("append-only"),
            std::string::npos);
  EXPECT_NE(run_sql(schema, "TRUNCATE events").find("append-only"), std::string::npos);
  EXPECT_EQ(store.head_position(), 2);
  EXPECT_EQ(store.read_all().next()->type, "test.Happened");
  EXPECT_TRUE(store.verify().ok);
}

TEST(PostgresStore, AnAppendOnlyRoleAppendsAndReadsButCannotChangeEvents) {
  const std::string& url = annals::testing::postgres_url();
  if (url.find("://") != std::string::npos) GTEST_SKIP() << "needs a key=value connection string";
  const std::string schema = annals::testing::fresh_schema();
  const std::string role = schema + "_app";
  PostgresEventStore owner(url, in_schema(schema));
  // The GRANTs docs/postgres.md gives an application role.
  ASSERT_EQ(run_sql(schema, "CREATE ROLE " + role + " LOGIN;"
                            "GRANT USAGE ON SCHEMA " + schema + " TO " + role + ";"
                            "GRANT SELECT, INSERT ON events TO " + role + ";"
                            "GRANT SELECT, INSERT, UPDATE ON streams, annals_head TO " + role + ";"
                            "GRANT SELECT ON annals_meta TO " + role + ";"
                            "GRANT SELECT, INSERT, UPDATE, DELETE ON snapshots TO " + role + ";"),
            "");
  PostgresEventStore app(url + " user=" + role, in_schema(schema));
  app.append("account-1", ExpectedVersion::no_stream(), {event(1), event(2)});
  EXPECT_EQ(app.read_all().next()->version, 1);
  EXPECT_EQ(app.store_id(), owner.store_id());
  const std::string as_app = "SET ROLE " + role + ";";
  EXPECT_NE(run_sql(schema, as_app + "UPDATE events SET type = 'x'"), "");
  EXPECT_NE(run_sql(schema, as_app + "DELETE FROM events"), "");
  EXPECT_NE(run_sql(schema, as_app + "TRUNCATE events"), "");
  EXPECT_EQ(owner.head_position(), 2);
  EXPECT_TRUE(owner.verify().ok);
}

TEST(PostgresStore, ABadSchemaNameOrPageSizeIsRefusedNamingTheOption) {
  for (const std::string& bad : std::vector<std::string>{"", "1abc", "a-b", "x\"; DROP TABLE events; --",
                                std::string(64, 'a')}) {
    try {
      PostgresEventStore store(annals::testing::postgres_url(), in_schema(bad));
      ADD_FAILURE() << "accepted schema '" << bad << "'";
    } catch (const annals::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("schema"), std::string::npos) << e.what();
    }
  }
  auto options = in_schema(annals::testing::fresh_schema());
  options.read_page_size = 0;
  EXPECT_THROW(PostgresEventStore(annals::testing::postgres_url(), options),
               annals::InvalidArgument);
}

TEST(PostgresStore, AnUnreachableServerIsAStorageErrorNamingTheConnection) {
  try {
    PostgresEventStore store("host=/nonexistent-annals-dir port=1 dbname=x");
    ADD_FAILURE() << "connected";
  } catch (const annals::StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos) << e.what();
  }
}

TEST(PostgresStore, TheStoreIdIsKeptInTheDatabaseAndSurvivesReopening) {
  const std::string schema = annals::testing::fresh_schema();
  std::string id;
  {
    PostgresEventStore store(annals::testing::postgres_url(), in_schema(schema));
    id = store.store_id();
    store.append("account-1", ExpectedVersion::no_stream(), {event(1)});
  }
  PostgresEventStore reopened(annals::testing::postgres_url(), in_schema(schema));
  EXPECT_EQ(id.size(), 36u);
  EXPECT_EQ(reopened.store_id(), id);
  EXPECT_EQ(reopened.stream_version("account-1"), 1);
  EXPECT_NE(PostgresEventStore(annals::testing::postgres_url(),
                               in_schema(annals::testing::fresh_schema()))
                .store_id(),
            id);
}

TEST(PostgresStore, PreparedStatementsServeTheConnectionAfterFailedAppends) {
  // One pooled connection: it keeps its prepared statements through appends
  // that fail and roll back, and every later call runs on it.
  for (const bool prepare : {true, false}) {
    SCOPED_TRACE(prepare ? "prepared" : "unprepared");
    PostgresStoreOptions options = in_schema(annals::testing::fresh_schema());
    options.max_idle_connections = 1;
    options.prepare_statements = prepare;
    PostgresEventStore store(annals::testing::postgres_url(), options);
    EventData first = event(1);
    first.event_id = "0190a0b0-0000-7000-8000-000000000001";
    store.append("account-1", ExpectedVersion::no_stream(), {first});
    EXPECT_THROW(store.append("account-1", ExpectedVersion::no_stream(), {event(2)}),
                 annals::WrongExpectedVersion);
    EventData again = event(3);
    again.event_id = first.event_id;
    EXPECT_THROW(store.append("account-2", ExpectedVersion::any(), {again}),
                 annals::DuplicateEventId);
    for (int i = 2; i <= 40; ++i) {
      store.append("account-1", ExpectedVersion::exactly(i - 1), {event(i)});
    }
    EXPECT_EQ(store.stream_version("account-1"), 40);
    EXPECT_EQ(store.head_position(), 40);
    int read = 0;
    for (const auto& e : store.read_stream("account-1")) read += e.version == read + 1 ? 1 : 0;
    EXPECT_EQ(read, 40);
    int all = 0;
    for (const auto& e : store.read_all(1)) all += e.position == all + 1 ? 1 : 0;
    EXPECT_EQ(all, 40);
    EXPECT_TRUE(store.verify().ok);
  }
}

}  // namespace

// ---- seals -------------------------------------------------------------------

TEST(PostgresStore, ASealNamesTheHeadAndVerifiesAgainstTheStoreAsItGrows) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresEventStore store(annals::testing::postgres_url(), in_schema(schema));
  const annals::Seal empty = annals::seal(store);
  EXPECT_EQ(empty.head_position, 0);
  EXPECT_EQ(empty.event_count, 0);
  EXPECT_EQ(empty.store_id, store.store_id());
  EXPECT_TRUE(annals::verify_seal(store, empty).ok);

  store.append("account-1", ExpectedVersion::any(), {event(1), event(2), event(3)});
  const auto key = annals::SealKey::generate();
  const annals::Seal s = annals::seal(store, &key);
  EXPECT_EQ(s.head_position, 3);
  EXPECT_EQ(s.event_count, 3);
  EXPECT_TRUE(s.is_signed());
  auto last = store.read_all(3).next();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(s.head_hash, last->hash);
  store.append("account-2", ExpectedVersion::any(), {event(4)});
  const auto checked = annals::verify_seal(store, s, &key);
  EXPECT_TRUE(checked.ok) << checked.reason;
  EXPECT_TRUE(checked.key_trusted);
  // The seal file's text round-trips, and another key is not trusted.
  const auto parsed = annals::parse_seal(annals::to_seal_json(s), "seal.json");
  EXPECT_TRUE(annals::verify_seal(store, parsed, &key).ok);
  const auto other = annals::SealKey::generate();
  EXPECT_EQ(annals::verify_seal(store, s, &other).problem, annals::SealProblem::wrong_key);
  // Both seals are recorded, and the table refuses changes like events.
  // (a division by zero unless the count is right)
  EXPECT_EQ(run_sql(schema, "SELECT 1 / (count(*) = 2)::int FROM seals"), "");
  EXPECT_NE(run_sql(schema, "UPDATE seals SET event_count = 0").find("append-only"),
            std::string::npos);
  EXPECT_NE(run_sql(schema, "DELETE FROM seals").find("append-only"), std::string::npos);
  EXPECT_NE(run_sql(schema, "TRUNCATE seals").find("append-only"), std::string::npos);
}

TEST(PostgresStore, ARewrittenEventBeforeTheSealedHeadFailsTheSeal) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresEventStore store(annals::testing::postgres_url(), in_schema(schema));
  store.append("account-1", ExpectedVersion::any(), {event(1), event(2), event(3)});
  const annals::Seal s = annals::seal(store);
  // Someone with the owner's rights switches the triggers off and edits history.
  ASSERT_EQ(run_sql(schema, "ALTER TABLE events DISABLE TRIGGER USER;"
                            "UPDATE events SET payload = convert_to('{\"i\":9}', 'UTF8') "
                            "WHERE position = 2;"
                            "ALTER TABLE events ENABLE TRIGGER USER;"),
            "");
  const auto checked = annals::verify_seal(store, s);
  EXPECT_FALSE(checked.ok);
  EXPECT_EQ(checked.problem, annals::SealProblem::chain_broken);
  EXPECT_EQ(checked.first_bad_position, 2);
}

TEST(PostgresStore, AStoreMadeBeforeSealsGetsTheTableAtItsFirstSeal) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresEventStore store(annals::testing::postgres_url(), in_schema(schema));
  store.append("account-1", ExpectedVersion::any(), {event(1)});
  ASSERT_EQ(run_sql(schema, "DROP TABLE seals"), "");
  const annals::Seal s = annals::seal(store);
  EXPECT_EQ(s.head_position, 1);
  EXPECT_EQ(run_sql(schema, "SELECT 1 / (count(*) = 1)::int FROM seals"), "");
  EXPECT_TRUE(annals::verify_seal(store, s).ok);
  const auto public_only = annals::SealKey::from_public_hex(annals::SealKey::generate().public_hex());
  EXPECT_THROW(annals::seal(store, &public_only), annals::InvalidArgument);
}
