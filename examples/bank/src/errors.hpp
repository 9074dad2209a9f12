#pragma once
/// The bank's own refusals. Each is a rule of the domain saying no (not enough
/// money, an unknown account, a malformed amount), so retrying cannot help and
/// the command line reports it as it is. They derive from BankError, not from
/// annals::Error: a concurrency conflict (annals::WrongExpectedVersion) is a
/// different thing, retried by the repository, and must never be confused with
/// a refusal.
///
/// Thread safety: immutable values.

#include <stdexcept>
#include <string>

#include "money.hpp"

namespace bank {

/// Base of every refusal of the bank domain.
class BankError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An amount that is not a positive decimal number of at most two places
/// (see money.hpp), or one that would overflow a balance.
class InvalidAmount : public BankError {
 public:
  using BankError::BankError;
};

/// Any other bad argument: an account id, a currency, an owner, a time window,
/// a transfer to the same account.
class InvalidInput : public BankError {
 public:
  using BankError::BankError;
};

/// A refusal about one account, which it names.
class AccountError : public BankError {
 public:
  AccountError(const std::string& account, const std::string& message)
      : BankError(message), account_(account) {}
  const std::string& account() const noexcept { return account_; }

 private:
  std::string account_;
};

/// No account with this id (or none yet at the time or version asked for).
class UnknownAccount : public AccountError {
 public:
  explicit UnknownAccount(const std::string& account, const std::string& detail = {})
      : AccountError(account,
                     "unknown account '" + account + "'" + (detail.empty() ? "" : " " + detail)) {}
};

/// open of an account id that is already taken.
class AccountExists : public AccountError {
 public:
  explicit AccountExists(const std::string& account)
      : AccountError(account, "account '" + account + "' already exists") {}
};

/// A command on a closed account.
class AccountIsClosed : public AccountError {
 public:
  explicit AccountIsClosed(const std::string& account)
      : AccountError(account, "account '" + account + "' is closed") {}
};

/// A withdrawal or an outgoing transfer past the overdraft limit. Carries
/// what was asked for and what could have been taken.
class InsufficientFunds : public AccountError {
 public:
  InsufficientFunds(const std::string& account, Cents requested, Cents available,
                    const std::string& message)
      : AccountError(account, message), requested_(requested), available_(available) {}
  Cents requested() const noexcept { return requested_; }
  Cents available() const noexcept { return available_; }

 private:
  Cents requested_;
  Cents available_;
};

/// A transfer between accounts of different currencies.
class CurrencyMismatch : public BankError {
 public:
  using BankError::BankError;
};

/// close of an account whose balance is not zero.
class BalanceNotZero : public BankError {
 public:
  using BankError::BankError;
};

}  // namespace bank
