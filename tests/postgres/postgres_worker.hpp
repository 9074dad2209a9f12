#pragma once
// Starts postgres_worker (postgres_worker.cpp) with fork/exec: a fresh
// process image holding only the connections and threads it makes itself.
// ANNALS_PG_WORKER is the worker's path, set by tests/postgres/CMakeLists.txt.

#include <spawn.h>
#include <sys/types.h>

#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace annals::testing {

inline pid_t spawn_worker(std::vector<std::string> args) {
  args.insert(args.begin(), ANNALS_PG_WORKER);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
    throw std::runtime_error(std::string("cannot start ") + ANNALS_PG_WORKER);
  }
  return pid;
}

}  // namespace annals::testing
