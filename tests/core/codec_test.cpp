#include "annals/core/codec.hpp"

#include <gtest/gtest.h>

#include "annals/core/error.hpp"
#include "annals/core/event_id.hpp"

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

}  // namespace
}  // namespace annals
