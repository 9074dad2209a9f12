#include "annals/core/event_id.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"

namespace annals {
namespace {

TEST(EventId, GeneratedIdsAreCanonicalVersion7Uuids) {
  const std::string id = new_event_id();
  ASSERT_EQ(id.size(), 36u);
  EXPECT_TRUE(is_valid_event_id(id));
  EXPECT_EQ(id[14], '7') << id;                                          // version nibble
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // RFC 4122 variant
  EXPECT_EQ(normalize_event_id(id), id);
}

TEST(EventId, IdsFromManyThreadsAreUniqueAndEachThreadSeesThemIncrease) {
  constexpr int kThreads = 4, kPerThread = 5000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) ids[t].push_back(new_event_id());
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& list : ids) {
    for (std::size_t i = 1; i < list.size(); ++i) ASSERT_LT(list[i - 1], list[i]);
    all.insert(list.begin(), list.end());
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST(EventId, AForkedChildDoesNotRepeatItsParentsIds) {
  new_event_id();  // the parent's generator is seeded before the fork
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string id = new_event_id();
    const bool written = ::write(fds[1], id.data(), id.size()) == static_cast<ssize_t>(id.size());
    ::_exit(written ? 0 : 1);
  }
  const std::string parent_id = new_event_id();
  std::string child_id(36, '\0');
  ASSERT_EQ(::read(fds[0], child_id.data(), child_id.size()), 36);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  // Same millisecond and counter are likely; the 62 random bits must differ.
  EXPECT_NE(child_id.substr(19), parent_id.substr(19)) << child_id << " vs " << parent_id;
}

TEST(EventId, NormalizeLowercasesAndRejectsNonUuids) {
  EXPECT_EQ(normalize_event_id("0190A6E4-7C1E-7A3B-9F00-1234567890AB"),
            "0190a6e4-7c1e-7a3b-9f00-1234567890ab");
  for (const char* bad :
       {"", "not-a-uuid", "0190a6e4-7c1e-7a3b-9f00-1234567890a",
        "0190a6e4_7c1e-7a3b-9f00-1234567890ab", "0190a6e4-7c1e-7a3b-9f00-1234567890abc",
        "g190a6e4-7c1e-7a3b-9f00-1234567890ab"}) {
    EXPECT_FALSE(is_valid_event_id(bad)) << bad;
    try {
      normalize_event_id(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("not a UUID"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace annals
