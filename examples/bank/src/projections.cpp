#include "projections.hpp"

#include <string>

#include "account.hpp"

namespace bank {
namespace {

// "account-alice" -> "alice". The filters only let account streams through,
// so a stream of another shape is a broken invariant, not user input.
std::string account_of(const annals::RecordedEvent& e) {
  auto id = Account::id_from_stream(e.stream_id);
  if (!id) throw annals::InvalidArgument("event in stream '" + e.stream_id + "' is not an account's");
  return std::move(*id);
}

// The few words of the tables' DDL that differ between the backends. Cents,
// versions and times are 64-bit: INTEGER is that in SQLite but 32 bits in
// PostgreSQL. Account ids compare byte by byte in both, so pages and listings
// come in the same order whatever the server's locale.
struct Types {
  explicit Types(const annals::SqlTransaction& tx)
      : integer(tx.dialect() == annals::SqlDialect::postgresql ? "BIGINT" : "INTEGER"),
        key_text(tx.dialect() == annals::SqlDialect::postgresql ? " COLLATE \"C\"" : "") {}
  std::string integer;
  std::string key_text;
};

}  // namespace

annals::Projection accounts_projection(const annals::KeyStore& keys) {
  return annals::Projection{
      .name = kAccountsProjection,
      .filter = annals::EventFilter::for_category(std::string(Account::category)),
      .setup =
          [](annals::SqlTransaction& tx) {
            const Types t(tx);
            tx.exec_script(
                "CREATE TABLE IF NOT EXISTS bank_accounts ("
                " account TEXT" +
                t.key_text +
                " PRIMARY KEY, owner TEXT NOT NULL,"
                " currency TEXT NOT NULL, overdraft_limit " +
                t.integer +
                " NOT NULL,"
                " balance " +
                t.integer +
                " NOT NULL, status TEXT NOT NULL,"
                " version " +
                t.integer + " NOT NULL, opened_at " + t.integer + " NOT NULL, updated_at " +
                t.integer + " NOT NULL)");
            if (tx.dialect() == annals::SqlDialect::postgresql) {
              // The owner's name keeps no planner statistics: ANALYZE would
              // copy sample names into pg_statistic, where forget cannot
              // reach them.
              tx.exec_script("ALTER TABLE bank_accounts ALTER COLUMN owner SET STATISTICS 0");
            }
          },
      .apply =
          [&keys](annals::SqlTransaction& tx, const annals::RecordedEvent& e) {
            const auto event = annals::decode<AccountEvent>(e, keys);
            const std::string account = account_of(e);
            const auto at = annals::to_micros(e.recorded_at);
            if (const auto* opened = std::get_if<AccountOpened>(&event)) {
              tx.exec("INSERT INTO bank_accounts VALUES ($1, $2, $3, $4, 0, 'open', $5, $6, $6)",
                      {account, opened->owner, opened->currency, opened->overdraft_limit,
                       e.version, at});
            } else if (std::holds_alternative<AccountClosed>(event)) {
              tx.exec("UPDATE bank_accounts SET status = 'closed', version = $2, updated_at = $3"
                      " WHERE account = $1",
                      {account, e.version, at});
            } else {
              // The sum is computed here, checked: SQLite would turn an
              // integer overflow into a REAL that the read model cannot
              // read back as cents.
              const auto rows =
                  tx.query("SELECT balance FROM bank_accounts WHERE account = $1", {account});
              if (rows.empty()) return;  // no AccountOpened before it: nothing to move
              const Cents balance = replayed_balance(rows[0][0].as_int(), event, account, e.version);
              tx.exec("UPDATE bank_accounts SET balance = $2, version = $3,"
                      " updated_at = $4 WHERE account = $1",
                      {account, balance, e.version, at});
            }
          },
      .reset = [](annals::SqlTransaction& tx) { tx.exec("DELETE FROM bank_accounts"); },
  };
}

annals::Projection ledger_projection() {
  return annals::Projection{
      .name = kLedgerProjection,
      // Only the events that move money between the bank and the world, or
      // between accounts; the checkpoint still moves past the others.
      .filter =
          annals::EventFilter{{std::string(Deposited::type_name), std::string(Withdrawn::type_name),
                               std::string(TransferSent::type_name)},
                              {},
                              std::string(Account::category)},
      .setup =
          [](annals::SqlTransaction& tx) {
            const Types t(tx);
            tx.exec_script(
                "CREATE TABLE IF NOT EXISTS bank_ledger ("
                " position " +
                t.integer + " PRIMARY KEY, recorded_at " + t.integer +
                " NOT NULL, kind TEXT NOT NULL, from_account TEXT" + t.key_text +
                ", to_account TEXT" + t.key_text + ", amount " + t.integer +
                " NOT NULL, reference TEXT, transfer_id TEXT);"
                "CREATE INDEX IF NOT EXISTS bank_ledger_from ON bank_ledger(from_account);"
                "CREATE INDEX IF NOT EXISTS bank_ledger_to ON bank_ledger(to_account)");
          },
      .apply =
          [](annals::SqlTransaction& tx, const annals::RecordedEvent& e) {
            const auto event = annals::decode<AccountEvent>(e);
            const std::string account = account_of(e);
            const auto at = annals::to_micros(e.recorded_at);
            constexpr std::string_view insert =
                "INSERT INTO bank_ledger VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
            if (const auto* d = std::get_if<Deposited>(&event)) {
              tx.exec(insert, {e.position, at, "deposit", nullptr, account, d->amount, nullptr,
                               nullptr});
            } else if (const auto* w = std::get_if<Withdrawn>(&event)) {
              tx.exec(insert, {e.position, at, "withdrawal", account, nullptr, w->amount, nullptr,
                               nullptr});
            } else if (const auto* t = std::get_if<TransferSent>(&event)) {
              tx.exec(insert, {e.position, at, "transfer", account, t->to_account, t->amount,
                               t->reference, t->transfer_id});
            }
          },
      .reset = [](annals::SqlTransaction& tx) { tx.exec("DELETE FROM bank_ledger"); },
  };
}

}  // namespace bank
