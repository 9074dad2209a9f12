// The Account aggregate's rules, as given/when/then scenarios: no database.

#include <gtest/gtest.h>

#include <annals/aggregates/scenario.hpp>

#include "account.hpp"
#include "errors.hpp"

namespace {

using annals::testing::Scenario;
using namespace bank;

const AccountOpened kAliceOpened{"Alice", "EUR", 0};
const AccountOpened kBobOpened{"Bob", "EUR", 5'000};  // 50.00 overdraft

// An account with these past events, for the other side of a transfer.
template <class... Es>
Account account_with(const std::string& id, const Es&... events) {
  return Scenario<Account>{id}.given(events...).when([](Account&) {}).then_nothing();
}

TEST(AccountScenario, OpenRaisesAccountOpened) {
  Scenario<Account>{"alice"}
      .when([](Account& a) { a.open("Alice", "EUR", 0); })
      .then(AccountOpened{"Alice", "EUR", 0});
}

TEST(AccountScenario, OpenTwiceIsRefused) {
  Scenario<Account>{"alice"}
      .given(kAliceOpened)
      .when([](Account& a) { a.open("Alice", "EUR", 0); })
      .then_throws<AccountExists>();
}

TEST(AccountScenario, OpenRefusesBadCurrencyOwnerOrLimit) {
  Scenario<Account>{"alice"}
      .when([](Account& a) { a.open("Alice", "euro", 0); })
      .then_throws<InvalidInput>();
  Scenario<Account>{"alice"}
      .when([](Account& a) { a.open("", "EUR", 0); })
      .then_throws<InvalidInput>();
  Scenario<Account>{"alice"}
      .when([](Account& a) { a.open("Alice", "EUR", -1); })
      .then_throws<InvalidAmount>();
  Scenario<Account>{"al ice"}
      .when([](Account& a) { a.open("Alice", "EUR", 0); })
      .then_throws<InvalidInput>();
}

TEST(AccountScenario, DepositRaisesDepositedAndMovesTheBalance) {
  const Account a = Scenario<Account>{"alice"}
                        .given(kAliceOpened, Deposited{1'000})
                        .when([](Account& a) { a.deposit(250); })
                        .then(Deposited{250});
  EXPECT_EQ(a.balance(), 1'250);
}

TEST(AccountScenario, DepositToAnUnopenedAccountIsRefused) {
  Scenario<Account>{"nobody"}
      .when([](Account& a) { a.deposit(100); })
      .then_throws<UnknownAccount>();
}

TEST(AccountScenario, ZeroOrNegativeAmountsAreRefused) {
  Scenario<Account>{"alice"}
      .given(kAliceOpened)
      .when([](Account& a) { a.deposit(0); })
      .then_throws<InvalidAmount>();
  Scenario<Account>{"alice"}
      .given(kAliceOpened, Deposited{500})
      .when([](Account& a) { a.withdraw(-1); })
      .then_throws<InvalidAmount>();
}

TEST(AccountScenario, DepositThatWouldOverflowTheBalanceIsRefused) {
  Scenario<Account>{"alice"}
      .given(kAliceOpened, Deposited{std::numeric_limits<Cents>::max() - 10})
      .when([](Account& a) { a.deposit(11); })
      .then_throws<InvalidAmount>();
}

TEST(AccountScenario, WithdrawalWithinTheBalanceRaisesWithdrawn) {
  Scenario<Account>{"alice"}
      .given(kAliceOpened, Deposited{500})
      .when([](Account& a) { a.withdraw(500); })
      .then(Withdrawn{500});
}

TEST(AccountScenario, WithdrawalPastTheBalanceWithoutOverdraftIsRefused) {
  Scenario<Account>{"alice"}
      .given(kAliceOpened, Deposited{500})
      .when([](Account& a) { a.withdraw(501); })
      .then_throws<InsufficientFunds>();
}

TEST(AccountScenario, WithdrawalMayUseTheOverdraftUpToItsLimit) {
  const Account bob = Scenario<Account>{"bob"}
                          .given(kBobOpened, Deposited{1'000})
                          .when([](Account& a) { a.withdraw(6'000); })
                          .then(Withdrawn{6'000});
  EXPECT_EQ(bob.balance(), -5'000);
  Scenario<Account>{"bob"}
      .given(kBobOpened, Deposited{1'000})
      .when([](Account& a) { a.withdraw(6'001); })
      .then_throws<InsufficientFunds>();
}

TEST(AccountScenario, InsufficientFundsCarriesWhatWasAskedAndWhatWasThere) {
  try {
    account_with("bob", kBobOpened, Deposited{1'000}).withdraw(7'000);
    FAIL() << "withdrawal accepted";
  } catch (const InsufficientFunds& e) {
    EXPECT_EQ(e.account(), "bob");
    EXPECT_EQ(e.requested(), 7'000);
    EXPECT_EQ(e.available(), 6'000);
  }
}

TEST(AccountScenario, CloseAtZeroRaisesAccountClosed) {
  Scenario<Account>{"alice"}
      .given(kAliceOpened, Deposited{500}, Withdrawn{500})
      .when([](Account& a) { a.close(); })
      .then(AccountClosed{});
}

TEST(AccountScenario, CloseWithMoneyOrDebtIsRefused) {
  Scenario<Account>{"alice"}
      .given(kAliceOpened, Deposited{500})
      .when([](Account& a) { a.close(); })
      .then_throws<BalanceNotZero>();
  Scenario<Account>{"bob"}
      .given(kBobOpened, Withdrawn{100})
      .when([](Account& a) { a.close(); })
      .then_throws<BalanceNotZero>();
}

TEST(AccountScenario, AClosedAccountTakesNoCommand) {
  Scenario<Account>{"alice"}
      .given(kAliceOpened, AccountClosed{})
      .when([](Account& a) { a.deposit(100); })
      .then_throws<AccountIsClosed>();
  Scenario<Account>{"alice"}
      .given(kAliceOpened, AccountClosed{})
      .when([](Account& a) { a.close(); })
      .then_throws<AccountIsClosed>();
}

TEST(AccountScenario, TransferRaisesOnBothSidesWithOneTransferId) {
  Account bob = account_with("bob", kBobOpened);
  Scenario<Account>{"alice"}
      .given(kAliceOpened, Deposited{10'000})
      .when([&](Account& alice) { transfer(alice, bob, 3'000, "t-1", "rent"); })
      .then(TransferSent{"t-1", "bob", 3'000, "rent"});
  ASSERT_EQ(bob.pending_events().size(), 1u);
  EXPECT_EQ(std::get<TransferReceived>(bob.pending_events().front()).transfer_id, "t-1");
  EXPECT_EQ(bob.balance(), 3'000);
}

TEST(AccountScenario, TransferPastTheOverdraftRaisesOnNeitherSide) {
  Account bob = account_with("bob", kBobOpened);
  Scenario<Account>{"alice"}
      .given(kAliceOpened, Deposited{1'000})
      .when([&](Account& alice) { transfer(alice, bob, 1'001, "t-1", ""); })
      .then_throws<InsufficientFunds>();
  EXPECT_TRUE(bob.pending_events().empty());
}

TEST(AccountScenario, TransferBetweenCurrenciesIsRefused) {
  Account dollars = account_with("dan", AccountOpened{"Dan", "USD", 0});
  Scenario<Account>{"alice"}
      .given(kAliceOpened, Deposited{1'000})
      .when([&](Account& alice) { transfer(alice, dollars, 100, "t-1", ""); })
      .then_throws<CurrencyMismatch>();
  EXPECT_TRUE(dollars.pending_events().empty());
}

TEST(AccountScenario, TransferToItselfOrToAClosedAccountIsRefused) {
  Account alice_again = account_with("alice", kAliceOpened, Deposited{1'000});
  Scenario<Account>{"alice"}
      .given(kAliceOpened, Deposited{1'000})
      .when([&](Account& alice) { transfer(alice, alice_again, 100, "t-1", ""); })
      .then_throws<InvalidInput>();
  Account closed = account_with("bob", kBobOpened, AccountClosed{});
  Scenario<Account>{"alice"}
      .given(kAliceOpened, Deposited{1'000})
      .when([&](Account& alice) { transfer(alice, closed, 100, "t-1", ""); })
      .then_throws<AccountIsClosed>();
}

TEST(AccountScenario, BalanceChangeSignsEveryMovement) {
  EXPECT_EQ(balance_change(Deposited{5}), 5);
  EXPECT_EQ(balance_change(TransferReceived{"t", "a", 5, ""}), 5);
  EXPECT_EQ(balance_change(Withdrawn{5}), -5);
  EXPECT_EQ(balance_change(TransferSent{"t", "b", 5, ""}), -5);
  EXPECT_EQ(balance_change(kAliceOpened), 0);
  EXPECT_EQ(balance_change(AccountClosed{}), 0);
}

TEST(AccountIds, OnlySafeCharactersAreAccepted) {
  EXPECT_NO_THROW(check_account_id("alice"));
  EXPECT_NO_THROW(check_account_id("ACC-42_x.y"));
  EXPECT_THROW(check_account_id(""), InvalidInput);
  EXPECT_THROW(check_account_id("a b"), InvalidInput);
  EXPECT_THROW(check_account_id("a/b"), InvalidInput);
  EXPECT_THROW(check_account_id(std::string(65, 'a')), InvalidInput);
}

}  // namespace
