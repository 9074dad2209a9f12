#pragma once
// A small bank account aggregate for the aggregates tests.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <variant>

#include "annals/aggregates/aggregate.hpp"

namespace annals::test_domain {

struct Opened {
  static constexpr std::string_view type_name = "test.AccountOpened";
  static constexpr int schema_version = 1;
  std::string owner;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Opened, owner)

// Schema history: v1 {"cents"}, v2 {"amount"}, v3 {"amount", "currency"}.
struct Deposited {
  static constexpr std::string_view type_name = "test.Deposited";
  static constexpr int schema_version = 3;
  std::int64_t amount = 0;
  std::string currency = "EUR";
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, amount, currency)

struct Withdrawn {
  static constexpr std::string_view type_name = "test.Withdrawn";
  static constexpr int schema_version = 1;
  std::int64_t amount = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Withdrawn, amount)

struct Closed {
  static constexpr std::string_view type_name = "test.Closed";
  static constexpr int schema_version = 1;
};
inline void to_json(Json& j, const Closed&) { j = Json::object(); }
inline void from_json(const Json&, Closed&) {}

using AccountEvent = std::variant<Opened, Deposited, Withdrawn, Closed>;

struct InsufficientFunds : std::runtime_error {
  InsufficientFunds() : std::runtime_error("insufficient funds") {}
};
struct AccountClosed : std::runtime_error {
  AccountClosed() : std::runtime_error("account is closed") {}
};

class Account : public Aggregate<Account, AccountEvent> {
 public:
  static constexpr std::string_view category = "account";
  static constexpr int snapshot_schema_version = 1;
  using Aggregate::Aggregate;

  // Commands: check, then raise.
  void open(std::string owner) {
    if (opened_) throw std::logic_error("already open");
    raise(Opened{std::move(owner)});
  }
  void deposit(std::int64_t amount) {
    if (closed_) throw AccountClosed();
    if (amount <= 0) throw std::invalid_argument("amount must be positive");
    raise(Deposited{amount, "EUR"});
  }
  void withdraw(std::int64_t amount) {
    if (closed_) throw AccountClosed();
    if (amount > balance_) throw InsufficientFunds();
    raise(Withdrawn{amount});
  }
  void close() {
    if (balance_ != 0) throw std::logic_error("balance must be zero");
    raise(Closed{});
  }

  // State changes only.
  void apply(const Opened& e) {
    opened_ = true;
    owner_ = e.owner;
  }
  void apply(const Deposited& e) { balance_ += e.amount, ++transactions_; }
  void apply(const Withdrawn& e) { balance_ -= e.amount, ++transactions_; }
  void apply(const Closed&) { closed_ = true; }

  Json snapshot_state() const {
    return {{"owner", owner_},
            {"balance", balance_},
            {"transactions", transactions_},
            {"opened", opened_},
            {"closed", closed_}};
  }
  void restore_state(const Json& j) {
    owner_ = j.at("owner").get<std::string>();
    balance_ = j.at("balance").get<std::int64_t>();
    transactions_ = j.at("transactions").get<std::int64_t>();
    opened_ = j.at("opened").get<bool>();
    closed_ = j.at("closed").get<bool>();
  }

  std::int64_t balance() const { return balance_; }
  std::int64_t transactions() const { return transactions_; }
  const std::string& owner() const { return owner_; }
  bool closed() const { return closed_; }

  friend bool operator==(const Account& a, const Account& b) {
    return a.id() == b.id() && a.version() == b.version() &&
           a.snapshot_state() == b.snapshot_state();
  }

 private:
  std::string owner_;
  std::int64_t balance_ = 0;
  std::int64_t transactions_ = 0;
  bool opened_ = false;
  bool closed_ = false;
};

static_assert(Snapshottable<Account>);

}  // namespace annals::test_domain
