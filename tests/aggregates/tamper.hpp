#pragma once
// Changing a store file behind the store's back, as an attacker with write
// access to the file could: the history-check tests.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>

namespace annals::test_domain {

// Runs `sql` on the store file with the append-only triggers dropped.
inline void tamper(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  const std::unique_ptr<sqlite3, decltype(&sqlite3_close)> close(raw, &sqlite3_close);
  const std::string script =
      "DROP TRIGGER IF EXISTS events_append_only_update;"
      " DROP TRIGGER IF EXISTS events_append_only_delete; " +
      sql;
  char* error = nullptr;
  const int rc = sqlite3_exec(raw, script.c_str(), nullptr, nullptr, &error);
  const std::string message = error == nullptr ? "" : error;
  sqlite3_free(error);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

}  // namespace annals::test_domain
