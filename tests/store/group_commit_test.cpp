// The group-commit scheduler on its own, with a fake writer instead of a
// database: which appends form a group, in which order, what a failed group
// tells its appenders, and shutdown. No test here depends on timing: appenders
// are started one at a time and the fake writer holds its first group until
// the test releases it.

#include "annals/store/internal/group_commit.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"

namespace annals {
namespace {

using detail::CommitGroup;
using detail::CommitRequest;
using detail::CommitScheduler;

// A gate a thread waits at until another opens it.
class Gate {
 public:
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Writes a group by recording the ids of its appends (the number in their
// stream id "s-<n>") and giving each a position in commit order; fails every
// append of round `fail_round` with a StorageError naming the round.
class FakeWriter final : public detail::GroupWriter {
 public:
  bool take_more = true;  // whether the writer asks for appends queued meanwhile
  int fail_round = -1;    // the round whose appends all fail
  int fail_append = -1;   // an append that fails alone
  Gate first_round_entered;
  Gate release_first_round;

  void write_group(CommitGroup& group) noexcept override {
    int round = 0;
    {
      std::lock_guard lock(mu_);
      round = static_cast<int>(rounds_.size());
      rounds_.emplace_back();
    }
    if (round == 0) {
      first_round_entered.open();
      release_first_round.wait();
    }
    std::vector<CommitRequest*>& requests = group.requests();
    std::vector<int> ids;
    std::size_t next = 0;
    do {
      for (; next < requests.size(); ++next) ids.push_back(id_of(*requests[next]));
    } while (take_more && group.take_more());
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < requests.size(); ++i) {
      CommitRequest& r = *requests[i];
      if (round == fail_round) {
        r.error = std::make_exception_ptr(
            StorageError("the fake disk is full in round " + std::to_string(round)));
      } else if (ids[i] == fail_append) {
        r.error = std::make_exception_ptr(InvalidArgument("append " + std::to_string(ids[i])));
      } else {
        ++position_;
        r.results = {AppendResult{ids[i], position_, position_}};
      }
    }
    rounds_[static_cast<std::size_t>(round)] = ids;
    group.commit_took(std::chrono::steady_clock::duration::zero());
  }

  std::vector<std::vector<int>> rounds() {
    std::lock_guard lock(mu_);
    return rounds_;
  }

 private:
  static int id_of(const CommitRequest& r) {
    return std::stoi(r.batch->front().stream_id.substr(2));
  }

  std::mutex mu_;
  std::vector<std::vector<int>> rounds_;
  std::int64_t position_ = 0;
};

// What one append ended with.
struct Outcome {
  std::vector<AppendResult> results;
  std::string error;  // what() of its error; empty when it succeeded
};

// One append of id `id` through `scheduler`, on its own thread.
class Appender {
 public:
  Appender(CommitScheduler& scheduler, int id)
      : batch_{StreamAppend{"s-" + std::to_string(id), ExpectedVersion::any(), {}}},
        thread_([this, &scheduler] {
          CommitRequest request;
          request.batch = &batch_;
          request.generated_first_ids = &generated_;
          scheduler.arrive();
          try {
            scheduler.submit(request);
          } catch (const std::exception& e) {
            outcome_.error = e.what();
            return;
          }
          if (request.error) {
            try {
              std::rethrow_exception(request.error);
            } catch (const std::exception& e) {
              outcome_.error = e.what();
            }
          } else {
            outcome_.results = request.results;
          }
        }) {}

  const Outcome& join() {
    thread_.join();
    return outcome_;
  }

 private:
  std::vector<StreamAppend> batch_;
  std::vector<bool> generated_{false};
  Outcome outcome_;
  std::thread thread_;
};

// Waits (yielding) until `scheduler` has `n` requests queued.
void wait_until_queued(const CommitScheduler& scheduler, std::size_t n) {
  while (scheduler.queued() != n) std::this_thread::yield();
}

// Starts append 0, waits until the writer holds it in round 0, then starts
// appends 1..count-1 one at a time, each queued before the next starts.
std::vector<std::unique_ptr<Appender>> start_behind_first(CommitScheduler& scheduler,
                                                          FakeWriter& writer, int count) {
  std::vector<std::unique_ptr<Appender>> appenders;
  appenders.push_back(std::make_unique<Appender>(scheduler, 0));
  writer.first_round_entered.wait();
  for (int id = 1; id < count; ++id) {
    appenders.push_back(std::make_unique<Appender>(scheduler, id));
    wait_until_queued(scheduler, static_cast<std::size_t>(id));
  }
  return appenders;
}

TEST(GroupCommit, AppendsQueuedWhileAGroupIsWrittenFormTheNextGroupTogether) {
  FakeWriter writer;
  writer.take_more = false;
  CommitScheduler scheduler(writer, 256);
  auto appenders = start_behind_first(scheduler, writer, 6);
  writer.release_first_round.open();
  for (auto& a : appenders) EXPECT_EQ(a->join().error, "");
  EXPECT_EQ(writer.rounds(), (std::vector<std::vector<int>>{{0}, {1, 2, 3, 4, 5}}));
}

TEST(GroupCommit, TakeMoreAddsQueuedAppendsToTheOpenGroupUpToItsMaximumInQueueOrder) {
  FakeWriter writer;
  CommitScheduler scheduler(writer, 3);
  auto appenders = start_behind_first(scheduler, writer, 6);
  writer.release_first_round.open();
  std::vector<Outcome> outcomes;
  for (auto& a : appenders) outcomes.push_back(a->join());
  EXPECT_EQ(writer.rounds(), (std::vector<std::vector<int>>{{0, 1, 2}, {3, 4, 5}}));
  // Each append gets its own result, positions in queue order.
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    ASSERT_EQ(outcomes[i].error, "") << "append " << i;
    const auto id = static_cast<std::int64_t>(i);
    EXPECT_EQ(outcomes[i].results, (std::vector<AppendResult>{{id, id + 1, id + 1}}));
  }
}

TEST(GroupCommit, AFailedGroupReportsItsErrorToEachOfItsAppendsAndToNoOther) {
  FakeWriter writer;
  writer.take_more = false;
  writer.fail_round = 1;
  CommitScheduler scheduler(writer, 256);
  auto appenders = start_behind_first(scheduler, writer, 4);
  writer.release_first_round.open();
  EXPECT_EQ(appenders[0]->join().error, "");
  for (int id = 1; id < 4; ++id) {
    const Outcome& o = appenders[static_cast<std::size_t>(id)]->join();
    EXPECT_EQ(o.error, "the fake disk is full in round 1") << "append " << id;
    EXPECT_TRUE(o.results.empty());
  }
  // The scheduler goes on: the next append leads a round of its own.
  Appender after(scheduler, 4);
  EXPECT_EQ(after.join().error, "");
  EXPECT_EQ(writer.rounds(), (std::vector<std::vector<int>>{{0}, {1, 2, 3}, {4}}));
}

TEST(GroupCommit, AnAppendThatFailsAloneLeavesTheOthersOfItsGroupCommitted) {
  FakeWriter writer;
  writer.fail_append = 2;
  CommitScheduler scheduler(writer, 256);
  auto appenders = start_behind_first(scheduler, writer, 4);
  writer.release_first_round.open();
  for (int id = 0; id < 4; ++id) {
    const Outcome& o = appenders[static_cast<std::size_t>(id)]->join();
    if (id == 2) {
      EXPECT_EQ(o.error, "append 2");
    } else {
      EXPECT_EQ(o.error, "") << "append " << id;
      EXPECT_EQ(o.results.size(), 1u);
    }
  }
  EXPECT_EQ(writer.rounds(), (std::vector<std::vector<int>>{{0, 1, 2, 3}}));
}

TEST(GroupCommit, ShutdownWaitsForQueuedAppendsThenRefusesNewOnes) {
  FakeWriter writer;
  writer.take_more = false;
  CommitScheduler scheduler(writer, 256);
  auto appenders = start_behind_first(scheduler, writer, 3);
  std::vector<std::vector<int>> written_at_shutdown;
  std::thread closer([&] {
    scheduler.shutdown();
    written_at_shutdown = writer.rounds();
  });
  writer.release_first_round.open();
  closer.join();
  // shutdown() returned only once the queued appends were written.
  EXPECT_EQ(written_at_shutdown, (std::vector<std::vector<int>>{{0}, {1, 2}}));
  for (auto& a : appenders) EXPECT_EQ(a->join().error, "");

  Appender late(scheduler, 3);
  EXPECT_EQ(late.join().error, "cannot append: the store is shutting down");
  EXPECT_EQ(writer.rounds().size(), 2u);  // the writer never saw it
  scheduler.shutdown();                   // again: returns at once
}

}  // namespace
}  // namespace annals
