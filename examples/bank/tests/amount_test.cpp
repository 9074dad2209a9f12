// The amount parser is where money enters the bank: it must be exact (integer
// cents, no floating point) and refuse anything ambiguous.

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "errors.hpp"
#include "money.hpp"

namespace {

using bank::Cents;

struct Good {
  const char* text;
  Cents cents;
};

class AmountParsesExactly : public ::testing::TestWithParam<Good> {};

TEST_P(AmountParsesExactly, IntoIntegerCents) {
  EXPECT_EQ(bank::parse_amount(GetParam().text), GetParam().cents) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    Amounts, AmountParsesExactly,
    ::testing::Values(Good{"12.34", 1234}, Good{"12", 1200}, Good{"12.3", 1230},
                      Good{"12.30", 1230}, Good{"0.01", 1}, Good{"0.1", 10}, Good{"1", 100},
                      Good{"007.05", 705}, Good{"100000.00", 10'000'000},
                      // 0.29 is not exact in binary floating point; here it is 29 cents.
                      Good{"0.29", 29}, Good{"1.15", 115},
                      Good{"92233720368547758.07", std::numeric_limits<Cents>::max()},
                      Good{"92233720368547758", 9'223'372'036'854'775'800}));

class AmountIsRefused : public ::testing::TestWithParam<const char*> {};

TEST_P(AmountIsRefused, WithAnInvalidAmountErrorNamingTheText) {
  const std::string text = GetParam();
  try {
    bank::parse_amount(text);
    FAIL() << "accepted '" << text << "'";
  } catch (const bank::InvalidAmount& e) {
    // Echoed as printable text: control bytes escaped (bank::echo).
    EXPECT_NE(std::string(e.what()).find("'" + bank::echo(text) + "'"), std::string::npos)
        << e.what();
  }
}

TEST(EchoedInput, HasControlBytesEscapedAndIsCutAtAReadableLength) {
  EXPECT_EQ(bank::printable("a\nb\tc\rd\x1b[2J\x7f"), "a\\nb\\tc\\rd\\x1b[2J\\x7f");
  EXPECT_EQ(bank::echo("short"), "short");
  const std::string cut = bank::echo(std::string(1000, 'x'));
  EXPECT_EQ(cut, std::string(bank::kEchoLimit, 'x') + "... (" +
                     std::to_string(1000 - bank::kEchoLimit) + " more bytes)");
  // A multi-byte character at the limit is never split.
  const std::string euro = std::string(bank::kEchoLimit - 1, 'x') + "\xe2\x82\xac" + "tail";
  EXPECT_EQ(bank::echo(euro).substr(0, bank::kEchoLimit - 1), std::string(bank::kEchoLimit - 1, 'x'));
  EXPECT_EQ(bank::echo(euro).substr(bank::kEchoLimit - 1, 3), "...");
}

TEST(EchoedInput, AnOverlongAmountIsEchoedCut) {
  try {
    bank::parse_amount(std::string(100000, '9'));
    FAIL() << "accepted";
  } catch (const bank::InvalidAmount& e) {
    EXPECT_LT(std::string(e.what()).size(), 300u) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    BadInput, AmountIsRefused,
    ::testing::Values("", "0", "0.00", "0.0", "00", "-5", "-0.01", "+5", "12.345", "1e3", "1E3",
                      "12e-2", "abc", " 12", "12 ", "1 000", "1,00", "1,000.00", ".5", "5.",
                      ".", "1.2.3", "0x10", "12.3a", "１２", "\t1", "inf", "nan",
                      "92233720368547758.08", "92233720368547759", "99999999999999999999",
                      "184467440737095516160"));

TEST(Amount, LimitAcceptsZeroButNothingElseInvalid) {
  EXPECT_EQ(bank::parse_limit("0"), 0);
  EXPECT_EQ(bank::parse_limit("0.00"), 0);
  EXPECT_EQ(bank::parse_limit("50"), 5000);
  EXPECT_THROW(bank::parse_limit("-1"), bank::InvalidAmount);
  EXPECT_THROW(bank::parse_limit(""), bank::InvalidAmount);
  EXPECT_THROW(bank::parse_limit("0.001"), bank::InvalidAmount);
}

TEST(Amount, RefusalSaysWhy) {
  const auto message = [](const char* text) {
    try {
      bank::parse_amount(text);
    } catch (const bank::InvalidAmount& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("12.345").find("two decimal places"), std::string::npos);
  EXPECT_NE(message("-5").find("sign"), std::string::npos);
  EXPECT_NE(message("0").find("more than zero"), std::string::npos);
  EXPECT_NE(message("").find("empty"), std::string::npos);
  EXPECT_NE(message("99999999999999999999").find("too large"), std::string::npos);
}

TEST(Amount, FormatsWithTwoDecimals) {
  EXPECT_EQ(bank::format_cents(0), "0.00");
  EXPECT_EQ(bank::format_cents(5), "0.05");
  EXPECT_EQ(bank::format_cents(1234), "12.34");
  EXPECT_EQ(bank::format_cents(-5), "-0.05");
  EXPECT_EQ(bank::format_cents(-1200), "-12.00");
  EXPECT_EQ(bank::format_cents(std::numeric_limits<Cents>::max()), "92233720368547758.07");
  EXPECT_EQ(bank::format_cents(std::numeric_limits<Cents>::min()), "-92233720368547758.08");
  EXPECT_EQ(bank::format_money(1234, "EUR"), "12.34 EUR");
}

TEST(Amount, FormatThenParseIsTheIdentityForPositiveAmounts) {
  for (Cents c : {Cents{1}, Cents{9}, Cents{10}, Cents{99}, Cents{100}, Cents{101},
                  Cents{123'456'789}, std::numeric_limits<Cents>::max()}) {
    EXPECT_EQ(bank::parse_amount(bank::format_cents(c)), c) << c;
  }
}

}  // namespace
