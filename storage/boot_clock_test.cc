// BootClock (storage/boot_clock.h): a C++ clock over CLOCK_BOOTTIME. No
// timing thresholds: every bound below holds by construction (BOOTTIME is
// CLOCK_MONOTONIC plus the time spent suspended, which never shrinks), the
// only upper bound is minutes wide.

#include "storage/boot_clock.h"

#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace tally {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

static_assert(std::chrono::is_clock_v<BootClock>);
static_assert(BootClock::is_steady);
static_assert(std::is_same_v<BootClock::duration, std::chrono::nanoseconds>);

int64_t BoottimeNs() {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

TEST(BootClockTest, ReadsClockBoottime) {
  const int64_t before = BoottimeNs();
  const int64_t now = BootClock::now().time_since_epoch().count();
  const int64_t after = BoottimeNs();
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
}

TEST(BootClockTest, NeverGoesBackwards) {
  std::vector<std::thread> threads;
  std::vector<int> backwards(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&backwards, t] {
      BootClock::time_point last = BootClock::now();
      for (int i = 0; i < 200'000; ++i) {
        const BootClock::time_point now = BootClock::now();
        if (now < last) ++backwards[t];
        last = now;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(backwards[t], 0) << "thread " << t;
}

// Over any interval BootClock advances at least as much as steady_clock
// (CLOCK_MONOTONIC) measured inside it, and no more than steady_clock
// measured around it plus time suspended (none here; a minute of slack).
TEST(BootClockTest, AdvancesWithRealTime) {
  const auto outer0 = steady_clock::now();
  const auto boot0 = BootClock::now();
  const auto inner0 = steady_clock::now();
  std::this_thread::sleep_for(milliseconds(20));
  const auto inner1 = steady_clock::now();
  const auto boot1 = BootClock::now();
  const auto outer1 = steady_clock::now();
  const auto boot = boot1 - boot0;
  EXPECT_GE(inner1 - inner0, milliseconds(20));  // sleep_for's promise
  EXPECT_GE(boot, inner1 - inner0);
  EXPECT_LE(boot, (outer1 - outer0) + std::chrono::minutes(1));
}

// The journal waits on a condition variable until a BootClock deadline: a
// timed-out wait returns only once the deadline has passed on BootClock.
TEST(BootClockTest, ConditionVariableWaitsUntilTheDeadline) {
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  const auto deadline = BootClock::now() + milliseconds(15);
  while (cv.wait_until(lock, deadline) != std::cv_status::timeout) {
  }
  EXPECT_GE(BootClock::now(), deadline);
  // With a predicate, as Journal::WriterLoop waits.
  const auto deadline2 = BootClock::now() + milliseconds(15);
  EXPECT_FALSE(cv.wait_until(lock, deadline2, [] { return false; }));
  EXPECT_GE(BootClock::now(), deadline2);
}

}  // namespace
}  // namespace tally
