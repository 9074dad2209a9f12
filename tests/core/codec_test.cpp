#include "annals/core/codec.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/event_id.hpp"
#include "annals/core/internal/json_validation.hpp"  // the nlohmann-only reference validator

namespace annals {
namespace {

struct Opened {
  static constexpr std::string_view type_name = "test.Opened";
  static constexpr int schema_version = 1;
  std::string owner;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Opened, owner)

// Version 3 of a deposit: v1 had "cents", v2 renamed it to "amount", v3 added "currency".
struct Deposited {
  static constexpr std::string_view type_name = "test.Deposited";
  static constexpr int schema_version = 3;
  std::int64_t amount = 0;
  std::string currency;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, amount, currency)

using Events = std::variant<Opened, Deposited>;

RecordedEvent recorded(const EventData& data) {
  RecordedEvent e;
  e.stream_id = "account-1";
  e.version = 1;
  e.position = 1;
  e.event_id = data.event_id;
  e.type = data.type;
  e.schema_version = data.schema_version;
  e.payload = data.payload;
  e.metadata = data.metadata;
  return e;
}

TEST(Codec, EncodeThenDecodePicksTheAlternativeByTypeName) {
  const EventData data = encode(Deposited{250, "EUR"}, {{"actor", "alice"}});
  EXPECT_EQ(data.type, "test.Deposited");
  EXPECT_EQ(data.schema_version, 3);
  EXPECT_EQ(Json::parse(data.metadata)["actor"], "alice");
  const Events decoded = decode<Events>(recorded(data));
  ASSERT_TRUE(std::holds_alternative<Deposited>(decoded));
  EXPECT_EQ(std::get<Deposited>(decoded).amount, 250);
  EXPECT_EQ(std::get<Deposited>(decoded).currency, "EUR");

  const Events opened = decode<Events>(recorded(encode(Opened{"Ada"})));
  EXPECT_EQ(std::get<Opened>(opened).owner, "Ada");
}

TEST(Codec, UnknownTypeThrowsNamingTypeStreamAndVersion) {
  RecordedEvent e = recorded(encode(Opened{"Ada"}));
  e.type = "test.Renamed";
  e.version = 7;
  try {
    decode<Events>(e);
    FAIL() << "decoded an unknown type";
  } catch (const UnknownEventType& err) {
    EXPECT_EQ(err.type(), "test.Renamed");
    EXPECT_EQ(err.stream_id(), "account-1");
    EXPECT_EQ(err.version(), 7);
  }
  EXPECT_FALSE(try_decode<Events>(e).has_value());
}

TEST(Codec, MismatchedSchemaVersionOrBadPayloadIsASerializationError) {
  RecordedEvent old = recorded(encode(Deposited{1, "EUR"}));
  old.schema_version = 1;
  EXPECT_THROW(decode<Events>(old), SerializationError);
  RecordedEvent bad = recorded(encode(Opened{"Ada"}));
  bad.payload = R"({"owner": 42})";
  EXPECT_THROW(decode<Events>(bad), SerializationError);
  bad.payload = "{not json";
  EXPECT_THROW(decode<Events>(bad), SerializationError);
}

TEST(Codec, UpcastersCarryVersionOneThroughToTheCurrentType) {
  UpcasterChain chain;
  chain.add("test.Deposited", 1, [](Json p) { return Json{{"amount", p.at("cents")}}; });
  chain.add("test.Deposited", 2, [](Json p) {
    p["currency"] = "EUR";
    return p;
  });
  RecordedEvent v1 = recorded(encode(Opened{"x"}));
  v1.type = "test.Deposited";
  v1.schema_version = 1;
  v1.payload = R"({"cents": 125})";
  const Events decoded = decode<Events>(v1, &chain);
  ASSERT_TRUE(std::holds_alternative<Deposited>(decoded));
  EXPECT_EQ(std::get<Deposited>(decoded).amount, 125);
  EXPECT_EQ(std::get<Deposited>(decoded).currency, "EUR");
}

TEST(Codec, UpcasterCanRenameAType) {
  UpcasterChain chain;
  chain.add("test.AccountCreated", 1, "test.Opened", [](Json p) { return p; });
  RecordedEvent old = recorded(encode(Opened{"Ada"}));
  old.type = "test.AccountCreated";
  old.schema_version = 1;
  // After the rename the event is at version 2, so Opened (v1) would reject it;
  // a second step brings the renamed type to what the decoder expects.
  EXPECT_THROW(decode<Events>(old, &chain), SerializationError);
}

TEST(Codec, UpcasterRegistrationAndFailuresAreReported) {
  UpcasterChain chain;
  chain.add("t", 1, [](Json p) { return p; });
  EXPECT_THROW(chain.add("t", 1, [](Json p) { return p; }), InvalidArgument);
  EXPECT_THROW(chain.add("t", 0, [](Json p) { return p; }), InvalidArgument);
  chain.add("t", 2, [](Json) -> Json { throw std::runtime_error("boom"); });
  std::string type = "t";
  int version = 1;
  Json payload = Json::object();
  try {
    chain.apply(type, version, payload);
    FAIL();
  } catch (const SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find("boom"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("schema version 2"), std::string::npos);
  }
  UpcasterChain not_object;
  not_object.add("t", 1, [](Json) { return Json::array(); });
  type = "t", version = 1, payload = Json::object();
  EXPECT_THROW(not_object.apply(type, version, payload), SerializationError);
}

TEST(Codec, FromJsonRejectsNonObjectsAndJsonValidationNamesTheInput) {
  EXPECT_THROW(EventData::from_json("t", Json::array()), InvalidArgument);
  EXPECT_THROW(EventData::from_json("t", Json::object(), Json(3)), InvalidArgument);
  EXPECT_NO_THROW(validate_json_object(R"({"a":[1,{"b":null}]})", "payload"));
  for (const char* bad : {"", "[]", "3", "{", R"({"a":1} x)", "{\"a\":\"\xff\"}", "null"}) {
    try {
      validate_json_object(bad, "payload of event 1");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("payload of event 1"), std::string::npos);
    }
  }
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_THROW(validate_json_object("{\"a\":" + deep + "}", "payload"), InvalidArgument);
}

// A complete value followed by a NUL byte and more: nlohmann's lexer stops at
// the NUL and would accept it; stored, the tail would reach every reader.
TEST(Codec, JsonValidationRefusesANulByteAfterAValueAndNamesItsOffset) {
  const std::string text("{\"a\":1}\0{\"b\":2}", 15);
  try {
    validate_json_object(text, "payload of event 1");
    ADD_FAILURE() << "accepted a NUL byte";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("payload of event 1 is not valid JSON: a NUL byte at offset 7"),
              std::string::npos)
        << e.what();
  }
}

// json_object_problem parses with simdjson first and leaves every text simdjson
// refuses to nlohmann; these tests hold it to the nlohmann-only reference.

// Both paths must give the same verdict and the same message; returns it.
std::optional<std::string> agreed_problem(std::string_view text) {
  const auto fast = json_object_problem(text);
  const auto reference = detail::json_object_problem_nlohmann(text);
  EXPECT_EQ(fast, reference) << "for text of " << text.size() << " bytes: "
                             << testing::PrintToString(std::string(text.substr(0, 80)));
  return fast;
}

// `levels` objects or arrays inside each other, the innermost holding a number
// or, with empty_innermost, nothing.
std::string nested(int levels, char open, bool empty_innermost) {
  const std::string_view opener = open == '{' ? R"({"a":)" : "[";
  const char closer = open == '{' ? '}' : ']';
  const int around = empty_innermost ? levels - 1 : levels;
  std::string text;
  for (int i = 0; i < around; ++i) text += opener;
  text += empty_innermost ? std::string{open, closer} : std::string("1");
  text.append(static_cast<std::size_t>(around), closer);
  return text;
}

TEST(JsonValidation, DepthLimitIsTheSameOnBothPathsForObjectsAndArrays) {
  for (const bool empty_innermost : {false, true}) {
    // Objects all the way down.
    EXPECT_EQ(agreed_problem(nested(kMaxJsonDepth, '{', empty_innermost)), std::nullopt);
    const auto too_deep = agreed_problem(nested(kMaxJsonDepth + 1, '{', empty_innermost));
    ASSERT_TRUE(too_deep.has_value());
    EXPECT_NE(too_deep->find("nested deeper than 512 levels"), std::string::npos) << *too_deep;

    // Arrays inside one object, and arrays alone (valid JSON, not an object).
    const std::string arrays_at_limit = nested(kMaxJsonDepth - 1, '[', empty_innermost);
    EXPECT_EQ(agreed_problem("{\"a\":" + arrays_at_limit + "}"), std::nullopt);
    const std::string arrays_over_limit = nested(kMaxJsonDepth, '[', empty_innermost);
    EXPECT_NE(agreed_problem("{\"a\":" + arrays_over_limit + "}"), std::nullopt);
    EXPECT_EQ(agreed_problem(nested(kMaxJsonDepth, '[', empty_innermost)), "must be a JSON object");
    EXPECT_NE(agreed_problem(nested(kMaxJsonDepth + 1, '[', empty_innermost))
                  .value_or("")
                  .find("nested deeper"),
              std::string::npos);
  }
}

TEST(JsonValidation, EdgeCasesGetTheSameVerdictAndMessageOnBothPaths) {
  using namespace std::string_literals;  // ""s keeps embedded NUL bytes
  struct Case {
    std::string text;
    bool accepted;
  };
  const std::vector<Case> cases = {
      // NUL bytes are never JSON: refused even after a complete value, where
      // nlohmann's lexer alone would stop reading and accept what came before.
      {"{\"a\":\"x\0y\"}"s, false},
      {"{\"a\":1}\0"s, false},
      {"{\"a\":1}\0trailing"s, false},
      {"\0{}"s, false},
      {"{\0}"s, false},
      // Surrogate escapes: only a high one followed by a low one is a character.
      {R"({"a":"\udc00"})", false},
      {R"({"a":"\ud800"})", false},
      {R"({"a":"\ud800x"})", false},
      {R"({"a":"\ud800\ud800"})", false},
      {R"({"a":"\ud800\u0041"})", false},
      {R"({"a":"\ud83d\ude00"})", true},
      {R"({"a":"\u0000"})", true},
      {R"({"a":"\uZZZZ"})", false},
      // Invalid UTF-8: stray byte, overlong, encoded surrogate, beyond U+10FFFF,
      // truncated sequence, outside a string.
      {"{\"a\":\"\xff\"}", false},
      {"{\"a\":\"\xc0\xaf\"}", false},
      {"{\"a\":\"\xed\xa0\x80\"}", false},
      {"{\"a\":\"\xf4\x90\x80\x80\"}", false},
      {"{\"a\":\"\xe2\x82\"}", false},
      {"{\"a\":1}\xff", false},
      {"{\"\xff\":1}", false},
      {"{\"a\":\"\xf4\x8f\xbf\xbf\xef\xbf\xbf\"}", true},  // U+10FFFF, U+FFFF
      // Control characters must be escaped inside strings; DEL need not be.
      {"{\"a\":\"\x01\"}", false},
      {"{\"a\":\"\t\"}", false},
      {"{\"a\":\"\x1f\"}", false},
      {"{\"a\":\"\x7f\"}", true},
      {"\f{}", false},
      // Numbers: overflow is refused, underflow to zero is not; integers beyond
      // 64 bits are doubles to nlohmann (simdjson refuses them: fallback).
      {R"({"a":1e400})", false},
      {R"({"a":-1e400})", false},
      {R"({"a":1e-400})", true},
      {R"({"a":-1e-400})", true},
      {R"({"a":1.7976931348623157e308})", true},
      {R"({"a":1.7976931348623159e308})", false},
      {R"({"a":18446744073709551615})", true},
      {R"({"a":18446744073709551616})", true},
      {R"({"a":-9223372036854775809})", true},
      {"{\"a\":1" + std::string(400, '0') + "}", false},
      {R"({"a":1.000000000000000000000000000000000001})", true},
      {R"({"a":-0})", true},
      {R"({"a":01})", false},
      {R"({"a":1.})", false},
      {R"({"a":.5})", false},
      {R"({"a":-})", false},
      {R"({"a":1e})", false},
      {R"({"a":NaN})", false},
      // Structure: trailing garbage, empty and blank input, duplicates, BOM.
      {R"({"a":1} x)", false},
      {"{}{}", false},
      {"{},", false},
      {"{} \n\t\r", true},
      {"", false},
      {" \n\t\r ", false},
      {R"({"a":1,"a":2})", true},
      {"\xef\xbb\xbf{}", false},  // a UTF-8 BOM: SQLite's json_valid() refuses it
      {R"({"a":1,})", false},
      {R"({'a':1})", false},
      {"{}/**/", false},
      {R"({"a":tru})", false},
      {R"({"a":truex})", false},
      {R"({1:2})", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(!agreed_problem(c.text).has_value(), c.accepted) << testing::PrintToString(c.text);
  }
}

TEST(JsonValidation, ValidTextWhoseRootIsNotAnObjectIsRefusedAlike) {
  for (const char* text : {"[1,2]", "[]", "3", "\"x\"", "null", "true", "[{\"a\":1}]"}) {
    EXPECT_EQ(agreed_problem(text), "must be a JSON object") << text;
  }
}

TEST(JsonValidation, TextBeyondTheFastPathLimitIsJudgedTheSame) {
  std::string big = R"({"a":[)";
  while (big.size() <= detail::kJsonFastPathLimit) big += R"({"k":"value","n":12345},)";
  big += "1]}";
  ASSERT_GT(big.size(), detail::kJsonFastPathLimit);
  EXPECT_EQ(agreed_problem(big), std::nullopt);

  std::string bad = big;
  bad.insert(bad.size() - 3, "\xff");  // invalid UTF-8 near the end, outside a string
  const auto problem = agreed_problem(bad);
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->rfind("is not valid JSON: ", 0), 0u) << *problem;

  EXPECT_EQ(agreed_problem("[" + big + "]"), "must be a JSON object");
}

TEST(JsonValidation, ConcurrentCallersEachGetTheirOwnVerdicts) {
  // Each thread has its own parser; interleaved valid and invalid texts of
  // different sizes must not leak a verdict from one call into another.
  std::vector<std::thread> threads;
  std::vector<int> mistakes(4, 0);
  for (std::size_t t = 0; t < mistakes.size(); ++t) {
    threads.emplace_back([t, &mistakes] {
      const std::string valid =
          "{\"thread\":" + std::to_string(t) + ",\"pad\":\"" + std::string(100 * t, 'x') + "\"}";
      const std::string invalid = valid.substr(0, valid.size() - 1);
      for (int i = 0; i < 2000; ++i) {
        if (json_object_problem(valid).has_value()) ++mistakes[t];
        if (!json_object_problem(invalid).has_value()) ++mistakes[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const int m : mistakes) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace annals
