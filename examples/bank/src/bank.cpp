#include "bank.hpp"

#include <algorithm>
#include <variant>

#include <annals/aggregates/checked_read.hpp>
#include <annals/aggregates/errors.hpp>
#include <annals/core/error.hpp>
#include <annals/core/event_id.hpp>
#include <annals/projections/projection_runner.hpp>
#include <annals/projections/sqlite_read_model.hpp>
#include <annals/store/sqlite_event_store.hpp>
#include <annals/store/sqlite_key_store.hpp>
#include <annals/store/sqlite_scrub.hpp>
#if BANK_WITH_POSTGRES
#include <annals/projections/postgres_read_model.hpp>
#include <annals/store/postgres_event_store.hpp>
#include <annals/store/postgres_key_store.hpp>
#endif

#include "errors.hpp"
#include "projections.hpp"

namespace bank {
namespace {

// Rows per page when reading a read model: memory stays bounded whatever the
// number of accounts or movements.
constexpr int kPageSize = 256;

std::unique_ptr<annals::SqliteEventStore> open_sqlite_store(const std::filesystem::path& file,
                                                            const BankOptions& options) {
  if (!options.create && !std::filesystem::exists(file)) {
    throw InvalidInput("no bank in '" + file.string() +
                       "': the file does not exist (`bank open` creates it)");
  }
  if (std::error_code ec; std::filesystem::exists(file, ec) &&
                          !std::filesystem::is_regular_file(file, ec)) {
    // A device or a directory: SQLite would put its journal files beside it.
    throw annals::StorageError("'" + file.string() + "' is not a regular file: a bank is one",
                               0, 0);
  }
  annals::SqliteStoreOptions store_options;
  store_options.create_if_missing = options.create;
  if (options.clock) store_options.clock = options.clock;
  store_options.read_only = options.read_only;
  if (!options.create && !options.read_only) {
    // Only `open` makes a store of a file: any other command first checks,
    // read-only, that the file already is one (an empty file stays empty).
    annals::SqliteStoreOptions check;
    check.read_only = true;
    annals::SqliteEventStore(file, check);
  }
  return std::make_unique<annals::SqliteEventStore>(file, store_options);
}

#if BANK_WITH_POSTGRES
// The schema of a PostgreSQL bank's keys: the bank's own, suffixed, so that
// several banks in one database keep their keys apart.
std::string key_schema(const BankOptions& options) { return options.schema + "_keys"; }

std::unique_ptr<annals::PostgresEventStore> open_postgres_store(const std::string& url,
                                                                const BankOptions& options) {
  annals::PostgresStoreOptions store_options;
  store_options.schema = options.schema;
  // Only `open` creates the tables; queries and other commands find them.
  store_options.create_if_missing = options.create && !options.read_only;
  if (options.clock) store_options.clock = options.clock;
  try {
    return std::make_unique<annals::PostgresEventStore>(url, store_options);
  } catch (const annals::StorageError& e) {
    if (!options.create &&
        std::string_view(e.what()).find("holds no Annals store") != std::string_view::npos) {
      throw InvalidInput("no bank in schema '" + options.schema +
                         "' of that database (`bank open` creates it)");
    }
    throw;
  }
}
#endif

// The schema and, unless the keys live elsewhere, its "<schema>_keys" must
// both be valid names: checked before anything is created, so a name that
// leaves no room for the suffix does not leave a store without a key store.
void check_schema(const BankOptions& options) {
  const auto valid = [](const std::string& s) {
    bool ok = !s.empty() && s.size() <= 63 && !(s[0] >= '0' && s[0] <= '9');
    for (const char c : s) {
      ok = ok &&
           ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
    }
    return ok;
  };
  const std::size_t room = options.key_store.empty() ? 63 - std::string("_keys").size() : 63;
  if (!valid(options.schema) || options.schema.size() > room) {
    throw InvalidInput("invalid schema name '" + options.schema +
                       "': use ASCII letters, digits and '_', not starting with a digit, at most " +
                       std::to_string(room) + " bytes" +
                       (room < 63 ? " (the keys go to schema '<schema>_keys')" : ""));
  }
}

std::unique_ptr<annals::EventStore> open_store(const std::string& db, const BankOptions& options) {
  if (!is_postgres_url(db)) return open_sqlite_store(db, options);
#if BANK_WITH_POSTGRES
  check_schema(options);
  return open_postgres_store(db, options);
#else
  throw InvalidInput("'" + db +
                     "' is a PostgreSQL URL, but this bank was built without "
                     "PostgreSQL (libpq was not found)");
#endif
}

std::unique_ptr<annals::KeyStore> open_keys(const std::string& db, const BankOptions& options) {
  const std::string& where = options.key_store.empty() ? db : options.key_store;
  if (!is_postgres_url(where)) {
    return std::make_unique<annals::SqliteKeyStore>(
        options.key_store.empty() ? annals::SqliteKeyStore::default_path(db)
                                  : std::filesystem::path(options.key_store),
        annals::SqliteKeyStoreOptions{.create_if_missing = options.create,
                                      .read_only = options.read_only});
  }
#if BANK_WITH_POSTGRES
  return std::make_unique<annals::PostgresKeyStore>(
      where, annals::PostgresKeyStoreOptions{.schema = key_schema(options),
                                             .create_if_missing = options.create,
                                             .read_only = options.read_only});
#else
  throw InvalidInput("'" + where +
                     "' is a PostgreSQL URL, but this bank was built without "
                     "PostgreSQL (libpq was not found)");
#endif
}

std::string text_or_empty(const annals::SqlValue& v) { return v.is_null() ? "" : v.as_text(); }

std::string describe(const AccountEvent& event) {
  return std::visit(
      [](const auto& e) -> std::string {
        using E = std::decay_t<decltype(e)>;
        const auto with_reference = [](std::string text, const std::string& reference) {
          return reference.empty() ? text : text + " (" + reference + ")";
        };
        if constexpr (std::is_same_v<E, Deposited>) {
          return "deposit";
        } else if constexpr (std::is_same_v<E, Withdrawn>) {
          return "withdrawal";
        } else if constexpr (std::is_same_v<E, TransferSent>) {
          return with_reference("transfer to " + e.to_account, e.reference);
        } else if constexpr (std::is_same_v<E, TransferReceived>) {
          return with_reference("transfer from " + e.from_account, e.reference);
        } else if constexpr (std::is_same_v<E, AccountOpened>) {
          return "opened";
        } else {
          return "closed";
        }
      },
      event);
}

}  // namespace

bool is_postgres_url(const std::string& db) noexcept {
  return db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0;
}

// The read models live beside the events (the same file, or the same schema),
// opened after the store (so it is already an Annals store), with one durable
// runner each.
struct Bank::ReadModels {
  ReadModels(annals::EventStore& store, std::unique_ptr<annals::ReadModel> model,
             const annals::KeyStore& keys)
      : owned(std::move(model)),
        views(*owned),
        accounts(store, views, accounts_projection(keys)),
        ledger(store, views, ledger_projection()) {}

  std::unique_ptr<annals::ReadModel> owned;
  annals::ReadModel& views;
  annals::ProjectionRunner accounts;
  annals::ProjectionRunner ledger;
};

Bank::Bank(const std::string& db, BankOptions options)
    : options_(std::move(options)),
      db_(db),
      store_(open_store(db, options_)),
      keys_(open_keys(db, options_)),
      accounts_(*store_, annals::RepositoryOptions{.max_retries = options_.max_retries,
                                                   .keys = keys_.get()}) {}

Bank::~Bank() = default;

annals::EventStore& Bank::store() noexcept { return *store_; }

std::unique_ptr<annals::ReadModel> Bank::open_read_model() const {
#if BANK_WITH_POSTGRES
  if (is_postgres_url(db_)) {
    return std::make_unique<annals::PostgresReadModel>(
        db_, annals::PostgresReadModelOptions{.schema = options_.schema});
  }
#endif
  return std::make_unique<annals::SqliteReadModel>(db_);
}

annals::Seal Bank::seal(const annals::SealKey* key) {
#if BANK_WITH_POSTGRES
  if (auto* pg = dynamic_cast<annals::PostgresEventStore*>(store_.get())) {
    return annals::seal(*pg, key);
  }
#endif
  return annals::seal(dynamic_cast<annals::SqliteEventStore&>(*store_), key);
}

const annals::KeyStore& Bank::keys() const noexcept { return *keys_; }

annals::CommandContext Bank::context(std::string correlation_id) const {
  if (correlation_id.empty()) correlation_id = annals::new_event_id();
  return annals::CommandContext{.correlation_id = std::move(correlation_id),
                                .causation_id = {},
                                .actor = options_.actor};
}

Account Bank::load(const std::string& id) const {
  check_account_id(id);
  auto account = accounts_.try_load(id);
  if (!account) throw UnknownAccount(id);
  return std::move(*account);
}

// Load, run, save; Repository::update retries on WrongExpectedVersion only,
// and lets the domain's refusals through at once.
template <class Command>
Account Bank::update(const std::string& id, Command&& command) {
  check_account_id(id);
  try {
    return accounts_.update(id, std::forward<Command>(command), context());
  } catch (const annals::AggregateNotFound&) {
    throw UnknownAccount(id);
  }
}

Account Bank::open(const std::string& id, const std::string& owner, const std::string& currency,
                   Cents overdraft_limit) {
  check_account_id(id);
  Account account(id);
  account.open(owner, currency, overdraft_limit);
  try {
    // A new aggregate saves with ExpectedVersion::no_stream(): if anyone
    // opened this id first, the append is refused and nothing is written.
    accounts_.save(account, context());
  } catch (const annals::WrongExpectedVersion&) {
    throw AccountExists(id);
  }
  return account;
}

Account Bank::deposit(const std::string& id, Cents amount) {
  return update(id, [&](Account& a) { a.deposit(amount); });
}

Account Bank::withdraw(const std::string& id, Cents amount) {
  return update(id, [&](Account& a) { a.withdraw(amount); });
}

Account Bank::close(const std::string& id) {
  return update(id, [](Account& a) { a.close(); });
}

TransferResult Bank::transfer(const std::string& from_id, const std::string& to_id, Cents amount,
                              const std::string& reference) {
  check_reference(reference);
  check_account_id(from_id);
  check_account_id(to_id);
  const std::string transfer_id = annals::new_event_id();
  if (from_id == to_id) {
    // The rules refuse it; an unknown account is still reported as such first.
    Account from = load(from_id);
    Account to = from;
    bank::transfer(from, to, amount, transfer_id, reference);
  }
  try {
    // One append, two streams, each with exactly(version loaded): both
    // accounts' events commit, or neither does; a conflict starts again from
    // fresh loads and checks the rules against them.
    auto [from, to] = accounts_.update_together(
        {from_id, to_id},
        [&](Account& f, Account& t) { bank::transfer(f, t, amount, transfer_id, reference); },
        context(transfer_id));
    return TransferResult{transfer_id, std::move(from), std::move(to)};
  } catch (const annals::AggregateNotFound& e) {
    throw UnknownAccount(Account::id_from_stream(e.stream_id()).value_or(e.stream_id()));
  }
}

Account Bank::account(const std::string& id) const { return load(id); }

Account Bank::account_at_version(const std::string& id, std::int64_t version) const {
  check_account_id(id);
  if (version < 1) {
    throw InvalidInput("invalid version " + std::to_string(version) + ": versions start at 1");
  }
  try {
    return accounts_.load_at(id, version);
  } catch (const annals::AggregateNotFound& e) {
    const auto last = store_->stream_version(accounts_.stream_id(id));
    if (last == 0) throw UnknownAccount(id);
    throw UnknownAccount(id, "at version " + std::to_string(version) + " (its last version is " +
                                 std::to_string(last) + ")");
  }
}

Account Bank::account_as_of(const std::string& id, annals::Timestamp time) const {
  check_account_id(id);
  try {
    return accounts_.load_as_of(id, time);
  } catch (const annals::AggregateNotFound&) {
    throw UnknownAccount(id, "as of " + annals::format_timestamp(time));
  }
}

StatementSummary Bank::statement(const std::string& id, std::optional<annals::Timestamp> from,
                                 std::optional<annals::Timestamp> to,
                                 const std::function<void(const StatementLine&)>& line) const {
  if (from && to && *from > *to) {
    throw InvalidInput("invalid window: --from " + annals::format_timestamp(*from) +
                       " is after --to " + annals::format_timestamp(*to));
  }
  check_account_id(id);
  const std::string stream = accounts_.stream_id(id);
  const std::int64_t last = store_->stream_version(stream);
  if (last == 0) throw UnknownAccount(id);
  // One pass over the stream through a cursor: movements before the window
  // make the opening balance, those inside it are lines, and the first one
  // after it ends the walk. The walk runs twice, up to the version seen
  // above: the first finds any event that cannot be replayed (so a failing
  // statement shows no line at all), the second hands out the lines.
  const auto walk = [&](const std::function<void(const StatementLine&)>* emit) {
    StatementSummary summary{id, {}, {}, 0, 0, 0};
    Cents balance = 0;
    // Checked like a replay: a statement never shows a forged movement.
    for (const annals::RecordedEvent& recorded :
         annals::read_stream_checked(*store_, stream, 1, static_cast<std::uint64_t>(last))) {
      const auto event = annals::decode<AccountEvent>(recorded, *keys_);
      if (const auto* opened = std::get_if<AccountOpened>(&event)) {
        summary.currency = opened->currency;
        summary.owner = opened->owner;
      }
      if (to && recorded.recorded_at > *to) break;
      const Cents after = replayed_balance(balance, event, id, recorded.version);
      Cents change = 0;
      if (__builtin_sub_overflow(after, balance, &change)) {
        throw annals::IntegrityError("stream '" + stream + "' version " +
                                     std::to_string(recorded.version) +
                                     ": the movement does not fit in a signed amount");
      }
      balance = after;
      if (from && recorded.recorded_at < *from) {
        summary.opening_balance = balance;
        continue;
      }
      if (change == 0) continue;  // opened, closed: not movements
      ++summary.movements;
      if (emit != nullptr) {
        (*emit)(StatementLine{recorded.recorded_at, recorded.position, recorded.version,
                              describe(event), change, balance});
      }
    }
    summary.closing_balance = balance;
    return summary;
  };
  walk(nullptr);
  return walk(&line);
}

void Bank::history(const std::string& id,
                   const std::function<void(const annals::RecordedEvent&)>& event) const {
  check_account_id(id);
  const std::string stream = accounts_.stream_id(id);
  if (store_->stream_version(stream) == 0) throw UnknownAccount(id);
  for (const annals::RecordedEvent& recorded : store_->read_stream(stream)) event(recorded);
}

bool Bank::forget(const std::string& id) {
  check_account_id(id);
  const std::string stream = accounts_.stream_id(id);
  if (store_->stream_version(stream) == 0) throw UnknownAccount(id);
  const bool had_key = keys_->forget(stream);
  // The read model copied the name when the account was opened: overwrite
  // it with what a rebuild would now write, then rewrite what still holds
  // the old bytes.
  catch_up();
  read_models_->views.write([&](annals::SqlTransaction& tx) {
    tx.exec("UPDATE bank_accounts SET owner = $2 WHERE account = $1",
            {id, std::string(annals::kErasedText)});
  });
  scrub_after_forget();
  return had_key;
}

void Bank::scrub_after_forget() {
#if BANK_WITH_POSTGRES
  if (is_postgres_url(db_)) {
    // The UPDATE above left the old row version, name included, in the
    // table's pages; the key store rewrote its own table already.
    annals::scrub_postgres_table(db_, options_.schema, "bank_accounts");
    return;
  }
#endif
  // Neither the file's free space nor its WAL keeps the old bytes.
  annals::scrub_sqlite_file(db_);
}

std::int64_t Bank::catch_up() {
  if (!read_models_) {
    read_models_ = std::make_unique<ReadModels>(*store_, open_read_model(), *keys_);
  }
  std::int64_t slowest = -1;
  for (annals::ProjectionRunner* runner : {&read_models_->accounts, &read_models_->ledger}) {
    const std::int64_t checkpoint = runner->catch_up();
    if (const auto status = runner->status(); status.failure) {
      throw annals::StorageError("read model '" + status.name + "' stopped at position " +
                                     std::to_string(status.failure->position) + ": " +
                                     status.failure->message,
                                 0, 0);
    }
    slowest = slowest < 0 ? checkpoint : std::min(slowest, checkpoint);
  }
  return slowest;
}

void Bank::for_each_account(const std::function<void(const AccountRow&)>& row) {
  catch_up();
  // Keyset paging inside one read transaction: a consistent snapshot, one
  // page in memory at a time.
  read_models_->views.read([&](annals::SqlTransaction& tx) {
    std::string after;
    for (;;) {
      const auto page = tx.query(
          "SELECT account, owner, currency, balance, overdraft_limit, status, version"
          " FROM bank_accounts WHERE account > $1 ORDER BY account LIMIT $2",
          {after, kPageSize});
      for (const auto& r : page) {
        row(AccountRow{r[0].as_text(), r[1].as_text(), r[2].as_text(), r[3].as_int(),
                       r[4].as_int(), r[5].as_text(), r[6].as_int()});
      }
      if (page.size() < static_cast<std::size_t>(kPageSize)) break;
      after = page.back()[0].as_text();
    }
  });
}

void Bank::for_each_ledger_row(const std::function<void(const LedgerRow&)>& row) {
  catch_up();
  read_models_->views.read([&](annals::SqlTransaction& tx) {
    std::int64_t after = 0;
    for (;;) {
      // The currency is the account's: join the other read model.
      const auto page = tx.query(
          "SELECT l.position, l.recorded_at, l.kind, l.from_account, l.to_account, l.amount,"
          " a.currency, l.reference FROM bank_ledger l LEFT JOIN bank_accounts a"
          " ON a.account = coalesce(l.from_account, l.to_account)"
          " WHERE l.position > $1 ORDER BY l.position LIMIT $2",
          {after, kPageSize});
      for (const auto& r : page) {
        row(LedgerRow{r[0].as_int(), annals::from_micros(r[1].as_int()), r[2].as_text(),
                      text_or_empty(r[3]), text_or_empty(r[4]), r[5].as_int(),
                      text_or_empty(r[6]), text_or_empty(r[7])});
      }
      if (page.size() < static_cast<std::size_t>(kPageSize)) break;
      after = page.back()[0].as_int();
    }
  });
}

Explanation Bank::explain(const std::string& id,
                          const std::function<void(const ExplainLine&)>& line) {
  check_account_id(id);
  const std::string stream = accounts_.stream_id(id);
  if (store_->stream_version(stream) == 0) throw UnknownAccount(id);
  catch_up();
  Explanation x;
  x.account = id;
  const auto rows = read_models_->views.query(
      "SELECT balance, version FROM bank_accounts WHERE account = $1", {id});
  if (!rows.empty()) {
    x.in_read_model = true;
    x.read_model_balance = rows[0][0].as_int();
    x.read_model_version = rows[0][1].as_int();
  }
  // Up to the version the read model reached (the whole stream when it has
  // no row), so the events listed are the ones its figure should come from.
  const std::int64_t last = store_->stream_version(stream);
  const std::int64_t upto = x.in_read_model && x.read_model_version > 0
                                ? std::min(x.read_model_version, last)
                                : last;
  Cents balance = 0;
  for (const annals::RecordedEvent& recorded :
       annals::read_stream_checked(*store_, stream, 1, static_cast<std::uint64_t>(upto))) {
    const auto event = annals::decode<AccountEvent>(recorded, *keys_);
    if (const auto* opened = std::get_if<AccountOpened>(&event)) x.currency = opened->currency;
    const Cents after = replayed_balance(balance, event, id, recorded.version);
    Cents change = 0;
    if (__builtin_sub_overflow(after, balance, &change)) {
      throw annals::IntegrityError("stream '" + stream + "' version " +
                                   std::to_string(recorded.version) +
                                   ": the movement does not fit in a signed amount");
    }
    balance = after;
    ++x.events;
    line(ExplainLine{recorded.position, recorded.version, recorded.recorded_at, recorded.type,
                     change, balance});
  }
  x.events_balance = balance;
  if (!x.in_read_model) {
    x.discrepancies.push_back("the balances read model has no row for account '" + id + "'");
  } else {
    if (x.read_model_balance != x.events_balance) {
      x.discrepancies.push_back("the read model's balance " + format_money(x.read_model_balance, x.currency) +
                                " differs from the events' sum " +
                                format_money(x.events_balance, x.currency));
    }
    if (x.read_model_version != last) {
      x.discrepancies.push_back("the read model is at version " +
                                std::to_string(x.read_model_version) + " of the account, whose "
                                "stream has " + std::to_string(last) + " events");
    }
  }
  return x;
}

std::vector<annals::CheckReport> Bank::check_read_models() {
  catch_up();
  return {read_models_->accounts.check(), read_models_->ledger.check()};
}

annals::VerifyResult Bank::verify() const { return store_->verify(); }

}  // namespace bank
