// bank: a command-line bank on one SQLite file (or a PostgreSQL database),
// built on Annals.
//
// This file only reads the command line and prints; the domain (events, the
// Account aggregate, the read models) is in src/, and src/bank.cpp shows how
// commands become "load, decide, append" on the event store.
//
// Exit codes: 0 done; 1 refused (bad input or a rule of the bank, nothing was
// written; a malformed seal or key file); 2 bad usage; 3 failure (storage
// error, verify found damage or a store that does not match its seal,
// retries exhausted, `explain` or `check` found a read model that disagrees
// with the events); 4 refused because a stored event the command needed
// does not check against the hash chain (nothing was written).

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <annals/core/clock.hpp>
#include <annals/aggregates/errors.hpp>
#include <annals/core/error.hpp>
#include <annals/core/personal_data.hpp>
#include <annals/store/seal.hpp>
#include <annals/version.hpp>

#include "bank.hpp"
#include "errors.hpp"
#include "money.hpp"

namespace {

constexpr int kRefused = 1;
constexpr int kUsage = 2;
constexpr int kFailure = 3;
constexpr int kTampered = 4;

using annals::Json;

std::string actor() {
  const char* user = std::getenv("USER");
  return user != nullptr && *user != '\0' ? user : "bank-cli";
}

Json account_json(const bank::Account& a) {
  return Json{{"account", a.id()},
              {"owner", a.owner()},
              {"currency", a.currency()},
              {"balance", bank::format_cents(a.balance())},
              {"balance_cents", a.balance()},
              {"overdraft_limit_cents", a.overdraft_limit()},
              {"status", a.is_closed() ? "closed" : "open"},
              {"version", a.version()}};
}

std::string money(bank::Cents cents, const std::string& currency) {
  return bank::format_money(cents, currency);
}

// Prints a JSON array one element at a time, so a long history or ledger is
// never held in memory.
class JsonArrayPrinter {
 public:
  explicit JsonArrayPrinter(std::ostream& out) : out_(out) { out_ << "["; }
  void add(const Json& element) {
    out_ << (first_ ? "\n  " : ",\n  ") << element.dump();
    first_ = false;
  }
  void finish() { out_ << (first_ ? "]" : "\n]") << "\n"; }

 private:
  std::ostream& out_;
  bool first_ = true;
};

struct Command {
  std::string db = "bank.db";
  std::string keys;  // --keys: the key store of owners' names (default <db>.keys)
  bool json = false;
  std::string account;
  std::string to_account;
  std::string owner;
  std::string currency = "EUR";
  std::string overdraft = "0";
  std::string amount;
  std::string reference;
  std::string as_of;
  std::int64_t at_version = 0;
  std::string from_time;
  std::string to_time;
  std::string seal_file;  // verify --seal
  std::string key_file;   // seal, verify --seal, keygen
  std::string public_key_file;  // keygen --public
};

std::optional<annals::Timestamp> time_option(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return annals::parse_timestamp(text);  // InvalidArgument names the text
}

// How a command opens the bank: only `open` may create the file; the
// queries on the aggregates never write it.
enum class Access { create, write, read };

// On PostgreSQL, the schema of the bank: ANNALS_PG_SCHEMA, as for the
// `annals` tool, so both programs look at the same tables.
std::string pg_schema() {
  const char* schema = std::getenv("ANNALS_PG_SCHEMA");
  return schema != nullptr && *schema != '\0' ? schema : "public";
}

bank::Bank open_bank_with(const Command& c, Access access) {
  return bank::Bank(c.db, bank::BankOptions{.create = access == Access::create,
                                            .read_only = access == Access::read,
                                            .schema = pg_schema(),
                                            .actor = actor(),
                                            .key_store = c.keys});
}

bank::Bank open_bank(const Command& c, Access access = Access::write) {
  try {
    return open_bank_with(c, access);
  } catch (const bank::InvalidInput& e) {
    if (!bank::is_postgres_url(c.db) ||
        std::string_view(e.what()).find("invalid schema name") == std::string_view::npos) {
      throw;
    }
    throw bank::InvalidInput(std::string("ANNALS_PG_SCHEMA: ") + e.what());
  }
}

// After a command that wrote events: brings the read models up to date, so
// that they (and `annals projections`) never lag behind the bank's own
// writes. The events are stored whatever happens here: a failure is a
// warning, and the next `accounts` or `ledger` reports it again.
void refresh_read_models(bank::Bank& b) {
  try {
    b.catch_up();
  } catch (const std::exception& e) {
    std::cerr << "bank: warning: the read models were not updated: "
              << bank::printable(e.what()) << "\n";
  }
}

int run_open(const Command& c) {
  // Check everything before the file is created, so a refused open leaves
  // no empty bank behind.
  bank::check_account_id(c.account);
  bank::check_owner(c.owner);
  bank::check_currency(c.currency);
  const bank::Cents limit = bank::parse_limit(c.overdraft);
  bank::Bank b = open_bank(c, Access::create);
  const bank::Account a = b.open(c.account, c.owner, c.currency, limit);
  refresh_read_models(b);
  std::cout << "opened account " << a.id() << " for " << a.owner() << " in " << a.currency()
            << ", overdraft limit " << money(a.overdraft_limit(), a.currency()) << "\n";
  return 0;
}

int run_deposit(const Command& c) {
  const bank::Cents amount = bank::parse_amount(c.amount);
  bank::Bank b = open_bank(c);
  const bank::Account a = b.deposit(c.account, amount);
  refresh_read_models(b);
  std::cout << "deposited " << money(amount, a.currency()) << " to " << a.id() << ": balance "
            << money(a.balance(), a.currency()) << "\n";
  return 0;
}

int run_withdraw(const Command& c) {
  const bank::Cents amount = bank::parse_amount(c.amount);
  bank::Bank b = open_bank(c);
  const bank::Account a = b.withdraw(c.account, amount);
  refresh_read_models(b);
  std::cout << "withdrew " << money(amount, a.currency()) << " from " << a.id() << ": balance "
            << money(a.balance(), a.currency()) << "\n";
  return 0;
}

int run_transfer(const Command& c) {
  const bank::Cents amount = bank::parse_amount(c.amount);
  bank::check_reference(c.reference);
  bank::Bank b = open_bank(c);
  const auto t = b.transfer(c.account, c.to_account, amount, c.reference);
  refresh_read_models(b);
  std::cout << "transferred " << money(amount, t.from.currency()) << " from " << t.from.id()
            << " to " << t.to.id() << " (transfer " << t.transfer_id << "): " << t.from.id()
            << " " << money(t.from.balance(), t.from.currency()) << ", " << t.to.id() << " "
            << money(t.to.balance(), t.to.currency()) << "\n";
  return 0;
}

int run_close(const Command& c) {
  bank::Bank b = open_bank(c);
  const bank::Account a = b.close(c.account);
  refresh_read_models(b);
  std::cout << "closed account " << a.id() << "\n";
  return 0;
}

// forget: erases the owner's name (GDPR art. 17) by destroying its key.
int run_forget(const Command& c) {
  bank::Bank b = open_bank(c);
  const bool had_key = b.forget(c.account);
  std::cout << "forgot the owner of account " << c.account
            << (had_key ? ": its key is destroyed" : ": its key was already destroyed")
            << "; the name now reads " << annals::kErasedText
            << " (balances, ledger and hash chain unchanged)\n";
  return 0;
}

int run_balance(const Command& c) {
  const bank::Bank b = open_bank(c, Access::read);
  const auto as_of = time_option(c.as_of);
  const bank::Account a = as_of          ? b.account_as_of(c.account, *as_of)
                          : c.at_version ? b.account_at_version(c.account, c.at_version)
                                         : b.account(c.account);
  if (c.json) {
    Json j = account_json(a);
    if (as_of) j["as_of"] = annals::format_timestamp(*as_of);
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << a.id() << ": " << money(a.balance(), a.currency());
    if (as_of) std::cout << " as of " << annals::format_timestamp(*as_of);
    std::cout << " (version " << a.version() << (a.is_closed() ? ", closed" : "") << ")\n";
  }
  return 0;
}

// Bank::statement checks the whole window before its first line, and every
// header is printed with the first line (or after the walk): a statement
// that fails prints nothing on stdout.
int run_statement(const Command& c) {
  const bank::Bank b = open_bank(c, Access::read);
  const auto from = time_option(c.from_time);
  const auto to = time_option(c.to_time);
  if (c.json) {
    std::optional<JsonArrayPrinter> lines;
    const auto begin = [&] {
      if (lines) return;
      std::cout << "{\"lines\": ";
      lines.emplace(std::cout);
    };
    const auto s = b.statement(c.account, from, to, [&](const bank::StatementLine& l) {
      begin();
      lines->add(Json{{"time", annals::format_timestamp(l.at)},
                     {"position", l.position},
                     {"version", l.version},
                     {"description", l.description},
                     {"amount_cents", l.amount},
                     {"balance_cents", l.balance}});
    });
    begin();
    lines->finish();
    std::cout << ", \"account\": " << Json(s.account) << ", \"currency\": " << Json(s.currency)
              << ", \"opening_balance_cents\": " << s.opening_balance
              << ", \"closing_balance_cents\": " << s.closing_balance
              << ", \"movements\": " << s.movements << ", \"owner\": " << Json(s.owner)
              << "}\n";
    return 0;
  }
  bool header = false;
  const auto begin = [&] {
    if (header) return;
    header = true;
    std::cout << "statement of " << c.account << " from "
              << (from ? annals::format_timestamp(*from) : "the start") << " to "
              << (to ? annals::format_timestamp(*to) : "now") << "\n";
    std::cout << std::left << std::setw(29) << "time" << std::setw(5) << "ver" << std::setw(32)
              << "movement" << std::right << std::setw(14) << "amount" << std::setw(14)
              << "balance"
              << "\n";
  };
  const auto s = b.statement(c.account, from, to, [&](const bank::StatementLine& l) {
    begin();
    std::cout << std::left << std::setw(29) << annals::format_timestamp(l.at) << std::setw(5)
              << l.version << std::setw(32) << bank::printable(l.description) << std::right
              << std::setw(14) << bank::format_cents(l.amount) << std::setw(14)
              << bank::format_cents(l.balance) << "\n";
  });
  begin();
  std::cout << "owner: " << bank::printable(s.owner) << "\n";
  std::cout << "opening balance " << money(s.opening_balance, s.currency) << ", closing balance "
            << money(s.closing_balance, s.currency) << ", " << s.movements << " movement"
            << (s.movements == 1 ? "" : "s") << "\n";
  return 0;
}

int run_history(const Command& c) {
  const bank::Bank b = open_bank(c, Access::read);
  if (c.json) {
    JsonArrayPrinter events(std::cout);
    b.history(c.account, [&](const annals::RecordedEvent& e) {
      events.add(Json{{"position", e.position},
                      {"version", e.version},
                      {"stream_id", e.stream_id},
                      {"event_id", e.event_id},
                      {"recorded_at", annals::format_timestamp(e.recorded_at)},
                      {"type", e.type},
                      {"schema_version", e.schema_version},
                      {"payload", e.payload_json()},
                      {"metadata", e.metadata_json()}});
    });
    events.finish();
    return 0;
  }
  b.history(c.account, [](const annals::RecordedEvent& e) {
    std::cout << "@" << e.position << " v" << e.version << " "
              << annals::format_timestamp(e.recorded_at) << " " << bank::printable(e.type)
              << " " << bank::printable(e.payload) << " " << bank::printable(e.metadata) << "\n";
  });
  return 0;
}

int run_accounts(const Command& c) {
  bank::Bank b = open_bank(c);
  if (c.json) {
    JsonArrayPrinter rows(std::cout);
    b.for_each_account([&](const bank::AccountRow& r) {
      rows.add(Json{{"account", r.account},
                    {"owner", r.owner},
                    {"currency", r.currency},
                    {"balance", bank::format_cents(r.balance)},
                    {"balance_cents", r.balance},
                    {"overdraft_limit_cents", r.overdraft_limit},
                    {"status", r.status},
                    {"version", r.version}});
    });
    rows.finish();
    return 0;
  }
  std::cout << std::left << std::setw(20) << "account" << std::setw(20) << "owner"
            << std::right << std::setw(16) << "balance" << std::setw(16) << "overdraft"
            << "  status\n";
  b.for_each_account([](const bank::AccountRow& r) {
    std::cout << std::left << std::setw(20) << bank::printable(r.account) << std::setw(20)
              << bank::printable(r.owner) << std::right << std::setw(16)
              << money(r.balance, bank::printable(r.currency)) << std::setw(16)
              << money(r.overdraft_limit, bank::printable(r.currency)) << "  "
              << bank::printable(r.status) << "\n";
  });
  return 0;
}

int run_ledger(const Command& c) {
  bank::Bank b = open_bank(c);
  if (c.json) {
    JsonArrayPrinter rows(std::cout);
    b.for_each_ledger_row([&](const bank::LedgerRow& r) {
      rows.add(Json{{"position", r.position},
                    {"time", annals::format_timestamp(r.at)},
                    {"kind", r.kind},
                    {"from", r.from_account.empty() ? Json() : Json(r.from_account)},
                    {"to", r.to_account.empty() ? Json() : Json(r.to_account)},
                    {"amount_cents", r.amount},
                    {"currency", r.currency},
                    {"reference", r.reference}});
    });
    rows.finish();
    return 0;
  }
  b.for_each_ledger_row([](const bank::LedgerRow& r) {
    const auto side = [](const std::string& account) {
      return account.empty() ? std::string("(cash)") : bank::printable(account);
    };
    std::cout << "@" << std::left << std::setw(6) << r.position
              << annals::format_timestamp(r.at) << "  " << std::setw(11) << r.kind
              << std::setw(12) << side(r.from_account) << "-> " << std::setw(12)
              << side(r.to_account) << std::right << std::setw(16)
              << money(r.amount, bank::printable(r.currency))
              << (r.reference.empty() ? "" : "  " + bank::printable(r.reference)) << "\n";
  });
  return 0;
}

int run_keygen(const Command& c) {
  const annals::SealKey key = annals::SealKey::generate();
  key.save_private(c.key_file);
  std::cout << "created seal key " << key.key_id() << " in " << c.key_file
            << " (mode 0600; keep it outside the bank's file and back it up)\n";
  if (!c.public_key_file.empty()) {
    key.save_public(c.public_key_file);
    std::cout << "its public key, for auditors: " << c.public_key_file << "\n";
  }
  return 0;
}

int run_seal(const Command& c) {
  std::optional<annals::SealKey> key;
  if (!c.key_file.empty()) key = annals::SealKey::load(c.key_file);
  bank::Bank b = open_bank(c);
  const annals::Seal s = b.seal(key ? &*key : nullptr);
  std::cout << annals::to_seal_json(s);
  std::cerr << "sealed at position " << s.head_position
            << (key ? ", signed with key " + key->key_id()
                    : std::string(" (unsigned: give --key to sign it)"))
            << "\n";
  return 0;
}

// verify --seal: the chain and the seal in one walk (annals/store/seal.hpp).
int run_verify_seal(const Command& c) {
  const annals::Seal s = annals::read_seal_file(c.seal_file);
  std::optional<annals::SealKey> key;
  if (!c.key_file.empty()) key = annals::SealKey::load(c.key_file);
  bank::Bank b = open_bank(c);
  const annals::SealVerifyResult v =
      annals::verify_seal(b.store(), s, key ? &*key : nullptr);
  const std::string signature = !s.is_signed() ? "none" : v.key_trusted ? "trusted" : "unpinned";
  if (c.json) {
    std::cout << Json{{"ok", v.ok},
                      {"problem", std::string(annals::to_string(v.problem))},
                      {"reason", v.reason},
                      {"events_checked", v.events_checked},
                      {"sealed_position", s.head_position},
                      {"signature", signature}}
                     .dump(2)
              << "\n";
  } else if (v.ok) {
    std::cout << "verify: ok (" << v.events_checked
              << " events checked, hash chain intact; the seal of position " << s.head_position
              << " holds, signature " << signature << ")\n";
  } else {
    std::cout << "verify: FAILED against the seal (" << annals::to_string(v.problem)
              << "): " << v.reason << "\n";
  }
  return v.ok ? 0 : kFailure;
}

int run_verify(const Command& c) {
  if (!c.seal_file.empty()) return run_verify_seal(c);
  const annals::VerifyResult v = open_bank(c, Access::read).verify();
  if (c.json) {
    std::cout << Json{{"ok", v.ok},
                      {"events_checked", v.events_checked},
                      {"first_bad_position", v.first_bad_position},
                      {"reason", v.reason}}
                     .dump(2)
              << "\n";
  } else if (v.ok) {
    std::cout << "verify: ok (" << v.events_checked << " events checked, hash chain intact)\n";
  } else {
    std::cout << "verify: FAILED at position " << v.first_bad_position << ": "
              << bank::printable(v.reason) << "\n";
  }
  return v.ok ? 0 : kFailure;
}

// Provenance: the events behind the balance, and whether they add up to the
// read model's figure (exit 3 naming each discrepancy when they do not).
int run_explain(const Command& c) {
  bank::Bank b = open_bank(c);
  Json events = Json::array();
  if (!c.json) {
    std::cout << "position  version  time                         type                      amount\n";
  }
  const bank::Explanation x = b.explain(c.account, [&](const bank::ExplainLine& l) {
    if (c.json) {
      events.push_back(Json{{"position", l.position},
                            {"version", l.version},
                            {"time", annals::format_timestamp(l.at)},
                            {"type", l.type},
                            {"amount_cents", l.amount},
                            {"balance_cents", l.balance}});
      return;
    }
    std::cout << std::left << std::setw(10) << l.position << std::setw(9) << l.version
              << std::setw(29) << annals::format_timestamp(l.at) << std::setw(22)
              << bank::printable(l.type) << std::right << std::setw(14)
              << bank::format_cents(l.amount) << "\n";
  });
  if (c.json) {
    Json problems = Json::array();
    for (const auto& d : x.discrepancies) problems.push_back(d);
    std::cout << Json{{"account", x.account},
                      {"currency", x.currency},
                      {"events", events},
                      {"events_balance_cents", x.events_balance},
                      {"read_model_balance_cents",
                       x.in_read_model ? Json(x.read_model_balance) : Json()},
                      {"read_model_version", x.read_model_version},
                      {"ok", x.discrepancies.empty()},
                      {"discrepancies", problems}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << x.events << " event" << (x.events == 1 ? "" : "s") << " add up to "
              << money(x.events_balance, x.currency) << "; the balances read model says "
              << (x.in_read_model ? money(x.read_model_balance, x.currency) : "nothing") << "\n";
    if (x.discrepancies.empty()) std::cout << "explain: ok\n";
  }
  for (const auto& d : x.discrepancies) {
    std::cerr << "bank explain: DISCREPANCY: " << bank::printable(d) << "\n";
  }
  return x.discrepancies.empty() ? 0 : kFailure;
}

// Each read model replayed into shadow tables and compared with the live one.
int run_check(const Command& c) {
  bank::Bank b = open_bank(c);
  bool equal = true;
  for (const annals::CheckReport& r : b.check_read_models()) {
    equal = equal && r.equal();
    std::cout << "check " << r.projection << " at position " << r.checkpoint << ": "
              << (r.equal() ? "ok" : "DIFFERS") << " (" << r.live_rows << " live rows, "
              << r.replay_rows << " replayed; " << r.only_in_live << " only in live, "
              << r.only_in_replay << " only in replay, " << r.differing << " differing)\n";
    for (const auto& s : r.schema_differences) std::cout << "  " << bank::printable(s) << "\n";
    for (const auto& d : r.samples) {
      const auto& row = d.live.empty() ? d.replay : d.live;
      std::cout << "  " << d.table << " " << annals::to_string(d.kind) << ":";
      for (std::size_t i = 0; i < d.columns.size() && i < row.size(); ++i) {
        const auto& v = row[i];
        std::string text = v.is_null() ? "NULL" : v.is_int() ? std::to_string(v.as_int())
                           : v.is_real() ? std::to_string(v.as_real()) : v.as_text();
        if (d.kind == annals::RowDifference::Kind::differing && !(d.live[i] == d.replay[i])) {
          const auto& r2 = d.replay[i];
          text += " (replay: " + (r2.is_null() ? std::string("NULL") : r2.is_int() ? std::to_string(r2.as_int())
                                  : r2.is_real() ? std::to_string(r2.as_real()) : r2.as_text()) + ")";
        }
        std::cout << " " << d.columns[i] << "=" << bank::printable(text);
      }
      std::cout << "\n";
    }
  }
  return equal ? 0 : kFailure;
}

// A whole number of at least 1, said so in words (CLI::PositiveNumber
// reports a range up to 1.79e308).
CLI::Validator positive_whole_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::int64_t value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || value < 1) {
          return "must be a whole number of at least 1, got '" + bank::echo(text) + "'";
        }
        return {};
      },
      "NUMBER>=1");
}

// The first argument that is not an option or the value of --db: the
// command the user asked for, or empty.
std::string command_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--db" || arg == "--keys") {
      ++i;
    } else if (arg.empty() || arg[0] != '-') {
      return std::string(arg);
    }
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  Command c;
  std::function<int(const Command&)> action;

  CLI::App app{
      "bank: bank accounts kept as events in one SQLite file or a PostgreSQL database (an "
      "Annals example)"};
  app.footer(
      "Amounts are decimal numbers with at most two places, such as 12.34.\n"
      "Times are ISO 8601, such as 2026-03-01T12:00:00Z or 2026-03-01.\n"
      "On PostgreSQL (--db postgresql://...), ANNALS_PG_SCHEMA names the schema (default\n"
      "public); owners' keys are kept in schema <schema>_keys unless --keys says otherwise.\n"
      "Exit codes: 0 done, 1 refused (nothing written), 2 bad usage, 3 failure,\n"
      "4 refused: the account's stored history does not check (nothing written).");
  app.require_subcommand(1);
  app.set_version_flag("--version", "bank " + std::string(annals::kVersion), "print the version and exit");
  app.fallthrough();  // --db may come before or after the command
  app.add_option("--db", c.db, "the bank's SQLite file, or a postgresql:// URL")
      ->capture_default_str();
  app.add_option("--keys", c.keys,
                 "the key store of owners' names, a file or a postgresql:// URL (default: the "
                 "--db file with .keys added; on PostgreSQL, the --db database)");

  const auto command = [&](const char* name, const char* help, auto run) {
    CLI::App* sub = app.add_subcommand(name, help);
    sub->callback([&action, run] { action = run; });
    return sub;
  };
  const auto json_flag = [&](CLI::App* sub) {
    sub->add_flag("--json", c.json, "print machine-readable JSON");
  };

  CLI::App* open = command("open", "open an account", run_open);
  open->add_option("ACCOUNT", c.account, "account id")->required();
  open->add_option("--owner", c.owner, "the account holder")->required();
  open->add_option("--currency", c.currency, "three-letter currency code")->capture_default_str();
  open->add_option("--overdraft", c.overdraft, "how far below zero the balance may go")
      ->capture_default_str();

  CLI::App* deposit = command("deposit", "pay money into an account", run_deposit);
  deposit->add_option("ACCOUNT", c.account, "account id")->required();
  deposit->add_option("AMOUNT", c.amount, "amount, such as 12.34")->required();

  CLI::App* withdraw = command("withdraw", "take money out of an account", run_withdraw);
  withdraw->add_option("ACCOUNT", c.account, "account id")->required();
  withdraw->add_option("AMOUNT", c.amount, "amount, such as 12.34")->required();

  CLI::App* transfer = command("transfer", "move money between two accounts", run_transfer);
  transfer->add_option("FROM", c.account, "account to take the money from")->required();
  transfer->add_option("TO", c.to_account, "account to pay it into")->required();
  transfer->add_option("AMOUNT", c.amount, "amount, such as 12.34")->required();
  transfer->add_option("--reference", c.reference, "what the transfer is for");

  CLI::App* close = command("close", "close an account (at a zero balance only)", run_close);
  close->add_option("ACCOUNT", c.account, "account id")->required();

  CLI::App* forget = command(
      "forget", "erase an account owner's name (destroys its key; history and balances stay)",
      run_forget);
  forget->add_option("ACCOUNT", c.account, "account id")->required();

  CLI::App* balance = command("balance", "an account's balance, now or in the past", run_balance);
  balance->add_option("ACCOUNT", c.account, "account id")->required();
  CLI::Option* as_of =
      balance->add_option("--as-of", c.as_of, "the balance as it was at this time (ISO 8601)");
  balance->add_option("--at-version", c.at_version, "the balance after this many events")
      ->check(positive_whole_number())
      ->excludes(as_of);
  json_flag(balance);

  CLI::App* statement =
      command("statement", "an account's movements with a running balance", run_statement);
  statement->add_option("ACCOUNT", c.account, "account id")->required();
  statement->add_option("--from", c.from_time, "first time to list (ISO 8601)");
  statement->add_option("--to", c.to_time, "last time to list (ISO 8601)");
  json_flag(statement);

  CLI::App* history = command("history", "every stored event of an account", run_history);
  history->add_option("ACCOUNT", c.account, "account id")->required();
  json_flag(history);

  json_flag(command("accounts", "every account and its balance (read model)", run_accounts));
  json_flag(command("ledger", "every money movement (read model)", run_ledger));
  CLI::App* explain =
      command("explain", "the events behind an account's balance, checked against the read model",
              run_explain);
  explain->add_option("ACCOUNT", c.account, "account id")->required();
  json_flag(explain);

  command("check", "replay the read models and compare them with the live ones", run_check);

  CLI::App* verify = command("verify", "check the store's hash chain (and a seal)", run_verify);
  CLI::Option* seal_option =
      verify->add_option("--seal", c.seal_file, "also check the bank against this seal file");
  verify->add_option("--key", c.key_file, "with --seal: the key the seal must be signed with")
      ->needs(seal_option);
  json_flag(verify);

  CLI::App* seal = command("seal", "print a signed seal of the bank's current head", run_seal);
  seal->add_option("--key", c.key_file, "Ed25519 private key (PEM); without it, unsigned");

  CLI::App* keygen = command("keygen", "create a seal key file (never overwrites)", run_keygen);
  keygen->add_option("--key", c.key_file, "the key file to create")->required();
  keygen->add_option("--public", c.public_key_file, "also write its public key (PEM) here");

  // Usage errors start with the program's name, as every other error does.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "bank: " + bank::printable(e.what()) + "\nRun bank --help for more information.\n";
  });
  const std::vector<CLI::App*> subs = app.get_subcommands({});
  if (const std::string word = command_word(argc, argv);
      !word.empty() && std::none_of(subs.begin(), subs.end(), [&](const CLI::App* sub) {
        return sub->get_name() == word;
      })) {
    std::string known;
    for (const CLI::App* sub : subs) {
      known += (known.empty() ? "" : ", ") + sub->get_name();
    }
    std::cerr << "bank: unknown command '" << bank::echo(word) << "' (commands: " << known
              << ")\nRun bank --help for more information.\n";
    return kUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, or the error and a hint
    return code == 0 ? 0 : kUsage;
  }

  try {
    return action(c);
  } catch (const bank::BankError& e) {
    std::cerr << "bank: " << bank::printable(e.what()) << "\n";
    return kRefused;
  } catch (const annals::InvalidArgument& e) {  // a malformed time, for instance
    std::cerr << "bank: " << bank::printable(e.what()) << "\n";
    return kRefused;
  } catch (const annals::HistoryIntegrityError& e) {
    // An account whose events do not check against the hash chain: nothing is
    // decided or shown from it (its message names the stream, version, position).
    // Other integrity errors (a replay that overflows) are failures, exit 3.
    std::cerr << "bank: refused, the stored history was altered: " << bank::printable(e.what())
              << "; nothing was written (`bank verify` checks the whole store)\n";
    return kTampered;
  } catch (const annals::WrongExpectedVersion& e) {
    std::cerr << "bank: too many concurrent changes to the same account, try again (" << e.what()
              << ")\n";
    return kFailure;
  } catch (const std::exception& e) {
    std::cerr << "bank: " << bank::printable(e.what()) << "\n";
    return kFailure;
  }
}
