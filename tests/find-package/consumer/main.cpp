#include <annals/store/sqlite_event_store.hpp>

#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer FILE\n";
    return 2;
  }
  std::filesystem::remove(argv[1]);
  annals::SqliteEventStore store(argv[1]);
  const auto data = annals::EventData::from_json("consumer.Pinged", {{"n", 1}});
  store.append("ping-1", annals::ExpectedVersion::no_stream(), {data});
  for (const auto& event : store.read_stream("ping-1")) {
    if (event.type == "consumer.Pinged" && event.payload_json()["n"] == 1 && store.verify().ok) {
      std::cout << "consumer: ok\n";
      return 0;
    }
  }
  std::cout << "consumer: event did not round-trip\n";
  return 1;
}
