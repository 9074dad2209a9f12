#include "annals/core/stream_id.hpp"

#include <gtest/gtest.h>

#include "annals/core/error.hpp"

namespace annals {
namespace {

std::string error_of(std::string_view id) {
  try {
    validate_stream_id(id);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return {};
}

TEST(StreamId, AcceptsOrdinaryAndNonAsciiIds) {
  EXPECT_NO_THROW(validate_stream_id("account-42"));
  EXPECT_NO_THROW(validate_stream_id("kundenkonto-ÄÖÜ-日本"));
  EXPECT_NO_THROW(validate_stream_id(std::string(255, 'a')));
  EXPECT_NO_THROW(validate_stream_id("'; DROP TABLE events;--"));
}

TEST(StreamId, RejectsEmptyTooLongInvalidUtf8AndControlCharacters) {
  EXPECT_NE(error_of("").find("must not be empty"), std::string::npos);
  EXPECT_NE(error_of(std::string(256, 'a')).find("256 bytes"), std::string::npos);
  EXPECT_NE(error_of("abc\xff").find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(error_of("\xc0\xaf").find("not valid UTF-8"), std::string::npos);      // overlong '/'
  EXPECT_NE(error_of("\xed\xa0\x80").find("not valid UTF-8"), std::string::npos);  // surrogate
  EXPECT_NE(error_of("\xe2\x82").find("not valid UTF-8"), std::string::npos);      // truncated
  EXPECT_NE(error_of("a\nb").find("control character at byte 1"), std::string::npos);
  EXPECT_NE(error_of(std::string("a\0b", 3)).find("control character"), std::string::npos);
  EXPECT_NE(error_of("a\x7f").find("control character"), std::string::npos);
  EXPECT_NE(error_of("a\xc2\x85").find("control character"), std::string::npos);  // U+0085
}

TEST(StreamId, ErrorMessagesShowTheIdWithoutRawControlBytes) {
  const std::string message = error_of("bad\nid");
  EXPECT_NE(message.find("bad\\x0aid"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST(StreamId, CategoryIsTheTextBeforeTheFirstDash) {
  EXPECT_EQ(stream_category("account-42"), "account");
  EXPECT_EQ(stream_category("account-42-x"), "account");
  EXPECT_EQ(stream_category("account"), "account");
  EXPECT_EQ(stream_category("-x"), "");
}

}  // namespace
}  // namespace annals
