#include "server/command_stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "server/latency_histogram.h"

namespace tally {
namespace {

TEST(HistogramLayoutTest, EveryValueFallsInABucketThatBoundsIt) {
  // Bucket edges: a value's bucket's highest value is >= it, and the
  // previous bucket's is below it; relative error <= 1/16.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    if (v > HistogramLayout::kMaxValue) continue;
    const size_t index = HistogramLayout::Index(v);
    ASSERT_LT(index, HistogramLayout::kBuckets);
    const uint64_t high = HistogramLayout::HighestValue(index);
    ASSERT_GE(high, v);
    if (index > 0) {
      ASSERT_LT(HistogramLayout::HighestValue(index - 1), v);
    }
    ASSERT_LE(static_cast<double>(high - v),
              static_cast<double>(v) / HistogramLayout::kSubBuckets + 1e-9);
  }
  EXPECT_EQ(HistogramLayout::Index(HistogramLayout::kMaxValue),
            HistogramLayout::kBuckets - 1);
  EXPECT_EQ(HistogramLayout::Index(~uint64_t{0}),
            HistogramLayout::kBuckets - 1);
}

// The exact percentile: the sample at rank ceil(p/100 * n) (1-based).
uint64_t OraclePercentile(const std::vector<uint64_t>& sorted, double p) {
  const auto rank = std::max<size_t>(
      1, static_cast<size_t>(std::ceil(p / 100.0 * sorted.size())));
  return sorted[rank - 1];
}

TEST(AtomicHistogramTest, PercentilesAndBucketsMatchSortedSamples) {
  std::mt19937_64 rng(42);
  // Log-uniform latencies from 1 us to ~10 s, as a server sees them.
  std::uniform_real_distribution<double> exponent(3.0, 10.0);
  std::vector<uint64_t> samples;
  AtomicHistogram h;
  for (int i = 0; i < 100000; ++i) {
    const auto ns = static_cast<uint64_t>(std::pow(10.0, exponent(rng)));
    samples.push_back(ns);
    h.Record(ns);
  }
  HistogramSnapshot snap;
  h.AddTo(&snap);
  std::sort(samples.begin(), samples.end());
  ASSERT_EQ(snap.count(), samples.size());
  uint64_t sum = 0;
  for (uint64_t s : samples) sum += s;
  EXPECT_EQ(snap.sum_ns(), sum);
  for (double p : {0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const uint64_t exact = OraclePercentile(samples, p);
    const uint64_t got = snap.ValueAtPercentile(p);
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LE(static_cast<double>(got),
              static_cast<double>(exact) * (1.0 + 1.0 / 16) + 1)
        << "p" << p;
  }
  // Prometheus buckets are exact: samples <= each bound.
  for (size_t b = 0; b < kPromBoundsNs.size(); ++b) {
    const auto exact = static_cast<uint64_t>(
        std::upper_bound(samples.begin(), samples.end(), kPromBoundsNs[b]) -
        samples.begin());
    EXPECT_EQ(snap.CumulativeCount(b), exact) << "le " << kPromBoundsNs[b];
  }
  EXPECT_EQ(snap.CumulativeCount(kPromBoundsNs.size()), samples.size());
}

TEST(AtomicHistogramTest, ABoundItselfIsInItsBucket) {
  AtomicHistogram h;
  h.Record(kPromBoundsNs[0]);
  h.Record(kPromBoundsNs[0] + 1);
  HistogramSnapshot snap;
  h.AddTo(&snap);
  EXPECT_EQ(snap.CumulativeCount(0), 1u);
  EXPECT_EQ(snap.CumulativeCount(1), 2u);
}

TEST(AtomicHistogramTest, EmptyAnswersZero) {
  HistogramSnapshot snap;
  EXPECT_EQ(snap.ValueAtPercentile(99), 0u);
  EXPECT_EQ(snap.CumulativeCount(3), 0u);
}

TEST(CommandStatsTest, CountsCallsErrorsAndLatencyPerOp) {
  CommandStats stats;
  stats.Started();
  stats.Started();
  stats.Started();
  stats.Record(proto::Op::kAdd, Code::kOk, 1000);
  stats.Record(proto::Op::kAdd, Code::kInvalidArgument, 3000);
  stats.Record(proto::Op::kPing, Code::kOk, 500);
  stats.NetInput(10);
  stats.NetOutput(20);
  const CommandStatsSnapshot snap = stats.Snapshot();
  ASSERT_EQ(snap.commands.size(), 2u);
  EXPECT_EQ(snap.commands[0].op, proto::Op::kPing);
  EXPECT_EQ(snap.commands[1].op, proto::Op::kAdd);
  const CommandSnapshot& add = snap.commands[1];
  EXPECT_EQ(add.calls, 2u);
  EXPECT_EQ(add.failed, 1u);
  EXPECT_EQ(add.errors[static_cast<size_t>(Code::kInvalidArgument)], 1u);
  EXPECT_EQ(add.latency.count(), 2u);
  EXPECT_EQ(add.latency.sum_ns(), 4000u);
  EXPECT_EQ(snap.inflight, 0);
  EXPECT_EQ(snap.net_input_bytes, 10u);
  EXPECT_EQ(snap.net_output_bytes, 20u);
  EXPECT_EQ(snap.AllErrors()[static_cast<size_t>(Code::kInvalidArgument)], 1u);
  EXPECT_EQ(snap.AllLatency().count(), 3u);
}

TEST(CommandStatsTest, ResetForgetsCallsButKeepsInFlight) {
  CommandStats stats;
  stats.Started();
  stats.Started();
  stats.Record(proto::Op::kQuery, Code::kOk, 100);
  stats.Reset();
  const CommandStatsSnapshot snap = stats.Snapshot();
  EXPECT_TRUE(snap.commands.empty());
  EXPECT_EQ(snap.inflight, 1);
  stats.Abandoned(1);
  EXPECT_EQ(stats.Snapshot().inflight, 0);
}

TEST(CommandStatsTest, AnOpBeyondTheTableCountsAsNone) {
  CommandStats stats;
  stats.Started();
  stats.Record(static_cast<proto::Op>(200), Code::kOk, 1);
  const CommandStatsSnapshot snap = stats.Snapshot();
  ASSERT_EQ(snap.commands.size(), 1u);
  EXPECT_EQ(snap.commands[0].op, proto::Op::kNone);
}

// Many threads recording at once (run under TSan with the concurrency
// label): every sample is counted once, and shards add up.
TEST(CommandStatsConcurrencyTest, ConcurrentRecordsAreAllCounted) {
  CommandStats stats;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&stats, t] {
      for (int i = 0; i < kPerThread; ++i) {
        stats.Started();
        stats.Record(proto::Op::kQuery, i % 10 == 0 ? Code::kBusy : Code::kOk,
                     static_cast<uint64_t>(1000 + t));
      }
    });
  }
  // A reader at the same time must not disturb the writers.
  for (int i = 0; i < 20; ++i) (void)stats.Snapshot();
  for (auto& th : threads) th.join();
  const CommandStatsSnapshot snap = stats.Snapshot();
  ASSERT_EQ(snap.commands.size(), 1u);
  EXPECT_EQ(snap.commands[0].calls, uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(snap.commands[0].failed, uint64_t{kThreads} * kPerThread / 10);
  EXPECT_EQ(snap.commands[0].latency.count(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(snap.inflight, 0);
}

}  // namespace
}  // namespace tally
