#include "store_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "annals/core/error.hpp"
#ifdef ANNALS_WITH_POSTGRES
#include "annals/projections/postgres_read_model.hpp"
#include "annals/store/postgres_event_store.hpp"
#endif

namespace annals::tool {

std::unique_ptr<SqliteEventStore> open_for_reading(const std::filesystem::path& db) {
  SqliteStoreOptions options;
  options.read_only = true;
  options.create_if_missing = false;
  std::unique_ptr<SqliteEventStore> store;
  try {
    store = std::make_unique<SqliteEventStore>(db, options);
  } catch (const StorageError& e) {
    throw ToolError(kExitUnusable, e.what());
  }
  // A file that carries the Annals identity but lost its events table is
  // not a store any command can use: say so, naming it, before a query fails.
  try {
    store->head_position();
  } catch (const StorageError& e) {
    if (std::string_view(e.what()).find("no such table: events") != std::string_view::npos) {
      throw ToolError(kExitUnusable, "'" + db.string() +
                                         "' is not a usable Annals store: it has no events table");
    }
    throw;
  }
  return store;
}

bool is_postgres_url(const std::filesystem::path& db) {
  const std::string& s = db.native();
  return s.starts_with("postgresql://") || s.starts_with("postgres://");
}

std::string store_name(const std::filesystem::path& db) {
  std::string s = db.string();
  if (is_postgres_url(db)) {
    // scheme://user:password@host...: the password goes, the rest stays.
    const auto begin = s.find("://") + 3;
    const auto at = s.find('@', begin);
    const auto colon = s.find(':', begin);
    const auto slash = s.find('/', begin);
    if (at != std::string::npos && colon < at && (slash == std::string::npos || at < slash)) {
      s.replace(colon, at - colon, ":***");
    }
    // A password given as a query parameter goes too.
    for (auto p = s.find("password=", begin); p != std::string::npos;
         p = s.find("password=", p + 1)) {
      if (s[p - 1] != '?' && s[p - 1] != '&') continue;
      const auto end = s.find('&', p);
      s.replace(p + 9, (end == std::string::npos ? s.size() : end) - (p + 9), "***");
    }
  }
  return "'" + s + "'";
}

std::string postgres_store_schema() {
  const char* schema = std::getenv("ANNALS_PG_SCHEMA");
  return schema != nullptr && *schema != '\0' ? schema : "public";
}

namespace {

#ifdef ANNALS_WITH_POSTGRES
std::unique_ptr<PostgresEventStore> open_postgres(const std::filesystem::path& url, bool create) {
  PostgresStoreOptions options;
  options.schema = postgres_store_schema();
  options.create_if_missing = create;
  try {
    return std::make_unique<PostgresEventStore>(url.string(), options);
  } catch (const InvalidArgument& e) {
    throw ToolError(kExitUsage, std::string("ANNALS_PG_SCHEMA: ") + e.what());
  } catch (const StorageError& e) {
    throw ToolError(kExitUnusable, "cannot open the store " + store_name(url) + ": " + e.what());
  }
}
#else
[[noreturn]] void no_postgres(const std::filesystem::path& url) {
  throw ToolError(kExitUnusable, store_name(url) +
                                     " names a PostgreSQL server, and this build of annals has "
                                     "no PostgreSQL support (libpq was not found)");
}
#endif

}  // namespace

std::unique_ptr<EventStore> open_store(const std::filesystem::path& db) {
  if (!is_postgres_url(db)) return open_for_reading(db);
#ifdef ANNALS_WITH_POSTGRES
  return open_postgres(db, false);
#else
  no_postgres(db);
#endif
}

std::int64_t import_into_postgres(const std::filesystem::path& url, std::istream& in,
                                  const ImportOptions& options) {
#ifdef ANNALS_WITH_POSTGRES
  return open_postgres(url, true)->import_events(in, options);
#else
  (void)in;
  (void)options;
  no_postgres(url);
#endif
}

Seal seal_postgres(const std::filesystem::path& url, const SealKey* key) {
#ifdef ANNALS_WITH_POSTGRES
  return seal(*open_postgres(url, false), key);
#else
  (void)key;
  no_postgres(url);
#endif
}

bool is_postgres_read_model(const std::filesystem::path& db,
                            const std::filesystem::path& read_model) {
  return read_model.empty() ? is_postgres_url(db) : is_postgres_url(read_model);
}

namespace {

// The variable that names the read model's schema, and the schema; the
// store's variable when the read model's is not set, so that a read model
// beside the store needs nothing more.
std::pair<std::string, std::string> read_model_schema() {
  for (const char* variable : {"ANNALS_PG_READ_MODEL_SCHEMA", "ANNALS_PG_SCHEMA"}) {
    if (const char* schema = std::getenv(variable); schema != nullptr && *schema != '\0') {
      return {variable, schema};
    }
  }
  return {"ANNALS_PG_READ_MODEL_SCHEMA", "public"};
}

}  // namespace

std::string postgres_read_model_name(const std::filesystem::path& url) {
  return "schema \"" + read_model_schema().second + "\" of " + store_name(url);
}

std::unique_ptr<ReadModel> open_postgres_read_model(const std::filesystem::path& url,
                                                    bool read_only) {
#ifdef ANNALS_WITH_POSTGRES
  const auto [variable, schema] = read_model_schema();
  PostgresReadModelOptions options;
  options.schema = schema;
  options.read_only = read_only;
  try {
    return std::make_unique<PostgresReadModel>(url.string(), options);
  } catch (const InvalidArgument& e) {
    throw ToolError(kExitUsage, variable + ": " + e.what());
  } catch (const StorageError& e) {
    throw ToolError(kExitUnusable,
                    "cannot open the read model in " + store_name(url) + ": " + e.what());
  }
#else
  (void)read_only;
  no_postgres(url);
#endif
}

std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
    } else {
      out += ch;
    }
  }
  return out;
}

std::string printable_message(std::string_view text) {
  if (text.size() <= kMessageLimit) return printable(text);
  std::size_t cut = kMessageLimit;  // never inside a UTF-8 character
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
  return printable(text.substr(0, cut)) + "... (" + std::to_string(text.size() - cut) +
         " more bytes)";
}

void require_writable(const std::filesystem::path& file, const std::string& what) {
  // access() answers for the real user, as the open will; root passes.
  if (::access(file.c_str(), W_OK) != 0) {
    throw ToolError(kExitUnusable, what + " '" + file.string() + "' is not writable (" +
                                       std::strerror(errno) + "); nothing was changed");
  }
}

}  // namespace annals::tool
