#include "tools/bench/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace tally::bench {
namespace {

constexpr double kPercentiles[] = {0, 50, 90, 99, 99.9, 99.99, 100};

// Log-uniform samples from 1 ns to 1 s, plus the edge values 0, 1 and one
// above the tracked range.
std::vector<uint64_t> Samples(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> log_ns(0.0, std::log(1e9));
  std::vector<uint64_t> samples;
  samples.reserve(n + 3);
  for (size_t i = 0; i < n; ++i) {
    samples.push_back(
        static_cast<uint64_t>(std::llround(std::exp(log_ns(rng)))));
  }
  samples.push_back(0);
  samples.push_back(1);
  samples.push_back(LatencyHistogram::kMaxValue + 5);
  std::shuffle(samples.begin(), samples.end(), rng);
  return samples;
}

// The exact percentile: the smallest sample such that at least p% of the
// samples are <= it.
uint64_t ExactPercentile(const std::vector<uint64_t>& sorted, double p) {
  const double wanted =
      std::ceil(p * static_cast<double>(sorted.size()) / 100.0);
  const size_t rank =
      std::clamp<size_t>(static_cast<size_t>(wanted), 1, sorted.size());
  return sorted[rank - 1];
}

// The histogram's answer v for exact answer e: e <= v <= e * (1 + 1/128) + 1
// inside the tracked range. Above it (the clamp rule) the top bucket reports
// the exact max, so e <= v <= max.
void ExpectWithinResolution(uint64_t v, uint64_t e, uint64_t max, double p) {
  EXPECT_GE(v, e) << "p=" << p;
  if (e > LatencyHistogram::kMaxValue) {
    EXPECT_EQ(v, max) << "p=" << p;
    return;
  }
  EXPECT_LE(static_cast<double>(v),
            static_cast<double>(e) * (1.0 + 1.0 / 128) + 1)
      << "p=" << p << " e=" << e;
}

TEST(LatencyHistogramTest, EmptyReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.clamped_count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  for (double p : kPercentiles) EXPECT_EQ(h.ValueAtPercentile(p), 0u);
}

TEST(LatencyHistogramTest, MatchesSortedOracle) {
  std::vector<uint64_t> samples = Samples(200000, 1);
  LatencyHistogram h;
  for (uint64_t v : samples) h.Record(v);
  std::sort(samples.begin(), samples.end());

  uint64_t sum = 0;
  for (uint64_t v : samples) sum += v;
  EXPECT_EQ(h.count(), samples.size());
  EXPECT_EQ(h.clamped_count(), 1u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), LatencyHistogram::kMaxValue + 5);
  EXPECT_DOUBLE_EQ(
      h.mean(), static_cast<double>(sum) / static_cast<double>(samples.size()));

  for (double p : kPercentiles) {
    ExpectWithinResolution(h.ValueAtPercentile(p), ExactPercentile(samples, p),
                           h.max(), p);
  }
  // The edges are exact: the smallest bucket is 0's own, and the top
  // percentile is clamped to the exact max.
  EXPECT_EQ(h.ValueAtPercentile(0), 0u);
  EXPECT_EQ(h.ValueAtPercentile(100), LatencyHistogram::kMaxValue + 5);
}

TEST(LatencyHistogramTest, MatchesOracleOnAFineGrid) {
  std::vector<uint64_t> samples = Samples(20000, 2);
  LatencyHistogram h;
  for (uint64_t v : samples) h.Record(v);
  std::sort(samples.begin(), samples.end());
  uint64_t previous = 0;
  for (int i = 0; i <= 1000; ++i) {
    const double p = i / 10.0;
    const uint64_t v = h.ValueAtPercentile(p);
    ExpectWithinResolution(v, ExactPercentile(samples, p), h.max(), p);
    EXPECT_GE(v, previous) << "p=" << p;  // Monotone in p.
    previous = v;
  }
}

// Every value is reported within 1/128 of itself. Each is recorded next to a
// larger value so that the clamp to max() does not hide its bucket's width.
TEST(LatencyHistogramTest, EveryBucketWithinResolution) {
  std::vector<uint64_t> values;
  for (uint64_t v = 0; v < 70000; ++v) values.push_back(v);
  for (int bit = 1; bit <= 40; ++bit) {
    const uint64_t power = uint64_t{1} << bit;
    for (uint64_t d : {power - 1, power, power + 1, power + power / 3}) {
      values.push_back(d);
    }
  }
  LatencyHistogram h;
  for (uint64_t v : values) {
    if (v > LatencyHistogram::kMaxValue) continue;
    h.Reset();
    h.Record(v);
    h.Record(LatencyHistogram::kMaxValue + 1);
    const uint64_t got = h.ValueAtPercentile(50);
    ASSERT_GE(got, v);
    ASSERT_LE(static_cast<double>(got),
              static_cast<double>(v) * (1.0 + 1.0 / 128))
        << "v=" << v;
    if (v < 256) {
      ASSERT_EQ(got, v);  // Small values have their own bucket.
    }
  }
}

TEST(LatencyHistogramTest, ValuesAboveRangeShareTheTopBucket) {
  LatencyHistogram h;
  h.Record(LatencyHistogram::kMaxValue * 4);
  h.Record(LatencyHistogram::kMaxValue * 2);
  h.Record(UINT64_MAX);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.clamped_count(), 3u);
  EXPECT_EQ(h.min(), LatencyHistogram::kMaxValue * 2);
  EXPECT_EQ(h.max(), UINT64_MAX);
  // Exact even though the sum exceeds 64 bits.
  EXPECT_DOUBLE_EQ(h.mean(),
                   (static_cast<double>(UINT64_MAX) +
                    6.0 * static_cast<double>(LatencyHistogram::kMaxValue)) /
                       3.0);
  // The top bucket is open-ended, so any percentile landing in it reports
  // the exact max rather than under-reporting.
  EXPECT_EQ(h.ValueAtPercentile(0), UINT64_MAX);
  EXPECT_EQ(h.ValueAtPercentile(100), UINT64_MAX);
}

TEST(LatencyHistogramTest, ValuesAboveRangeDoNotBlurTheTrackedRange) {
  LatencyHistogram h;
  h.Record(LatencyHistogram::kMaxValue);
  h.Record(LatencyHistogram::kMaxValue + 1);
  EXPECT_EQ(h.clamped_count(), 1u);
  const uint64_t median = h.ValueAtPercentile(50);
  EXPECT_GE(median, LatencyHistogram::kMaxValue);
  EXPECT_LE(median,
            LatencyHistogram::kMaxValue + LatencyHistogram::kMaxValue / 128);
  EXPECT_EQ(h.ValueAtPercentile(100), LatencyHistogram::kMaxValue + 1);
}

TEST(LatencyHistogramTest, MergeOfHalvesEqualsRecordingAll) {
  const std::vector<uint64_t> samples = Samples(100000, 3);
  LatencyHistogram all;
  LatencyHistogram first;
  LatencyHistogram second;
  for (size_t i = 0; i < samples.size(); ++i) {
    all.Record(samples[i]);
    (i < samples.size() / 2 ? first : second).Record(samples[i]);
  }
  first.Merge(second);
  EXPECT_EQ(first.count(), all.count());
  EXPECT_EQ(first.clamped_count(), all.clamped_count());
  EXPECT_EQ(first.min(), all.min());
  EXPECT_EQ(first.max(), all.max());
  EXPECT_EQ(first.mean(), all.mean());
  for (int i = 0; i <= 10000; ++i) {
    const double p = i / 100.0;
    ASSERT_EQ(first.ValueAtPercentile(p), all.ValueAtPercentile(p))
        << "p=" << p;
  }
}

TEST(LatencyHistogramTest, MergeIntoEmptyAndFromEmpty) {
  LatencyHistogram empty;
  LatencyHistogram h;
  h.Record(5);
  h.Record(700);
  h.Merge(empty);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.min(), 5u);
  EXPECT_EQ(h.max(), 700u);
  empty.Merge(h);
  EXPECT_EQ(empty.count(), 2u);
  EXPECT_EQ(empty.min(), 5u);
  EXPECT_EQ(empty.max(), 700u);
  EXPECT_EQ(empty.ValueAtPercentile(50), 5u);
}

TEST(LatencyHistogramTest, RecordNEqualsRepeatedRecord) {
  LatencyHistogram once;
  LatencyHistogram repeated;
  once.RecordN(12345, 1000);
  once.RecordN(99, 10);
  once.RecordN(7, 0);  // Records nothing, and leaves min() alone.
  for (int i = 0; i < 1000; ++i) repeated.Record(12345);
  for (int i = 0; i < 10; ++i) repeated.Record(99);
  EXPECT_EQ(once.count(), 1010u);
  EXPECT_EQ(once.min(), 99u);
  EXPECT_EQ(once.max(), 12345u);
  EXPECT_EQ(once.mean(), repeated.mean());
  for (double p : kPercentiles) {
    EXPECT_EQ(once.ValueAtPercentile(p), repeated.ValueAtPercentile(p));
  }
}

TEST(LatencyHistogramTest, ResetForgetsEverything) {
  LatencyHistogram h;
  h.Record(3);
  h.Record(LatencyHistogram::kMaxValue + 1);
  h.Reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.clamped_count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.ValueAtPercentile(99), 0u);
  h.Record(40);
  EXPECT_EQ(h.min(), 40u);
  EXPECT_EQ(h.ValueAtPercentile(0), 40u);
}

TEST(LatencyHistogramTest, PercentileRankIsExactForWholeCounts) {
  // 100 samples 1..100: p% is exactly the p-th sample, including p = 7
  // where 0.07 * 100 is not a whole double.
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  for (uint64_t p = 1; p <= 100; ++p) {
    EXPECT_EQ(h.ValueAtPercentile(static_cast<double>(p)), p);
  }
  EXPECT_EQ(h.ValueAtPercentile(-5), 1u);
  EXPECT_EQ(h.ValueAtPercentile(250), 100u);
  EXPECT_EQ(h.ValueAtPercentile(std::nan("")), 1u);
}

}  // namespace
}  // namespace tally::bench
