// The API tour of the README, as a program: every snippet of the README's
// "API tour" is copied from here, and the test ReadmeSnippetsAreTheTourCode
// fails when one of them no longer appears in this file. ctest runs it
// (ExampleTourRuns), so the snippets compile and do what the README says.
//
// Usage: tour [FILE]   (FILE defaults to tour.db; it is replaced)

#include <annals/annals.hpp>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <variant>

namespace {

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

struct CheckedOut {  // no fields: no to_json/from_json needed
  static constexpr std::string_view type_name = "cart.CheckedOut";
  static constexpr int schema_version = 1;
};

using CartEvent = std::variant<ItemAdded, ItemRemoved, CheckedOut>;

// The same event type at its next schema version, for the upcaster snippet.
struct PricedItemAdded {
  static constexpr std::string_view type_name = "cart.ItemAdded";
  static constexpr int schema_version = 2;
  std::string sku;
  std::int64_t quantity = 0;
  std::int64_t unit_price_cents = 0;
  std::string currency;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PricedItemAdded, sku, quantity, unit_price_cents, currency)

using NewCartEvent = std::variant<PricedItemAdded, ItemRemoved, CheckedOut>;

class Cart : public annals::Aggregate<Cart, CartEvent> {
 public:
  static constexpr std::string_view category = "cart";
  using Aggregate::Aggregate;

  void add(std::string sku, std::int64_t quantity, std::int64_t unit_price_cents) {
    if (checked_out_) throw annals::InvalidArgument("cart '" + id() + "' is checked out");
    raise(ItemAdded{std::move(sku), quantity, unit_price_cents});
  }
  void check_out() {
    if (lines_.empty()) throw annals::InvalidArgument("cart '" + id() + "' is empty");
    raise(CheckedOut{});
  }

  void apply(const ItemAdded& e) { lines_[e.sku] += e.quantity * e.unit_price_cents; }
  void apply(const ItemRemoved& e) { lines_.erase(e.sku); }
  void apply(const CheckedOut&) { checked_out_ = true; }

  std::int64_t total() const {
    std::int64_t cents = 0;
    for (const auto& [sku, line] : lines_) cents += line;
    return cents;
  }

 private:
  std::map<std::string, std::int64_t> lines_;
  bool checked_out_ = false;
};

std::int64_t cents_of(const CartEvent& event) {
  const auto* added = std::get_if<ItemAdded>(&event);
  return added == nullptr ? 0 : added->quantity * added->unit_price_cents;
}

std::string cart_of(const annals::RecordedEvent& e) {
  return Cart::id_from_stream(e.stream_id).value_or(e.stream_id);
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("tour: " + what);
  std::cout << "ok: " << what << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path file = argc > 1 ? argv[1] : "tour.db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file.string() + suffix);
  try {
    // [open and append]
    annals::SqliteEventStore store(file);   // created with mode 0600 if missing
    auto result = store.append("cart-1", annals::ExpectedVersion::no_stream(),
                               {annals::encode(ItemAdded{"book-42", 2, 1250}, {{"actor", "demo"}})});
    // result.stream_version == 1, result.first_position, result.last_position

    try {
      store.append("cart-1", annals::ExpectedVersion::exactly(0), {annals::encode(ItemRemoved{"book-42"})});
    } catch (const annals::WrongExpectedVersion& e) {
      // e.stream_id(), e.expected(), e.actual_version(); nothing was written
    }
    check(result.stream_version == 1 && store.stream_version("cart-1") == 1,
          "a stale append writes nothing");

    // [retryable append]
    annals::EventData data = annals::encode(ItemAdded{"pen-7", 5, 199});
    data.event_id = annals::new_event_id();
    auto first = store.append("cart-1", annals::ExpectedVersion::exactly(1), {data});
    auto again = store.append("cart-1", annals::ExpectedVersion::exactly(1), {data});  // same result
    check(first == again && store.stream_version("cart-1") == 2, "a retried append writes once");

    // [replay]
    std::int64_t total = 0;
    for (const annals::RecordedEvent& recorded : store.read_stream("cart-1")) {
      CartEvent event = annals::decode<CartEvent>(recorded);   // picks the alternative by type
      total += cents_of(event);
    }
    auto last_ten = store.read_stream("cart-1", annals::kStreamEnd, annals::Direction::backward, 10);
    check(total == 2 * 1250 + 5 * 199 && last_ten.next()->version == 2, "replay and read backward");

    // [read all]
    for (const auto& e : store.read_all(/*from_position=*/1, annals::EventFilter::for_category("cart"))) {
      std::cout << e.position << " " << e.stream_id << " " << e.type << "\n";
    }
    auto added = store.read_all(1, annals::EventFilter::for_types({"cart.ItemAdded"}));
    auto streams = store.list_streams("cart-");
    check(store.head_position() == 2 && streams.next() == "cart-1" && added.next().has_value(),
          "read all, filtered");

    // [several streams]
    store.append(std::vector<annals::StreamAppend>{
        {"cart-1", annals::ExpectedVersion::exactly(2), {annals::encode(ItemRemoved{"pen-7"})}},
        {"cart-2", annals::ExpectedVersion::no_stream(), {annals::encode(ItemAdded{"pen-7", 1, 199})}}});
    check(store.stream_version("cart-2") == 1, "two streams in one append");

    // [upcasters]
    // ItemAdded moved to schema_version 2 with a currency (PricedItemAdded): version-1 events are upcast on read.
    annals::UpcasterChain upcasters;
    upcasters.add("cart.ItemAdded", 1, [](annals::Json p) { p["currency"] = "EUR"; return p; });
    for (const auto& recorded : store.read_stream("cart-2")) {
      auto event = annals::decode<NewCartEvent>(recorded, &upcasters);  // a PricedItemAdded
      check(std::get<PricedItemAdded>(event).currency == "EUR", "decode through an upcaster");
    }

    // [verify]
    annals::VerifyResult verified = store.verify();
    if (!verified.ok) std::cerr << "first bad position " << verified.first_bad_position << ": " << verified.reason;
    check(verified.ok, "the hash chain verifies");

    // [repository]
    annals::Repository<Cart> carts(store);
    carts.update("1", [](Cart& c) { c.add("ink-3", 1, 450); }, {.actor = "alice"});  // retried on conflict
    Cart then = carts.load_at("1", 2);          // as it was after its second event
    Cart audit = carts.load_as_of("1", annals::parse_timestamp("2099-01-01T00:00:00Z"));
    auto [one, two] = carts.update_together({"1", "2"}, [](Cart& a, Cart& b) {
      a.check_out();                            // both or neither
      b.check_out();
    });
    check(then.total() == 2 * 1250 + 5 * 199 && audit.total() == 2 * 1250 + 450 &&
              one.version() == 5 && two.version() == 2,
          "aggregates by replay");

    // [projection]
    annals::Projection totals{
        .name = "cart.totals",
        .filter = annals::EventFilter::for_category("cart"),
        .setup = [](annals::SqlTransaction& tx) {
          tx.exec_script("CREATE TABLE IF NOT EXISTS cart_totals (cart TEXT PRIMARY KEY, cents INTEGER NOT NULL)");
        },
        .apply = [](annals::SqlTransaction& tx, const annals::RecordedEvent& e) {
          const auto event = annals::decode<CartEvent>(e);
          tx.exec("INSERT INTO cart_totals VALUES ($1, $2) ON CONFLICT (cart) DO UPDATE SET cents = cents + $2",
                  {cart_of(e), cents_of(event)});
        },
        .reset = [](annals::SqlTransaction& tx) { tx.exec("DELETE FROM cart_totals"); },
    };

    annals::SqliteReadModel views(store.path());            // the store's own file, or another
    annals::ProjectionRunner runner(store, views, totals);
    runner.start();            // catches up from its checkpoint, then follows new commits
    runner.wait_for(store.head_position(), std::chrono::seconds(10));
    runner.status();           // checkpoint, head, lag, state, failure
    runner.rebuild();          // reset, checkpoint 0, replay
    auto rows = views.query("SELECT cents FROM cart_totals WHERE cart = ?1", {std::string("1")});
    check(rows.size() == 1 && rows[0][0].as_int() == 2 * 1250 + 5 * 199 + 450 &&
              runner.status().checkpoint == store.head_position(),
          "the projection is current");
    runner.stop();
    std::cout << "tour: ok\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "tour: " << e.what() << "\n";
    return 1;
  }
}
