#include "storage/hyperloglog.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>

#include "gtest/gtest.h"

namespace tally {
namespace {

// Hash of member `i` the way tally hashes members: XXH3 of its 8 bytes.
uint64_t HashOf(uint64_t i, uint64_t seed = 0) {
  return XXH3_64bits_withSeed(&i, sizeof(i), seed);
}

// Adds members [begin, end) to `hll`.
void AddRange(HyperLogLog* hll, uint64_t begin, uint64_t end,
              uint64_t seed = 0) {
  for (uint64_t i = begin; i < end; ++i) hll->Add(HashOf(i, seed));
}

bool SameRegisters(const HyperLogLog& a, const HyperLogLog& b) {
  return std::equal(a.registers(), a.registers() + HyperLogLog::kRegisters,
                    b.registers());
}

TEST(HyperLogLogTest, IsExactlyItsRegisters) {
  EXPECT_EQ(HyperLogLog::bytes(), 16384u);
  EXPECT_EQ(HyperLogLog::bytes(), HyperLogLog::kRegisters);
}

TEST(HyperLogLogTest, EmptyEstimatesZero) {
  HyperLogLog hll;
  EXPECT_TRUE(hll.empty());
  EXPECT_EQ(hll.Estimate(), 0.0);
  EXPECT_EQ(*std::max_element(hll.registers(),
                              hll.registers() + HyperLogLog::kRegisters),
            0);
}

TEST(HyperLogLogTest, SingleMemberEstimatesOne) {
  HyperLogLog hll;
  hll.Add(HashOf(42));
  EXPECT_FALSE(hll.empty());
  EXPECT_NEAR(hll.Estimate(), 1.0, 0.5);
}

TEST(HyperLogLogTest, AddingSameHashTwiceChangesNothing) {
  HyperLogLog once;
  HyperLogLog twice;
  AddRange(&once, 0, 1000);
  AddRange(&twice, 0, 1000);
  const double before = twice.Estimate();
  twice.Add(HashOf(7));
  twice.Add(HashOf(7));
  EXPECT_TRUE(SameRegisters(once, twice));
  EXPECT_EQ(twice.Estimate(), before);
}

TEST(HyperLogLogTest, TopBitsPickRegisterAndRestGiveRank) {
  constexpr int kRankBits = 64 - HyperLogLog::kPrecision;
  HyperLogLog hll;
  // Index 5, first rank bit set: rank 1.
  hll.Add((uint64_t{5} << kRankBits) | (uint64_t{1} << (kRankBits - 1)));
  // Index 6, only the last rank bit set: 49 leading zeros, rank 50.
  hll.Add((uint64_t{6} << kRankBits) | 1);
  // Index 7, all rank bits zero: the maximum rank, 51.
  hll.Add(uint64_t{7} << kRankBits);
  // Last register, all ones: rank 1.
  hll.Add(~uint64_t{0});
  EXPECT_EQ(hll.registers()[5], 1);
  EXPECT_EQ(hll.registers()[6], 50);
  EXPECT_EQ(hll.registers()[7], 51);
  EXPECT_EQ(hll.registers()[HyperLogLog::kRegisters - 1], 1);
  // A lower rank never lowers a register.
  hll.Add((uint64_t{7} << kRankBits) | 1);
  EXPECT_EQ(hll.registers()[7], 51);
  int set = 0;
  for (size_t i = 0; i < HyperLogLog::kRegisters; ++i) {
    set += hll.registers()[i] != 0;
  }
  EXPECT_EQ(set, 4);
}

TEST(HyperLogLogTest, EstimateIsWithinFourSigmaAndMeanErrorIsSmall) {
  constexpr uint64_t kSizes[] = {1000, 10000, 100000, 1000000};
  constexpr uint64_t kSeeds[] = {1, 2, 3, 4, 5};
  constexpr double kSigma = HyperLogLog::kRelativeStandardError;
  std::cout << "HyperLogLog relative error |estimate - n| / n (sigma = "
            << kSigma * 100 << "%)\n";
  for (uint64_t n : kSizes) {
    double sum = 0.0;
    double max = 0.0;
    for (uint64_t seed : kSeeds) {
      SCOPED_TRACE(testing::Message() << "n=" << n << " seed=" << seed);
      HyperLogLog hll;
      AddRange(&hll, 0, n, seed);
      const double error = std::abs(hll.Estimate() - n) / n;
      EXPECT_LE(error, 4 * kSigma);
      sum += error;
      max = std::max(max, error);
    }
    const double mean = sum / std::size(kSeeds);
    EXPECT_LE(mean, 1.5 * kSigma) << "n=" << n;
    char line[128];
    std::snprintf(line, sizeof(line),
                  "  n=%-8llu mean=%.4f%% max=%.4f%% over %zu seeds\n",
                  static_cast<unsigned long long>(n), mean * 100, max * 100,
                  std::size(kSeeds));
    std::cout << line;
    std::string key = "n";
    key += std::to_string(n);
    RecordProperty(key + "_mean_rel_error", std::to_string(mean));
    RecordProperty(key + "_max_rel_error", std::to_string(max));
  }
}

TEST(HyperLogLogTest, MergeEqualsUnion) {
  constexpr uint64_t kN = 100000;
  HyperLogLog a;
  HyperLogLog b;
  HyperLogLog all;
  AddRange(&a, 0, kN);
  AddRange(&b, kN / 2, 3 * kN / 2);
  AddRange(&all, 0, 3 * kN / 2);
  a.Merge(b);
  EXPECT_TRUE(SameRegisters(a, all));
  EXPECT_EQ(a.Estimate(), all.Estimate());
}

TEST(HyperLogLogTest, MergeIntoEmptyCopies) {
  HyperLogLog source;
  AddRange(&source, 0, 5000);
  HyperLogLog target;
  target.Merge(source);
  EXPECT_TRUE(SameRegisters(target, source));
  EXPECT_EQ(target.Estimate(), source.Estimate());
}

TEST(HyperLogLogTest, MergeWithSelfOrEmptyChangesNothing) {
  HyperLogLog hll;
  AddRange(&hll, 0, 5000);
  HyperLogLog copy = hll;
  hll.Merge(hll);
  hll.Merge(HyperLogLog());
  EXPECT_TRUE(SameRegisters(hll, copy));
}

TEST(HyperLogLogTest, SmallCardinalitiesAreNearlyExact) {
  HyperLogLog hll;
  hll.Add(HashOf(0));
  for (uint64_t n = 2; n <= 200; ++n) {
    hll.Add(HashOf(n - 1));
    EXPECT_NEAR(hll.Estimate(), n, 0.02 * n + 1) << "n=" << n;
  }
}

TEST(HyperLogLogTest, ClearResetsToEmpty) {
  HyperLogLog hll;
  AddRange(&hll, 0, 10000);
  ASSERT_FALSE(hll.empty());
  hll.Clear();
  EXPECT_TRUE(hll.empty());
  EXPECT_EQ(hll.Estimate(), 0.0);
  EXPECT_TRUE(SameRegisters(hll, HyperLogLog()));
}

}  // namespace
}  // namespace tally
