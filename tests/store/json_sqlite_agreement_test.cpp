// What the store accepts as payload or metadata, checked against SQLite's own
// JSON parser: every text json_object_problem accepts must pass json_valid(),
// so that json_extract() over the events table (docs/store.md, ADR 0002) never
// fails because of one stored row. A property test over generated and mutated
// texts; fuzz/fuzz_json_object.cpp checks the same property on arbitrary bytes.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/event.hpp"
#include "annals/store/event_export.hpp"
#include "annals/core/internal/json_validation.hpp"
#include "store_fixtures.hpp"

namespace annals {
namespace {

// SELECT json_valid(?1) on an in-memory database.
class SqliteJson {
 public:
  SqliteJson() {
    if (sqlite3_open(":memory:", &db_) != SQLITE_OK ||
        sqlite3_prepare_v2(db_, "SELECT json_valid(?1)", -1, &st_, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sqlite3_errmsg(db_));
    }
  }
  ~SqliteJson() {
    sqlite3_finalize(st_);
    sqlite3_close(db_);
  }
  SqliteJson(const SqliteJson&) = delete;
  SqliteJson& operator=(const SqliteJson&) = delete;

  bool valid(std::string_view text) {
    sqlite3_reset(st_);
    sqlite3_bind_text64(st_, 1, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
    if (sqlite3_step(st_) != SQLITE_ROW) throw std::runtime_error(sqlite3_errmsg(db_));
    const bool ok = sqlite3_column_int(st_, 0) == 1;
    sqlite3_reset(st_);
    return ok;
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* st_ = nullptr;
};

// Random JSON objects, mostly valid, leaning towards the corners where parsers
// differ: escapes and surrogates, raw control and non-ASCII bytes, number
// forms, whitespace, nesting.
class Generator {
 public:
  explicit Generator(std::uint32_t seed) : rng_(seed) {}

  std::string object(int depth = 0) {
    std::string out = ws() + "{" + ws();
    const int members = pick(0, depth > 6 ? 1 : 4);
    for (int i = 0; i < members; ++i) {
      if (i > 0) out += "," + ws();
      out += string() + ws() + ":" + ws() + value(depth + 1) + ws();
    }
    return out + "}" + ws();
  }

  // A valid object with one to three changes that may make it invalid.
  std::string mutated() {
    std::string text = object();
    const int changes = pick(1, 3);
    for (int c = 0; c < changes; ++c) {
      // The ends of a text are where parsers skip or stop: one change in four goes there.
      std::size_t at = static_cast<std::size_t>(pick(0, int(text.size())));
      if (pick(0, 3) == 0) at = pick(0, 1) ? 0 : text.size();
      switch (pick(0, 4)) {
        case 0:
          text.insert(at, 1, static_cast<char>(pick(0, 255)));
          break;
        case 1:
          if (at < text.size()) text.erase(at, 1);
          break;
        case 2:
          if (at < text.size()) text[at] = static_cast<char>(pick(0, 255));
          break;
        default:
          text.insert(at, kTokens[static_cast<std::size_t>(pick(0, int(std::size(kTokens)) - 1))]);
          break;
      }
    }
    return text;
  }

 private:
  static constexpr std::string_view kTokens[] = {
      "\xEF\xBB\xBF", "\\ud800",  "\\udc00", "\\ud83d\\ude00", "\\u0000", "\x0c", "\x0b",
      "\xC2\xA0",     "\xE2\x80\xA8", "\x7F",  "\xED\xA0\x80",  "\xC0\x80", "\xF4\x90\x80\x80",
      "1e999",        "-0",       "1E+2",    "0.0e-0",  "NaN",  "Infinity", "+1", "0x1",
      ".5",           "//",       "/*x*/",   "'a'",     "\"",   "\\",       "[]", "{}",
      "[[[[[[",       "]]]]]]",   "\"\\u00e9\"", "true", "null", ",", ":"};

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  std::string ws() {
    static constexpr std::string_view kSpace[] = {"", "", "", " ", "\n", "\t", "\r\n", "  "};
    return std::string(kSpace[static_cast<std::size_t>(pick(0, int(std::size(kSpace)) - 1))]);
  }

  std::string string() {
    std::string out = "\"";
    const int n = pick(0, 6);
    for (int i = 0; i < n; ++i) {
      switch (pick(0, 7)) {
        case 0: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", pick(0, 0xFFFF));
          out += buf;
          break;
        }
        case 1:
          out += "\\ud83d\\ude00";
          break;
        case 2:
          out += "\\n\\t\\\"\\\\\\/\\b\\f\\r";
          break;
        case 3:
          out += "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // e-acute, euro, an emoji
          break;
        default:
          out += static_cast<char>(pick(0x20, 0x7E) == '"' ? 'q' : pick(0x20, 0x7E));
          if (out.back() == '\\') out += '\\';
          if (out.back() == '"') out.back() = 'q';
          break;
      }
    }
    return out + "\"";
  }

  std::string number() {
    std::string out = pick(0, 1) ? "-" : "";
    out += pick(0, 3) == 0 ? "0" : std::to_string(pick(1, 1'000'000));
    if (pick(0, 3) == 0) out += std::string(static_cast<std::size_t>(pick(1, 25)), '7');
    if (pick(0, 2) == 0) out += "." + std::to_string(pick(0, 99999));
    if (pick(0, 3) == 0) {
      out += pick(0, 1) ? "e" : "E";
      out += std::string_view("+-").substr(static_cast<std::size_t>(pick(0, 2)), 1);
      out += std::to_string(pick(0, 400));
    }
    return out;
  }

  std::string value(int depth) {
    switch (pick(0, depth > 8 ? 4 : 6)) {
      case 0:
        return string();
      case 1:
        return number();
      case 2:
        return std::string(std::string_view("truefalsenull").substr(0, 4));
      case 3:
        return pick(0, 1) ? "false" : "null";
      case 4:
        return "[]";
      case 5: {
        std::string out = "[" + ws();
        const int n = pick(0, 3);
        for (int i = 0; i < n; ++i) out += (i ? "," : "") + value(depth + 1);
        return out + ws() + "]";
      }
      default:
        return object(depth + 1);
    }
  }

  std::mt19937 rng_;
};

TEST(JsonSqliteAgreement, EveryTextTheValidatorAcceptsPassesSqliteJsonValid) {
  SqliteJson sqlite;
  Generator gen(20261130);
  int accepted = 0, refused = 0;
  for (int i = 0; i < 60'000; ++i) {
    const std::string text = i % 3 == 0 ? gen.object() : gen.mutated();
    const auto problem = json_object_problem(text);
    EXPECT_EQ(problem, detail::json_object_problem_nlohmann(text));
    if (problem) {
      ++refused;
      continue;
    }
    ++accepted;
    EXPECT_TRUE(sqlite.valid(text)) << "accepted, but json_valid() is 0: "
                                    << ::testing::PrintToString(text);
  }
  // Both sides of the property were exercised.
  EXPECT_GT(accepted, 10'000);
  EXPECT_GT(refused, 10'000);
}

TEST(JsonSqliteAgreement, TheCornersSqliteIsStricterAboutAreRefused) {
  SqliteJson sqlite;
  const std::string bom = "\xEF\xBB\xBF";
  for (const std::string& text : {bom + "{}", bom + R"({"a":1})", " " + bom + "{}"}) {
    EXPECT_FALSE(sqlite.valid(text)) << ::testing::PrintToString(text);
    ASSERT_TRUE(json_object_problem(text).has_value()) << ::testing::PrintToString(text);
  }
  // What both accept: the deepest nesting allowed, surrogate pairs, a big exponent.
  std::string deep;
  for (int i = 1; i < kMaxJsonDepth; ++i) deep += R"({"a":)";
  deep += "{}" + std::string(static_cast<std::size_t>(kMaxJsonDepth - 1), '}');
  for (const std::string& text :
       {deep, std::string(R"({"a":"\ud83d\ude00"})"), std::string(R"({"a":1e308})"),
        std::string(R"({"a":123456789012345678901234567890})")}) {
    EXPECT_EQ(json_object_problem(text), std::nullopt);
    EXPECT_TRUE(sqlite.valid(text));
  }
}

TEST(JsonSqliteAgreement, ImportOfAnExportLineWithABomIsRefusedNamingTheLine) {
  InMemoryEventStore source;
  source.append("a-1", ExpectedVersion::any(), {EventData{{}, "t.A", 1, R"({"n":1})", "{}"}});
  source.append("a-1", ExpectedVersion::any(), {EventData{{}, "t.A", 1, R"({"n":2})", "{}"}});
  std::ostringstream exported;
  export_events(source, exported);
  std::string text = exported.str();
  text.insert(text.find('\n') + 1, "\xEF\xBB\xBF");  // at the start of line 2
  std::istringstream in(text);
  testing::TempDir dir;
  try {
    import_events(dir / "copy.db", in);
    FAIL() << "a line starting with a BOM was imported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("byte order mark"), std::string::npos) << e.what();
  }
  SqliteStoreOptions read_only;
  read_only.read_only = true;
  EXPECT_EQ(SqliteEventStore(dir / "copy.db", read_only).head_position(), 0);
}

}  // namespace
}  // namespace annals
