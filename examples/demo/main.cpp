// The first-run demo: append a few events to a stream in an SQLite file, read
// them back, rebuild state by replay, and verify the hash chain. The bank app
// (examples/bank) will replace it as the main job.
//
// Usage: demo [FILE] [--fresh]   (FILE defaults to demo.db)

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <variant>

#include <annals/core/codec.hpp>
#include <annals/core/error.hpp>
#include <annals/store/sqlite_event_store.hpp>

namespace demo {

struct ItemAdded {
  static constexpr std::string_view type_name = "cart.ItemAdded";
  static constexpr int schema_version = 1;
  std::string sku;
  std::int64_t quantity = 0;
  std::int64_t unit_price_cents = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ItemAdded, sku, quantity, unit_price_cents)

struct ItemRemoved {
  static constexpr std::string_view type_name = "cart.ItemRemoved";
  static constexpr int schema_version = 1;
  std::string sku;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ItemRemoved, sku)

using CartEvent = std::variant<ItemAdded, ItemRemoved>;

std::string money(std::int64_t cents) {
  const char* sign = cents < 0 ? "-" : "";
  if (cents < 0) cents = -cents;
  const std::string frac = std::to_string(cents % 100);
  // Appended piece by piece: `sign + std::string` trips a false -Wrestrict
  // of GCC 12 at -O2 (GCC bug 105329).
  std::string text = sign;
  text += std::to_string(cents / 100);
  text += frac.size() < 2 ? ".0" : ".";
  text += frac;
  return text;
}

}  // namespace demo

int main(int argc, char** argv) {
  using namespace annals;
  std::filesystem::path file = "demo.db";
  bool fresh = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--fresh") {
      fresh = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << "usage: demo [FILE] [--fresh]\n";
      return 0;
    } else {
      file = arg;
    }
  }
  try {
    if (fresh) {
      for (const char* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(file.string() + suffix);
      }
    }
    SqliteEventStore store(file);
    const std::string cart = "cart-" + std::to_string(store.head_position() / 3 + 1);
    std::cout << "store: " << file.string() << " (head position " << store.head_position()
              << ")\n";

    // A command decides, then appends under optimistic concurrency.
    const auto result = store.append(
        cart, ExpectedVersion::no_stream(),
        {encode(demo::ItemAdded{"book-42", 2, 1250}, {{"actor", "demo"}}),
         encode(demo::ItemAdded{"pen-7", 5, 199}, {{"actor", "demo"}}),
         encode(demo::ItemRemoved{"pen-7"}, {{"actor", "demo"}})});
    std::cout << "appended 3 events to " << cart << ": version " << result.stream_version
              << ", positions " << result.first_position << ".." << result.last_position << "\n";

    // A stale writer is refused and writes nothing.
    try {
      store.append(cart, ExpectedVersion::exactly(1),
                   {encode(demo::ItemRemoved{"book-42"})});
    } catch (const WrongExpectedVersion& e) {
      std::cout << "stale append refused: " << e.what() << "\n";
    }

    // Replay: state is a fold over the stream.
    std::map<std::string, std::int64_t> lines;  // sku -> total cents
    for (const RecordedEvent& recorded : store.read_stream(cart)) {
      const auto event = decode<demo::CartEvent>(recorded);
      std::cout << "  v" << recorded.version << " @" << recorded.position << " "
                << format_timestamp(recorded.recorded_at) << " " << recorded.type << " "
                << recorded.payload << "\n";
      std::visit(
          [&](const auto& e) {
            using E = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<E, demo::ItemAdded>) {
              lines[e.sku] += e.quantity * e.unit_price_cents;
            } else {
              lines.erase(e.sku);
            }
          },
          event);
    }
    std::int64_t total = 0;
    for (const auto& [sku, cents] : lines) total += cents;
    std::cout << "replayed " << cart << ": " << lines.size() << " line(s), total "
              << demo::money(total) << "\n";

    const auto check = store.verify();
    std::cout << "verify: " << (check.ok ? "ok" : "FAILED") << " (" << check.events_checked
              << " events checked)" << (check.ok ? "" : " " + check.reason) << "\n";
    return check.ok ? 0 : 1;
  } catch (const Error& e) {
    std::cerr << "demo: " << e.what() << "\n";
    return 1;
  }
}
