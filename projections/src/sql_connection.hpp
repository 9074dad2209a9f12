#pragma once
// Helpers of the projections module's SQL work (the connection class itself,
// SqlConnection, is shared with the store: store/src/sqlite_support.hpp).
// Private: SQLiteCpp stays out of the public headers.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>

#include "annals/core/error.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "annals/store/internal/sqlite_support.hpp"

namespace annals::detail {

// Runs `fn` inside a savepoint of the open transaction `tx`; returns the
// exception it threw (after rolling the savepoint back), or null.
// Throws: StorageError when the savepoint itself fails (the transaction is then
// in doubt and must be rolled back by its owner).
template <class Fn>
std::exception_ptr in_savepoint(SqlTransaction& tx, Fn&& fn) {
  tx.exec("SAVEPOINT annals_projection_event");
  try {
    fn();
  } catch (...) {
    auto error = std::current_exception();
    tx.exec("ROLLBACK TO annals_projection_event");
    tx.exec("RELEASE annals_projection_event");
    return error;
  }
  tx.exec("RELEASE annals_projection_event");
  return nullptr;
}

// The message of an exception_ptr's exception.
std::string message_of(const std::exception_ptr& error);


}  // namespace annals::detail
