#include "storage/dedupe_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace tally {
namespace {

class DedupeTableTest : public testing::Test {
 protected:
  DedupeTable::Outcome Apply(DedupeTable& table, std::string_view id,
                             uint64_t digest, int64_t now,
                             Status result = Status::Ok()) {
    return table.Apply(
        id, digest, now,
        [&](int64_t* time_ms) {
          ++applied_;
          *time_ms = now;
          return result;
        },
        &time_ms_, &status_);
  }
  int applied_ = 0;
  int64_t time_ms_ = 0;
  Status status_;
};

TEST_F(DedupeTableTest, ARetryWithTheSameIdIsAppliedOnce) {
  DedupeTable table;
  EXPECT_EQ(Apply(table, "evt-1", 7, 1000), DedupeTable::Outcome::kApplied);
  EXPECT_EQ(Apply(table, "evt-1", 7, 2000), DedupeTable::Outcome::kDuplicate);
  EXPECT_EQ(time_ms_, 1000);  // the time applied the first time
  EXPECT_EQ(applied_, 1);
  EXPECT_EQ(table.Stats().duplicates, 1u);
}

TEST_F(DedupeTableTest, TheSameIdWithAnotherPayloadIsAConflict) {
  DedupeTable table;
  Apply(table, "evt-1", 7, 1000);
  EXPECT_EQ(Apply(table, "evt-1", 8, 1000), DedupeTable::Outcome::kConflict);
  EXPECT_EQ(status_.code(), Code::kIdConflict);
  EXPECT_EQ(applied_, 1);
}

TEST_F(DedupeTableTest, AFailedApplyIsNotRememberedSoARetryCanSucceed) {
  DedupeTable table;
  EXPECT_EQ(Apply(table, "evt-1", 7, 1000, Status::Overflow("x")),
            DedupeTable::Outcome::kFailed);
  EXPECT_EQ(status_.code(), Code::kOverflow);
  EXPECT_EQ(Apply(table, "evt-1", 7, 1000), DedupeTable::Outcome::kApplied);
  EXPECT_EQ(applied_, 2);
}

TEST_F(DedupeTableTest, IdsAreForgottenAfterTheHorizon) {
  DedupeTable table(
      {.horizon_ms = 10'000, .max_entries = 100, .shard_bits = 1});
  Apply(table, "evt-1", 7, 1000);
  EXPECT_EQ(Apply(table, "evt-1", 7, 10'999), DedupeTable::Outcome::kDuplicate);
  EXPECT_EQ(Apply(table, "evt-1", 7, 11'000), DedupeTable::Outcome::kApplied);
  EXPECT_EQ(table.Stats().expired, 1u);
}

TEST_F(DedupeTableTest, MemoryIsBoundedAndEarlyEvictionIsCounted) {
  DedupeTable table(
      {.horizon_ms = 1'000'000, .max_entries = 64, .shard_bits = 2});
  for (int i = 0; i < 1000; ++i) Apply(table, "evt-" + std::to_string(i), 1, 5);
  DedupeStats stats = table.Stats();
  EXPECT_LE(stats.entries, 64u);
  EXPECT_GE(stats.evicted_early, 1000u - 64u);
  EXPECT_GT(stats.bytes, 0);
  // The newest ids are still remembered.
  EXPECT_EQ(Apply(table, "evt-999", 1, 6), DedupeTable::Outcome::kDuplicate);
}

TEST(DedupeTableConcurrencyTest, ConcurrentRequestsWithOneIdApplyOnce) {
  DedupeTable table;
  std::atomic<int> applied{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        int64_t time_ms;
        Status status;
        table.Apply(
            "id-" + std::to_string(i), 1, 100,
            [&](int64_t* tm) {
              applied.fetch_add(1);
              *tm = 100;
              return Status::Ok();
            },
            &time_ms, &status);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(applied.load(), 500);
  EXPECT_EQ(table.Stats().duplicates, 1500u);
}

}  // namespace
}  // namespace tally
