#pragma once
/// The main() of the Google Benchmark programs in bench/: reads --size, lets
/// `register_all` register the cases for those sizes, and runs them.
/// Returns the exit code: 0, 1 when a case throws (the message names the
/// program), 2 for arguments neither --size nor Google Benchmark knows.

#include <benchmark/benchmark.h>

#include <exception>
#include <iostream>

#include "bench_support.hpp"

namespace annals::bench {

template <class Register>
int run_benchmarks(const char* program, int argc, char** argv, Register register_all) {
  try {
    const Sizes sizes = parse_sizes(argc, argv);
    register_all(sizes);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace annals::bench
