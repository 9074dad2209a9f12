#pragma once
// Exit codes, the error type that carries one, and how the commands open
// stores (SQLite files and PostgreSQL URLs) and PostgreSQL read models.
// Private to the annals tool.

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "annals/projections/read_model.hpp"
#include "annals/store/event_export.hpp"
#include "annals/store/seal.hpp"
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

/// True when `db` names a PostgreSQL server: it starts with "postgresql://"
/// or "postgres://" (libpq's URL forms). Anything else names an SQLite file.
bool is_postgres_url(const std::filesystem::path& db);

/// `db` as messages name it, in quotes: a file name as it is, a URL without
/// its password.
std::string store_name(const std::filesystem::path& db);

/// The schema open_store() opens a PostgreSQL store in: the environment
/// variable ANNALS_PG_SCHEMA, else "public".
std::string postgres_store_schema();

/// Opens the store `db` names for reading: an SQLite file as
/// open_for_reading() does; a PostgreSQL URL as a PostgresEventStore on the
/// schema the environment variable ANNALS_PG_SCHEMA names (default
/// "public"), creating nothing.
/// Throws: ToolError(kExitUnusable) naming the store when it cannot be opened
/// (as open_for_reading(); a server that cannot be reached, a schema without
/// a store, a build without PostgreSQL support).
std::unique_ptr<EventStore> open_store(const std::filesystem::path& db);

/// Loads an export into the empty PostgreSQL store `url` names (created if
/// missing), as PostgresEventStore::import_events() does.
/// Throws: ToolError(kExitUnusable) when the store cannot be opened; what
/// import_events() throws.
std::int64_t import_into_postgres(const std::filesystem::path& url, std::istream& in,
                                  const ImportOptions& options);

/// Seals the PostgreSQL store `url` names (schema as open_store()), as
/// annals::seal(PostgresEventStore&, ...) does.
/// Throws: ToolError(kExitUnusable) when the store cannot be opened (as
/// open_store()); what seal() throws.
Seal seal_postgres(const std::filesystem::path& url, const SealKey* key);

/// True when the read model of `projections`, `rebuild` or `check` is a
/// PostgreSQL one: `read_model` (--read-model) is a PostgreSQL URL, or it is
/// empty and the store `db` is one (the read model then lives on the store's
/// server, as it lives in the store's own file on SQLite).
bool is_postgres_read_model(const std::filesystem::path& db,
                            const std::filesystem::path& read_model);

/// A PostgreSQL read model as messages name it: its schema and its URL
/// without the password, `schema "views" of 'postgresql://app:***@db/bank'`.
/// The schema is the one open_postgres_read_model() uses.
std::string postgres_read_model_name(const std::filesystem::path& url);

/// Opens the PostgreSQL read model at `url`, in the schema the environment
/// variable ANNALS_PG_READ_MODEL_SCHEMA names, else the store's
/// (ANNALS_PG_SCHEMA), else "public". `read_only`: only looks (the schema
/// must exist; nothing is created; PostgresReadModelOptions::read_only).
/// Otherwise the bookkeeping tables are created if missing, as
/// PostgresReadModel does: the commands open it so only after a read-only
/// look found the projection, so they are there already.
/// Throws: ToolError(kExitUsage) naming the variable for an invalid schema
/// name; ToolError(kExitUnusable) naming the URL when it cannot be opened (a
/// server that cannot be reached, a schema that does not exist, a build
/// without PostgreSQL support).
std::unique_ptr<ReadModel> open_postgres_read_model(const std::filesystem::path& url,
                                                    bool read_only);

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
