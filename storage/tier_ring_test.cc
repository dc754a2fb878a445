#include "storage/tier_ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

namespace tally {
namespace {

std::vector<uint32_t> Indexes(const TierRing& ring) {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < ring.size(); ++i) out.push_back(ring.at(i).index);
  return out;
}

TEST(TierRingTest, AppendsInOrderAndReusesTheCurrentBucket) {
  TierRing ring;
  int64_t bytes = 0;
  for (uint32_t i = 10; i < 20; ++i) {
    ring.FindOrInsert(i, &bytes)->count += 1;
    ring.FindOrInsert(i, &bytes)->count += 1;
  }
  EXPECT_EQ(ring.size(), 10u);
  EXPECT_EQ(ring.capacity(), 16u);
  EXPECT_EQ(ring.back().count, 2);
  EXPECT_EQ(bytes, 16 * 48);
  ring.Clear(&bytes);
  EXPECT_EQ(bytes, 0);
}

TEST(TierRingTest, LateBucketsAreInsertedInOrderAcrossTheWrap) {
  TierRing ring;
  int64_t bytes = 0;
  for (uint32_t i = 0; i < 8; ++i) ring.FindOrInsert(i * 10, &bytes);
  ring.ExpireBefore(30, &bytes);  // head moves: later inserts wrap around
  for (uint32_t i = 8; i < 11; ++i) ring.FindOrInsert(i * 10, &bytes);
  ring.FindOrInsert(55, &bytes);
  ring.FindOrInsert(35, &bytes);
  ring.FindOrInsert(5, &bytes);  // before everything
  EXPECT_EQ(Indexes(ring), (std::vector<uint32_t>{5, 30, 35, 40, 50, 55, 60, 70,
                                                  80, 90, 100}));
  EXPECT_NE(ring.Find(55), nullptr);
  EXPECT_EQ(ring.Find(56), nullptr);
  ring.Clear(&bytes);
  EXPECT_EQ(bytes, 0);
}

TEST(TierRingTest, ExpiryDropsTheFrontAndShrinksTheBuffer) {
  TierRing ring;
  int64_t bytes = 0;
  for (uint32_t i = 0; i < 1000; ++i) ring.FindOrInsert(i, &bytes);
  EXPECT_EQ(ring.capacity(), 1024u);
  EXPECT_EQ(ring.ExpireBefore(990, &bytes), 990u);
  EXPECT_EQ(ring.size(), 10u);
  EXPECT_LE(ring.capacity(), 32u);
  EXPECT_EQ(bytes, ring.HeapBytes());
  EXPECT_EQ(ring.ExpireBefore(5000, &bytes), 10u);
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.capacity(), 0u);
  EXPECT_EQ(bytes, 0);
}

TEST(TierRingTest, RandomOperationsMatchASortedSet) {
  std::mt19937 rng(3);
  TierRing ring;
  int64_t bytes = 0;
  std::set<uint32_t> model;
  uint32_t floor = 0;
  for (int step = 0; step < 20000; ++step) {
    if (rng() % 50 == 0) {
      floor += rng() % 40;
      ring.ExpireBefore(floor, &bytes);
      model.erase(model.begin(), model.lower_bound(floor));
    } else {
      uint32_t index = floor + rng() % 200;
      ring.FindOrInsert(index, &bytes)->count += 1;
      model.insert(index);
    }
    ASSERT_EQ(ring.size(), model.size());
  }
  EXPECT_EQ(Indexes(ring), std::vector<uint32_t>(model.begin(), model.end()));
  EXPECT_EQ(bytes, ring.HeapBytes());
  ring.Clear(&bytes);
  EXPECT_EQ(bytes, 0);
}

}  // namespace
}  // namespace tally
