#pragma once
/// Bank: the application service behind the `bank` program. It turns each
/// command into "load the aggregate(s), run the command, save" on an event
/// store, and answers queries from the aggregates (balances now and in the
/// past, statements, history) or from the read models (accounts, ledger).
///
///   bank::Bank bank("bank.db", {.create = true});            // an SQLite file
///   bank::Bank shared("postgresql://app@db/bank", {.create = true});  // PostgreSQL
///   bank.open("alice", "Alice", "EUR", 0);
///   bank.deposit("alice", 10'000);
///   bank.transfer("alice", "bob", 2'500, "rent");   // one atomic two-stream append
///   bank.for_each_account([](const bank::AccountRow& row) { ... });
///
/// Concurrency: commands are optimistic. A command that loses a race (another
/// process saved the same account after this one loaded it) gets
/// WrongExpectedVersion from the store and starts again from a fresh load, up
/// to BankOptions::max_retries times; the rules are then checked against the
/// new state, so two processes withdrawing at once never overdraw an account.
/// Refusals (BankError) are never retried.
///
/// Where things live. The same code runs on either backend; only where the
/// events, read models and keys are kept differs:
///   - an SQLite bank (`db` is a file path): events and read models in that
///     one file; the keys that encrypt owners' names beside it in
///     "<file>.keys" (or BankOptions::key_store), never inside it;
///   - a PostgreSQL bank (`db` is a postgresql:// or postgres:// URL): events
///     and read models in BankOptions::schema of that database; the keys in
///     schema "<schema>_keys" of the same database (or BankOptions::key_store),
///     so that a dump of the bank's schema carries none (docs/privacy.md).
///
/// Thread safety: one Bank may be used from several threads for commands and
/// aggregate queries; the read-model queries (for_each_account, for_each_ledger_row)
/// must not run concurrently with each other.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <annals/aggregates/repository.hpp>
#include <annals/core/clock.hpp>
#include <annals/core/personal_data.hpp>
#include <annals/projections/projection_check.hpp>
#include <annals/store/event_store.hpp>
#include <annals/store/seal.hpp>

#include "account.hpp"
#include "money.hpp"

namespace annals {
class ReadModel;
}

namespace bank {

/// True when `db` names a PostgreSQL database (postgresql:// or postgres://)
/// rather than an SQLite file.
bool is_postgres_url(const std::string& db) noexcept;

struct BankOptions {
  /// Create the bank if it does not exist (only `bank open` does): the file,
  /// or on PostgreSQL the schema's tables. Default: false. Without it, a file
  /// that is not already an Annals store (an empty file, say) or a schema
  /// that holds none is refused and left as it was.
  bool create = false;
  /// Open for queries only: nothing is ever created or changed (an SQLite
  /// file also opens without write permission). Commands and the read-model
  /// queries then throw annals::StorageError. Default: false.
  bool read_only = false;
  /// On PostgreSQL: the schema of the events and read models (ASCII letters,
  /// digits and '_', at most 63 bytes). Ignored for an SQLite file.
  /// Default: "public".
  std::string schema = "public";
  /// Who runs the commands; recorded as "actor" in every event's metadata.
  /// Default: empty (left out).
  std::string actor{};
  /// Retries of a command after a concurrency conflict. Default: 50, enough for
  /// dozens of processes hammering one account.
  int max_retries = 50;
  /// Source of recorded_at (tests fix time). Default: the system clock.
  std::shared_ptr<const annals::Clock> clock{};
  /// The key store of owners' names: a file path (an SQLite key store) or a
  /// postgresql:// URL (a PostgreSQL key store in schema "<schema>_keys" of
  /// that database). Default: empty, meaning "<file>.keys" for an SQLite bank
  /// and the bank's own database for a PostgreSQL one. Created (an SQLite
  /// file with mode 0600) only with `create`; opened read-only with `read_only`.
  std::string key_store{};
};

/// What transfer() did.
struct TransferResult {
  std::string transfer_id;
  Account from;
  Account to;
};

/// One movement of money on a statement.
struct StatementLine {
  annals::Timestamp at{};
  std::int64_t position = 0;
  std::int64_t version = 0;
  std::string description;  ///< "deposit", "withdrawal", "transfer to bob (rent)", ...
  Cents amount = 0;         ///< signed: + in, - out
  Cents balance = 0;        ///< after this movement
};

/// The frame of a statement.
struct StatementSummary {
  std::string account;
  std::string owner;  ///< annals::kErasedText after forget()
  std::string currency;
  Cents opening_balance = 0;  ///< before the first movement in the window
  Cents closing_balance = 0;  ///< after the last movement in the window
  std::int64_t movements = 0;
};

/// A row of the balances read model.
struct AccountRow {
  std::string account;
  std::string owner;
  std::string currency;
  Cents balance = 0;
  Cents overdraft_limit = 0;
  std::string status;  ///< "open" or "closed"
  std::int64_t version = 0;
};

/// A row of the transactions ledger.
struct LedgerRow {
  std::int64_t position = 0;
  annals::Timestamp at{};
  std::string kind;          ///< "deposit", "withdrawal" or "transfer"
  std::string from_account;  ///< empty: money came from outside the bank
  std::string to_account;    ///< empty: money left the bank
  Cents amount = 0;
  std::string currency;
  std::string reference;
};

/// One event behind an account's balance (Bank::explain).
struct ExplainLine {
  std::int64_t position = 0;
  std::int64_t version = 0;
  annals::Timestamp at{};
  std::string type;
  Cents amount = 0;   ///< signed change of the balance (0: opened, closed)
  Cents balance = 0;  ///< after this event
};

/// What Bank::explain found.
struct Explanation {
  std::string account;
  std::string currency;
  std::int64_t events = 0;      ///< events listed (versions 1..events)
  Cents events_balance = 0;     ///< their sum
  bool in_read_model = false;   ///< the read model has a row for the account
  Cents read_model_balance = 0;
  std::int64_t read_model_version = 0;
  /// Empty when the events add up to the read model's figure; else what differs.
  std::vector<std::string> discrepancies;
};

class Bank {
 public:
  /// Opens the bank in `db`: an SQLite file's path, or a PostgreSQL URL.
  /// Throws: InvalidInput when the file does not exist (or the schema holds
  /// no bank) and options.create is false; annals::StorageError when it is
  /// not a bank (not an Annals store) or the server cannot be reached;
  /// annals::InvalidArgument for a bad schema name.
  explicit Bank(const std::string& db, BankOptions options = {});
  ~Bank();
  Bank(const Bank&) = delete;
  Bank& operator=(const Bank&) = delete;

  // Commands. Each returns the account(s) as saved.
  // Throws: the BankError types of errors.hpp (nothing written);
  // annals::WrongExpectedVersion when retries ran out; annals::StorageError;
  // annals::HistoryIntegrityError (an IntegrityError) when an event of an
  // account involved does not check against the hash chain (nothing written).
  Account open(const std::string& id, const std::string& owner, const std::string& currency,
               Cents overdraft_limit);
  Account deposit(const std::string& id, Cents amount);
  Account withdraw(const std::string& id, Cents amount);
  /// Both accounts' events in one atomic multi-stream append, each stream
  /// under its own expected version; the transfer id is also the events'
  /// correlation_id.
  TransferResult transfer(const std::string& from, const std::string& to, Cents amount,
                          const std::string& reference);
  Account close(const std::string& id);
  /// Erases the owner's name of account `id`: destroys its key in the key
  /// store, so the name reads annals::kErasedText wherever it is decoded
  /// (aggregate, statement, read model), sets the accounts read model's row
  /// to that, and scrubs the bank's file (annals::scrub_sqlite_file) so the
  /// old name survives neither in its free space nor in its WAL. Events,
  /// balances, the ledger and the hash chain are unchanged. Idempotent: run
  /// again after an interruption, it finishes the job. Returns true when the
  /// account still had a key, false when it was already forgotten.
  /// Throws: UnknownAccount, InvalidInput; annals::KeyStoreError (nothing
  /// changed); annals::StorageError.
  bool forget(const std::string& id);

  // Queries on the aggregates. Throws: UnknownAccount, InvalidInput,
  // annals::HistoryIntegrityError (history() excepted: it shows events as stored).
  Account account(const std::string& id) const;
  /// The account after its first `version` events.
  Account account_at_version(const std::string& id, std::int64_t version) const;
  /// The account with every event recorded at or before `time`.
  Account account_as_of(const std::string& id, annals::Timestamp time) const;
  /// The movements recorded in [from, to] (either end open when nullopt), in
  /// order, with the running balance; streams the account, one line at a time.
  StatementSummary statement(const std::string& id, std::optional<annals::Timestamp> from,
                             std::optional<annals::Timestamp> to,
                             const std::function<void(const StatementLine&)>& line) const;
  /// Every stored event of the account, in version order.
  void history(const std::string& id,
               const std::function<void(const annals::RecordedEvent&)>& event) const;

  // Queries on the read models: bring both projections up to date with the
  // store first (catch_up), then read them page by page in one snapshot.
  void for_each_account(const std::function<void(const AccountRow&)>& row);
  void for_each_ledger_row(const std::function<void(const LedgerRow&)>& row);
  /// Applies every stored event not yet in the read models; returns the
  /// checkpoint of the slower one.
  std::int64_t catch_up();

  /// Provenance of a balance: brings the read models up to date, then hands
  /// out every event of the account (checked against the hash chain, as a
  /// statement is) with its signed amount and the running balance, and
  /// compares the sum and the last version with the balances read model's
  /// row. Throws: UnknownAccount, InvalidInput, annals::HistoryIntegrityError,
  /// annals::StorageError.
  Explanation explain(const std::string& id, const std::function<void(const ExplainLine&)>& line);

  /// Replays each read model's projection into shadow tables up to its
  /// checkpoint and compares it with the live one (annals::check_projection);
  /// changes nothing. Throws: annals::StorageError, annals::IntegrityError.
  std::vector<annals::CheckReport> check_read_models();

  /// Walks the store's hash chain.
  annals::VerifyResult verify() const;

  /// Seals the store's head (annals::seal), signed with `key` when not null.
  /// Throws: as annals::seal.
  annals::Seal seal(const annals::SealKey* key);

  annals::EventStore& store() noexcept;
  /// The key store of owners' names (for projections that decode them).
  const annals::KeyStore& keys() const noexcept;

 private:
  struct ReadModels;
  Account load(const std::string& id) const;
  annals::CommandContext context(std::string correlation_id = {}) const;
  template <class Command>
  Account update(const std::string& id, Command&& command);

  std::unique_ptr<annals::ReadModel> open_read_model() const;
  void scrub_after_forget();

  BankOptions options_;
  std::string db_;  // the file's path or the URL
  std::unique_ptr<annals::EventStore> store_;
  std::unique_ptr<annals::KeyStore> keys_;
  annals::Repository<Account> accounts_;
  std::unique_ptr<ReadModels> read_models_;  // opened by the first read-model query
};

}  // namespace bank
