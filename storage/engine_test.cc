// Engine add and query: counts, sums, extremes and distinct over windows,
// lateness and future limits, input errors, overflow, policies by prefix,
// ranges, and raw keys answering like tiered ones. Key inspection, expiry,
// delete and scan: engine_keyspace_test.cc; batches: engine_batch_test.cc;
// explicit nows (replay): engine_replay_test.cc.

#include "storage/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <string>

#include "storage/engine_test_util.h"
#include "storage/key_state.h"

namespace tally {
namespace {

using engine_testing::EngineTest;
using engine_testing::kT0;

TEST_F(EngineTest, UnknownKeyAnswersZerosWithItsEnvelope) {
  Answer a = Last("user:nobody", kHourMs);
  EXPECT_EQ(a.count, 0);
  EXPECT_EQ(a.sum, 0);
  EXPECT_EQ(a.distinct, 0u);
  EXPECT_TRUE(a.exact);
  EXPECT_EQ(a.covered_to_ms, kT0 + 1000);
  EXPECT_EQ(a.covered_from_ms, kT0 + 1000 - kHourMs);
  EXPECT_EQ(a.resolution_ms, 1000);
}

TEST_F(EngineTest, AddThenQueryCountsSumsAndExtremes) {
  ASSERT_TRUE(Add("user:1", kNow, 500, "card:a").ok());
  ASSERT_TRUE(Add("user:1", kNow, -200, "card:b").ok());
  ASSERT_TRUE(Add("user:1", kNow, 900, "card:a", 3).ok());
  Answer a = Last("user:1", 60 * kSecondMs);
  EXPECT_EQ(a.count, 5);
  EXPECT_EQ(a.sum, 1200);
  EXPECT_EQ(a.min, -200);
  EXPECT_EQ(a.max, 900);
  EXPECT_DOUBLE_EQ(a.avg, 240.0);
  EXPECT_EQ(a.distinct, 2u);
  EXPECT_TRUE(a.exact);
}

TEST_F(EngineTest, WindowsSeeOnlyTheirEvents) {
  ASSERT_TRUE(Add("k", kT0 - 30 * kMinuteMs).ok());
  ASSERT_TRUE(Add("k", kT0 - 5 * kMinuteMs).ok());
  ASSERT_TRUE(Add("k", kT0 - 10 * kSecondMs).ok());
  EXPECT_EQ(Last("k", 60 * kSecondMs).count, 1);
  EXPECT_EQ(Last("k", 10 * kMinuteMs).count, 2);
  EXPECT_EQ(Last("k", kHourMs).count, 3);
  Result<Answer> abs = engine_->Query(
      "k", Window::Between(kT0 - 31 * kMinuteMs, kT0 - kMinuteMs));
  ASSERT_TRUE(abs.ok());
  EXPECT_EQ(abs->count, 2);
}

TEST_F(EngineTest, LateEventsWithinLatenessLandInTheirBuckets) {
  clock_.Advance(10 * kHourMs);
  ASSERT_TRUE(Add("k", kT0 + 10 * kHourMs - 5 * kHourMs)
                  .ok());  // 5 h late: no 1 s tier
  ASSERT_TRUE(Add("k").ok());
  EXPECT_EQ(Last("k", 6 * kHourMs).count, 2);
  EXPECT_EQ(Last("k", kHourMs).count, 1);
}

TEST_F(EngineTest, EventTooLateIsRejectedAndChangesNothing) {
  Status s = Add("k", kT0 - 49 * kHourMs);
  EXPECT_EQ(s.code(), Code::kTimeOutOfRange);
  EXPECT_NE(s.message().find("late"), std::string_view::npos) << s.message();
  EXPECT_FALSE(engine_->Inspect("k").ok());
  EXPECT_EQ(engine_->Stats().rejected_time, 1u);
}

TEST_F(EngineTest, EventTooFarInTheFutureIsRejected) {
  EXPECT_EQ(Add("k", kT0 + 6 * kSecondMs).code(), Code::kTimeOutOfRange);
  EXPECT_TRUE(Add("k", kT0 + 5 * kSecondMs).ok());
  // Accepted future events are counted once their bucket is inside a window.
  clock_.Advance(5 * kSecondMs);
  EXPECT_EQ(Last("k", 10 * kSecondMs).count, 1);
}

TEST_F(EngineTest, InvalidInputIsRejectedWithSpecificCodes) {
  EXPECT_EQ(Add("").code(), Code::kInvalidKey);
  EXPECT_EQ(Add(std::string(257, 'k')).code(), Code::kInvalidKey);
  EXPECT_TRUE(Add(std::string(256, 'k')).ok());
  EXPECT_EQ(Add("k", kNow, 0, {}, 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(Add("k", kNow, 0, {}, -3).code(), Code::kInvalidArgument);
  EXPECT_EQ(engine_->Query("k", Window::Between(10, 10)).status().code(),
            Code::kInvalidWindow);
  EXPECT_EQ(engine_->Query("k", Window::Between(-5, 10)).status().code(),
            Code::kInvalidWindow);
  EXPECT_EQ(engine_->Query("k", Window::Last(-1)).status().code(),
            Code::kInvalidWindow);
  EXPECT_EQ(engine_->Query("", Window::Last(1000)).status().code(),
            Code::kInvalidKey);
}

TEST_F(EngineTest, ExtremeInputsGetErrorsNotOverflow) {
  // Found by review: these used to overflow signed arithmetic (UBSan aborts).
  Status s = Add("k", std::numeric_limits<int64_t>::min() + 1);
  EXPECT_EQ(s.code(), Code::kTimeOutOfRange);
  EXPECT_NE(s.message().find("outside"), std::string_view::npos) << s.message();
  EXPECT_EQ(Add("k", std::numeric_limits<int64_t>::max()).code(),
            Code::kTimeOutOfRange);
  auto points = engine_->Range("k", 1, 2, std::numeric_limits<int64_t>::max());
  ASSERT_TRUE(points.ok()) << points.status().ToString();
  EXPECT_EQ(points->size(), 1u);
  EXPECT_EQ(engine_->Query("k", Window::Last(0, 5000)).status().code(),
            Code::kInvalidWindow);
  EXPECT_FALSE(ParseTiers("106751991d x 106751991d").ok());
}

TEST_F(EngineTest, KeysAreBinarySafe) {
  const std::string a("a\0b", 3), b("a\0c", 3);
  ASSERT_TRUE(Add(a).ok());
  ASSERT_TRUE(Add(b).ok());
  ASSERT_TRUE(Add(b).ok());
  EXPECT_EQ(Last(a, kHourMs).count, 1);
  EXPECT_EQ(Last(b, kHourMs).count, 2);
  EXPECT_EQ(Last("a", kHourMs).count, 0);
}

TEST_F(EngineTest, OverflowIsAnErrorAndAppliesNothing) {
  const int64_t big = std::numeric_limits<int64_t>::max() - 10;
  ASSERT_TRUE(Add("k", kNow, big).ok());
  EXPECT_EQ(Add("k", kNow, 100).code(), Code::kOverflow);
  Answer a = Last("k", kHourMs);
  EXPECT_EQ(a.count, 1);
  EXPECT_EQ(a.sum, big);
  // A different second still overflows the shared minute bucket.
  clock_.Advance(kSecondMs);
  EXPECT_EQ(Add("k", kNow, 100).code(), Code::kOverflow);
  EXPECT_EQ(Last("k", kHourMs).count, 1);
  EXPECT_EQ(engine_->Stats().rejected_overflow, 2u);
}

TEST_F(EngineTest, WindowSumOutsideInt64IsAnErrorNotAWrap) {
  const int64_t big = std::numeric_limits<int64_t>::max() / 2 + 1;
  ASSERT_TRUE(Add("k", kT0 - 2 * kDayMs, big).ok());
  ASSERT_TRUE(Add("k", kNow, big).ok());
  EXPECT_EQ(engine_->Query("k", Window::Last(3 * kDayMs)).status().code(),
            Code::kOverflow);
}

TEST_F(EngineTest, LongestPrefixPolicyWins) {
  Policy ip;
  ip.name = "ip";
  ip.prefix = "ip:";
  ip.tiers = {{kSecondMs, 10 * kMinuteMs}, {kMinuteMs, 2 * kHourMs}};
  ip.track_distinct = false;
  Policy ip6 = ip;
  ip6.name = "ip6";
  ip6.prefix = "ip:6:";
  ip6.tiers = {{kMinuteMs, kHourMs}};
  Reset({ip, ip6});
  ASSERT_TRUE(Add("ip:1.2.3.4").ok());
  ASSERT_TRUE(Add("ip:6:ff").ok());
  ASSERT_TRUE(Add("user:1").ok());
  EXPECT_EQ(engine_->Inspect("ip:1.2.3.4")->policy, "ip");
  EXPECT_EQ(engine_->Inspect("ip:6:ff")->policy, "ip6");
  EXPECT_EQ(engine_->Inspect("user:1")->policy, "default");
  EXPECT_EQ(engine_->Inspect("ip:6:ff")->tiers.size(), 1u);
  // Distinct on a policy that does not track it is an explicit error.
  EXPECT_EQ(
      engine_->Query("ip:1.2.3.4", Window::Last(kMinuteMs)).status().code(),
      Code::kInvalidArgument);
  EXPECT_TRUE(
      engine_->Query("ip:1.2.3.4", Window::Last(kMinuteMs), kAggCount).ok());
}

TEST_F(EngineTest, DistinctBecomesAnEstimateAboveTheExactLimit) {
  Reset({}, /*distinct_limit=*/100);
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(Add("k", kNow, 1, "m" + std::to_string(i)).ok());
  Answer a = Last("k", kMinuteMs);
  EXPECT_TRUE(a.exact);
  EXPECT_EQ(a.distinct, 100u);
  for (int i = 100; i < 5000; ++i)
    ASSERT_TRUE(Add("k", kNow, 1, "m" + std::to_string(i)).ok());
  a = Last("k", kMinuteMs);
  EXPECT_FALSE(a.exact);
  EXPECT_GT(a.distinct_error, 0.0);
  EXPECT_NEAR(static_cast<double>(a.distinct), 5000.0,
              5000 * 4 * a.distinct_error);
}

TEST_F(EngineTest, DistinctUnionAcrossBucketsCountsEachMemberOnce) {
  for (int s = 0; s < 120; ++s) {
    ASSERT_TRUE(Add("k", kNow, 1, "card:" + std::to_string(s % 7)).ok());
    clock_.Advance(kSecondMs);
  }
  EXPECT_EQ(Last("k", kHourMs).distinct, 7u);
  EXPECT_EQ(Last("k", 3 * kSecondMs).distinct,
            2u);  // seconds 118, 119 and the empty 120
}

TEST_F(EngineTest, RangeGivesOneAnswerPerStep) {
  clock_.Set(kT0 + 5 * kMinuteMs);
  for (int m = 0; m < 5; ++m) {
    for (int i = 0; i <= m; ++i)
      ASSERT_TRUE(Add("k", kT0 + m * kMinuteMs + i * kSecondMs).ok());
  }
  auto points = engine_->Range("k", kT0, kT0 + 5 * kMinuteMs, kMinuteMs);
  ASSERT_TRUE(points.ok()) << points.status().ToString();
  ASSERT_EQ(points->size(), 5u);
  for (int m = 0; m < 5; ++m) {
    EXPECT_EQ((*points)[m].start_ms, kT0 + m * kMinuteMs);
    EXPECT_EQ((*points)[m].answer.count, m + 1);
  }
  EXPECT_EQ(engine_->Range("k", kT0, kT0 + kDayMs, 1).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(engine_->Range("k", kT0, kT0 + kDayMs, 0).status().code(),
            Code::kInvalidWindow);
}

TEST_F(EngineTest, RawAndTieredKeysGiveTheSameAnswers) {
  // "raw" keeps 32 events raw; "tiered" gets the same events plus one 47 h
  // old, which moves it into tier rings but lies outside every window below.
  std::mt19937_64 rng(11);
  for (uint32_t i = 0; i < kMaxRawEvents; ++i) {
    const int64_t t = kT0 - static_cast<int64_t>(rng() % (3 * kHourMs));
    const int64_t amount = static_cast<int64_t>(rng() % 1000) - 100;
    const std::string member = "m" + std::to_string(rng() % 9);
    ASSERT_TRUE(Add("raw", t, amount, member).ok());
    ASSERT_TRUE(Add("tiered", t, amount, member).ok());
  }
  ASSERT_TRUE(Add("tiered", kT0 - 47 * kHourMs, 5, "old").ok());
  ASSERT_TRUE(engine_->Inspect("raw")->raw);
  ASSERT_FALSE(engine_->Inspect("tiered")->raw);
  for (int i = 0; i < 500; ++i) {
    const int64_t to = kT0 + 1 - static_cast<int64_t>(rng() % (4 * kHourMs));
    const int64_t from = to - 1 - static_cast<int64_t>(rng() % (2 * kHourMs));
    const Window w =
        Window::Between(std::max<int64_t>(from, kT0 - 40 * kHourMs), to);
    Answer a = *engine_->Query("raw", w), b = *engine_->Query("tiered", w);
    ASSERT_EQ(a.count, b.count) << i;
    ASSERT_EQ(a.sum, b.sum);
    ASSERT_EQ(a.min, b.min);
    ASSERT_EQ(a.max, b.max);
    ASSERT_EQ(a.distinct, b.distinct);
    ASSERT_EQ(a.covered_from_ms, b.covered_from_ms);
    ASSERT_EQ(a.covered_to_ms, b.covered_to_ms);
  }
}

TEST_F(EngineTest, ClockGoingBackwardsDoesNotMoveServerTime) {
  ASSERT_TRUE(Add("k").ok());
  clock_.Set(kT0 - kHourMs);
  ASSERT_TRUE(Add("k").ok());  // stamped at kT0, the last time seen
  EXPECT_EQ(Last("k", kSecondMs).count, 2);
}

}  // namespace
}  // namespace tally
