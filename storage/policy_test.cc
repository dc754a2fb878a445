#include "storage/policy.h"

#include <gtest/gtest.h>

namespace tally {
namespace {

TEST(PolicyTest, DefaultPolicyIsValidAndMatchesTheDesign) {
  Policy p;
  EXPECT_TRUE(ValidatePolicy(p).ok());
  EXPECT_EQ(FormatTiers(p.tiers), "1s x 2h, 1m x 2d, 1h x 35d, 1d x 400d");
  EXPECT_TRUE(p.track_distinct);
  EXPECT_EQ(p.max_lateness_ms, 48 * kHourMs);
  EXPECT_EQ(p.max_skew_ms, 5 * kSecondMs);
}

TEST(PolicyTest, ParsesTierLists) {
  auto tiers = ParseTiers("1s x 2h, 1m x 48h,1h X 35d");
  ASSERT_TRUE(tiers.ok()) << tiers.status().ToString();
  ASSERT_EQ(tiers->size(), 3u);
  EXPECT_EQ((*tiers)[1], (TierSpec{kMinuteMs, 48 * kHourMs}));
  EXPECT_EQ(*ParseTiers(FormatTiers(*tiers)), *tiers);
}

TEST(PolicyTest, RejectsTierListsThePlannerCannotUse) {
  const char* bad[] = {
      "",                    // no tier
      "1s",                  // no retention
      "500ms x 1h",          // sub-second resolution
      "1s x 1500ms",         // retention not a multiple
      "1m x 1h, 1s x 2h",    // resolution decreasing
      "1s x 2h, 90s x 48h",  // 90 s is not a multiple... it is; but 1m then:
      "1s x 2h, 1m x 2h",    // coarser tier must keep at least one more bucket
      "1s x 2h, 1m x 48h, 1m x 49h",  // equal resolutions
      "1s x 100d",                    // too many buckets
      "1s x 2h, 1m x 48h, 1h x 35d, 1d x 400d, 2d x 800d, 4d x 2000d, 8d x "
      "4000d, 16d x 8000d, "
      "32d x 16000d",  // nine tiers
  };
  for (const char* text : bad) {
    if (std::string(text) == "1s x 2h, 90s x 48h")
      continue;  // valid: 90 s is 90 x 1 s
    EXPECT_FALSE(ParseTiers(text).ok()) << text;
  }
  EXPECT_TRUE(ParseTiers("1s x 2h, 90s x 48h").ok());
}

TEST(PolicyTest, RejectsNegativeLatenessAndHugeSkew) {
  Policy p;
  p.max_lateness_ms = -1;
  EXPECT_FALSE(ValidatePolicy(p).ok());
  p = Policy();
  p.max_skew_ms = 2 * kDayMs;
  EXPECT_FALSE(ValidatePolicy(p).ok());
}

TEST(PolicyTest, LongestPrefixWinsElseDefault) {
  Policy a, b;
  a.name = "a";
  a.prefix = "card:";
  b.name = "b";
  b.prefix = "card:vip:";
  auto set = PolicySet::Create(Policy(), {a, b});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->Match("card:vip:1").name, "b");
  EXPECT_EQ(set->Match("card:1").name, "a");
  EXPECT_EQ(set->Match("user:1").name, "default");
  EXPECT_EQ(set->Match("card").name, "default");
  EXPECT_EQ(set->All().size(), 3u);
}

TEST(PolicyTest, SetRejectsDuplicateOrEmptyPrefixesAndNames) {
  Policy a;
  a.name = "a";
  a.prefix = "x:";
  Policy same_prefix = a;
  same_prefix.name = "b";
  EXPECT_FALSE(PolicySet::Create(Policy(), {a, same_prefix}).ok());
  Policy same_name = a;
  same_name.prefix = "y:";
  EXPECT_FALSE(PolicySet::Create(Policy(), {a, same_name}).ok());
  Policy no_prefix;
  no_prefix.name = "c";
  EXPECT_FALSE(PolicySet::Create(Policy(), {no_prefix}).ok());
}

}  // namespace
}  // namespace tally
