// The JSON Lines export format of annals/store/event_export.hpp: canonical
// lines, lossless round trips, and refusal of bad lines with their line number.

#include "annals/store/event_export.hpp"

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "store/store_fixtures.hpp"

namespace annals {
namespace {

using testing::TempDir;

SqliteStoreOptions fast() {
  SqliteStoreOptions o;
  o.synchronous = Synchronous::normal;
  o.clock = std::make_shared<ManualClock>(parse_timestamp("2026-03-01T12:00:00.123456Z"));
  return o;
}

EventData data(std::string type, std::string payload, std::string metadata = "{}") {
  EventData d;
  d.type = std::move(type);
  d.payload = std::move(payload);
  d.metadata = std::move(metadata);
  return d;
}

// A store with awkward content: several streams, an event of schema 2,
// payloads with unicode escapes, nested arrays, whitespace and a newline.
void fill(SqliteEventStore& store) {
  store.append("account-1", ExpectedVersion::no_stream(),
               {data("bank.Opened", R"({"owner":"Ad\u00e9","tags":[1,[2,{"x":null}]]})",
                     R"({"actor":"clerk","correlation_id":"c-1"})"),
                data("bank.Deposited", R"({"amount":1.50e2})")});
  store.append("account-2", ExpectedVersion::any(),
               {data("bank.Opened", "{ \"owner\" : \"Bob\" }")});
  auto odd = data("bank.Note", "{\n  \"text\": \"two\\nlines\"\n}", " {} ");
  odd.schema_version = 2;
  store.append("account-1", ExpectedVersion::exactly(2), {odd});
  store.append("audit", ExpectedVersion::any(), {data("audit.Checked", "{}")});
}

std::string export_of(const std::filesystem::path& file) {
  SqliteEventStore store(file, fast());
  std::ostringstream out;
  export_events(store, out);
  return out.str();
}

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(EventExport, ALineHasEveryFieldInCanonicalOrderWithPayloadBytesEmbedded) {
  RecordedEvent e;
  e.position = 7;
  e.stream_id = "account-1";
  e.version = 3;
  e.event_id = "01890a5d-ac96-774b-bcce-b302099a8057";
  e.type = "bank.Deposited";
  e.schema_version = 2;
  e.payload = R"({"amount": 1.0})";
  e.metadata = R"({"actor":"Z\u00fc"})";
  e.recorded_at = parse_timestamp("2026-03-01T12:00:00.000001Z");
  e.hash.fill(0xAB);
  EXPECT_EQ(to_export_line(e),
            R"({"position":7,"stream_id":"account-1","version":3,)"
            R"("event_id":"01890a5d-ac96-774b-bcce-b302099a8057","type":"bank.Deposited",)"
            R"("schema_version":2,"recorded_at":"2026-03-01T12:00:00.000001Z",)"
            R"("payload":{"amount": 1.0},"metadata":{"actor":"Z\u00fc"},"hash":")" +
                [] {
                  std::string hex;
                  for (int i = 0; i < 32; ++i) hex += "ab";
                  return hex;
                }() + "\"}");
}

TEST(EventExport, ParsingALineGivesBackTheEventAndWritingItGivesTheSameBytes) {
  TempDir dir;
  {
    SqliteEventStore store(dir / "a.db", fast());
    fill(store);
  }
  SqliteEventStore store(dir / "a.db", fast());
  int n = 0;
  for (const RecordedEvent& e : store.read_all()) {
    const std::string line = to_export_line(e);
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    const RecordedEvent back = parse_export_line(line, ++n);
    EXPECT_EQ(back.position, e.position);
    EXPECT_EQ(back.stream_id, e.stream_id);
    EXPECT_EQ(back.version, e.version);
    EXPECT_EQ(back.event_id, e.event_id);
    EXPECT_EQ(back.type, e.type);
    EXPECT_EQ(back.schema_version, e.schema_version);
    EXPECT_EQ(back.payload, e.payload);
    EXPECT_EQ(back.metadata, e.metadata);
    EXPECT_EQ(back.recorded_at, e.recorded_at);
    EXPECT_EQ(back.hash, e.hash);
    EXPECT_EQ(to_export_line(back), line);
  }
  EXPECT_EQ(n, 5);
}

TEST(EventExport, ExportImportExportIsByteIdenticalAndTheCopyVerifies) {
  TempDir dir;
  {
    SqliteEventStore store(dir / "a.db", fast());
    fill(store);
  }
  const std::string first = export_of(dir / "a.db");
  ASSERT_EQ(std::count(first.begin(), first.end(), '\n'), 6) << "a header and 5 events";
  std::istringstream in(first);
  EXPECT_EQ(import_events(dir / "copy.db", in), 5);
  EXPECT_EQ(export_of(dir / "copy.db"), first);
  SqliteEventStore copy(dir / "copy.db", fast());
  const VerifyResult v = copy.verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.events_checked, 5);
  EXPECT_EQ(copy.stream_version("account-1"), 3);
  // The copy keeps taking appends after the imported history.
  copy.append("account-2", ExpectedVersion::exactly(1), {data("bank.Closed", "{}")});
  EXPECT_TRUE(copy.verify().ok);
}

TEST(EventExport, AnEmptyStoreExportsOnlyItsHeaderAndImportsNothing) {
  TempDir dir;
  const std::string header = export_of(dir / "empty.db");
  EXPECT_EQ(std::count(header.begin(), header.end(), '\n'), 1) << "the header alone: " << header;
  EXPECT_TRUE(header.starts_with("{\"annals_export\":1,")) << header;
  std::istringstream in("");
  EXPECT_EQ(import_events(dir / "copy.db", in), 0);
  std::istringstream header_only(header);
  EXPECT_EQ(import_events(dir / "copy2.db", header_only), 0);
}

TEST(EventExport, ImportIntoANonEmptyStoreIsRefusedAndAddsNothing) {
  TempDir dir;
  {
    SqliteEventStore store(dir / "a.db", fast());
    fill(store);
  }
  const std::string dump = export_of(dir / "a.db");
  {
    SqliteEventStore target(dir / "b.db", fast());
    target.append("x-1", ExpectedVersion::any(), {data("t.T", "{}")});
  }
  std::istringstream in(dump);
  try {
    import_events(dir / "b.db", in);
    ADD_FAILURE() << "imported into a non-empty store";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("not empty"), std::string::npos) << e.what();
  }
  SqliteEventStore target(dir / "b.db", fast());
  EXPECT_EQ(target.head_position(), 1);
}

// Imports `dump` into a fresh store and expects `E` with `needle` in its
// message; the store must hold no event afterwards.
template <class E>
void expect_import_refused(const std::string& dump, const std::string& needle) {
  TempDir dir;
  std::istringstream in(dump);
  try {
    import_events(dir / "t.db", in);
    ADD_FAILURE() << "imported: " << dump;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
  SqliteEventStore store(dir / "t.db", fast());
  EXPECT_EQ(store.head_position(), 0) << "a failed import left events behind";
}

class EventImportBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    {
      SqliteEventStore store(dir_ / "a.db", fast());
      fill(store);
    }
    std::istringstream in(export_of(dir_ / "a.db"));
    for (std::string line; std::getline(in, line);) lines_.push_back(line);
    // The event lines alone, as an export without a header (the store id)
    // has them: line numbers below count events.
    ASSERT_EQ(lines_.size(), 6u);
    lines_.erase(lines_.begin());
    ASSERT_EQ(lines_.size(), 5u);
  }
  std::string joined() const {
    std::string out;
    for (const auto& l : lines_) out += l + "\n";
    return out;
  }
  void replace(std::size_t index, const std::string& from, const std::string& to) {
    const auto at = lines_[index].find(from);
    ASSERT_NE(at, std::string::npos) << from << " in " << lines_[index];
    lines_[index].replace(at, from.size(), to);
  }
  TempDir dir_;
  std::vector<std::string> lines_;
};

TEST_F(EventImportBadInput, ATamperedPayloadFailsTheHashCheckNamingTheLine) {
  replace(1, "1.50e2", "1.51e2");
  try {
    std::istringstream in(joined());
    TempDir dir;
    import_events(dir / "t.db", in);
    ADD_FAILURE() << "imported a tampered export";
  } catch (const IntegrityError& e) {
    EXPECT_EQ(e.position(), 2);
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  expect_import_refused<IntegrityError>(joined(), "line 2");
}

TEST_F(EventImportBadInput, ALineThatIsNotJsonIsRefusedNamingTheLine) {
  lines_[2] = "{\"position\":3,";
  expect_import_refused<SerializationError>(joined(), "line 3");
}

TEST_F(EventImportBadInput, AMissingFieldIsRefusedNamingTheLineAndField) {
  replace(3, R"("type":"bank.Note",)", "");
  expect_import_refused<InvalidArgument>(joined(), "line 4: field 'type' is missing");
}

TEST_F(EventImportBadInput, AFieldOfTheWrongTypeIsRefusedNamingIt) {
  replace(0, R"("version":1,)", R"("version":"1",)");
  expect_import_refused<InvalidArgument>(joined(), "line 1: field 'version' must be an integer");
}

TEST_F(EventImportBadInput, AnUnknownOrRepeatedFieldIsRefused) {
  replace(0, R"("version":1,)", R"("version":1,"colour":"red",)");
  expect_import_refused<InvalidArgument>(joined(), "line 1: unknown field 'colour'");
  replace(0, R"("colour":"red",)", R"("version":1,)");
  expect_import_refused<InvalidArgument>(joined(), "field 'version' appears more than once");
}

TEST_F(EventImportBadInput, AGapInPositionsIsRefused) {
  lines_.erase(lines_.begin() + 1);
  expect_import_refused<InvalidArgument>(joined(), "line 2: field 'position' is 3, expected 2");
}

TEST_F(EventImportBadInput, AnInvalidEventIdOrTimestampIsRefused) {
  replace(0, R"("event_id":")", R"("event_id":"x)");
  expect_import_refused<InvalidArgument>(joined(), "line 1: field 'event_id'");
  replace(0, R"("event_id":"x)", R"("event_id":")");
  replace(4, R"("recorded_at":"2026)", R"("recorded_at":"yesterday 2026)");
  expect_import_refused<InvalidArgument>(joined(), "line 5: field 'recorded_at' is invalid");
}

TEST_F(EventImportBadInput, AnEmptyLineIsRefusedNamingIt) {
  lines_.insert(lines_.begin() + 2, "");
  expect_import_refused<SerializationError>(joined(), "line 3");
}

TEST(EventExportLimits, TooDeepOrTooLongLinesAreRefused) {
  const std::string deep = "{\"payload\":" + std::string(300, '[') + std::string(300, ']') + "}";
  try {
    parse_export_line(deep, 9);
    ADD_FAILURE() << "accepted 300 levels";
  } catch (const SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find("line 9"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("deeper"), std::string::npos) << e.what();
  }
  ExportLineLimits small;
  small.max_line_bytes = 10;
  EXPECT_THROW(parse_export_line("{\"position\":1}", 1, small), SerializationError);
  EXPECT_THROW(parse_export_line("[1,2]", 1), SerializationError);
  EXPECT_THROW(parse_export_line("", 1), SerializationError);
}

TEST(EventExportFiles, ImportIntoAFileThatIsNotAStoreLeavesItUntouched) {
  TempDir dir;
  const auto path = dir / "notes.txt";
  std::ofstream(path) << "hello, not a database\n" << std::string(2000, 'x');
  const std::string before = file_bytes(path);
  std::istringstream in("");
  EXPECT_THROW(import_events(path, in), StorageError);
  EXPECT_EQ(file_bytes(path), before);
}

}  // namespace
}  // namespace annals
