#include "account.hpp"

#include <algorithm>
#include <limits>

#include <annals/core/error.hpp>

#include "errors.hpp"

namespace bank {
namespace {

constexpr Cents kMaxCents = std::numeric_limits<Cents>::max();

void require_positive(Cents amount) {
  if (amount <= 0) {
    throw InvalidAmount("amount must be more than zero, got " + format_cents(amount));
  }
}

}  // namespace

Cents balance_change(const AccountEvent& event) {
  return std::visit(
      [](const auto& e) -> Cents {
        using E = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<E, Deposited> || std::is_same_v<E, TransferReceived>) {
          return e.amount;
        } else if constexpr (std::is_same_v<E, Withdrawn> || std::is_same_v<E, TransferSent>) {
          return -e.amount;
        } else {
          return 0;
        }
      },
      event);
}

void Account::open(const std::string& owner, const std::string& currency,
                   Cents overdraft_limit) {
  if (opened_ || version() > 0) throw AccountExists(id());
  check_account_id(id());
  check_owner(owner);
  check_currency(currency);
  if (overdraft_limit < 0) {
    throw InvalidAmount("overdraft limit must not be negative, got " +
                        format_cents(overdraft_limit));
  }
  raise(AccountOpened{owner, currency, overdraft_limit});
}

void Account::deposit(Cents amount) {
  require_open();
  require_positive(amount);
  require_can_add(amount);
  raise(Deposited{amount});
}

void Account::withdraw(Cents amount) {
  require_open();
  require_positive(amount);
  require_can_take(amount, "withdraw");
  raise(Withdrawn{amount});
}

void Account::close() {
  require_open();
  if (balance_ != 0) {
    throw BalanceNotZero("account '" + id() + "' can only be closed at a zero balance; it holds " +
                         format_money(balance_, currency_));
  }
  raise(AccountClosed{});
}

Cents Account::available() const noexcept {
  // balance_ >= -overdraft_limit_ always holds, so the sum is >= 0; it is
  // capped instead of overflowing for absurdly large balances and limits.
  return balance_ > kMaxCents - overdraft_limit_ ? kMaxCents : balance_ + overdraft_limit_;
}

void Account::apply(const AccountOpened& e) {
  opened_ = true;
  owner_ = e.owner;
  currency_ = e.currency;
  overdraft_limit_ = e.overdraft_limit;
}

void Account::require_open() const {
  if (!opened_) throw UnknownAccount(id());
  if (closed_) throw AccountIsClosed(id());
}

void Account::require_can_take(Cents amount, std::string_view what) const {
  if (amount > available()) {
    throw InsufficientFunds(
        id(), amount, available(),
        "cannot " + std::string(what) + " " + format_money(amount, currency_) + " from '" + id() +
            "': balance " + format_money(balance_, currency_) + ", overdraft limit " +
            format_money(overdraft_limit_, currency_) + ", available " +
            format_money(available(), currency_));
  }
}

void Account::require_can_add(Cents amount) const {
  if (balance_ > kMaxCents - amount) {
    throw InvalidAmount("amount " + format_cents(amount) + " would overflow the balance of '" +
                        id() + "'");
  }
}

void transfer(Account& from, Account& to, Cents amount, const std::string& transfer_id,
              const std::string& reference) {
  if (from.id() == to.id()) {
    throw InvalidInput("cannot transfer from account '" + from.id() + "' to itself");
  }
  from.require_open();
  to.require_open();
  require_positive(amount);
  check_reference(reference);
  if (from.currency() != to.currency()) {
    throw CurrencyMismatch("cannot transfer from '" + from.id() + "' (" + from.currency() +
                           ") to '" + to.id() + "' (" + to.currency() +
                           "): the currencies differ");
  }
  from.require_can_take(amount, "transfer");
  to.require_can_add(amount);
  // Both checks passed: raise on both sides, so neither raises alone.
  from.raise(TransferSent{transfer_id, to.id(), amount, reference});
  to.raise(TransferReceived{transfer_id, from.id(), amount, reference});
}

void check_account_id(std::string_view id) {
  const bool ok_chars = std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
  });
  if (id.empty() || id.size() > 64 || !ok_chars) {
    throw InvalidInput("invalid account id '" + echo(id) +
                       "': use 1 to 64 letters, digits, '_', '-' or '.'");
  }
}

void check_currency(std::string_view currency) {
  const bool ok = currency.size() == 3 && std::all_of(currency.begin(), currency.end(),
                                                      [](char c) { return c >= 'A' && c <= 'Z'; });
  if (!ok) {
    throw InvalidInput("invalid currency '" + echo(currency) +
                       "': use a three-letter code in capitals such as EUR");
  }
}

void check_owner(std::string_view owner) {
  const bool control = std::any_of(owner.begin(), owner.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (owner.empty() || owner.size() > 200 || control) {
    throw InvalidInput("invalid owner '" + echo(owner) +
                       "': give 1 to 200 characters without control characters");
  }
}

void check_reference(std::string_view reference) {
  const bool control = std::any_of(reference.begin(), reference.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (reference.size() > kMaxReferenceBytes || control) {
    throw InvalidInput("invalid reference '" + echo(reference) + "': give at most " +
                       std::to_string(kMaxReferenceBytes) +
                       " characters without control characters");
  }
}

Cents replayed_balance(Cents balance, Cents amount, bool incoming, const std::string& account,
                       std::int64_t version) {
  Cents result = 0;
  const bool overflow = incoming ? __builtin_add_overflow(balance, amount, &result)
                                 : __builtin_sub_overflow(balance, amount, &result);
  if (overflow) {
    throw annals::IntegrityError(
        "stream '" + std::string(Account::category) + "-" + account + "' version " +
        std::to_string(version) + ": " + (incoming ? "adding " : "taking ") +
        format_cents(amount) + (incoming ? " to" : " from") + " a balance of " +
        format_cents(balance) + " overflows; the stored history is not one the bank writes");
  }
  return result;
}

Cents replayed_balance(Cents balance, const AccountEvent& event, const std::string& account,
                       std::int64_t version) {
  return std::visit(
      [&](const auto& e) -> Cents {
        using E = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<E, Deposited> || std::is_same_v<E, TransferReceived>) {
          return replayed_balance(balance, e.amount, true, account, version);
        } else if constexpr (std::is_same_v<E, Withdrawn> || std::is_same_v<E, TransferSent>) {
          return replayed_balance(balance, e.amount, false, account, version);
        } else {
          return balance;
        }
      },
      event);
}

void Account::apply_change(Cents amount, bool incoming) {
  balance_ = replayed_balance(balance_, amount, incoming, id(), version() + 1);
}

}  // namespace bank
