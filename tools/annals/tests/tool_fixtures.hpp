#pragma once
// Helpers for the annals tool tests: a store with known content, running the
// commands in-process or as the real program, and file comparisons.

#include <SQLiteCpp/Database.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "annals/store/sqlite_event_store.hpp"
#include "cli.hpp"
#include "store/store_fixtures.hpp"

namespace annals::testing {

inline EventData tool_event(const std::string& type, std::string payload = "{}") {
  EventData d;
  d.type = type;
  d.payload = std::move(payload);
  return d;
}

inline SqliteStoreOptions quick() {
  SqliteStoreOptions o;
  o.synchronous = Synchronous::normal;
  return o;
}

// account-1 (3 events), account-2 (1), audit-1 (1): positions 1..5.
inline void fill_sample(const std::filesystem::path& path) {
  SqliteEventStore store(path, quick());
  store.append("account-1", ExpectedVersion::no_stream(),
               {tool_event("bank.Opened", R"({"owner":"Ada"})"),
                tool_event("bank.Deposited", R"({"amount":500})")});
  store.append("account-2", ExpectedVersion::no_stream(),
               {tool_event("bank.Opened", R"({"owner":"Bob"})")});
  store.append("account-1", ExpectedVersion::exactly(2),
               {tool_event("bank.Withdrawn", R"({"amount":200})")});
  store.append("audit-1", ExpectedVersion::no_stream(), {tool_event("audit.Checked")});
}

// `n` events over 10 streams, in appends of 500.
inline void fill_many(const std::filesystem::path& path, int n) {
  SqliteEventStore store(path, quick());
  for (int done = 0, i = 0; done < n; ++i) {
    std::vector<EventData> batch;
    for (int k = 0; k < 500 && done < n; ++k, ++done) {
      batch.push_back(tool_event("test.Counted", "{\"i\":" + std::to_string(done) + "}"));
    }
    store.append("bulk-" + std::to_string(i % 10), ExpectedVersion::any(), std::move(batch));
  }
}

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs the commands in-process (cli.hpp) with `input` as standard input.
inline Outcome annals_run(const std::vector<std::string>& args, const std::string& input = {},
                          bool terminal = false) {
  std::istringstream in(input);
  std::ostringstream out, err;
  tool::Io io{in, out, err, terminal};
  Outcome o;
  o.code = tool::run(args, io);
  o.out = out.str();
  o.err = err.str();
  return o;
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline bool running_as_root() { return ::geteuid() == 0; }

// Runs the built program through the shell, stdin from `stdin_file` (or
// /dev/null), stdout and stderr captured through files in `dir`. `wrapper`
// comes before the program (for instance setpriv, to drop privileges).
inline Outcome annals_exec(const std::filesystem::path& dir, const std::vector<std::string>& args,
                           const std::filesystem::path& stdin_file = "/dev/null",
                           const std::vector<std::string>& wrapper = {}) {
  static int counter = 0;
  const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(++counter);
  const auto out_file = dir / ("out-" + tag);
  const auto err_file = dir / ("err-" + tag);
  std::string cmd;
  for (const auto& w : wrapper) cmd += shell_quote(w) + " ";
  cmd += shell_quote(ANNALS_TOOL_BINARY);
  for (const auto& a : args) {
    cmd += ' ';  // appended, not `" " + std::string`: a false -Wrestrict of GCC 12 at -O2
    cmd += shell_quote(a);
  }
  cmd += " < " + shell_quote(stdin_file.string()) + " > " + shell_quote(out_file.string()) +
         " 2> " + shell_quote(err_file.string());
  const int status = std::system(cmd.c_str());
  Outcome o;
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o.out = file_bytes(out_file);
  o.err = file_bytes(err_file);
  std::filesystem::remove(out_file);
  std::filesystem::remove(err_file);
  return o;
}

// As root, the command prefix that runs a program as the unprivileged user
// nobody (util-linux setpriv); otherwise none, since this user is already
// unprivileged.
inline std::vector<std::string> as_unprivileged_user() {
  if (!running_as_root()) return {};
  return {"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"};
}

}  // namespace annals::testing
