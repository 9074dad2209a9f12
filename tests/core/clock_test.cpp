#include "annals/core/clock.hpp"

#include <gtest/gtest.h>

#include "annals/core/error.hpp"

namespace annals {
namespace {

using namespace std::chrono;

TEST(Clock, FormatsAndParsesIsoTimesRoundTrip) {
  const Timestamp t = parse_timestamp("2026-03-01T12:34:56.123456Z");
  EXPECT_EQ(format_timestamp(t), "2026-03-01T12:34:56.123456Z");
  EXPECT_EQ(parse_timestamp(format_timestamp(t)), t);
  EXPECT_EQ(parse_timestamp("2026-03-01"), parse_timestamp("2026-03-01T00:00:00Z"));
  EXPECT_EQ(parse_timestamp("2026-03-01T13:00:00+01:00"), parse_timestamp("2026-03-01T12:00:00Z"));
  EXPECT_EQ(parse_timestamp("2026-03-01T12:00Z"), parse_timestamp("2026-03-01T12:00:00Z"));
  EXPECT_EQ(to_micros(parse_timestamp("1970-01-01T00:00:01.5Z")), 1'500'000);
}

TEST(Clock, RejectsMalformedTimesNamingTheInput) {
  for (const char* bad : {"", "yesterday", "2026-02-30", "2026-03-01T25:00:00Z",
                          "2026-03-01T12:00:00", "2026-03-01T12:00:00Zjunk", "2026/03/01"}) {
    try {
      parse_timestamp(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos)
          << e.what();
    }
  }
}

TEST(Clock, DigitsPastMicrosecondsAreRefusedNotDropped) {
  for (const char* finer : {"2026-03-01T12:00:00.1234567Z", "2026-03-01T12:00:00.123456789Z",
                            "2026-03-01T12:00:00.0000001+01:00", "2026-03-01T12:00:00.9999999Z"}) {
    try {
      parse_timestamp(finer);
      ADD_FAILURE() << "accepted '" << finer << "'";
    } catch (const InvalidArgument& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(std::string("'") + finer + "'"), std::string::npos) << message;
      EXPECT_NE(message.find("microseconds"), std::string::npos) << message;
    }
  }
  // Zeros past the sixth digit say nothing finer, as nanosecond tools print them.
  EXPECT_EQ(parse_timestamp("2026-03-01T12:00:00.123456000Z"),
            parse_timestamp("2026-03-01T12:00:00.123456Z"));
  EXPECT_EQ(parse_timestamp("2026-03-01T12:00:00.1000000000Z"),
            parse_timestamp("2026-03-01T12:00:00.1Z"));
}

TEST(Clock, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(parse_timestamp("2026-01-01T00:00:00Z"));
  const auto start = clock.now();
  EXPECT_EQ(clock.now(), start);
  clock.advance(seconds(5));
  EXPECT_EQ(clock.now() - start, seconds(5));
  clock.set(start);
  EXPECT_EQ(clock.now(), start);
}

}  // namespace
}  // namespace annals
