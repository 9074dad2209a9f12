// Fuzz target: json_object_problem (simdjson first, nlohmann for whatever
// simdjson refuses) against the nlohmann-only reference it must equal
// (annals/core/internal/json_validation.hpp, never installed), and against SQLite's own
// JSON parser, which must accept whatever is accepted.
//
// Input: the JSON text, as is (texts over 16 KiB take the nlohmann-only path).
// Properties: both paths give the same verdict and, when they refuse, the same
// message; every text they accept passes SQLite's json_valid(), so that
// json_extract() over a store's payloads never fails (docs/store.md).
// A broken property aborts with the answers, which libFuzzer reports as a crash.

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "annals/core/event.hpp"
#include "fuzz_support.hpp"
#include "annals/core/internal/json_validation.hpp"

namespace {

std::string describe(const std::optional<std::string>& verdict) {
  return verdict ? "refused: " + *verdict : std::string("accepted");
}

// SELECT json_valid(?1) on an in-memory database, prepared once per process
// (libFuzzer runs every input on one thread).
class SqliteJsonValid {
 public:
  SqliteJsonValid() {
    if (sqlite3_open(":memory:", &db_) != SQLITE_OK ||
        sqlite3_prepare_v2(db_, "SELECT json_valid(?1)", -1, &st_, nullptr) != SQLITE_OK) {
      annals::fuzz::fail("cannot prepare json_valid() in SQLite:", sqlite3_errmsg(db_));
    }
  }
  ~SqliteJsonValid() {
    sqlite3_finalize(st_);
    sqlite3_close(db_);
  }
  SqliteJsonValid(const SqliteJsonValid&) = delete;
  SqliteJsonValid& operator=(const SqliteJsonValid&) = delete;

  bool operator()(std::string_view text) {
    sqlite3_reset(st_);
    if (sqlite3_bind_text64(st_, 1, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8) !=
            SQLITE_OK ||
        sqlite3_step(st_) != SQLITE_ROW) {
      annals::fuzz::fail("json_valid() failed in SQLite:", sqlite3_errmsg(db_));
    }
    const bool valid = sqlite3_column_int(st_, 0) == 1;
    sqlite3_reset(st_);
    return valid;
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* st_ = nullptr;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto fast = annals::json_object_problem(text);
  const auto reference = annals::detail::json_object_problem_nlohmann(text);
  if (fast != reference) {
    std::string detail = "fast path ";
    detail += describe(fast);
    detail += "; nlohmann ";
    detail += describe(reference);
    annals::fuzz::fail("json_object_problem disagrees with nlohmann:", detail.c_str());
  }
  static SqliteJsonValid sqlite_json_valid;
  if (!fast && !sqlite_json_valid(text)) {
    annals::fuzz::fail("json_object_problem accepts a text SQLite's json_valid() refuses:",
                       std::string(text.substr(0, 200)).c_str());
  }
  return 0;
}
