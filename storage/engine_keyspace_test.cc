// Engine keys and their memory: Inspect (tiers, buckets, bytes), raw keys
// turning into tier rings, Sweep reclaiming expired buckets and empty keys,
// Delete, and SCAN cursors (every key once, stable across rehashes, globs).

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "storage/engine.h"
#include "storage/engine_test_util.h"
#include "storage/key_state.h"

namespace tally {
namespace {

using engine_testing::EngineTest;
using engine_testing::kT0;

TEST_F(EngineTest, AFullRawKeyDropsExpiredEventsBeforeGrowing) {
  for (uint32_t i = 0; i < kMaxRawEvents; ++i) ASSERT_TRUE(Add("k").ok());
  clock_.Advance(401 * kDayMs);  // every event is past every tier
  ASSERT_TRUE(Add("k").ok());
  auto info = engine_->Inspect("k");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->raw);
  EXPECT_EQ(info->raw_events, 1u);
  EXPECT_EQ(engine_->Stats().converted_keys, 0u);
}

TEST_F(EngineTest, InspectReportsTiersBucketsAndBytes) {
  ASSERT_TRUE(Add("k", kNow, 1, "m").ok());
  ASSERT_TRUE(Add("k", kT0 - 2 * kMinuteMs, 1, "n").ok());
  auto info = engine_->Inspect("k");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->policy, "default");
  EXPECT_TRUE(info->raw);  // two events: kept raw
  EXPECT_EQ(info->raw_events, 2u);
  ASSERT_EQ(info->tiers.size(), 4u);
  // Past kMaxRawEvents the key moves into tier rings.
  for (uint32_t i = 0; i < kMaxRawEvents; ++i) ASSERT_TRUE(Add("k").ok());
  info = engine_->Inspect("k");
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->raw);
  EXPECT_EQ(info->tiers[0].buckets, 2u);  // two seconds
  EXPECT_EQ(info->tiers[1].buckets, 2u);  // two minutes
  EXPECT_EQ(info->tiers[2].buckets, 1u);  // one hour
  EXPECT_EQ(info->tiers[0].last_bucket_ms, kT0);
  EXPECT_EQ(info->tiers[0].first_bucket_ms, kT0 - 2 * kMinuteMs);
  EXPECT_GT(info->bytes, 0);
  EXPECT_EQ(engine_->Stats().converted_keys, 1u);
  EXPECT_EQ(engine_->Inspect("nope").status().code(), Code::kNotFound);
}

TEST_F(EngineTest, ASparseKeyCostsBytesNotADenseRing) {
  ASSERT_TRUE(Add("user:42", kNow, 100, "card:1").ok());
  auto info = engine_->Inspect("user:42");
  ASSERT_TRUE(info.ok());
  // 16 B header + 7 B key padded to 8 + one 32 B raw event.
  EXPECT_EQ(info->bytes, 16 + 8 + 32);
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE(Add("user:42", kNow, 100, "card:1").ok());
  info = engine_->Inspect("user:42");
  // Tiered, all 41 events in one bucket per tier: header, 4 rings, 4 buckets.
  EXPECT_EQ(info->bytes, 16 + 8 + 4 * 16 + 4 * 48);
}

TEST_F(EngineTest, ExpiredBucketsAreReclaimedAndEmptyKeysDisappear) {
  for (uint32_t i = 0; i <= kMaxRawEvents; ++i) ASSERT_TRUE(Add("k").ok());
  ASSERT_TRUE(Add("raw").ok());
  const int64_t full = engine_->Stats().bytes;
  clock_.Advance(3 * kHourMs);  // past the 1 s tier
  EXPECT_EQ(engine_->Sweep(), 0u);
  EXPECT_EQ(engine_->Inspect("k")->tiers[0].buckets, 0u);
  EXPECT_LT(engine_->Stats().bytes, full);
  clock_.Advance(401 * kDayMs);  // past every tier
  EXPECT_EQ(engine_->Sweep(), 2u);
  EXPECT_EQ(engine_->Inspect("k").status().code(), Code::kNotFound);
  EXPECT_EQ(engine_->Inspect("raw").status().code(), Code::kNotFound);
  EngineStats stats = engine_->Stats();
  EXPECT_EQ(stats.keys, 0u);
  EXPECT_EQ(stats.buckets, 0u);
  EXPECT_EQ(stats.bytes, stats.table_bytes);
  EXPECT_EQ(stats.expired_keys, 2u);
}

TEST_F(EngineTest, DeleteRemovesTheKeyAndItsMemory) {
  ASSERT_TRUE(Add("k", kNow, 5, "m").ok());
  EXPECT_TRUE(engine_->Delete("k"));
  EXPECT_FALSE(engine_->Delete("k"));
  EXPECT_EQ(Last("k", kHourMs).count, 0);
  EngineStats stats = engine_->Stats();
  EXPECT_EQ(stats.bytes, stats.table_bytes);
  EXPECT_EQ(stats.deleted_keys, 1u);
}

TEST_F(EngineTest, ScanReturnsEveryKeyOnceAcrossPages) {
  std::set<std::string> all;
  for (int i = 0; i < 500; ++i) {
    all.insert("user:" + std::to_string(i));
    ASSERT_TRUE(Add("user:" + std::to_string(i)).ok());
  }
  std::multiset<std::string> seen;
  uint64_t cursor = 0;
  int pages = 0;
  do {
    ScanPage page = engine_->Scan(cursor, "", 37);
    seen.insert(page.keys.begin(), page.keys.end());
    cursor = page.cursor;
    ASSERT_LT(++pages, 1000);
  } while (cursor != 0);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), all);
  EXPECT_EQ(seen.size(), all.size());
}

TEST_F(EngineTest, ScanIsStableUnderConcurrentInserts) {
  for (int i = 0; i < 300; ++i)
    ASSERT_TRUE(Add("old:" + std::to_string(i)).ok());
  std::multiset<std::string> seen;
  uint64_t cursor = 0;
  int next_new = 0;
  do {
    ScanPage page = engine_->Scan(cursor, "old:*", 20);
    seen.insert(page.keys.begin(), page.keys.end());
    cursor = page.cursor;
    // Inserting between pages may rehash a table; the cursor must not care.
    for (int i = 0; i < 50; ++i)
      ASSERT_TRUE(Add("new:" + std::to_string(next_new++)).ok());
  } while (cursor != 0);
  EXPECT_EQ(seen.size(), 300u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 300u);
}

TEST_F(EngineTest, ScanMatchesGlobs) {
  ASSERT_TRUE(Add("user:1").ok());
  ASSERT_TRUE(Add("user:2").ok());
  ASSERT_TRUE(Add("card:1").ok());
  ScanPage page = engine_->Scan(0, "user:*", 1000);
  EXPECT_EQ(page.cursor, 0u);
  EXPECT_EQ(std::set<std::string>(page.keys.begin(), page.keys.end()),
            (std::set<std::string>{"user:1", "user:2"}));
}

}  // namespace
}  // namespace tally
