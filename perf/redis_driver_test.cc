// DecomposeWindow: the Redis peer's window -> bucket keys plan. Checked
// against a second-by-second oracle (every second of the window covered
// exactly once, nothing outside it) and for the key counts PERFORMANCE.md
// quotes (a 24 h window is 1,440 minute keys in a2, ~83 keys in a3).

#include "perf/redis_driver.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "tools/bench/w1.h"

namespace tally::bench {
namespace {

const std::vector<int64_t> kA2 = {60, 1};
const std::vector<int64_t> kA3 = {3600, 60, 1};

// Each second of [from, to) covered once, none outside.
void ExpectExactCover(int64_t from, int64_t to,
                      const std::vector<Bucket>& buckets) {
  std::map<int64_t, int> covered;
  for (const Bucket& b : buckets) {
    for (int64_t s = b.index * b.resolution_s;
         s < (b.index + 1) * b.resolution_s; ++s)
      ++covered[s];
  }
  ASSERT_EQ(covered.size(), static_cast<size_t>(to - from));
  for (const auto& [second, times] : covered) {
    EXPECT_GE(second, from);
    EXPECT_LT(second, to);
    EXPECT_EQ(times, 1) << "second " << second;
  }
}

TEST(DecomposeWindowTest, RandomWindowsAreCoveredExactly) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 300; ++i) {
    const int64_t from = 1'700'000'000 + static_cast<int64_t>(rng() % 200000);
    const int64_t to = from + 1 + static_cast<int64_t>(rng() % 100000);
    for (const auto* res : {&kA2, &kA3}) {
      ExpectExactCover(from, to, DecomposeWindow(from, to, *res));
    }
  }
}

TEST(DecomposeWindowTest, W1WindowsUseTheFewestKeys) {
  const int64_t now_ms = 1'700'000'037'000;  // 37 s into a minute
  const W1Window w60 = W1::W60(now_ms);
  const auto w60_a2 =
      DecomposeWindow(w60.from_ms / 1000, w60.to_ms / 1000, kA2);
  ExpectExactCover(w60.from_ms / 1000, w60.to_ms / 1000, w60_a2);
  // 60 seconds straddling a minute boundary: 23 + 37 one-second keys.
  EXPECT_EQ(w60_a2.size(), 60u);

  const W1Window w24h = W1::W24h(now_ms);
  const auto a2 = DecomposeWindow(w24h.from_ms / 1000, w24h.to_ms / 1000, kA2);
  EXPECT_EQ(a2.size(), 1440u);
  for (const Bucket& b : a2) EXPECT_EQ(b.resolution_s, 60);
  const auto a3 = DecomposeWindow(w24h.from_ms / 1000, w24h.to_ms / 1000, kA3);
  ExpectExactCover(w24h.from_ms / 1000, w24h.to_ms / 1000, a3);
  EXPECT_LE(a3.size(), 59u + 23u + 60u);
  EXPECT_GE(a3.size(), 24u);

  const W1Window w1h = W1::W1h(now_ms);
  const auto h = DecomposeWindow(w1h.from_ms / 1000, w1h.to_ms / 1000, kA2);
  ExpectExactCover(w1h.from_ms / 1000, w1h.to_ms / 1000, h);
  EXPECT_LE(h.size(), 59u + 59u + 60u);
}

TEST(DecomposeWindowTest, EmptyWindowHasNoBuckets) {
  EXPECT_TRUE(DecomposeWindow(100, 100, kA3).empty());
  EXPECT_TRUE(DecomposeWindow(100, 50, kA3).empty());
}

}  // namespace
}  // namespace tally::bench
