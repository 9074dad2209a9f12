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
