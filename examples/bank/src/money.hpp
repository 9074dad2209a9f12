#pragma once
/// Money as the bank keeps it: an integer number of minor units (cents),
/// never floating point. Amounts come in as decimal text ("12.34") and are
/// parsed exactly; balances go out as text again ("12.34 EUR").
///
/// Thread safety: pure functions.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bank {

/// Minor units of an account's currency (cents of a euro).
using Cents = std::int64_t;

/// Parses a positive amount: one or more ASCII digits, optionally a '.' and
/// one or two more digits ("12", "12.3", "12.34", "0.01"). Nothing else is
/// accepted: no sign, exponent, spaces, thousands separators, third decimal
/// place or empty text, and no zero.
/// Throws: InvalidAmount naming the text and the reason (also when the value
/// does not fit in Cents).
Cents parse_amount(std::string_view text);

/// As parse_amount, but zero is accepted (an overdraft limit of 0.00).
/// Throws: InvalidAmount.
Cents parse_limit(std::string_view text);

/// "12.34", "-0.05", "0.00": the amount in major units with two decimals.
std::string format_cents(Cents cents);

/// "12.34 EUR".
std::string format_money(Cents cents, std::string_view currency);

/// `text` safe to print on a terminal: every control byte (below 0x20, and
/// 0x7f) becomes an escape (\n, \t, \r, \xHH), so stored data can never
/// start a line or move the cursor.
std::string printable(std::string_view text);

/// `text` as an error message echoes it: printable(), cut after
/// kEchoLimit bytes with "..." and the number of bytes left out.
inline constexpr std::size_t kEchoLimit = 64;
std::string echo(std::string_view text);

}  // namespace bank
