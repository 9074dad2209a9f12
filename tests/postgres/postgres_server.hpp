#pragma once
// A throwaway PostgreSQL cluster for one test program (postgres_cluster.hpp),
// started before its first test, stopped (immediate mode) and removed when the
// program ends, also when a test fails. ANNALS_TEST_PG_URL points the tests at
// an existing server instead (then nothing is started or stopped).
//
// Tests get fresh, empty stores from PostgresStoreFactory: one new schema per
// store, so one cluster start serves every test of the program.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "annals/core/clock.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "postgres/postgres_cluster.hpp"

namespace annals::testing {

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

// Options of a fresh store in a new schema, with small pages so every
// multi-page code path runs in ordinary tests.
inline PostgresStoreOptions fresh_store_options(std::shared_ptr<const Clock> clock) {
  PostgresStoreOptions options;
  options.clock = std::move(clock);
  options.schema = fresh_schema();
  options.read_page_size = 7;
  return options;
}

struct PostgresStoreFactory {
  static constexpr const char* kName = "Postgres";
  std::unique_ptr<EventStore> make(std::shared_ptr<const Clock> clock) {
    PostgresStoreOptions options = fresh_store_options(std::move(clock));
    // One pooled connection, so that a connection that saw a failed,
    // rolled-back append serves the next call with its prepared statements.
    options.max_idle_connections = 1;
    return std::make_unique<PostgresEventStore>(postgres_url(), options);
  }
};

// The same with every statement sent as text (PostgresStoreOptions::
// prepare_statements off, as behind a pooler in transaction mode).
struct UnpreparedPostgresStoreFactory {
  static constexpr const char* kName = "PostgresUnprepared";
  std::unique_ptr<EventStore> make(std::shared_ptr<const Clock> clock) {
    PostgresStoreOptions options = fresh_store_options(std::move(clock));
    options.prepare_statements = false;
    return std::make_unique<PostgresEventStore>(postgres_url(), options);
  }
};

}  // namespace annals::testing
