// The Bank service on a real SQLite file: commands, refusals that write
// nothing, atomic transfers, history and time travel, and the read models.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include <annals/projections/projection_runner.hpp>
#include <annals/projections/rebuild_request.hpp>
#include <annals/projections/sqlite_read_model.hpp>

#include "bank.hpp"
#include "errors.hpp"
#include "projections.hpp"
#include "store/store_fixtures.hpp"

namespace {

using namespace std::chrono_literals;
using annals::parse_timestamp;
using annals::testing::TempDir;

class BankTest : public ::testing::Test {
 protected:
  bank::Bank make_bank() {
    return bank::Bank(file_, bank::BankOptions{.create = true, .actor = "test", .clock = clock_});
  }
  std::int64_t head() { return bank_.store().head_position(); }

  TempDir dir_;
  std::filesystem::path file_ = dir_ / "bank.db";
  std::shared_ptr<annals::ManualClock> clock_ =
      std::make_shared<annals::ManualClock>(parse_timestamp("2026-03-01T09:00:00Z"));
  bank::Bank bank_ = make_bank();
};

TEST_F(BankTest, CommandsPersistAcrossReopening) {
  bank_.open("alice", "Alice", "EUR", 0);
  bank_.deposit("alice", 10'000);
  bank_.withdraw("alice", 2'500);
  bank::Bank again(file_);
  const bank::Account alice = again.account("alice");
  EXPECT_EQ(alice.balance(), 7'500);
  EXPECT_EQ(alice.owner(), "Alice");
  EXPECT_EQ(alice.version(), 3);
}

TEST_F(BankTest, MissingFileIsRefusedAndNotCreated) {
  const auto missing = dir_ / "missing.db";
  EXPECT_THROW(bank::Bank{missing}, bank::InvalidInput);
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST_F(BankTest, RefusedCommandsWriteNothing) {
  bank_.open("alice", "Alice", "EUR", 0);
  bank_.deposit("alice", 1'000);
  bank_.open("dan", "Dan", "USD", 0);
  const auto before = head();
  EXPECT_THROW(bank_.withdraw("alice", 1'001), bank::InsufficientFunds);
  EXPECT_THROW(bank_.deposit("carol", 100), bank::UnknownAccount);
  EXPECT_THROW(bank_.deposit("alice", 0), bank::InvalidAmount);
  EXPECT_THROW(bank_.open("alice", "Someone", "EUR", 0), bank::AccountExists);
  EXPECT_THROW(bank_.close("alice"), bank::BalanceNotZero);
  EXPECT_THROW(bank_.transfer("alice", "carol", 100, ""), bank::UnknownAccount);
  EXPECT_THROW(bank_.transfer("alice", "dan", 100, ""), bank::CurrencyMismatch);
  EXPECT_THROW(bank_.transfer("alice", "alice", 100, ""), bank::InvalidInput);
  EXPECT_THROW(bank_.deposit("bad id", 100), bank::InvalidInput);
  EXPECT_EQ(head(), before);
}

TEST_F(BankTest, TransferIsOneAppendToBothStreamsSharingItsId) {
  bank_.open("alice", "Alice", "EUR", 0);
  bank_.open("bob", "Bob", "EUR", 0);
  bank_.deposit("alice", 10'000);
  const auto before = head();
  const auto t = bank_.transfer("alice", "bob", 3'000, "rent");
  EXPECT_EQ(t.from.balance(), 7'000);
  EXPECT_EQ(t.to.balance(), 3'000);
  ASSERT_EQ(head(), before + 2);

  std::vector<annals::RecordedEvent> events;
  for (const auto& e : bank_.store().read_all(before + 1)) events.push_back(e);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, "bank.TransferSent");
  EXPECT_EQ(events[0].stream_id, "account-alice");
  EXPECT_EQ(events[1].type, "bank.TransferReceived");
  EXPECT_EQ(events[1].stream_id, "account-bob");
  EXPECT_EQ(events[0].recorded_at, events[1].recorded_at);  // one transaction
  for (const auto& e : events) {
    EXPECT_EQ(e.payload_json().at("transfer_id"), t.transfer_id);
    EXPECT_EQ(e.metadata_json().at("correlation_id"), t.transfer_id);
    EXPECT_EQ(e.metadata_json().at("actor"), "test");
  }
}

TEST_F(BankTest, ClosedAccountRefusesMoneyAndKeepsItsHistory) {
  bank_.open("alice", "Alice", "EUR", 0);
  bank_.deposit("alice", 500);
  bank_.withdraw("alice", 500);
  EXPECT_TRUE(bank_.close("alice").is_closed());
  EXPECT_THROW(bank_.deposit("alice", 1), bank::AccountIsClosed);
  int events = 0;
  bank_.history("alice", [&](const annals::RecordedEvent&) { ++events; });
  EXPECT_EQ(events, 4);
}

TEST_F(BankTest, BalanceAsOfAnEarlierTimeSeesOnlyWhatWasRecordedByThen) {
  bank_.open("alice", "Alice", "EUR", 0);  // 09:00
  clock_->advance(1h);
  bank_.deposit("alice", 10'000);  // 10:00
  clock_->advance(1h);
  bank_.withdraw("alice", 4'000);  // 11:00

  EXPECT_EQ(bank_.account_as_of("alice", parse_timestamp("2026-03-01T10:30:00Z")).balance(),
            10'000);
  EXPECT_EQ(bank_.account_as_of("alice", parse_timestamp("2026-03-01T10:00:00Z")).balance(),
            10'000);  // at the exact time: included
  EXPECT_EQ(bank_.account_as_of("alice", parse_timestamp("2026-03-01T09:59:59Z")).balance(), 0);
  EXPECT_EQ(bank_.account_as_of("alice", parse_timestamp("2026-03-02")).balance(), 6'000);
  EXPECT_THROW(bank_.account_as_of("alice", parse_timestamp("2026-02-28")),
               bank::UnknownAccount);
}

TEST_F(BankTest, BalanceAtAVersion) {
  bank_.open("alice", "Alice", "EUR", 0);
  bank_.deposit("alice", 100);
  bank_.deposit("alice", 200);
  EXPECT_EQ(bank_.account_at_version("alice", 2).balance(), 100);
  EXPECT_EQ(bank_.account_at_version("alice", 3).balance(), 300);
  EXPECT_THROW(bank_.account_at_version("alice", 4), bank::UnknownAccount);
  EXPECT_THROW(bank_.account_at_version("alice", 0), bank::InvalidInput);
}

TEST_F(BankTest, StatementListsTheWindowsMovementsWithARunningBalance) {
  bank_.open("alice", "Alice", "EUR", 0);
  bank_.open("bob", "Bob", "EUR", 0);
  clock_->advance(24h);  // 2 March
  bank_.deposit("alice", 10'000);
  clock_->advance(24h);  // 3 March
  bank_.transfer("alice", "bob", 2'500, "rent");
  clock_->advance(24h);  // 4 March
  bank_.withdraw("alice", 500);

  std::vector<bank::StatementLine> lines;
  const auto summary =
      bank_.statement("alice", parse_timestamp("2026-03-03"), parse_timestamp("2026-03-03T23:59:59Z"),
                      [&](const bank::StatementLine& l) { lines.push_back(l); });
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].description, "transfer to bob (rent)");
  EXPECT_EQ(lines[0].amount, -2'500);
  EXPECT_EQ(lines[0].balance, 7'500);
  EXPECT_EQ(summary.opening_balance, 10'000);
  EXPECT_EQ(summary.closing_balance, 7'500);
  EXPECT_EQ(summary.currency, "EUR");

  lines.clear();
  const auto all = bank_.statement("alice", std::nullopt, std::nullopt,
                                   [&](const bank::StatementLine& l) { lines.push_back(l); });
  EXPECT_EQ(all.movements, 3);
  EXPECT_EQ(all.opening_balance, 0);
  EXPECT_EQ(all.closing_balance, 7'000);
  EXPECT_THROW(bank_.statement("alice", parse_timestamp("2026-03-04"),
                               parse_timestamp("2026-03-03"), [](const auto&) {}),
               bank::InvalidInput);
}

TEST_F(BankTest, AccountsReadModelAgreesWithTheAggregates) {
  bank_.open("alice", "Alice", "EUR", 0);
  bank_.open("bob", "Bob", "EUR", 5'000);
  bank_.open("zoe", "Zoe", "EUR", 0);
  bank_.deposit("alice", 10'000);
  bank_.transfer("alice", "bob", 3'000, "");
  bank_.withdraw("bob", 7'000);
  bank_.close("zoe");

  std::vector<bank::AccountRow> rows;
  bank_.for_each_account([&](const bank::AccountRow& r) { rows.push_back(r); });
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& row : rows) {
    const bank::Account a = bank_.account(row.account);
    EXPECT_EQ(row.balance, a.balance()) << row.account;
    EXPECT_EQ(row.version, a.version()) << row.account;
    EXPECT_EQ(row.status, a.is_closed() ? "closed" : "open") << row.account;
  }
  EXPECT_EQ(rows[1].balance, -4'000);  // bob, in his overdraft
  EXPECT_EQ(rows[1].overdraft_limit, 5'000);
}

TEST_F(BankTest, LedgerHasOneRowPerMovementAndOnePerTransfer) {
  bank_.open("alice", "Alice", "EUR", 0);
  bank_.open("bob", "Bob", "EUR", 0);
  bank_.deposit("alice", 10'000);
  bank_.transfer("alice", "bob", 3'000, "rent");
  bank_.withdraw("bob", 1'000);

  std::vector<bank::LedgerRow> rows;
  bank_.for_each_ledger_row([&](const bank::LedgerRow& r) { rows.push_back(r); });
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].kind, "deposit");
  EXPECT_EQ(rows[0].from_account, "");
  EXPECT_EQ(rows[0].to_account, "alice");
  EXPECT_EQ(rows[1].kind, "transfer");
  EXPECT_EQ(rows[1].from_account, "alice");
  EXPECT_EQ(rows[1].to_account, "bob");
  EXPECT_EQ(rows[1].reference, "rent");
  EXPECT_EQ(rows[1].currency, "EUR");
  EXPECT_EQ(rows[2].kind, "withdrawal");
  EXPECT_EQ(rows[2].amount, 1'000);
}

TEST_F(BankTest, ReadModelsLiveInTheStoreFileAndResumeFromTheirCheckpoints) {
  bank_.open("alice", "Alice", "EUR", 0);
  bank_.deposit("alice", 100);
  EXPECT_EQ(bank_.catch_up(), head());
  {
    bank::Bank other(file_);  // another process, later
    other.deposit("alice", 50);
    std::vector<bank::AccountRow> rows;
    other.for_each_account([&](const bank::AccountRow& r) { rows.push_back(r); });
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].balance, 150);  // the earlier deposit counted once, the new one once
  }
  annals::SqliteReadModel views(file_);  // same file as the events
  EXPECT_EQ(views.checkpoint(bank::kAccountsProjection), head());
  EXPECT_EQ(views.checkpoint(bank::kLedgerProjection), head());
}

TEST_F(BankTest, RebuildingTheReadModelsGivesTheSameRows) {
  bank_.open("alice", "Alice", "EUR", 1'000);
  bank_.open("bob", "Bob", "EUR", 0);
  bank_.deposit("alice", 10'000);
  bank_.transfer("alice", "bob", 10'500, "all of it");
  bank_.withdraw("bob", 500);
  const auto dump = [&] {
    std::vector<std::string> out;
    bank_.for_each_account([&](const bank::AccountRow& r) {
      out.push_back(r.account + " " + std::to_string(r.balance) + " " + r.status);
    });
    bank_.for_each_ledger_row([&](const bank::LedgerRow& r) {
      out.push_back(std::to_string(r.position) + " " + r.kind + " " + std::to_string(r.amount));
    });
    return out;
  };
  const auto live = dump();
  {
    annals::SqliteReadModel views(file_);
    annals::ProjectionRunner accounts(bank_.store(), views, bank::accounts_projection(bank_.keys()));
    annals::ProjectionRunner ledger(bank_.store(), views, bank::ledger_projection());
    accounts.rebuild();
    ledger.rebuild();
  }
  EXPECT_EQ(dump(), live);
  EXPECT_EQ(live.size(), 5u);
}

TEST_F(BankTest, ARebuildRequestedFromOutsideIsHonouredByTheNextRead) {
  bank_.open("alice", "Alice", "EUR", 0);
  bank_.deposit("alice", 700);
  EXPECT_EQ(bank_.catch_up(), head());
  {
    // What `annals rebuild bank.accounts --db bank.db` does; and a stale row
    // that only a rebuild would remove.
    annals::SqliteReadModel views(file_);
    views.write([](annals::SqlTransaction& tx) {
      tx.exec("UPDATE bank_accounts SET balance = 1 WHERE account = 'alice'");
    });
    annals::request_rebuild(views, bank::kAccountsProjection);
  }
  bank::Bank later(file_);  // the next `bank accounts`
  std::vector<bank::AccountRow> rows;
  later.for_each_account([&](const bank::AccountRow& r) { rows.push_back(r); });
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].balance, 700);
  annals::SqliteReadModel views(file_);
  EXPECT_FALSE(annals::rebuild_requested(views, bank::kAccountsProjection));
}

TEST_F(BankTest, ConcurrentWithdrawalsNeverOverdraw) {
  bank_.open("shared", "Shared", "EUR", 1'000);  // 10.00 overdraft
  bank_.deposit("shared", 5'000);               // 60.00 available
  constexpr int kWriters = 8;
  constexpr int kTries = 5;
  std::atomic<int> accepted{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&] {
      bank::Bank mine(file_);  // its own connections, as another process would have
      for (int i = 0; i < kTries; ++i) {
        try {
          mine.withdraw("shared", 300);
          ++accepted;
        } catch (const bank::InsufficientFunds&) {
          ++refused;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(accepted + refused, kWriters * kTries);
  EXPECT_EQ(accepted, 20);  // 60.00 / 3.00: exactly what was available
  const bank::Account shared = bank_.account("shared");
  EXPECT_EQ(shared.balance(), 5'000 - 300 * accepted);
  EXPECT_GE(shared.balance(), -shared.overdraft_limit());
}

}  // namespace

// Issue 12 item 13: no command decides on, and no query shows, an account
// whose stored history was altered.
TEST_F(BankTest, TamperedHistoryIsRefusedAndNothingIsWritten) {
  bank_.open("alice", "Alice", "EUR", 0);  // position 1
  bank_.open("bob", "Bob", "EUR", 0);      // position 2
  bank_.deposit("alice", 1'000);           // position 3
  const auto [status, output] = annals::testing::sqlite3_shell(
      file_,
      "DROP TRIGGER events_append_only_update;"
      "UPDATE events SET payload = json_set(payload, '$.amount', 100000) WHERE position = 3;");
  ASSERT_EQ(status, 0) << output;
  bank::Bank bank(file_);
  const auto head = bank.store().head_position();
  const auto expect_refused = [](auto&& call) {
    try {
      call();
      ADD_FAILURE() << "acted on a tampered history";
    } catch (const annals::HistoryIntegrityError& e) {
      EXPECT_EQ(e.stream_id(), "account-alice");
      EXPECT_EQ(e.version(), 2);
      EXPECT_EQ(e.position(), 3);
    }
  };
  expect_refused([&] { bank.withdraw("alice", 50'000); });
  expect_refused([&] { bank.deposit("alice", 1); });
  expect_refused([&] { bank.transfer("bob", "alice", 1, ""); });
  expect_refused([&] { bank.close("alice"); });
  expect_refused([&] { bank.account("alice"); });
  expect_refused([&] { bank.account_as_of("alice", parse_timestamp("2100-01-01")); });
  expect_refused([&] { bank.statement("alice", {}, {}, [](const bank::StatementLine&) {}); });
  EXPECT_EQ(bank.store().head_position(), head);
  EXPECT_EQ(bank.account_at_version("alice", 1).balance(), 0);
  EXPECT_EQ(bank.deposit("bob", 1).balance(), 1);
}
