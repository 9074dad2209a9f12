// The annals program: everything is in the annals_tool library (cli.hpp).

#include <unistd.h>

#include <iostream>

#include "cli.hpp"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  annals::tool::Io io{std::cin, std::cout, std::cerr, ::isatty(STDERR_FILENO) == 1};
  return annals::tool::run(argc, argv, io);
}
