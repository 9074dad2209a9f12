#pragma once
/// The events of a bank account: plain structs that name themselves with a
/// stable type_name (what the store keeps, never a C++ name) and a
/// schema_version (bump it, and add an upcaster, when a payload changes).
/// nlohmann's macros convert them to and from their JSON payloads.
///
/// Amounts are Cents (integer minor units) of the account's currency.
///
/// Personal data: the owner's name (AccountOpened::owner) is encrypted under
/// the key of the account's stream ("account-<id>"), so `bank forget` can
/// erase it (annals/core/personal_data.hpp); it then reads "[erased]".
///
/// Thread safety: plain value types.

#include <array>
#include <string>
#include <string_view>
#include <variant>

#include <annals/core/codec.hpp>

#include "money.hpp"

namespace bank {

struct AccountOpened {
  static constexpr std::string_view type_name = "bank.AccountOpened";
  static constexpr int schema_version = 1;
  /// Encrypted per account; the data subject is the account's stream.
  static constexpr std::array<std::string_view, 1> personal_fields{"owner"};
  std::string owner;
  std::string currency;
  Cents overdraft_limit = 0;  ///< how far below zero the balance may go
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountOpened, owner, currency, overdraft_limit)

struct Deposited {
  static constexpr std::string_view type_name = "bank.Deposited";
  static constexpr int schema_version = 1;
  Cents amount = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, amount)

struct Withdrawn {
  static constexpr std::string_view type_name = "bank.Withdrawn";
  static constexpr int schema_version = 1;
  Cents amount = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Withdrawn, amount)

/// The source side of a transfer. The same transfer_id is in the TransferReceived
/// of the destination, appended in the same atomic multi-stream append.
struct TransferSent {
  static constexpr std::string_view type_name = "bank.TransferSent";
  static constexpr int schema_version = 1;
  std::string transfer_id;
  std::string to_account;
  Cents amount = 0;
  std::string reference;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TransferSent, transfer_id, to_account, amount, reference)

/// The destination side of a transfer (see TransferSent).
struct TransferReceived {
  static constexpr std::string_view type_name = "bank.TransferReceived";
  static constexpr int schema_version = 1;
  std::string transfer_id;
  std::string from_account;
  Cents amount = 0;
  std::string reference;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TransferReceived, transfer_id, from_account, amount, reference)

struct AccountClosed {
  static constexpr std::string_view type_name = "bank.AccountClosed";
  static constexpr int schema_version = 1;
};
inline void to_json(annals::Json& j, const AccountClosed&) { j = annals::Json::object(); }
inline void from_json(const annals::Json&, AccountClosed&) {}

/// Every event of an account; decoding picks the alternative by type_name.
using AccountEvent = std::variant<AccountOpened, Deposited, Withdrawn, TransferSent,
                                  TransferReceived, AccountClosed>;

/// What an event does to the balance: + for money in, - for money out, 0 for
/// the others. Statements and read models use it, so the arithmetic lives in
/// one place besides the aggregate's apply().
Cents balance_change(const AccountEvent& event);

}  // namespace bank
