// Export identity between the backends: a store exported from SQLite and
// imported into PostgreSQL verifies and exports again to the same bytes, and
// the other way round; the hash chain and the store id are the same on both.
// Imports into PostgreSQL refuse a store that is not empty and a tampered
// export, leaving the store as it was.

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/store/event_export.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "postgres/postgres_server.hpp"
#include "store/store_fixtures.hpp"

namespace {

[[maybe_unused]] ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new annals::testing::PostgresEnvironment);

using namespace annals;
using namespace annals::testing;

PostgresStoreOptions in_schema(const std::string& schema) {
  PostgresStoreOptions options;
  options.schema = schema;
  options.read_page_size = 5;
  return options;
}

// PostgresEventStore::import_events into the store in `schema`.
std::int64_t import_into_postgres(const std::string& schema, std::istream& in) {
  PostgresEventStore store(postgres_url(), in_schema(schema));
  return store.import_events(in);
}

// Events whose texts take every path of the export format: plain objects,
// nesting, escapes and non-ASCII text, and texts with line breaks or outer
// whitespace (written as "payload_text" / "metadata_text").
void append_varied(EventStore& store) {
  const std::vector<std::string> payloads = {
      R"({"amount":100})",
      R"({"nested":{"list":[1,2.5,"x",null,true],"deep":{"a":{"b":{}}}}})",
      "{\"quote\":\"\\\"\",\"unicode\":\"Grüße, 日本\",\"escape\":\"\\u0001\"}",
      "{\n  \"pretty\": true\n}",
      " {\"padded\":1} ",
      "{}"};
  int i = 0;
  for (const auto& payload : payloads) {
    for (const std::string stream : {"account-1", "account-2", "ledger/β"}) {
      EventData e;
      e.type = "bank.Moved";
      e.schema_version = 1 + i % 3;
      e.payload = payload;
      e.metadata = i % 4 == 0 ? "{\n\"correlation\":\"c-" + std::to_string(i) + "\"}"
                              : R"({"n":)" + std::to_string(i) + "}";
      store.append(stream, ExpectedVersion::any(), {e});
      ++i;
    }
  }
  std::vector<EventData> batch(3);
  for (auto& e : batch) {
    e.type = "bank.Batched";
    e.payload = R"({"batch":true})";
  }
  store.append("account-3", ExpectedVersion::no_stream(), batch);
}

std::string export_of(const EventStore& store) {
  std::ostringstream out;
  export_events(store, out);
  return out.str();
}

TEST(PostgresExport, AnSqliteExportImportedIntoPostgresVerifiesAndExportsToTheSameBytes) {
  TempDir dir;
  SqliteEventStore sqlite(dir / "source.db");
  append_varied(sqlite);
  const std::string exported = export_of(sqlite);

  const std::string schema = fresh_schema();
  std::istringstream in(exported);
  EXPECT_EQ(import_into_postgres(schema, in), sqlite.head_position());
  PostgresEventStore postgres(postgres_url(), in_schema(schema));
  const auto check = postgres.verify();
  EXPECT_TRUE(check.ok) << check.reason;
  EXPECT_EQ(postgres.store_id(), sqlite.store_id());
  EXPECT_EQ(export_of(postgres), exported);
  // The chain goes on from where SQLite left it: appends still verify.
  postgres.append("account-1", ExpectedVersion::any(), {EventData{"", "bank.After", 1, "{}", "{}"}});
  EXPECT_TRUE(postgres.verify().ok);
  EXPECT_EQ(postgres.stream_version("account-1"), 7);
}

TEST(PostgresExport, APostgresExportImportedIntoSqliteVerifiesAndExportsToTheSameBytes) {
  PostgresEventStore postgres(postgres_url(), in_schema(fresh_schema()));
  append_varied(postgres);
  const std::string exported = export_of(postgres);

  TempDir dir;
  std::istringstream in(exported);
  EXPECT_EQ(import_events(dir / "copy.db", in), postgres.head_position());
  SqliteEventStore sqlite(dir / "copy.db");
  const auto check = sqlite.verify();
  EXPECT_TRUE(check.ok) << check.reason;
  EXPECT_EQ(sqlite.store_id(), postgres.store_id());
  EXPECT_EQ(export_of(sqlite), exported);
  // And back into PostgreSQL: still the same bytes.
  const std::string schema = fresh_schema();
  std::istringstream again(export_of(sqlite));
  import_into_postgres(schema, again);
  EXPECT_EQ(export_of(PostgresEventStore(postgres_url(), in_schema(schema))), exported);
}

TEST(PostgresExport, ImportIntoAPostgresStoreThatHoldsEventsIsRefusedAndChangesNothing) {
  PostgresEventStore source(postgres_url(), in_schema(fresh_schema()));
  append_varied(source);
  const std::string schema = fresh_schema();
  PostgresEventStore target(postgres_url(), in_schema(schema));
  target.append("other", ExpectedVersion::no_stream(), {EventData{"", "x.Y", 1, "{}", "{}"}});
  const std::string before = export_of(target);
  std::istringstream in(export_of(source));
  try {
    import_into_postgres(schema, in);
    ADD_FAILURE() << "imported into a store that holds events";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("not empty"), std::string::npos) << e.what();
  }
  EXPECT_EQ(export_of(target), before);
}

TEST(PostgresExport, ATamperedExportIsRefusedNamingTheLineAndLeavesThePostgresStoreEmpty) {
  TempDir dir;
  SqliteEventStore sqlite(dir / "source.db");
  append_varied(sqlite);
  std::string exported = export_of(sqlite);
  const auto at = exported.find("\"amount\":100");
  ASSERT_NE(at, std::string::npos);
  exported.replace(at, 12, "\"amount\":900");  // the hash no longer matches
  const std::string schema = fresh_schema();
  std::istringstream in(exported);
  try {
    import_into_postgres(schema, in);
    ADD_FAILURE() << "imported a tampered export";
  } catch (const IntegrityError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
    EXPECT_EQ(e.position(), 1);
  }
  PostgresEventStore postgres(postgres_url(), in_schema(schema));
  EXPECT_EQ(postgres.head_position(), 0);
  EXPECT_EQ(postgres.read_all().next(), std::nullopt);
  EXPECT_NE(postgres.store_id(), sqlite.store_id());
}

}  // namespace

namespace {

TEST(PostgresExport, ASealOfAnSqliteStoreHoldsForItsCopyInPostgresAndBack) {
  TempDir dir;
  const auto key = SealKey::generate();
  Seal sealed;
  std::stringstream exported;
  {
    SqliteEventStore store(dir.path() / "a.db");
    append_varied(store);
    sealed = seal(store, &key);
    export_events(store, exported);
  }
  const std::string schema = fresh_schema();
  ASSERT_GT(import_into_postgres(schema, exported), 0);
  PostgresEventStore copy(postgres_url(), in_schema(schema));
  const auto checked = verify_seal(copy, sealed, &key);
  EXPECT_TRUE(checked.ok) << checked.reason;
  // A seal taken on PostgreSQL holds for the copy back in SQLite.
  EventData more;
  more.type = "test.More";
  copy.append("more", ExpectedVersion::any(), {more});
  const Seal again = seal(copy, &key);
  std::stringstream back;
  export_events(copy, back);
  const auto file = dir.path() / "b.db";
  import_events(file, back);
  SqliteEventStore sqlite_copy(file);
  const auto checked_back = verify_seal(sqlite_copy, again, &key);
  EXPECT_TRUE(checked_back.ok) << checked_back.reason;
}

}  // namespace
