// EventStore::append of one EventData (no caller-built vector), on both stores.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include <unistd.h>

#include "annals/core/error.hpp"
#include "annals/store/in_memory_event_store.hpp"
#include "annals/store/sqlite_event_store.hpp"

namespace annals {
namespace {

EventData event(std::string id = {}) {
  EventData e;
  e.event_id = std::move(id);
  e.type = "test.Happened";
  e.payload = R"({"n":1})";
  e.metadata = "{}";
  return e;
}

void check_single_event_appends(EventStore& store) {
  const EventData first = event();
  const AppendResult r1 = store.append("s-1", ExpectedVersion::no_stream(), first);  // lvalue: copied
  EXPECT_EQ(r1.stream_version, 1);
  EXPECT_EQ(r1.first_position, r1.last_position);
  const AppendResult r2 = store.append("s-1", ExpectedVersion::exactly(1), event());
  EXPECT_EQ(r2.stream_version, 2);
  EXPECT_EQ(r2.first_position, r1.last_position + 1);
  EXPECT_EQ(store.stream_version("s-1"), 2);
  EXPECT_THROW(store.append("s-1", ExpectedVersion::exactly(1), event()), WrongExpectedVersion);
  EXPECT_EQ(store.stream_version("s-1"), 2);

  // An idempotent retry of one event with its id returns the first result.
  const std::string id = "0190f1a2-7b3c-7d4e-8f50-617283940a1b";
  const AppendResult once = store.append("s-2", ExpectedVersion::no_stream(), event(id));
  const AppendResult again = store.append("s-2", ExpectedVersion::no_stream(), event(id));
  EXPECT_EQ(again.first_position, once.first_position);
  EXPECT_EQ(store.stream_version("s-2"), 1);

  EventData bad = event();
  bad.payload = "[1]";
  EXPECT_THROW(store.append("s-3", ExpectedVersion::any(), bad), InvalidArgument);
  // A braced list still means the list overload: {} is "no events".
  EXPECT_THROW(store.append("s-3", ExpectedVersion::any(), {}), InvalidArgument);
  EXPECT_EQ(store.stream_version("s-3"), 0);
}

TEST(SingleEventAppend, OneEventDataAppendsWithTheListOverloadsContractInMemory) {
  InMemoryEventStore store;
  check_single_event_appends(store);
}

TEST(SingleEventAppend, OneEventDataAppendsWithTheListOverloadsContractInSqlite) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("annals-single-append-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    SqliteEventStore store(dir / "store.db");
    check_single_event_appends(store);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace annals
