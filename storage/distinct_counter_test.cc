#include "storage/distinct_counter.h"

#include <gtest/gtest.h>

#include <cmath>

namespace tally {
namespace {

// splitmix64: well-mixed 64-bit hashes, as the engine's XXH3 member hashes are.
uint64_t H(uint64_t i) {
  uint64_t z = i + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z == 0 ? 1 : z;
}

TEST(DistinctCounterTest, CountsExactlyUpToTheLimit) {
  DistinctCounter c;
  c.Reset(100);
  for (uint64_t i = 0; i < 100; ++i) {
    c.Add(H(i));
    c.Add(H(i));
  }
  EXPECT_TRUE(c.exact());
  EXPECT_EQ(c.Count(), 100u);
}

TEST(DistinctCounterTest, EstimatesPastTheLimit) {
  DistinctCounter c;
  c.Reset(100);
  for (uint64_t i = 0; i < 20000; ++i) c.Add(H(i));
  EXPECT_FALSE(c.exact());
  EXPECT_NEAR(static_cast<double>(c.Count()), 20000,
              20000 * 4 * HyperLogLog::kRelativeStandardError);
}

TEST(DistinctCounterTest, ResetForgetsEverythingIncludingSketchMode) {
  DistinctCounter c;
  c.Reset(10);
  for (uint64_t i = 0; i < 50; ++i) c.Add(H(i));
  ASSERT_FALSE(c.exact());
  c.Reset(10);
  EXPECT_TRUE(c.exact());
  EXPECT_EQ(c.Count(), 0u);
  c.Add(H(1));
  EXPECT_EQ(c.Count(), 1u);
}

TEST(DistinctCounterTest, BucketsOfEveryShapeAreUnited) {
  int64_t bytes = 0;
  Bucket one = MakeBucket(0), many = MakeBucket(1), sketch = MakeBucket(2);
  AddBucketMember(one, H(0), 1000, &bytes);
  for (uint64_t i = 0; i < 50; ++i) AddBucketMember(many, H(i), 1000, &bytes);
  for (uint64_t i = 25; i < 2000; ++i)
    AddBucketMember(sketch, H(i), 100, &bytes);
  DistinctCounter c;
  c.Reset(1000);
  c.AddBucket(one);
  c.AddBucket(many);
  EXPECT_TRUE(c.exact());
  EXPECT_EQ(c.Count(), 50u);
  c.AddBucket(sketch);
  EXPECT_FALSE(c.exact());
  EXPECT_NEAR(static_cast<double>(c.Count()), 2000,
              2000 * 4 * HyperLogLog::kRelativeStandardError);
  for (Bucket* b : {&one, &many, &sketch}) FreeBucketMembers(*b, &bytes);
  EXPECT_EQ(bytes, 0);
}

}  // namespace
}  // namespace tally
