#pragma once
// Exit codes, the error type that carries one, and how the commands open
// store and read-model files. Private to the annals tool.

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "annals/store/sqlite_event_store.hpp"

namespace annals::tool {

/// Exit codes of the annals program (documented in docs/tools.md).
enum ExitCode : int {
  kExitOk = 0,         ///< done; `verify`: the chain is intact
  kExitFailure = 1,    ///< the command failed (bad input line, unknown stream, timeout, ...)
  kExitUsage = 2,      ///< the command line is wrong
  kExitUnusable = 3,   ///< the file is missing, not a store, of a newer schema, or not writable
  kExitIntegrity = 4,  ///< `verify` or `import` found an event whose hash does not match
};

/// An error the program reports on stderr and exits with `code()`.
/// Thread safety: an immutable value.
class ToolError : public std::runtime_error {
 public:
  ToolError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// Opens an existing store for reading (SqliteStoreOptions::read_only): never
/// creates, migrates or writes the file, and works on a file without write
/// permission.
/// Throws: ToolError(kExitUnusable) naming the file when it is missing, not an
/// SQLite database, not an Annals store, of a newer schema, or without an
/// events table.
std::unique_ptr<SqliteEventStore> open_for_reading(const std::filesystem::path& db);

/// `text` safe to print on a terminal: every control byte (below 0x20, and
/// 0x7f) becomes an escape (\n, \t, \r, \xHH), so stored data never starts
/// a line or moves the cursor in a table.
std::string printable(std::string_view text);

/// A message as the program prints it on stderr: printable(), and cut after
/// kMessageLimit bytes with the number of bytes left out, so an error that
/// echoes a huge input stays readable.
inline constexpr std::size_t kMessageLimit = 512;
std::string printable_message(std::string_view text);

/// Checks that an existing file may be written by this process.
/// Throws: ToolError(kExitUnusable) naming the file when it may not.
void require_writable(const std::filesystem::path& file, const std::string& what);

}  // namespace annals::tool
