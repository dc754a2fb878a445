#include "storage/duration.h"

#include <gtest/gtest.h>

namespace tally {
namespace {

TEST(DurationTest, ParsesEveryUnitAndPlainMilliseconds) {
  EXPECT_EQ(*ParseDuration("250ms"), 250);
  EXPECT_EQ(*ParseDuration("60s"), 60'000);
  EXPECT_EQ(*ParseDuration("5m"), 300'000);
  EXPECT_EQ(*ParseDuration("1h"), 3'600'000);
  EXPECT_EQ(*ParseDuration("7d"), 604'800'000);
  EXPECT_EQ(*ParseDuration("1500"), 1500);
  EXPECT_EQ(*ParseDuration("0"), 0);
}

TEST(DurationTest, RejectsMalformedInputWithAClearMessage) {
  for (const char* bad :
       {"", "s", "-5s", "1.5h", "5w", "5 m", "1hh", "99999999999999999999"}) {
    Result<int64_t> r = ParseDuration(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  }
  EXPECT_FALSE(ParseDuration("106751991168d").ok());  // overflows int64 ms
}

TEST(DurationTest, FormatsTheShortestExactSpelling) {
  EXPECT_EQ(FormatDuration(2 * kHourMs), "2h");
  EXPECT_EQ(FormatDuration(90'000), "90s");
  EXPECT_EQ(FormatDuration(1500), "1500ms");
  EXPECT_EQ(FormatDuration(400 * kDayMs), "400d");
  EXPECT_EQ(FormatDuration(0), "0ms");
  for (int64_t ms : {1LL, 999LL, 61'000LL, 3'660'000LL, 90'000'000LL}) {
    EXPECT_EQ(*ParseDuration(FormatDuration(ms)), ms);
  }
}

}  // namespace
}  // namespace tally
