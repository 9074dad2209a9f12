#pragma once
// The annals command line: parses arguments with CLI11, runs one command,
// reports errors on stderr and returns the exit code (store_file.hpp).

#include <string>
#include <vector>

#include "commands.hpp"

namespace annals::tool {

/// Runs the program with argv[0] being the program name. Never throws.
int run(int argc, const char* const* argv, Io& io);

/// The same with the arguments after the program name (for tests).
int run(const std::vector<std::string>& args, Io& io);

}  // namespace annals::tool
