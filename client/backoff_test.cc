#include "client/backoff.h"

#include <gtest/gtest.h>

#include <random>

namespace tally::client_internal {
namespace {

using std::chrono::microseconds;

RetryPolicy Policy() {
  return RetryPolicy{.max_attempts = 5,
                     .initial = microseconds(200),
                     .max = microseconds(2000),
                     .multiplier = 2.0,
                     .jitter = 0.2};
}

TEST(BackoffTest, WithoutJitterDelaysGrowGeometricallyUpToMax) {
  RetryPolicy p = Policy();
  p.jitter = 0;
  EXPECT_EQ(BackoffDelay(p, 0, 0.9), microseconds(200));
  EXPECT_EQ(BackoffDelay(p, 1, 0.1), microseconds(400));
  EXPECT_EQ(BackoffDelay(p, 2, 0.5), microseconds(800));
  EXPECT_EQ(BackoffDelay(p, 3, 0.5), microseconds(1600));
  EXPECT_EQ(BackoffDelay(p, 4, 0.5), microseconds(2000));
  EXPECT_EQ(BackoffDelay(p, 1000, 0.5), microseconds(2000));  // no overflow
}

TEST(BackoffTest, JitterSpreadsByPlusMinusTheFraction) {
  const RetryPolicy p = Policy();
  EXPECT_EQ(BackoffDelay(p, 0, 0.0), microseconds(160));   // -20%
  EXPECT_EQ(BackoffDelay(p, 0, 0.5), microseconds(200));   // centre
  EXPECT_EQ(BackoffDelay(p, 0, 1.0), microseconds(240));   // +20%
  EXPECT_EQ(BackoffDelay(p, 9, 1.0), microseconds(2400));  // max * 1.2
}

TEST(BackoffTest, RandomDelaysStayInBoundsAndVary) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Backoff backoff(Policy(), [&] { return u(rng); });
  for (int retry = 0; retry < 8; ++retry) {
    const double base = std::min(2000.0, 200.0 * (1 << retry));
    int64_t lo = INT64_MAX;
    int64_t hi = 0;
    for (int i = 0; i < 200; ++i) {
      const int64_t d = backoff.Delay(retry).count();
      ASSERT_GE(d, static_cast<int64_t>(base * 0.8) - 1);
      ASSERT_LE(d, static_cast<int64_t>(base * 1.2) + 1);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    EXPECT_LT(lo, hi) << "jitter must vary delays, retry " << retry;
  }
}

TEST(BackoffTest, NonsensePoliciesAreClamped) {
  RetryPolicy p{.max_attempts = 3,
                .initial = microseconds(-5),
                .max = microseconds(-1),
                .multiplier = 0.1,
                .jitter = 7};
  EXPECT_EQ(BackoffDelay(p, 3, 0.3), microseconds(0));
  p.initial = microseconds(100);
  p.max = microseconds(50);  // below initial: initial wins
  EXPECT_GE(BackoffDelay(p, 2, 0.5), microseconds(100));
  EXPECT_LE(BackoffDelay(p, 2, 2.0), microseconds(200));  // jitter <= 1
  EXPECT_GE(BackoffDelay(p, 2, -1.0), microseconds(0));
}

}  // namespace
}  // namespace tally::client_internal
