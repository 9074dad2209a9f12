#pragma once
// A throwaway PostgreSQL cluster for one test program: initdb and pg_ctl from
// Debian's postgresql package, a Unix socket in a temporary directory, run as
// the `postgres` system user when the tests run as root (PostgreSQL refuses
// root). Stopped (immediate mode) and removed when the program ends, also when
// a test fails. ANNALS_TEST_PG_URL points the tests at an existing server
// instead (then nothing is started or stopped).
//
// Tests get fresh, empty stores from PostgresStoreFactory: one new schema per
// store, so one cluster start serves every test of the program.

#include <gtest/gtest.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "annals/core/clock.hpp"
#include "annals/store/postgres_event_store.hpp"

namespace annals::testing {

class PostgresServer {
 public:
  PostgresServer() {
    if (const char* url = std::getenv("ANNALS_TEST_PG_URL"); url != nullptr && *url != '\0') {
      url_ = url;
      return;
    }
    std::string pattern = (std::filesystem::temp_directory_path() / "annals-pg-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr) throw std::runtime_error("running as root, but no 'postgres' user");
      if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        throw std::runtime_error("cannot chown " + dir_.string() + " to postgres");
      }
      as_user_ = "runuser -u postgres -- ";
    }
    const std::string bin = bin_dir();
    const std::string data = (dir_ / "data").string();
    run(as_user_ + bin + "/initdb -A trust -U postgres -E UTF8 --no-sync -D '" + data +
        "' >'" + (dir_ / "initdb.log").string() + "' 2>&1");
    run(as_user_ + bin + "/pg_ctl start -w -t 60 -D '" + data + "' -l '" +
        (dir_ / "server.log").string() + "' -o \"-k '" + dir_.string() +
        "' -c listen_addresses='' -c fsync=off -c max_connections=200\" >/dev/null");
    started_ = true;
    url_ = "host=" + dir_.string() + " port=5432 dbname=postgres user=postgres";
  }

  ~PostgresServer() {
    if (started_) {
      const std::string cmd = as_user_ + bin_dir() + "/pg_ctl stop -m immediate -D '" +
                              (dir_ / "data").string() + "' >/dev/null 2>&1";
      [[maybe_unused]] const int rc = std::system(cmd.c_str());
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  const std::string& url() const { return url_; }

 private:
  static std::string bin_dir() {
    if (const char* b = std::getenv("ANNALS_PG_BIN"); b != nullptr && *b != '\0') return b;
    return "/usr/lib/postgresql/15/bin";
  }
  void run(const std::string& cmd) {
    if (std::system(cmd.c_str()) != 0) {
      throw std::runtime_error("failed: " + cmd + " (logs in " + dir_.string() + ")");
    }
  }

  std::filesystem::path dir_;
  std::string as_user_;
  std::string url_;
  bool started_ = false;
};

// The one server of this test program, started by the global environment.
inline std::unique_ptr<PostgresServer>& postgres_server() {
  static std::unique_ptr<PostgresServer> server;
  return server;
}

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { postgres_server() = std::make_unique<PostgresServer>(); }
  void TearDown() override { postgres_server().reset(); }
};

inline const std::string& postgres_url() {
  if (!postgres_server()) throw std::runtime_error("the PostgreSQL environment did not start");
  return postgres_server()->url();
}

// A schema name no other store of this run (or of another process sharing
// the server) uses.
inline std::string fresh_schema() {
  static std::atomic<int> next{0};
  return "annals_t" + std::to_string(::getpid()) + "_" + std::to_string(++next);
}

struct PostgresStoreFactory {
  static constexpr const char* kName = "Postgres";
  std::unique_ptr<EventStore> make(std::shared_ptr<const Clock> clock) {
    PostgresStoreOptions options;
    options.clock = std::move(clock);
    options.schema = fresh_schema();
    // Small pages so every multi-page code path runs in ordinary tests.
    options.read_page_size = 7;
    return std::make_unique<PostgresEventStore>(postgres_url(), options);
  }
};

}  // namespace annals::testing
