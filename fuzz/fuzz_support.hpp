#pragma once
// What every fuzz target shares: the rule that a rejection is an annals::Error
// and nothing else (any other exception, or a broken property, aborts, which
// libFuzzer reports as a crash with the input that caused it).

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "annals/core/error.hpp"

namespace annals::fuzz {

[[noreturn]] inline void fail(const char* what, const char* detail = "") {
  std::fprintf(stderr, "fuzz property broken: %s %s\n", what, detail);
  std::abort();
}

// Runs `body`; an annals::Error is an accepted rejection, anything else aborts.
// Returns true when body returned normally.
template <class Body>
bool rejects_only_with_annals_errors(const char* what, Body body) {
  try {
    body();
    return true;
  } catch (const annals::Error& e) {
    if (e.what()[0] == '\0') fail(what, "threw an annals::Error without a message");
    return false;
  } catch (const std::exception& e) {
    fail(what, e.what());
  } catch (...) {
    fail(what, "threw something that is not a std::exception");
  }
}

}  // namespace annals::fuzz
