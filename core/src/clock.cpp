#include "annals/core/clock.hpp"

#include <cstdio>

#include "annals/core/error.hpp"

namespace annals {

Timestamp SystemClock::now() const {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

std::shared_ptr<const Clock> SystemClock::shared() {
  static const auto clock = std::make_shared<const SystemClock>();
  return clock;
}

Timestamp ManualClock::now() const {
  detail::MutexLock lock(mu_);
  return now_;
}

void ManualClock::set(Timestamp t) {
  detail::MutexLock lock(mu_);
  now_ = t;
}

void ManualClock::advance(std::chrono::microseconds by) {
  detail::MutexLock lock(mu_);
  now_ += by;
}

std::string format_timestamp(Timestamp t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<microseconds> tod{t - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02ld.%06ldZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), long(tod.hours().count()),
                long(tod.minutes().count()), long(tod.seconds().count()),
                long(tod.subseconds().count()));
  return buf;
}

namespace {

class TimeParser {
 public:
  explicit TimeParser(std::string_view text) : text_(text) {}

  Timestamp parse() {
    using namespace std::chrono;
    const int y = number(4);
    expect('-');
    const int mo = number(2);
    expect('-');
    const int d = number(2);
    const year_month_day ymd{year(y), month(unsigned(mo)), day(unsigned(d))};
    if (!ymd.ok()) fail("no such date");
    Timestamp t = time_point_cast<microseconds>(sys_days(ymd));
    if (at_end()) return t;
    if (peek() != 'T' && peek() != 't' && peek() != ' ') fail("expected 'T' after the date");
    ++i_;
    const int h = number(2);
    expect(':');
    const int mi = number(2);
    int s = 0;
    long us = 0;
    if (!at_end() && peek() == ':') {
      ++i_;
      s = number(2);
      if (!at_end() && (peek() == '.' || peek() == ',')) {
        ++i_;
        int digits = 0;
        while (!at_end() && peek() >= '0' && peek() <= '9') {
          if (digits < 6) {
            us = us * 10 + (peek() - '0');
          } else if (peek() != '0') {
            // Refused, not rounded: rounding up would move an as-of time past
            // events it excludes, and cutting would drop what was asked for.
            fail("a fraction finer than microseconds; Annals times have at most 6 fractional "
                 "digits (digits after the sixth may only be 0)");
          }
          ++digits, ++i_;
        }
        if (digits == 0) fail("expected digits after the decimal point");
        for (int k = digits; k < 6; ++k) us *= 10;
      }
    }
    if (h > 23 || mi > 59 || s > 60) fail("time of day out of range");
    t += hours(h) + minutes(mi) + seconds(s) + microseconds(us);
    if (at_end()) fail("missing time zone: end with 'Z' or an offset such as +01:00");
    if (peek() == 'Z' || peek() == 'z') {
      ++i_;
    } else if (peek() == '+' || peek() == '-') {
      const int sign = peek() == '+' ? 1 : -1;
      ++i_;
      const int oh = number(2);
      if (!at_end() && peek() == ':') ++i_;
      const int om = number(2);
      if (oh > 23 || om > 59) fail("time zone offset out of range");
      t -= sign * (hours(oh) + minutes(om));
    } else {
      fail("expected 'Z' or an offset such as +01:00");
    }
    if (!at_end()) fail("unexpected text after the time");
    return t;
  }

 private:
  bool at_end() const { return i_ >= text_.size(); }
  char peek() const { return text_[i_]; }
  int number(int digits) {
    int v = 0;
    for (int k = 0; k < digits; ++k) {
      if (at_end() || peek() < '0' || peek() > '9') {
        fail("expected " + std::to_string(digits) + " digits");
      }
      v = v * 10 + (peek() - '0');
      ++i_;
    }
    return v;
  }
  void expect(char c) {
    if (at_end() || peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  [[noreturn]] void fail(const std::string& why) const {
    std::string shown(text_.substr(0, 64));
    throw InvalidArgument("time '" + shown + "' is not an ISO 8601 UTC time (" + why +
                          " at character " + std::to_string(i_ + 1) +
                          "); use e.g. 2026-03-01T12:00:00Z");
  }

  std::string_view text_;
  std::size_t i_ = 0;
};

}  // namespace

Timestamp parse_timestamp(std::string_view text) { return TimeParser(text).parse(); }

}  // namespace annals
