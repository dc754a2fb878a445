#include "storage/dedupe_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
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

// Applies ids drawn from `rng` at advancing times to both tables and checks
// that they answer alike.
void ApplyAlike(DedupeTable& a, DedupeTable& b, std::mt19937_64& rng,
                int64_t* now, int n) {
  for (int i = 0; i < n; ++i) {
    const std::string id = "id-" + std::to_string(rng() % 300);
    const uint64_t digest = rng() % 50 == 0 ? 2 : 1;
    int64_t ta = 0, tb = 0;
    Status sa, sb;
    auto apply = [&](int64_t* t) {
      *t = *now - 5;
      return Status::Ok();
    };
    ASSERT_EQ(a.Apply(id, digest, *now, apply, &ta, &sa),
              b.Apply(id, digest, *now, apply, &tb, &sb))
        << i;
    ASSERT_EQ(ta, tb);
    *now += static_cast<int64_t>(rng() % 20);
  }
}

TEST(DedupeTableSnapshotTest, RoundTripKeepsEntriesOrderAndTrimming) {
  const DedupeOptions options{
      .horizon_ms = 2'000, .max_entries = 128, .shard_bits = 2};
  DedupeTable a(options), b(options);
  std::mt19937_64 rng(3);
  int64_t now = 1'000'000;
  ApplyAlike(a, b, rng, &now, 2000);
  ASSERT_GT(a.Stats().entries, 50u);
  ASSERT_GT(a.Stats().evicted_early + a.Stats().expired, 100u);

  std::string snapshot;
  a.SerializeTo(&snapshot);
  DedupeTable loaded(options);
  ASSERT_TRUE(loaded.LoadFrom(snapshot).ok());
  EXPECT_EQ(loaded.Digest(), a.Digest());
  EXPECT_EQ(loaded.Stats().entries, a.Stats().entries);
  EXPECT_EQ(loaded.Stats().bytes, a.Stats().bytes);
  std::string again;
  loaded.SerializeTo(&again);
  EXPECT_EQ(again, snapshot);  // same shards: same order, same bytes

  // The loaded table forgets exactly what the original forgets.
  const DedupeStats before = a.Stats();
  std::mt19937_64 rng2 = rng;
  int64_t now2 = now;
  ApplyAlike(a, b, rng, &now, 1500);
  DedupeTable reference(options);  // stands in for b, which matched a
  ASSERT_TRUE(reference.LoadFrom(snapshot).ok());
  ApplyAlike(loaded, reference, rng2, &now2, 1500);
  EXPECT_EQ(loaded.Digest(), a.Digest());
  const DedupeStats after = a.Stats(), after_loaded = loaded.Stats();
  EXPECT_EQ(after_loaded.expired, after.expired - before.expired);
  EXPECT_EQ(after_loaded.evicted_early,
            after.evicted_early - before.evicted_early);
  EXPECT_EQ(after_loaded.entries, after.entries);
}

TEST(DedupeTableSnapshotTest, OtherShardCountsKeepTheOldestFirst) {
  DedupeTable a({.horizon_ms = 1'000, .max_entries = 1000, .shard_bits = 3});
  int64_t time_ms;
  Status status;
  auto ok = [](int64_t* t) {
    *t = 0;
    return Status::Ok();
  };
  for (int i = 0; i < 200; ++i) {
    a.Apply("id-" + std::to_string(i), 1, 10'000 + i, ok, &time_ms, &status);
  }
  std::string snapshot;
  a.SerializeTo(&snapshot);
  DedupeTable b({.horizon_ms = 1'000, .max_entries = 1000, .shard_bits = 1});
  ASSERT_TRUE(b.LoadFrom(snapshot).ok());
  EXPECT_EQ(b.Digest(), a.Digest());
  // At 11'100 the ids applied up to 10'100 are past the horizon; expiry
  // (per shard, on Apply) stops at the first younger id, so they must come
  // first in every shard.
  for (int i = 0; i < 20; ++i) {
    b.Apply("new-" + std::to_string(i), 1, 11'100, ok, &time_ms, &status);
  }
  EXPECT_EQ(b.Stats().expired, 101u);
  EXPECT_EQ(b.Stats().entries, 119u);
}

TEST(DedupeTableSnapshotTest, LoadNeedsAnEmptyTableAndRefusesDuplicates) {
  DedupeTable a;
  int64_t time_ms;
  Status status;
  auto ok = [](int64_t* t) {
    *t = 0;
    return Status::Ok();
  };
  a.Apply("x", 1, 5, ok, &time_ms, &status);
  a.Apply("y", 1, 5, ok, &time_ms, &status);
  std::string snapshot;
  a.SerializeTo(&snapshot);
  EXPECT_EQ(a.LoadFrom(snapshot).code(), Code::kInvalidArgument);
  // Make "y" read "x": a duplicate id.
  const size_t y = snapshot.find('y');
  ASSERT_NE(y, std::string::npos);
  snapshot[y] = 'x';
  DedupeTable b;
  Status s = b.LoadFrom(snapshot);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("duplicate"), std::string_view::npos);
  EXPECT_EQ(b.Stats().entries, 0u);
  EXPECT_EQ(b.Stats().bytes, 0);
}

TEST(DedupeTableSnapshotTest, CorruptedSnapshotsFailCleanlyOrLoadValidState) {
  DedupeTable a({.horizon_ms = 100'000, .max_entries = 1000, .shard_bits = 2});
  std::mt19937_64 rng(9);
  int64_t time_ms;
  Status status;
  auto ok = [](int64_t* t) {
    *t = 0;
    return Status::Ok();
  };
  for (int i = 0; i < 100; ++i) {
    a.Apply(std::string(1 + rng() % 40, static_cast<char>('a' + i % 26)) +
                std::to_string(i),
            rng(), 1000 + i, ok, &time_ms, &status);
  }
  std::string corpus;
  a.SerializeTo(&corpus);
  int loaded = 0;
  for (int round = 0; round < 1000; ++round) {
    std::string data = corpus;
    for (int m = 1 + static_cast<int>(rng() % 3); m > 0 && !data.empty(); --m) {
      const size_t pos = rng() % data.size();
      switch (rng() % 4) {
        case 0:
        case 1:
          data[pos] = static_cast<char>(rng());
          break;
        case 2:
          data.resize(pos);
          break;
        case 3:
          data.insert(pos, 1, static_cast<char>(rng()));
          break;
      }
    }
    DedupeTable b({.horizon_ms = 100'000,
                   .max_entries = 1000,
                   .shard_bits = static_cast<uint32_t>(1 + round % 3)});
    Status s = b.LoadFrom(data);
    if (!s.ok()) {
      ASSERT_EQ(s.code(), Code::kCorruption) << s.ToString();
      ASSERT_EQ(b.Stats().entries, 0u);
      ASSERT_EQ(b.Stats().bytes, 0);
      continue;
    }
    ++loaded;
    std::string again;
    b.SerializeTo(&again);
    DedupeTable c(
        {.horizon_ms = 100'000, .max_entries = 1000, .shard_bits = 2});
    ASSERT_TRUE(c.LoadFrom(again).ok());
    ASSERT_EQ(c.Digest(), b.Digest());
    b.Apply("fresh", 1, 1'000'000, ok, &time_ms, &status);
  }
  EXPECT_GT(loaded, 10);
}

}  // namespace
}  // namespace tally
