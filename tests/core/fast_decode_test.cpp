// The fast decode path (ANNALS_EVENT_FIELDS, docs/adr/0006-typed-decode-fast-path.md)
// against the nlohmann path it must agree with: the same struct declared once
// with ANNALS_EVENT_FIELDS and once with NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE,
// under the same type name, decodes every payload to the same value or fails
// with the same SerializationError message.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "annals/core/codec.hpp"
#include "annals/core/error.hpp"

namespace annals {
namespace {

#define ANNALS_TEST_EVENT_BODY                                        \
  static constexpr std::string_view type_name = "test.Everything";    \
  static constexpr int schema_version = 2;                            \
  bool flag = false;                                                  \
  int count = 0;                                                      \
  std::int64_t amount = 0;                                            \
  std::uint64_t big = 0;                                              \
  std::uint32_t small = 0;                                            \
  std::int16_t tiny = 0;                                              \
  double ratio = 0;                                                   \
  float rough = 0;                                                    \
  std::string text;

struct FastEverything {
  ANNALS_TEST_EVENT_BODY
};
ANNALS_EVENT_FIELDS(FastEverything, flag, count, amount, big, small, tiny, ratio, rough, text)

struct SlowEverything {
  ANNALS_TEST_EVENT_BODY
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SlowEverything, flag, count, amount, big, small, tiny, ratio,
                                   rough, text)

static_assert(detail::FastDecodable<FastEverything>);
static_assert(!detail::FastDecodable<SlowEverything>);

// A field the fast path does not read (a vector, a nested struct): the type
// still declares itself with ANNALS_EVENT_FIELDS and decodes through nlohmann.
struct Line {
  std::string sku;
  int quantity = 0;
};
ANNALS_EVENT_FIELDS(Line, sku, quantity)

struct Ordered {
  static constexpr std::string_view type_name = "test.Ordered";
  static constexpr int schema_version = 1;
  std::vector<Line> lines;
  std::string customer;
};
ANNALS_EVENT_FIELDS(Ordered, lines, customer)
static_assert(!detail::FastDecodable<Ordered>);

// An event with no fields: no to_json/from_json anywhere.
struct Closed {
  static constexpr std::string_view type_name = "test.Closed";
  static constexpr int schema_version = 1;
};
static_assert(TypedEvent<Closed>);

using FastEvents = std::variant<FastEverything, Ordered, Closed>;
using SlowEvents = std::variant<SlowEverything>;

RecordedEvent stored(std::string type, int schema_version, std::string payload) {
  RecordedEvent e;
  e.stream_id = "account-1";
  e.version = 4;
  e.position = 9;
  e.type = std::move(type);
  e.schema_version = schema_version;
  e.payload = std::move(payload);
  e.metadata = "{}";
  return e;
}

RecordedEvent everything(std::string payload) {
  return stored("test.Everything", 2, std::move(payload));
}

Json as_json(const FastEverything& e) { return e; }
Json as_json(const SlowEverything& e) { return e; }

// Decodes `payload` both ways; both must give the same value (compared as
// JSON and, for the floating fields, bit for bit) or the same error message.
void expect_same_decoding(const std::string& payload) {
  SCOPED_TRACE(payload);
  const RecordedEvent event = everything(payload);
  std::string fast_error;
  std::string slow_error;
  std::optional<FastEverything> fast;
  std::optional<SlowEverything> slow;
  try {
    fast = std::get<FastEverything>(decode<FastEvents>(event));
  } catch (const SerializationError& e) {
    fast_error = e.what();
  }
  try {
    slow = std::get<SlowEverything>(decode<SlowEvents>(event));
  } catch (const SerializationError& e) {
    slow_error = e.what();
  }
  EXPECT_EQ(fast_error, slow_error);
  ASSERT_EQ(fast.has_value(), slow.has_value());
  if (fast) {
    EXPECT_EQ(as_json(*fast), as_json(*slow));
    EXPECT_EQ(std::signbit(fast->ratio), std::signbit(slow->ratio));
    EXPECT_EQ(fast->text, slow->text);
  }
}

const std::string kPlain =
    R"({"flag":true,"count":-7,"amount":9007199254740993,"big":18446744073709551615,)"
    R"("small":4000000000,"tiny":-300,"ratio":0.1,"rough":2.5,"text":"EUR"})";

bool fast_path_takes(const std::string& payload) {
  FastEverything out;
  return detail::fast_decode(payload, out);
}

TEST(FastDecode, EveryFieldTypeReadsStraightIntoTheStructAsNlohmannWould) {
  EXPECT_TRUE(fast_path_takes(kPlain));
  expect_same_decoding(kPlain);
  const auto e = std::get<FastEverything>(decode<FastEvents>(everything(kPlain)));
  EXPECT_TRUE(e.flag);
  EXPECT_EQ(e.count, -7);
  EXPECT_EQ(e.amount, 9007199254740993);
  EXPECT_EQ(e.big, 18446744073709551615u);
  EXPECT_EQ(e.small, 4000000000u);
  EXPECT_EQ(e.tiny, -300);
  EXPECT_EQ(e.ratio, 0.1);
  EXPECT_EQ(e.rough, 2.5f);
  EXPECT_EQ(e.text, "EUR");
}

// nlohmann's own conversion of such a number is undefined behaviour (found by
// fuzz_fast_decode under UBSan), so decode refuses it before converting.
TEST(FastDecode, AnIntegerFieldHoldingANumberBeyondItsRangeIsASerializationErrorNamingIt) {
  for (const auto& [field, value] : std::vector<std::pair<std::string, std::string>>{
           {"big", "18446744703709551615"}, {"big", "-1.5"}, {"amount", "1e300"},
           {"count", "3e9"}, {"tiny", "-40000.0"}, {"small", "4.3e9"}}) {
    std::string payload = kPlain;
    const std::string key = "\"" + field + "\":";
    const auto at = payload.find(key) + key.size();
    payload.replace(at, payload.find_first_of(",}", at) - at, value);
    SCOPED_TRACE(payload);
    try {
      (void)decode<FastEvents>(everything(payload));
      FAIL() << "decoded " << field << " = " << value;
    } catch (const SerializationError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("field '" + field + "'"), std::string::npos) << what;
      EXPECT_NE(what.find("outside the range of its integer type"), std::string::npos) << what;
    }
  }
  // In range, a fraction still truncates as nlohmann's conversion does.
  std::string payload = kPlain;
  payload.replace(payload.find("-7"), 2, "-7.9");
  EXPECT_EQ(std::get<FastEverything>(decode<FastEvents>(everything(payload))).count, -7);
}

TEST(FastDecode, AMissingFieldIsASerializationErrorNamingTypeAndField) {
  const std::string payload =
      R"({"flag":true,"count":1,"amount":2,"big":3,"small":4,"tiny":5,"ratio":6,"rough":7})";
  EXPECT_FALSE(fast_path_takes(payload));
  expect_same_decoding(payload);
  try {
    (void)decode<FastEvents>(everything(payload));
    FAIL() << "decoded a payload without 'text'";
  } catch (const SerializationError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("test.Everything"), std::string::npos) << what;
    EXPECT_NE(what.find("text"), std::string::npos) << what;
    EXPECT_NE(what.find("account-1"), std::string::npos) << what;
  }
}

TEST(FastDecode, WrongTypesGiveTheNlohmannResultOrError) {
  // Each replaces one member of kPlain's object: values nlohmann converts
  // (a fraction into an int, a bool into a number, an integer into a double)
  // and ones it refuses (a string into an int, a number into a string, null).
  const std::vector<std::pair<std::string, std::string>> swaps = {
      {R"("count":-7)", R"("count":"7")"},     {R"("count":-7)", R"("count":1.9)"},
      {R"("count":-7)", R"("count":true)"},    {R"("count":-7)", R"("count":null)"},
      {R"("count":-7)", R"("count":[1])"},     {R"("count":-7)", R"("count":{"a":1})"},
      {R"("text":"EUR")", R"("text":42)"},     {R"("text":"EUR")", R"("text":null)"},
      {R"("text":"EUR")", R"("text":["EUR"])"}, {R"("flag":true)", R"("flag":1)"},
      {R"("flag":true)", R"("flag":"true")"},  {R"("ratio":0.1)", R"("ratio":3)"},
      {R"("ratio":0.1)", R"("ratio":-0)"},     {R"("ratio":0.1)", R"("ratio":-0.0)"},
      {R"("ratio":0.1)", R"("ratio":100000000000000000000)"},
      {R"("ratio":0.1)", R"("ratio":1e400)"},  {R"("ratio":0.1)", R"("ratio":"0.1")"},
      {R"("tiny":-300)", R"("tiny":70000)"},   {R"("tiny":-300)", R"("tiny":-40000)"},
      {R"("small":4000000000)", R"("small":-1)"},
      {R"("small":4000000000)", R"("small":5000000000)"},
      {R"("big":18446744073709551615)", R"("big":-5)"},
      {R"("amount":9007199254740993)", R"("amount":18446744073709551615)"},
      {R"("rough":2.5)", R"("rough":1e300)"},
  };
  for (const auto& [from, to] : swaps) {
    std::string payload = kPlain;
    payload.replace(payload.find(from), from.size(), to);
    expect_same_decoding(payload);
  }
}

TEST(FastDecode, ExtraFieldsOfAnyKindAreIgnoredAsNlohmannIgnoresThem) {
  std::string payload = kPlain;
  payload.insert(1, R"("extra":{"deep":[1,2,{"x":null}]},"more":[],"n":1.5e3,)");
  EXPECT_TRUE(fast_path_takes(payload));
  expect_same_decoding(payload);
}

TEST(FastDecode, UnicodeEscapesInValuesAndKeysAreDecodedAlike) {
  std::string payload = kPlain;
  const std::string eur = R"("text":"EUR")";
  payload.replace(payload.find(eur), eur.size(),
                  R"("t\u0065xt":"\u00e9t\u00e9 \ud83d\ude00 \"q\" \\ \/ \n\t \u0000 end")");
  EXPECT_TRUE(fast_path_takes(payload));
  expect_same_decoding(payload);
  const auto e = std::get<FastEverything>(decode<FastEvents>(everything(payload)));
  EXPECT_EQ(e.text, std::string("\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80 \"q\" \\ / \n\t ") +
                        std::string(1, '\0') + " end");
  // A lone surrogate is invalid to both parsers.
  std::string lone = kPlain;
  lone.replace(lone.find(eur), eur.size(), R"("text":"\ud83d")");
  expect_same_decoding(lone);
}

TEST(FastDecode, ARepeatedKeyTakesItsLastValueAsNlohmannDoes) {
  std::string payload = kPlain;
  payload.insert(1, R"("text":"first","count":"not a number",)");
  expect_same_decoding(payload);
  std::string last_bad = kPlain;
  last_bad.insert(last_bad.size() - 1, R"(,"count":"not a number")");
  expect_same_decoding(last_bad);
  std::string both_good = kPlain;
  both_good.insert(both_good.size() - 1, R"(,"count":12)");
  EXPECT_TRUE(fast_path_takes(both_good));
  EXPECT_EQ(std::get<FastEverything>(decode<FastEvents>(everything(both_good))).count, 12);
}

TEST(FastDecode, MalformedOrNonObjectPayloadsGiveTheSameSerializationError) {
  const std::vector<std::string> payloads = {
      "",         "{",          "[]",          "null",     "42",         "\"text\"",
      kPlain + "x", kPlain + " {}", "\xEF\xBB\xBF" + kPlain, "{\"text\":\"\xFF\"}",
      std::string(600, '[') + std::string(600, ']'),
      "{\"a\":" + std::string(511, '[') + std::string(511, ']') + "}",
      "{\"a\":" + std::string(513, '[') + std::string(513, ']') + "}",
      std::string("{\"text\":\"a\"}\0garbage", 21),
  };
  for (const std::string& p : payloads) {
    EXPECT_FALSE(fast_path_takes(p)) << p.substr(0, 40);
    expect_same_decoding(p);
  }
}

TEST(FastDecode, PayloadsBeyondSixteenKibTakeTheNlohmannPathWithTheSameResult) {
  std::string payload = kPlain;
  payload.insert(1, "\"pad\":\"" + std::string(20000, 'p') + "\",");
  EXPECT_FALSE(fast_path_takes(payload));
  expect_same_decoding(payload);
  EXPECT_EQ(std::get<FastEverything>(decode<FastEvents>(everything(payload))).text, "EUR");
}

TEST(FastDecode, UpcastedEventsStillDecodeThroughTheChain) {
  UpcasterChain chain;
  chain.add("test.Everything", 1, [](Json p) {
    p["text"] = p.at("label");
    p.erase("label");
    return p;
  });
  EXPECT_TRUE(chain.has_step("test.Everything", 1));
  EXPECT_FALSE(chain.has_step("test.Everything", 2));
  EXPECT_FALSE(chain.has_step("test.Other", 1));
  std::string v1 = kPlain;
  v1.replace(v1.find(R"("text")"), 6, R"("label")");
  const RecordedEvent old = stored("test.Everything", 1, v1);
  const auto e = std::get<FastEverything>(decode<FastEvents>(old, &chain));
  EXPECT_EQ(e.text, "EUR");
  EXPECT_EQ(e.count, -7);
  // Without the chain the stored version does not match the type's.
  EXPECT_THROW((void)decode<FastEvents>(old), SerializationError);
  // A current event with a chain registered for other versions takes the fast path.
  EXPECT_EQ(std::get<FastEverything>(decode<FastEvents>(everything(kPlain), &chain)).count, -7);
}

TEST(FastDecode, FieldsTheFastPathDoesNotReadDecodeThroughNlohmann) {
  const EventData data = encode(Ordered{{{"apple", 2}, {"pear", 1}}, "ada"});
  const auto e = std::get<Ordered>(decode<FastEvents>(stored(data.type, 1, data.payload)));
  ASSERT_EQ(e.lines.size(), 2u);
  EXPECT_EQ(e.lines[1].sku, "pear");
  EXPECT_EQ(e.customer, "ada");
  EXPECT_THROW((void)decode<FastEvents>(stored("test.Ordered", 1, R"({"lines":[{"sku":1}]})")),
               SerializationError);
}

TEST(FastDecode, AnEventWithoutFieldsNeedsNoConversionsAndAcceptsAnyObject) {
  const EventData data = encode(Closed{});
  EXPECT_EQ(data.payload, "{}");
  EXPECT_TRUE(std::holds_alternative<Closed>(decode<FastEvents>(stored("test.Closed", 1, "{}"))));
  EXPECT_TRUE(std::holds_alternative<Closed>(
      decode<FastEvents>(stored("test.Closed", 1, R"({"reason":"moved","at":[1]})"))));
  EXPECT_THROW((void)decode<FastEvents>(stored("test.Closed", 1, "[]")), SerializationError);
  EXPECT_THROW((void)decode<FastEvents>(stored("test.Closed", 1, "{")), SerializationError);
  EXPECT_THROW((void)decode<FastEvents>(stored("test.Closed", 2, "{}")), SerializationError);
}

TEST(FastDecode, AnUnknownTypeStillReturnsNothingAndABadPayloadStillThrows) {
  EXPECT_FALSE(try_decode<FastEvents>(stored("test.Unknown", 1, "{}")).has_value());
  EXPECT_THROW((void)try_decode<FastEvents>(stored("test.Unknown", 1, "{")), SerializationError);
}

}  // namespace
}  // namespace annals
