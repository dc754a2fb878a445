#include "client/circuit_breaker.h"

#include <gtest/gtest.h>

namespace tally::client_internal {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

class CircuitBreakerTest : public testing::Test {
 protected:
  static BreakerPolicy Policy() {
    BreakerPolicy p;
    p.window = milliseconds(10'000);
    p.minimum_calls = 10;
    p.failure_rate = 0.5;
    p.slow_call = microseconds(5000);
    p.slow_call_rate = 0.5;
    p.open_wait = milliseconds(5000);
    p.half_open_calls = 3;
    return p;
  }
  CircuitBreaker::Now Clock() {
    return [this] { return now_; };
  }
  void Advance(ClientClock::duration d) { now_ += d; }
  // n admitted calls with the given outcome.
  static void Calls(CircuitBreaker* b, int n, bool failure,
                    microseconds latency = microseconds(100)) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(b->Allow());
      b->Record(failure, latency);
    }
  }

  ClientClock::time_point now_ = ClientClock::time_point(std::chrono::hours(1));
};

TEST_F(CircuitBreakerTest, StaysClosedBelowMinimumCalls) {
  CircuitBreaker b(Policy(), Clock());
  Calls(&b, 9, /*failure=*/true);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  EXPECT_EQ(b.WindowCounts().failures, 9);
}

TEST_F(CircuitBreakerTest, OpensWhenTheFailureRateIsReached) {
  CircuitBreaker b(Policy(), Clock());
  Calls(&b, 5, /*failure=*/false);
  Calls(&b, 4, /*failure=*/true);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  Calls(&b, 1, /*failure=*/true);  // 5 of 10 = 50%
  EXPECT_EQ(b.state(), CircuitState::kOpen);
  EXPECT_FALSE(b.Allow());
}

TEST_F(CircuitBreakerTest, StaysClosedBelowTheFailureRate) {
  CircuitBreaker b(Policy(), Clock());
  Calls(&b, 60, /*failure=*/false);
  Calls(&b, 40, /*failure=*/true);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
}

TEST_F(CircuitBreakerTest, OpensOnSlowCallsEvenWhenTheySucceed) {
  CircuitBreaker b(Policy(), Clock());
  Calls(&b, 5, /*failure=*/false, microseconds(100));
  Calls(&b, 4, /*failure=*/false, microseconds(6000));
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  Calls(&b, 1, /*failure=*/false, microseconds(6000));
  EXPECT_EQ(b.state(), CircuitState::kOpen);
}

TEST_F(CircuitBreakerTest, OldOutcomesAgeOutOfTheWindow) {
  CircuitBreaker b(Policy(), Clock());
  Calls(&b, 9, /*failure=*/true);
  Advance(milliseconds(11'000));  // the whole window has passed
  EXPECT_EQ(b.WindowCounts().calls, 0);
  Calls(&b, 1, /*failure=*/true);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
}

TEST_F(CircuitBreakerTest, HalfOpenAfterOpenWaitThenClosesOnSuccessfulTrials) {
  CircuitBreaker b(Policy(), Clock());
  Calls(&b, 10, /*failure=*/true);
  ASSERT_EQ(b.state(), CircuitState::kOpen);
  Advance(milliseconds(4999));
  EXPECT_FALSE(b.Allow());
  Advance(milliseconds(1));
  // Exactly half_open_calls trials are admitted.
  EXPECT_TRUE(b.Allow());
  EXPECT_EQ(b.state(), CircuitState::kHalfOpen);
  EXPECT_TRUE(b.Allow());
  EXPECT_TRUE(b.Allow());
  EXPECT_FALSE(b.Allow());
  b.Record(false, microseconds(100));
  b.Record(false, microseconds(100));
  EXPECT_EQ(b.state(), CircuitState::kHalfOpen);
  b.Record(false, microseconds(100));
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  EXPECT_EQ(b.WindowCounts().calls, 0);  // a fresh window
  EXPECT_TRUE(b.Allow());
}

TEST_F(CircuitBreakerTest, AFailedTrialReopens) {
  CircuitBreaker b(Policy(), Clock());
  Calls(&b, 10, /*failure=*/true);
  Advance(milliseconds(5000));
  ASSERT_TRUE(b.Allow());
  ASSERT_TRUE(b.Allow());
  b.Record(false, microseconds(100));
  b.Record(true, microseconds(100));
  EXPECT_EQ(b.state(), CircuitState::kOpen);
  EXPECT_FALSE(b.Allow());  // a new open_wait starts
  Advance(milliseconds(5000));
  EXPECT_TRUE(b.Allow());
}

TEST_F(CircuitBreakerTest, ASlowTrialReopens) {
  CircuitBreaker b(Policy(), Clock());
  Calls(&b, 10, /*failure=*/true);
  Advance(milliseconds(5000));
  ASSERT_TRUE(b.Allow());
  b.Record(false, microseconds(9000));
  EXPECT_EQ(b.state(), CircuitState::kOpen);
}

TEST_F(CircuitBreakerTest, ForcedOpenRefusesEverythingUntilReleased) {
  CircuitBreaker b(Policy(), Clock());
  b.ForceOpen(true);
  EXPECT_EQ(b.state(), CircuitState::kForcedOpen);
  EXPECT_FALSE(b.Allow());
  Advance(milliseconds(60'000));
  EXPECT_FALSE(b.Allow());
  b.ForceOpen(false);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  EXPECT_TRUE(b.Allow());
}

TEST_F(CircuitBreakerTest, DisabledNeverOpensButCanBeForced) {
  BreakerPolicy p = Policy();
  p.enabled = false;
  CircuitBreaker b(p, Clock());
  Calls(&b, 100, /*failure=*/true);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  b.ForceOpen(true);
  EXPECT_FALSE(b.Allow());
}

}  // namespace
}  // namespace tally::client_internal
