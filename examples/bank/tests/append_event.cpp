// append_event: appends one event to a store through the Annals API, so that
// the CLI tests can hold stored data the bank itself would never write (a
// reference with a line break, an amount that overflows a balance) in a
// store whose hash chain is intact.
//   append_event DB STREAM TYPE PAYLOAD
// Exit codes: 0 appended, 1 failed (the error on stderr), 2 bad usage.

#include <exception>
#include <iostream>

#include <annals/store/sqlite_event_store.hpp>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: append_event DB STREAM TYPE PAYLOAD\n";
    return 2;
  }
  try {
    annals::SqliteStoreOptions options;
    options.create_if_missing = false;
    annals::SqliteEventStore store(argv[1], options);
    annals::EventData event;
    event.type = argv[3];
    event.payload = argv[4];
    store.append(argv[2], annals::ExpectedVersion::any(), {event});
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "append_event: " << e.what() << "\n";
    return 1;
  }
}
