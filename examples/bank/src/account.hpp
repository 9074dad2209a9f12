#pragma once
/// The Account aggregate: the consistency boundary of one bank account.
///
/// Its state is rebuilt by replaying the stream "account-<id>" (apply()); its
/// commands check the rules against that state and raise events. The rules:
/// amounts are positive; a closed account takes no command; the balance never
/// goes below minus the overdraft limit; an account closes only at zero;
/// an account id opens once.
///
///   Account a("alice");
///   a.open("Alice", "EUR", 0);      // raises AccountOpened
///   a.deposit(10'000);              // raises Deposited{10000}
///   a.withdraw(20'000);             // throws InsufficientFunds, raises nothing
///
/// Throws (commands): the BankError types of errors.hpp; a command that throws
/// raised nothing.
/// Thread safety: a plain object; one thread at a time (repositories load a
/// fresh copy per command).

#include <string>
#include <string_view>

#include <annals/aggregates/aggregate.hpp>

#include "events.hpp"
#include "money.hpp"

namespace bank {

class Account : public annals::Aggregate<Account, AccountEvent> {
 public:
  static constexpr std::string_view category = "account";  // streams "account-<id>"
  using Aggregate::Aggregate;                              // Account(std::string id)

  // Commands: check the rules, then raise.
  void open(const std::string& owner, const std::string& currency, Cents overdraft_limit);
  void deposit(Cents amount);
  void withdraw(Cents amount);
  void close();

  // State.
  bool is_open() const noexcept { return opened_ && !closed_; }
  bool is_closed() const noexcept { return closed_; }
  const std::string& owner() const noexcept { return owner_; }
  const std::string& currency() const noexcept { return currency_; }
  Cents balance() const noexcept { return balance_; }
  Cents overdraft_limit() const noexcept { return overdraft_limit_; }
  /// What a withdrawal may take at most: balance plus overdraft limit.
  Cents available() const noexcept;

  // Event handlers: state changes only, no rules, no I/O (a stored event is a
  // fact). The one check is arithmetic: a stored history whose sum does not
  // fit in Cents (only a forged or imported store can hold one) throws
  // annals::IntegrityError naming the stream and the version, instead of
  // wrapping around.
  void apply(const AccountOpened& e);
  void apply(const Deposited& e) { apply_change(e.amount, true); }
  void apply(const Withdrawn& e) { apply_change(e.amount, false); }
  void apply(const TransferSent& e) { apply_change(e.amount, false); }
  void apply(const TransferReceived& e) { apply_change(e.amount, true); }
  void apply(const AccountClosed&) { closed_ = true; }

 private:
  friend void transfer(Account& from, Account& to, Cents amount, const std::string& transfer_id,
                       const std::string& reference);

  void require_open() const;
  void apply_change(Cents amount, bool incoming);
  void require_can_take(Cents amount, std::string_view what) const;
  void require_can_add(Cents amount) const;

  bool opened_ = false;
  bool closed_ = false;
  std::string owner_;
  std::string currency_;
  Cents balance_ = 0;
  Cents overdraft_limit_ = 0;
};

/// Moves `amount` from one account to another: checks both sides (open,
/// same currency, different accounts, enough money), then raises TransferSent
/// on `from` and TransferReceived on `to`, both carrying `transfer_id`. Save
/// the two together (Repository::update_together) so that both commit or neither.
/// Throws: InvalidAmount, InvalidInput (same account), UnknownAccount,
/// AccountIsClosed, CurrencyMismatch, InsufficientFunds; then neither account
/// raised anything.
void transfer(Account& from, Account& to, Cents amount, const std::string& transfer_id,
              const std::string& reference);

/// Checks an account id: 1 to 64 characters of ASCII letters, digits, '_',
/// '-' and '.'. Throws: InvalidInput naming the id.
void check_account_id(std::string_view id);

/// Checks a currency code: three ASCII capital letters ("EUR").
/// Throws: InvalidInput naming the code.
void check_currency(std::string_view currency);

/// Checks an owner name: 1 to 200 bytes, no control characters.
/// Throws: InvalidInput.
void check_owner(std::string_view owner);

/// The longest transfer reference, in bytes.
inline constexpr std::size_t kMaxReferenceBytes = 200;

/// Checks a transfer reference: at most kMaxReferenceBytes bytes (empty is
/// allowed), no control characters, so a reference printed on a statement
/// or ledger line can never fake another line.
/// Throws: InvalidInput.
void check_reference(std::string_view reference);

/// The balance after `amount` came in (`incoming`) or went out, while
/// replaying version `version` of `account`.
/// Throws: annals::IntegrityError naming the stream and the version when the
/// result does not fit in Cents.
Cents replayed_balance(Cents balance, Cents amount, bool incoming, const std::string& account,
                       std::int64_t version);

/// The same for any event (opened and closed change nothing).
Cents replayed_balance(Cents balance, const AccountEvent& event, const std::string& account,
                       std::int64_t version);

}  // namespace bank
