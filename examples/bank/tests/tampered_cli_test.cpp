// The `bank` program on a store altered behind its back (issue 12 item 13):
// the file is tampered with through the sqlite3 C API, as anyone with write
// access to it could, and the program must refuse to act on the account.
//   bank_tampered_cli_test   (BANK_PROGRAM is the program under test)

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>

#include "store/store_fixtures.hpp"

namespace {

using annals::testing::TempDir;

struct ProgramRun {
  int code = -1;
  std::string output;  // stdout and stderr
};

ProgramRun bank(const std::filesystem::path& db, const std::string& args) {
  const std::string cmd =
      std::string("'") + BANK_PROGRAM + "' --db '" + db.string() + "' " + args + " 2>&1";
  ProgramRun run;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) run.output += buf;
  const int status = ::pclose(pipe);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// Runs `sql` on the file with the sqlite3 C API; returns the error or "".
std::string exec(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* raw = nullptr;
  if (sqlite3_open(db.c_str(), &raw) != SQLITE_OK) {
    sqlite3_close(raw);
    return "cannot open " + db.string();
  }
  const std::unique_ptr<sqlite3, decltype(&sqlite3_close)> close(raw, &sqlite3_close);
  char* error = nullptr;
  const int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &error);
  std::string message = rc == SQLITE_OK ? "" : (error != nullptr ? error : "failed");
  sqlite3_free(error);
  return message;
}

std::string events_as_text(const std::filesystem::path& db) {
  sqlite3* raw = nullptr;
  std::string out;
  if (sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_exec(
        raw, "SELECT position, stream_id, version, payload FROM events ORDER BY position",
        [](void* text, int n, char** values, char**) {
          for (int i = 0; i < n; ++i)
            *static_cast<std::string*>(text) += values[i] ? values[i] : "";
          *static_cast<std::string*>(text) += "\n";
          return 0;
        },
        &out, nullptr);
  }
  sqlite3_close(raw);
  return out;
}

TEST(BankCli, TamperedHistoryIsRefusedWithExit4) {
  TempDir dir;
  const auto db = dir / "bank.db";
  ASSERT_EQ(bank(db, "open alice --owner Alice").code, 0);  // position 1
  ASSERT_EQ(bank(db, "open bob --owner Bob").code, 0);      // position 2
  ASSERT_EQ(bank(db, "deposit alice 10.00").code, 0);       // position 3
  ASSERT_EQ(bank(db, "withdraw alice 600.00").code, 1);     // not enough money

  // Forge the deposit into 1000.00, leaving its stored hash as it was.
  ASSERT_EQ(exec(db,
                 "DROP TRIGGER events_append_only_update;"
                 "UPDATE events SET payload = json_set(payload, '$.amount', 100000)"
                 " WHERE position = 3"),
            "");
  const std::string before = events_as_text(db);
  ASSERT_NE(before.find("100000"), std::string::npos);

  for (const char* command :
       {"withdraw alice 500.00", "deposit alice 1.00", "transfer alice bob 500.00",
        "transfer bob alice 1.00", "close alice", "balance alice", "statement alice"}) {
    const ProgramRun run = bank(db, command);
    EXPECT_EQ(run.code, 4) << command << ": " << run.output;
    EXPECT_NE(run.output.find("'account-alice'"), std::string::npos)
        << command << ": " << run.output;
    EXPECT_NE(run.output.find("position 3"), std::string::npos) << command << ": " << run.output;
  }
  EXPECT_EQ(events_as_text(db), before) << "a refused command wrote";

  // What does not depend on the forged event still works.
  EXPECT_EQ(bank(db, "balance alice --at-version 1").code, 0);
  EXPECT_EQ(bank(db, "deposit bob 1.00").code, 0);
  // verify names the same position.
  const ProgramRun verify = bank(db, "verify");
  EXPECT_EQ(verify.code, 3);
  EXPECT_NE(verify.output.find("position 3"), std::string::npos) << verify.output;
}

}  // namespace
