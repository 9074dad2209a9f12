#pragma once
// The fixture of the tests that run the `annals` program on a PostgreSQL
// store: the throwaway server's URL as the program takes it, and a store in a
// schema of each test's own, given to the program through ANNALS_PG_SCHEMA
// (and ANNALS_PG_READ_MODEL_SCHEMA). The test program registers
// PostgresEnvironment once (postgres_tool_test.cpp).

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "annals/projections/postgres_read_model.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "postgres/postgres_server.hpp"
#include "tool_fixtures.hpp"

namespace annals::testing {

// The server as a URL: ANNALS_TEST_PG_URL when it is one, else built from the
// keyword string of the throwaway cluster (host=<socket dir> port=... ...).
inline std::string server_url(const std::string& scheme = "postgresql") {
  const std::string conn = postgres_url();
  if (conn.starts_with("postgresql://")) return scheme + conn.substr(10);
  if (conn.starts_with("postgres://")) return scheme + conn.substr(8);
  std::map<std::string, std::string> kv;
  std::istringstream words(conn);
  for (std::string word; words >> word;) {
    const auto eq = word.find('=');
    if (eq != std::string::npos) kv[word.substr(0, eq)] = word.substr(eq + 1);
  }
  std::string url = scheme + "://";
  if (kv.count("user") != 0) url += kv["user"] + "@";
  url += "/" + (kv.count("dbname") != 0 ? kv["dbname"] : std::string("postgres")) + "?";
  if (kv.count("host") != 0) url += "host=" + kv["host"] + "&";
  if (kv.count("port") != 0) url += "port=" + kv["port"] + "&";
  url.pop_back();
  return url;
}

class PostgresTool : public ::testing::Test {
 protected:
  PostgresTool() : schema_(fresh_schema()) {}

  PostgresStoreOptions options() const {
    PostgresStoreOptions o;
    o.schema = schema_;
    return o;
  }
  // account-1 (3 events), account-2 (1), audit-1 (1): positions 1..5.
  void fill() {
    PostgresEventStore store(postgres_url(), options());
    store.append("account-1", ExpectedVersion::no_stream(),
                 {tool_event("bank.Opened", R"({"owner":"Ada"})"),
                  tool_event("bank.Deposited", R"({"amount":500})"),
                  tool_event("bank.Withdrawn", R"({"amount":200})")});
    store.append("account-2", ExpectedVersion::no_stream(),
                 {tool_event("bank.Opened", R"({"owner":"Bob"})")});
    store.append("audit-1", ExpectedVersion::no_stream(), {tool_event("audit.Checked")});
  }
  Outcome annals(const std::vector<std::string>& args,
                 const std::filesystem::path& stdin_file = "/dev/null") {
    return annals_exec(dir_.path(), args, stdin_file, {"env", "ANNALS_PG_SCHEMA=" + schema_});
  }
  // With the read model in `read_model_schema` (ANNALS_PG_READ_MODEL_SCHEMA).
  Outcome annals_views_in(const std::string& read_model_schema,
                          const std::vector<std::string>& args) {
    return annals_exec(
        dir_.path(), args, "/dev/null",
        {"env", "ANNALS_PG_SCHEMA=" + schema_, "ANNALS_PG_READ_MODEL_SCHEMA=" + read_model_schema});
  }
  // The read model beside the store: the store's schema.
  PostgresReadModelOptions views_options() const {
    PostgresReadModelOptions o;
    o.schema = schema_;
    return o;
  }

  std::string schema_;
  TempDir dir_;
};

}  // namespace annals::testing
