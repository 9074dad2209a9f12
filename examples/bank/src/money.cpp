#include "money.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <system_error>

#include "errors.hpp"

namespace bank {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_digits(std::string_view s) { return std::all_of(s.begin(), s.end(), is_digit); }

// The parser is strict on purpose: money typed at a command line must mean
// exactly one thing. "1e3", "12.345" or " 5" are refused instead of guessed.
Cents parse(std::string_view text, bool allow_zero) {
  const auto fail = [&](std::string_view why) -> Cents {
    throw InvalidAmount("invalid amount '" + echo(text) + "': " + std::string(why) +
                        " (write amounts like 12.34)");
  };
  if (text.empty()) return fail("it is empty");
  if (text.front() == '-' || text.front() == '+') {
    return fail("a sign is not allowed; amounts are positive");
  }
  const auto dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view fraction =
      dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (!all_digits(whole) || !all_digits(fraction)) {
    return fail("only digits and one decimal point are allowed");
  }
  if (whole.empty()) return fail("it needs a digit before the decimal point");
  if (dot != std::string_view::npos && fraction.empty()) {
    return fail("it needs a digit after the decimal point");
  }
  if (fraction.size() > 2) return fail("at most two decimal places (cents) are allowed");

  Cents units = 0;
  const auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), units);
  if (ec == std::errc::result_out_of_range) return fail("it is too large");
  if (ec != std::errc{} || end != whole.data() + whole.size()) return fail("it is not a number");

  Cents cents = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    cents = cents * 10 + (i < fraction.size() ? fraction[i] - '0' : 0);
  }
  constexpr Cents kMax = std::numeric_limits<Cents>::max();
  if (units > (kMax - cents) / 100) return fail("it is too large");
  const Cents total = units * 100 + cents;
  if (total == 0 && !allow_zero) return fail("it must be more than zero");
  return total;
}

}  // namespace

Cents parse_amount(std::string_view text) { return parse(text, false); }

Cents parse_limit(std::string_view text) { return parse(text, true); }

std::string format_cents(Cents cents) {
  // Work on the magnitude as unsigned so that even the most negative value
  // formats without overflow.
  const bool negative = cents < 0;
  const std::uint64_t magnitude =
      negative ? 0 - static_cast<std::uint64_t>(cents) : static_cast<std::uint64_t>(cents);
  const std::uint64_t fraction = magnitude % 100;
  // Appended piece by piece: `"-" + std::string` trips a false -Wrestrict of
  // GCC 12 at -O2 (GCC bug 105329).
  std::string text = negative ? "-" : "";
  text += std::to_string(magnitude / 100);
  text += fraction < 10 ? ".0" : ".";
  text += std::to_string(fraction);
  return text;
}

std::string format_money(Cents cents, std::string_view currency) {
  return format_cents(cents) + " " + std::string(currency);
}

std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
    } else {
      out += ch;
    }
  }
  return out;
}

std::string echo(std::string_view text) {
  if (text.size() <= kEchoLimit) return printable(text);
  // Cut before a UTF-8 continuation byte, never inside a character.
  std::size_t cut = kEchoLimit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
  return printable(text.substr(0, cut)) + "... (" + std::to_string(text.size() - cut) +
         " more bytes)";
}

}  // namespace bank
