// PostgresKeyStore and scrub_postgres_table on a real server: the KeyStore
// contract, several objects (as several machines) sharing keys, a forgotten
// key gone from the table's files, and a role that may not rewrite the table.

#include "annals/store/postgres_key_store.hpp"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"
#include "postgres/postgres_server.hpp"

namespace {

[[maybe_unused]] ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new annals::testing::PostgresEnvironment);

using annals::KeyState;
using annals::KeyStoreError;
using annals::PostgresKeyStore;
using annals::PostgresKeyStoreOptions;

// Runs `sql` as the server's superuser; returns the first column of the
// first row ("" when none). Fails the test on an error.
std::string sql(const std::string& statement) {
  PGconn* c = PQconnectdb(annals::testing::postgres_url().c_str());
  std::string out;
  if (PQstatus(c) != CONNECTION_OK) {
    ADD_FAILURE() << PQerrorMessage(c);
  } else {
    PGresult* r = PQexec(c, statement.c_str());
    const auto status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      ADD_FAILURE() << statement << ": " << PQresultErrorMessage(r);
    } else if (PQntuples(r) > 0) {
      out = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
  }
  PQfinish(c);
  return out;
}

PostgresKeyStoreOptions creating(const std::string& schema) {
  return PostgresKeyStoreOptions{.schema = schema, .create_if_missing = true};
}

// The bytes of `table`'s main data file, read from the server's data
// directory after a CHECKPOINT; empty when this process cannot read it (a
// server given by ANNALS_TEST_PG_URL on another machine).
std::string table_file(const std::string& table) {
  sql("CHECKPOINT");
  const std::string path =
      sql("SHOW data_directory") + "/" + sql("SELECT pg_relation_filepath('" + table + "')");
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string bytes_of(const annals::DataKey& key) {
  return std::string(reinterpret_cast<const char*>(key.bytes().data()), key.bytes().size());
}

TEST(PostgresKeyStore, KeepsOneKeyPerSubjectAndTellsForgottenFromUnknown) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresKeyStore keys(annals::testing::postgres_url(), creating(schema));
  const annals::DataKey first = keys.key_for("account-1");
  const annals::DataKey again = keys.key_for("account-1");
  EXPECT_EQ(first.key_id(), again.key_id());
  EXPECT_EQ(bytes_of(first), bytes_of(again));
  EXPECT_NE(keys.key_for("account-2").key_id(), first.key_id());

  auto found = keys.find(first.key_id());
  ASSERT_EQ(found.state, KeyState::present);
  EXPECT_EQ(bytes_of(*found.key), bytes_of(first));
  EXPECT_EQ(keys.find("0123456789abcdef0123456789abcdef").state, KeyState::unknown);

  EXPECT_TRUE(keys.forget("account-1"));
  EXPECT_FALSE(keys.forget("account-1"));  // idempotent
  EXPECT_EQ(keys.find(first.key_id()).state, KeyState::forgotten);
  EXPECT_FALSE(keys.find(first.key_id()).key.has_value());
  EXPECT_EQ(keys.find(keys.key_for("account-2").key_id()).state, KeyState::present);

  // A forgotten subject gets a new key; the old one stays forgotten.
  const annals::DataKey fresh = keys.key_for("account-1");
  EXPECT_NE(fresh.key_id(), first.key_id());
  EXPECT_EQ(keys.find(first.key_id()).state, KeyState::forgotten);
  EXPECT_EQ(sql("SELECT count(*) FROM \"" + schema + "\".forgotten_keys"), "1");
}

TEST(PostgresKeyStore, ObjectsOnSeveralConnectionsShareKeysAndAgreeOnRaces) {
  const std::string schema = annals::testing::fresh_schema();
  constexpr int kStores = 6;
  std::vector<std::string> ids(kStores);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStores; ++i) {
    threads.emplace_back([&, i] {
      // Each its own object and connection, as processes on several
      // machines: all create the schema at once and race for one subject.
      PostgresKeyStore keys(annals::testing::postgres_url(), creating(schema));
      ids[static_cast<std::size_t>(i)] = keys.key_for("account-shared").key_id();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(sql("SELECT count(*) FROM \"" + schema + "\".subject_keys"), "1");

  PostgresKeyStore other(annals::testing::postgres_url(), {.schema = schema});
  EXPECT_TRUE(other.forget("account-shared"));
  PostgresKeyStore reader(annals::testing::postgres_url(), {.schema = schema, .read_only = true});
  EXPECT_EQ(reader.find(ids[0]).state, KeyState::forgotten);
}

TEST(PostgresKeyStore, AForgottenKeyIsGoneFromTheTablesFiles) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresKeyStore keys(annals::testing::postgres_url(), creating(schema));
  const annals::DataKey doomed = keys.key_for("account-doomed");
  for (int i = 0; i < 50; ++i) keys.key_for("account-" + std::to_string(i));
  const std::string table = "\"" + schema + "\".subject_keys";
  const std::string before = table_file(table);
  if (before.empty()) GTEST_SKIP() << "the server's data directory is not readable here";
  ASSERT_NE(before.find(bytes_of(doomed)), std::string::npos);

  ASSERT_TRUE(keys.forget("account-doomed"));
  EXPECT_EQ(table_file(table).find(bytes_of(doomed)), std::string::npos);
  EXPECT_EQ(keys.find(keys.key_for("account-7").key_id()).state, KeyState::present);

  // The control: a plain delete leaves the bytes where they were, which is
  // why forget() rewrites the table.
  PostgresKeyStore unscrubbed(annals::testing::postgres_url(), {.schema = schema, .scrub = false});
  const annals::DataKey kept = keys.key_for("account-kept");
  ASSERT_TRUE(unscrubbed.forget("account-kept"));
  EXPECT_NE(table_file(table).find(bytes_of(kept)), std::string::npos);
}

TEST(PostgresKeyStore, ARoleThatMayNotRewriteTheTableIsRefusedBeforeAnyChange) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresKeyStore owner(annals::testing::postgres_url(), creating(schema));
  const annals::DataKey key = owner.key_for("account-1");
  const std::string role = schema + "_app";
  sql("CREATE ROLE " + role + " LOGIN");
  sql("GRANT USAGE ON SCHEMA \"" + schema + "\" TO " + role);
  sql("GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA \"" + schema + "\" TO " + role);
  const std::string as_app = annals::testing::postgres_url() + " user=" + role;

  PostgresKeyStore app(as_app, {.schema = schema});
  EXPECT_EQ(app.key_for("account-1").key_id(), key.key_id());
  try {
    app.forget("account-1");
    ADD_FAILURE() << "forget() without the right to rewrite the table succeeded";
  } catch (const KeyStoreError& e) {
    EXPECT_NE(std::string(e.what()).find("may not rewrite"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(role), std::string::npos) << e.what();
  }
  EXPECT_EQ(owner.find(key.key_id()).state, KeyState::present);  // nothing changed

  PostgresKeyStore app_no_scrub(as_app, {.schema = schema, .scrub = false});
  EXPECT_TRUE(app_no_scrub.forget("account-1"));
  EXPECT_EQ(owner.find(key.key_id()).state, KeyState::forgotten);
  EXPECT_THROW(annals::scrub_postgres_table(as_app, schema, "subject_keys"), annals::StorageError);
  annals::scrub_postgres_table(annals::testing::postgres_url(), schema, "subject_keys");
}

TEST(PostgresKeyStore, MissingReadOnlyAndBadInputAreClearErrors) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresKeyStore missing(annals::testing::postgres_url(), {.schema = schema});
  try {
    missing.key_for("account-1");
    ADD_FAILURE() << "a missing key store was used";
  } catch (const KeyStoreError& e) {
    EXPECT_NE(std::string(e.what()).find(schema), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  EXPECT_THROW(missing.find("abc"), KeyStoreError);
  EXPECT_THROW(missing.forget("account-1"), KeyStoreError);
  EXPECT_EQ(sql("SELECT count(*) FROM pg_namespace WHERE nspname = '" + schema + "'"), "0");

  PostgresKeyStore(annals::testing::postgres_url(), creating(schema)).key_for("account-1");
  PostgresKeyStore reader(annals::testing::postgres_url(), {.schema = schema, .read_only = true});
  EXPECT_NO_THROW(reader.key_for("account-1"));
  EXPECT_THROW(reader.key_for("account-2"), KeyStoreError);
  EXPECT_THROW(reader.forget("account-1"), KeyStoreError);

  EXPECT_THROW(PostgresKeyStore(annals::testing::postgres_url(), {.schema = "bad-name"}),
               annals::InvalidArgument);
  EXPECT_THROW(reader.key_for(""), annals::InvalidArgument);
  EXPECT_THROW(annals::scrub_postgres_table(annals::testing::postgres_url(), schema, "no_table"),
               annals::StorageError);
  EXPECT_THROW(annals::scrub_postgres_table(annals::testing::postgres_url(), schema, "x;y"),
               annals::InvalidArgument);

  PostgresKeyStore unreachable("host=/nonexistent-dir dbname=x", creating(schema));
  try {
    unreachable.key_for("account-1");
    ADD_FAILURE() << "an unreachable server was used";
  } catch (const KeyStoreError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos) << e.what();
  }
}

TEST(PostgresKeyStore, TablesOfAnotherLayoutAreRefused) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresKeyStore(annals::testing::postgres_url(), creating(schema)).key_for("account-1");
  sql("UPDATE \"" + schema + "\".annals_key_meta SET value = '9'");
  PostgresKeyStore keys(annals::testing::postgres_url(), {.schema = schema});
  EXPECT_THROW(keys.find("x"), KeyStoreError);
}

// ---- Found in review: a snapshot, pg_statistic, a lost connection. ----

// A key store whose first creation fails half-way (a role without CREATE on
// the database) must not leave its connection inside the aborted
// transaction: once the grant is fixed, the same object must work.
TEST(PostgresKeyStore, AFailedCreationDoesNotWedgeTheConnection) {
  const std::string schema = annals::testing::fresh_schema();
  const std::string role = schema + "_nocreate";
  sql("CREATE ROLE " + role + " LOGIN");
  const std::string as_role = annals::testing::postgres_url() + " user=" + role;
  PostgresKeyStore keys(as_role, creating(schema));
  try {
    keys.key_for("account-1");
    ADD_FAILURE() << "created a schema without the right to";
  } catch (const KeyStoreError& e) {
    EXPECT_NE(std::string(e.what()).find("permission denied"), std::string::npos) << e.what();
  }
  // The second call should report the same cause, not "current transaction is aborted".
  try {
    keys.key_for("account-1");
  } catch (const KeyStoreError& e) {
    EXPECT_EQ(std::string(e.what()).find("current transaction is aborted"), std::string::npos)
        << e.what();
  }
  sql("GRANT CREATE ON DATABASE \"" + sql("SELECT current_database()") + "\" TO " + role);
  EXPECT_NO_THROW(keys.key_for("account-1"));
}

// VACUUM FULL copies row versions that some open snapshot may still see
// ("recently dead"): with any REPEATABLE READ transaction open in the
// database (a long report, pg_dump, a catch-up read), the forgotten key is
// copied into the rewritten file, and forget() still reports success.
TEST(PostgresKeyStore, AForgottenKeyIsGoneEvenWhileAnotherSnapshotIsOpen) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresKeyStore keys(annals::testing::postgres_url(),
                        {.schema = schema,
                         .create_if_missing = true,
                         .scrub_timeout = std::chrono::milliseconds(500)});
  const annals::DataKey doomed = keys.key_for("account-doomed");
  const std::string table = "\"" + schema + "\".subject_keys";
  if (table_file(table).empty()) GTEST_SKIP() << "the server's data directory is not readable here";

  PGconn* other = PQconnectdb(annals::testing::postgres_url().c_str());
  ASSERT_EQ(PQstatus(other), CONNECTION_OK);
  PQclear(PQexec(other, "BEGIN ISOLATION LEVEL REPEATABLE READ"));
  PQclear(PQexec(other, "SELECT count(*) FROM pg_catalog.pg_class"));  // takes the snapshot

  // The snapshot could still see the key's row, which a rewrite would copy:
  // forget() destroys the key and says the rewrite is pending, naming who
  // holds the snapshot.
  try {
    keys.forget("account-doomed");
    ADD_FAILURE() << "forget() claimed a rewrite while an older snapshot was open";
  } catch (const annals::KeyScrubPending& e) {
    EXPECT_NE(std::string(e.what()).find("process " + std::to_string(PQbackendPID(other))),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(keys.find(doomed.key_id()).state, KeyState::forgotten);
  PQclear(PQexec(other, "COMMIT"));
  PQfinish(other);
  // Called again, it finishes the rewrite.
  EXPECT_FALSE(keys.forget("account-doomed"));
  EXPECT_EQ(table_file(table).find(bytes_of(doomed)), std::string::npos);
}

TEST(PostgresKeyStore, ErrorsShowNeitherPasswordsNorRows) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresKeyStore keys("postgresql://app:s3cr%ZZet@/postgres?host=/nonexistent", creating(schema));
  try {
    keys.key_for("account-1");
    ADD_FAILURE() << "a malformed connection string was used";
  } catch (const KeyStoreError& e) {
    EXPECT_EQ(std::string(e.what()).find("s3cr"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(value not shown)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(PostgresKeyStore(annals::testing::postgres_url(),
                                {.schema = schema, .scrub_timeout = std::chrono::milliseconds(0)}),
               annals::InvalidArgument);
  EXPECT_THROW(annals::scrub_postgres_table(annals::testing::postgres_url(), schema, "t",
                                            std::chrono::milliseconds(0)),
               annals::InvalidArgument);
}

// ANALYZE (autovacuum does it on its own once ~10% of rows change) copies
// sample values of every column, the 32-byte keys included, into
// pg_statistic; forget() leaves them there.
TEST(PostgresKeyStore, AForgottenKeyIsNotLeftInPgStatistic) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresKeyStore keys(annals::testing::postgres_url(), creating(schema));
  const annals::DataKey doomed = keys.key_for("account-doomed");
  for (int i = 0; i < 50; ++i) keys.key_for("account-" + std::to_string(i));
  const std::string table = "\"" + schema + "\".subject_keys";
  sql("ANALYZE " + table);
  const std::string hex =
      sql("SELECT encode(key, 'hex') FROM " + table + " WHERE subject = 'account-doomed'");
  ASSERT_EQ(hex.size(), 64U);
  ASSERT_TRUE(keys.forget("account-doomed"));
  EXPECT_EQ(sql("SELECT count(*) FROM pg_stats WHERE schemaname = '" + schema +
                "' AND tablename = 'subject_keys' AND (position('" + hex +
                "' in coalesce(histogram_bounds::text, '')) > 0 OR position('" + hex +
                "' in coalesce(most_common_vals::text, '')) > 0)"),
            "0")
      << "the forgotten key is still in pg_statistic (pg_stats.histogram_bounds)";
}

// The header promises: "reopened once when the server dropped it".
TEST(PostgresKeyStore, ReconnectsAfterTheServerTerminatedItsConnection) {
  const std::string schema = annals::testing::fresh_schema();
  PostgresKeyStore keys(annals::testing::postgres_url() + " application_name=review_ks",
                        creating(schema));
  const annals::DataKey key = keys.key_for("account-1");
  sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE application_name = 'review_ks'");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_NO_THROW(EXPECT_EQ(keys.find(key.key_id()).state, KeyState::present));
  // (The call after the failed one reconnects: one call per drop fails.)
  EXPECT_NO_THROW(EXPECT_EQ(keys.find(key.key_id()).state, KeyState::present));
}

}  // namespace
