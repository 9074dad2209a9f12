// Domain tests of the test Account through the given/when/then helper, and
// tests of the helper itself.

#include "annals/aggregates/scenario.hpp"

#include <gtest/gtest.h>

#include "account.hpp"

namespace annals::test_domain {
namespace {

using annals::testing::Scenario;
using annals::testing::ScenarioFailure;

TEST(Scenario, DepositRaisesDeposited) {
  Scenario<Account>{"1"}
      .given(Opened{"Ada"})
      .when([](Account& a) { a.deposit(250); })
      .then(Deposited{250, "EUR"});
}

TEST(Scenario, WithdrawingMoreThanTheBalanceIsRefused) {
  Scenario<Account>{"1"}
      .given(Opened{"Ada"}, Deposited{500, "EUR"})
      .when([](Account& a) { a.withdraw(700); })
      .then_throws<InsufficientFunds>();
}

TEST(Scenario, StateAfterGivenAndWhenIsVisible) {
  const Account& a = Scenario<Account>{"1"}
                         .given(Opened{"Ada"}, Deposited{500, "EUR"}, Withdrawn{200})
                         .when([](Account& acc) { acc.withdraw(300); })
                         .then(Withdrawn{300});
  EXPECT_EQ(a.balance(), 0);
  EXPECT_EQ(a.version_loaded(), 3);
  EXPECT_EQ(a.version(), 4);
}

TEST(Scenario, ClosedAccountsRefuseDeposits) {
  Scenario<Account>{"1"}
      .given(Opened{"Ada"}, Closed{})
      .when([](Account& a) { a.deposit(1); })
      .then_throws<AccountClosed>();
}

TEST(Scenario, AMismatchPrintsExpectedAndActualEventsAsJson) {
  try {
    Scenario<Account>{"1"}
        .given(Opened{"Ada"})
        .when([](Account& a) { a.deposit(250); })
        .then(Deposited{999, "EUR"});
    FAIL() << "a wrong expectation passed";
  } catch (const ScenarioFailure& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(R"("payload":{"amount":999,"currency":"EUR"})"), std::string::npos)
        << message;
    EXPECT_NE(message.find(R"("payload":{"amount":250,"currency":"EUR"})"), std::string::npos)
        << message;
    EXPECT_NE(message.find(R"("type":"test.Deposited")"), std::string::npos) << message;
  }
}

TEST(Scenario, ThenNothingPassesWhenTheCommandRaisedNothing) {
  // A command that decides to do nothing (or a query) passes then_nothing()
  // and then() with no events; one that raised something fails both.
  EXPECT_NO_THROW(Scenario<Account>{"1"}.given(Opened{"Ada"}).when([](Account&) {}).then_nothing());
  EXPECT_NO_THROW(Scenario<Account>{"1"}.given(Opened{"Ada"}).when([](Account&) {}).then());
  EXPECT_THROW(Scenario<Account>{"1"}
                   .given(Opened{"Ada"})
                   .when([](Account& a) { a.deposit(5); })
                   .then_nothing(),
               ScenarioFailure);
}

TEST(Scenario, ExpectingAnExceptionThatDidNotHappenFails) {
  EXPECT_THROW(Scenario<Account>{"1"}
                   .given(Opened{"Ada"}, Deposited{500, "EUR"})
                   .when([](Account& a) { a.withdraw(100); })
                   .then_throws<InsufficientFunds>(),
               ScenarioFailure);
  // The wrong exception type fails too, and names what was thrown.
  try {
    Scenario<Account>{"1"}
        .given(Opened{"Ada"}, Closed{})
        .when([](Account& a) { a.withdraw(1); })
        .then_throws<InsufficientFunds>();
    FAIL();
  } catch (const ScenarioFailure& e) {
    EXPECT_NE(std::string(e.what()).find("account is closed"), std::string::npos) << e.what();
  }
  // Events expected, but the command threw.
  EXPECT_THROW(Scenario<Account>{"1"}
                   .given(Opened{"Ada"})
                   .when([](Account& a) { a.withdraw(1); })
                   .then(Withdrawn{1}),
               ScenarioFailure);
  EXPECT_THROW(Scenario<Account>{"1"}.given(Opened{"Ada"}).then_nothing(), ScenarioFailure);
}

}  // namespace
}  // namespace annals::test_domain
