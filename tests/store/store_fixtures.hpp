#pragma once
// Fixtures that make each store for the conformance suite. Every store under
// test gets a fresh, empty instance per test and a ManualClock it reads time from.

#include <stdlib.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>

#include "annals/core/clock.hpp"
#include "annals/store/in_memory_event_store.hpp"
#include "annals/store/sqlite_event_store.hpp"

namespace annals::testing {

// SQLite options for tests that need no power-loss durability (faster commits).
inline SqliteStoreOptions fast() {
  SqliteStoreOptions options;
  options.synchronous = Synchronous::normal;
  return options;
}

// The bytes of a file, to check that a refused open left it untouched.
inline std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs the sqlite3 shell on `db` with `sql` (passed as a here-document, so
// quotes in it need no escaping); returns its exit status and output.
inline std::pair<int, std::string> sqlite3_shell(const std::filesystem::path& db,
                                                 const std::string& sql) {
  const std::string cmd =
      "sqlite3 '" + db.string() + "' <<'ANNALS_SQL' 2>&1\n" + sql + "\nANNALS_SQL\n";
  std::string output;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// A directory under /tmp, removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "annals-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct InMemoryStoreFactory {
  static constexpr const char* kName = "InMemory";
  std::unique_ptr<EventStore> make(std::shared_ptr<const Clock> clock) {
    return std::make_unique<InMemoryEventStore>(std::move(clock));
  }
};

struct SqliteStoreFactory {
  static constexpr const char* kName = "Sqlite";
  TempDir dir;
  std::unique_ptr<EventStore> make(std::shared_ptr<const Clock> clock) {
    SqliteStoreOptions options;
    options.clock = std::move(clock);
    // Small pages so every multi-page code path runs in ordinary tests.
    options.read_page_size = 7;
    // Conformance is about the contract, not durability: spare the fsyncs.
    options.synchronous = Synchronous::normal;
    return std::make_unique<SqliteEventStore>(dir / "store.db", options);
  }
};

// Names typed test instantiations after the store ("StoreConformance/Sqlite.X").
struct StoreNames {
  template <class Factory>
  static std::string GetName(int) {
    return Factory::kName;
  }
};

}  // namespace annals::testing
