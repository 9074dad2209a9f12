#include "store_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "annals/core/error.hpp"

namespace annals::tool {

std::unique_ptr<SqliteEventStore> open_for_reading(const std::filesystem::path& db) {
  SqliteStoreOptions options;
  options.read_only = true;
  options.create_if_missing = false;
  try {
    return std::make_unique<SqliteEventStore>(db, options);
  } catch (const StorageError& e) {
    throw ToolError(kExitUnusable, e.what());
  }
}

void require_writable(const std::filesystem::path& file, const std::string& what) {
  // access() answers for the real user, as the open will; root passes.
  if (::access(file.c_str(), W_OK) != 0) {
    throw ToolError(kExitUnusable, what + " '" + file.string() + "' is not writable (" +
                                       std::strerror(errno) + "); nothing was changed");
  }
}

}  // namespace annals::tool
