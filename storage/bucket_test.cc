#include "storage/bucket.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace tally {
namespace {

std::vector<uint64_t> Members(const Bucket& b) {
  if (b.members == 1) return {b.member_data};
  return {b.member_array(), b.member_array() + b.members};
}

TEST(BucketTest, OneMemberIsStoredInlineForFree) {
  Bucket b = MakeBucket(7);
  int64_t bytes = 0;
  AddBucketMember(b, 99, 1000, &bytes);
  AddBucketMember(b, 99, 1000, &bytes);
  EXPECT_EQ(b.members, 1u);
  EXPECT_EQ(b.member_data, 99u);
  EXPECT_EQ(bytes, 0);
  FreeBucketMembers(b, &bytes);
  EXPECT_EQ(bytes, 0);
}

TEST(BucketTest, MembersStaySortedAndUniqueWithPowerOfTwoCapacity) {
  Bucket b = MakeBucket(0);
  int64_t bytes = 0;
  std::vector<uint64_t> added;
  for (uint64_t i = 0; i < 100; ++i) {
    uint64_t h = (i * 0x9E3779B97F4A7C15ull) | 1;
    AddBucketMember(b, h, 1000, &bytes);
    AddBucketMember(b, h, 1000, &bytes);  // duplicate: no change
    added.push_back(h);
  }
  std::sort(added.begin(), added.end());
  EXPECT_EQ(Members(b), added);
  EXPECT_EQ(bytes, 128 * 8);
  EXPECT_EQ(BucketMemberBytes(b), bytes);
  FreeBucketMembers(b, &bytes);
  EXPECT_EQ(bytes, 0);
}

TEST(BucketTest, PastTheExactLimitMembersBecomeASketch) {
  Bucket b = MakeBucket(0);
  int64_t bytes = 0;
  for (uint64_t i = 1; i <= 11; ++i)
    AddBucketMember(b, i * 0x9E3779B97F4A7C15ull, 10, &bytes);
  ASSERT_TRUE(b.is_sketch());
  EXPECT_EQ(bytes, static_cast<int64_t>(sizeof(HyperLogLog)));
  EXPECT_NEAR(b.sketch()->Estimate(), 11.0, 0.5);
  FreeBucketMembers(b, &bytes);
  EXPECT_EQ(bytes, 0);
}

TEST(BucketTest, OverflowIsDetectedBeforeApplying) {
  Bucket b = MakeBucket(0);
  ApplyToBucket(b, 1, std::numeric_limits<int64_t>::max());
  EXPECT_FALSE(CanApply(b, 1, 1));
  EXPECT_TRUE(CanApply(b, 1, -5));
  Bucket c = MakeBucket(0);
  ApplyToBucket(c, std::numeric_limits<int64_t>::max(), 0);
  EXPECT_FALSE(CanApply(c, 1, 0));
}

TEST(BucketTest, MinAndMaxFollowAmounts) {
  Bucket b = MakeBucket(0);
  ApplyToBucket(b, 1, 5);
  ApplyToBucket(b, 2, -3);
  ApplyToBucket(b, 1, 8);
  EXPECT_EQ(b.count, 4);
  EXPECT_EQ(b.sum, 10);
  EXPECT_EQ(b.min, -3);
  EXPECT_EQ(b.max, 8);
}

}  // namespace
}  // namespace tally
