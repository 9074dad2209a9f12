// A second process for the browser test: appends one event to a store.
//   annals_test_append DB STREAM TYPE PAYLOAD [METADATA]
// Prints the event's position.

#include <iostream>

#include "annals/core/error.hpp"
#include "annals/store/sqlite_event_store.hpp"

int main(int argc, char** argv) {
  if (argc < 5 || argc > 6) {
    std::cerr << "usage: annals_test_append DB STREAM TYPE PAYLOAD [METADATA]\n";
    return 2;
  }
  try {
    annals::SqliteStoreOptions options;
    options.synchronous = annals::Synchronous::normal;
    annals::SqliteEventStore store(argv[1], options);
    annals::EventData event;
    event.type = argv[3];
    event.payload = argv[4];
    if (argc == 6) event.metadata = argv[5];
    const auto result = store.append(argv[2], annals::ExpectedVersion::any(), {event});
    std::cout << result.last_position << '\n';
  } catch (const annals::Error& e) {
    std::cerr << "annals_test_append: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
