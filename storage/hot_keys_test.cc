#include "storage/hot_keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace tally {
namespace {

std::string Key(size_t rank) { return "user:" + std::to_string(rank * 7919); }

// A Zipf(1.0) stream over 10,000 keys, `adds` long, spread evenly over one
// window (a stationary stream: decay scales every key alike). Each add is
// recorded with probability 1 / sample_every (the test's own seeded draw,
// so the outcome is the same on every run). Returns the precision of the
// tracker's top 10 against the exact top 10.
double ZipfTopTenPrecision(uint32_t sample_every, size_t adds) {
  constexpr size_t kKeys = 10'000;
  std::vector<double> weights(kKeys);
  for (size_t r = 0; r < kKeys; ++r)
    weights[r] = 1.0 / static_cast<double>(r + 1);
  std::discrete_distribution<size_t> zipf(weights.begin(), weights.end());
  std::bernoulli_distribution sampled(1.0 / sample_every);
  std::mt19937_64 rng(7);

  HotKeys tracker({.sample_every = sample_every, .window_ms = 60'000});
  std::map<std::string, uint64_t> exact;
  for (size_t i = 0; i < adds; ++i) {
    const std::string key = Key(zipf(rng));
    ++exact[key];
    const auto now_ms = static_cast<int64_t>(i * 60'000 / adds);
    if (sampled(rng)) tracker.Record(key, now_ms);
  }
  std::vector<std::pair<uint64_t, std::string>> truth;
  for (const auto& [key, count] : exact) truth.emplace_back(count, key);
  std::sort(truth.rbegin(), truth.rend());
  std::set<std::string> true_top;
  for (size_t i = 0; i < 10; ++i) true_top.insert(truth[i].second);

  const std::vector<HotKey> top = tracker.Top(10, 60'000);
  EXPECT_EQ(top.size(), 10u);
  size_t hits = 0;
  for (const HotKey& k : top) hits += true_top.count(k.key);
  const double precision = static_cast<double>(hits) / 10.0;
  std::printf("sample 1 in %u, %zu adds: top-10 precision %.2f\n", sample_every,
              adds, precision);
  return precision;
}

TEST(HotKeysTest, FindsTheTrueTopTenOfAZipfStream) {
  EXPECT_EQ(ZipfTopTenPrecision(1, 200'000), 1.0);
}

TEST(HotKeysTest, FindsTheTrueTopTenWhenSampled) {
  // 1 in 4 of 1M adds: 250,000 samples, where ranks 10 and 11 (2,550 and
  // 2,330 expected) are about 3 standard deviations apart.
  EXPECT_EQ(ZipfTopTenPrecision(4, 1'000'000), 1.0);
}

TEST(HotKeysTest, EstimatesASteadyRate) {
  // 1,000 adds/s for five windows, 1 in 10 recorded: the estimate is the
  // decayed rate, within 1 - e^-5 (0.7%) of the true rate, plus rounding.
  HotKeys tracker({.sample_every = 10, .window_ms = 60'000});
  for (int64_t ms = 0; ms < 300'000; ms += 10) tracker.Record("card:1", ms);
  const std::vector<HotKey> top = tracker.Top(5, 300'000);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].key, "card:1");
  EXPECT_NEAR(top[0].adds_per_sec, 1000.0, 10.0);
  EXPECT_EQ(top[0].error_per_sec, 0.0);
}

TEST(HotKeysTest, ANewAttackOvertakesAKeyThatWentQuiet) {
  HotKeys tracker({.sample_every = 1, .window_ms = 60'000});
  for (int64_t ms = 0; ms < 60'000; ms += 1) tracker.Record("old", ms);
  for (int64_t ms = 60'000; ms < 240'000; ms += 5) tracker.Record("new", ms);
  const std::vector<HotKey> top = tracker.Top(2, 240'000);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].key, "new");
  EXPECT_NEAR(top[0].adds_per_sec, 200.0, 200.0 * 0.06);
  // "old" ran at 1,000/s and stopped three windows ago: below 1000 * e^-3.
  EXPECT_EQ(top[1].key, "old");
  EXPECT_LT(top[1].adds_per_sec, 1000.0 * std::exp(-3.0) + 1);
}

TEST(HotKeysTest, KeepsAHeavyHitterAmongManyOneShotKeys) {
  // 4 slots per stripe; 1 add in 10 goes to the heavy key, the rest to
  // 100,000 keys seen once each (a credential-stuffing spray around it).
  HotKeys tracker({.sample_every = 1, .window_ms = 60'000, .capacity = 64});
  for (int i = 0; i < 100'000; ++i) {
    if (i % 9 == 0) tracker.Record("ip:203.0.113.7", i / 10);
    tracker.Record("email:" + std::to_string(i), i / 10);
  }
  const std::vector<HotKey> top = tracker.Top(3, 10'000);
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0].key, "ip:203.0.113.7");
}

TEST(HotKeysTest, LongRunsRebaseWithoutLosingTheOrder) {
  // Far past exp()'s range from the first landmark: counts are rebased.
  HotKeys tracker({.sample_every = 1, .window_ms = 1'000});
  for (int64_t s = 0; s < 2'000; ++s) {
    tracker.Record("a", s * 1'000);
    tracker.Record("a", s * 1'000 + 1);
    tracker.Record("b", s * 1'000 + 2);
  }
  const std::vector<HotKey> top = tracker.Top(2, 2'000'000);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].key, "a");
  EXPECT_EQ(top[1].key, "b");
  EXPECT_TRUE(std::isfinite(top[0].adds_per_sec));
  EXPECT_GT(top[0].adds_per_sec, top[1].adds_per_sec * 1.5);
}

TEST(HotKeysTest, SamplesAboutOneInN) {
  HotKeys tracker({.sample_every = 64});
  int sampled = 0;
  constexpr int kCalls = 1'000'000;
  for (int i = 0; i < kCalls; ++i) sampled += tracker.ShouldSample() ? 1 : 0;
  // Expect 15,625; the standard deviation is 124, so +-5% is 6 of them.
  EXPECT_NEAR(sampled, kCalls / 64, kCalls / 64 / 20);
}

TEST(HotKeysTest, OffNeverSamples) {
  HotKeys tracker({.sample_every = 0});
  for (int i = 0; i < 10'000; ++i) ASSERT_FALSE(tracker.ShouldSample());
  EXPECT_TRUE(tracker.Top(10, 0).empty());
}

TEST(HotKeysTest, ResetForgets) {
  HotKeys tracker({.sample_every = 1});
  tracker.Record("k", 0);
  tracker.Reset();
  EXPECT_TRUE(tracker.Top(10, 0).empty());
}

TEST(HotKeysTest, ConcurrentRecordsAndReads) {
  HotKeys tracker({.sample_every = 1, .window_ms = 60'000});
  constexpr int kThreads = 4;
  constexpr int kRecords = 20'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&tracker, t] {
      for (int i = 0; i < kRecords; ++i) {
        if (tracker.ShouldSample()) tracker.Record("t" + std::to_string(t), 0);
        if (i % 1000 == 0) (void)tracker.Top(4, 0);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const std::vector<HotKey> top = tracker.Top(10, 0);
  ASSERT_EQ(top.size(), 4u);
  // Every record counted: rate = records * 1 / 60 s, for each thread's key.
  for (const HotKey& k : top)
    EXPECT_NEAR(k.adds_per_sec, kRecords / 60.0, 1e-6);
}

}  // namespace
}  // namespace tally
