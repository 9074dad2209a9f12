// A program outside the Annals tree that uses the installed PostgreSQL store
// (find_package(annals COMPONENTS postgres), annals::postgres) without a
// server: each way of failing to open a store must throw the documented error
// with a message that names the bad input. Linking it proves that the exported
// target brings libpq to the link line. Prints "consumer_postgres: ok" only
// when every check passed.
//   consumer_postgres SOCKET_DIR   (an existing directory where no server listens)

#include <annals/core/error.hpp>
#include <annals/store/postgres_event_store.hpp>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <iostream>
#include <string>

namespace {

int fail(const std::string& why) {
  std::cout << "consumer_postgres: FAILED: " << why << "\n";
  return 1;
}

// The directory as a URL path: every byte but unreserved ones and '/' as %XX.
std::string url_encode(const std::string& s) {
  std::string out;
  for (const unsigned char c : s) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// Opens `connection` with `options`; returns "" when it threw E with a message
// containing every one of `expected`, else what went wrong.
template <typename E>
std::string open_fails_with(const std::string& connection,
                            const annals::PostgresStoreOptions& options,
                            std::initializer_list<std::string> expected) {
  try {
    annals::PostgresEventStore store(connection, options);
  } catch (const E& e) {
    const std::string message = e.what();
    for (const std::string& part : expected) {
      if (message.find(part) == std::string::npos) {
        return "opening '" + connection + "': the message does not name '" + part + "': " + message;
      }
    }
    std::cout << "  '" << connection << "': " << message << "\n";
    return {};
  } catch (const std::exception& e) {
    return "opening '" + connection + "' threw another error than expected: " + e.what();
  }
  return "opening '" + connection + "' did not throw";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return fail("usage: consumer_postgres SOCKET_DIR");
  const std::string socket_dir = argv[1];

  // No server listens in the directory: libpq cannot connect, and the store
  // says so with libpq's reason, which names the socket.
  const std::string url = "postgresql:///annals?host=" + url_encode(socket_dir);
  if (auto why = open_fails_with<annals::StorageError>(url, {}, {"cannot connect", socket_dir});
      !why.empty()) {
    return fail(why);
  }

  // A URL libpq cannot parse: no connection is tried.
  const std::string bad_url = "postgresql://localhost/annals?no_such_option=1";
  if (auto why = open_fails_with<annals::StorageError>(bad_url, {}, {"no_such_option"});
      !why.empty()) {
    return fail(why);
  }

  // A schema name the store refuses, before it connects.
  annals::PostgresStoreOptions options;
  options.schema = "1bad";
  if (auto why = open_fails_with<annals::InvalidArgument>(url, options, {"'1bad'"}); !why.empty()) {
    return fail(why);
  }

  std::cout << "consumer_postgres: ok\n";
  return 0;
}
