// A program outside the Annals tree: opens a store on a scratch file, appends
// one typed event, reads it back and checks that everything round-tripped.
// Prints "consumer: ok" only then.

#include <annals/annals.hpp>  // the umbrella header: everything, as a newcomer includes it

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <variant>

namespace {

struct Pinged {
  static constexpr std::string_view type_name = "consumer.Pinged";
  static constexpr int schema_version = 1;
  std::int64_t n = 0;
  std::string note;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Pinged, n, note)

using ConsumerEvent = std::variant<Pinged>;

int fail(const std::string& why) {
  std::cout << "consumer: FAILED: " << why << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path file =
      argc > 1 ? std::filesystem::path(argv[1])
               : std::filesystem::temp_directory_path() / "annals-consumer.db";
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(file.string() + suffix);
  }
  if (annals::kVersion != ANNALS_PACKAGE_VERSION) {
    return fail("<annals/version.hpp> says " + std::string(annals::kVersion) +
                ", the CMake package " ANNALS_PACKAGE_VERSION);
  }
  try {
    annals::SqliteEventStore store(file);
    annals::EventData sent = annals::encode(Pinged{42, "h\u00e9llo"}, {{"actor", "consumer"}});
    sent.event_id = annals::new_event_id();  // a known id makes the append retryable
    const auto result = store.append("ping-1", annals::ExpectedVersion::no_stream(), {sent});
    if (result.stream_version != 1 || result.first_position != 1 || result.last_position != 1) {
      return fail("unexpected append result");
    }
    if (store.append("ping-1", annals::ExpectedVersion::no_stream(), {sent}) != result) {
      return fail("an idempotent retry did not return the first result");
    }

    int count = 0;
    for (const annals::RecordedEvent& got : store.read_stream("ping-1")) {
      ++count;
      if (got.event_id != sent.event_id || got.type != sent.type ||
          got.schema_version != sent.schema_version || got.payload != sent.payload ||
          got.metadata != sent.metadata || got.stream_id != "ping-1" || got.version != 1 ||
          got.position != 1) {
        return fail("read back something other than what was appended");
      }
      // A copy: decode() returns the variant by value, so a reference into it
      // would dangle at the end of this statement.
      const Pinged ping = std::get<Pinged>(annals::decode<ConsumerEvent>(got));
      if (ping.n != 42 || ping.note != "h\u00e9llo") return fail("typed decode differs");
    }
    if (count != 1) return fail("read " + std::to_string(count) + " events, expected 1");
    if (store.head_position() != 1) return fail("head position is not 1");
    if (!store.verify().ok) return fail("hash chain does not verify");
  } catch (const annals::Error& e) {
    return fail(e.what());
  }
  std::filesystem::remove(file);
  std::cout << "consumer: ok\n";
  return 0;
}
