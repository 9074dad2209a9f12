#pragma once
/// The bank's two read models, kept by durable projections (ProjectionRunner)
/// in SQLite tables. The bank keeps them in the store's own file, so one file
/// holds everything and a reader can join events and read models.
///
///   bank_accounts  one row per account: the balances read model
///     (account TEXT PRIMARY KEY, owner, currency, overdraft_limit INTEGER,
///      balance INTEGER, status 'open'|'closed', version INTEGER,
///      opened_at INTEGER, updated_at INTEGER)        -- cents; microseconds UTC
///   bank_ledger    one row per money movement: the transactions ledger
///     (position INTEGER PRIMARY KEY,                 -- of the event in the store
///      recorded_at INTEGER, kind 'deposit'|'withdrawal'|'transfer',
///      from_account TEXT, to_account TEXT,           -- NULL for the outside world
///      amount INTEGER, reference TEXT, transfer_id TEXT)
///
/// A transfer is one ledger row (from its TransferSent); the matching
/// TransferReceived only moves the destination's balance.
///
/// Thread safety: the functions build values; the runner calls a projection's
/// functions from one thread at a time.

#include <annals/core/personal_data.hpp>
#include <annals/projections/projection.hpp>

namespace bank {

/// Name of the balances projection (its checkpoint row).
inline constexpr const char* kAccountsProjection = "bank.accounts";
/// Name of the ledger projection.
inline constexpr const char* kLedgerProjection = "bank.ledger";

/// The balances read model (table bank_accounts). Owners' names are
/// decrypted with `keys` (which must outlive the projection); a forgotten
/// owner is annals::kErasedText.
annals::Projection accounts_projection(const annals::KeyStore& keys);

/// The transactions ledger (table bank_ledger).
annals::Projection ledger_projection();

}  // namespace bank
