#include "tools/bench/zipf.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace tally::bench {
namespace {

// A uniform double in [0, 1) from the top 53 bits, never 1.0.
double Uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// The exact Zipf pmf of `rank`.
double Pmf(const ZipfianGenerator& zipf, uint64_t rank) {
  return 1.0 / (std::pow(static_cast<double>(rank + 1), zipf.theta()) *
                zipf.zeta_n());
}

// The probability that YCSB's method draws `rank`, derived independently of
// zipf.cc by inverting its formulas: rank 0 for u < 1 / zeta_n, rank 1 for
// u < (1 + 0.5^theta) / zeta_n, and otherwise rank floor(n * (eta * u - eta +
// 1)^alpha), which is >= r exactly when u >= 1 - (1 - (r / n)^(1 - theta)) /
// eta. Needs n > 2.
double YcsbPmf(const ZipfianGenerator& zipf, uint64_t rank) {
  const double n = static_cast<double>(zipf.n());
  const double theta = zipf.theta();
  const double u1 = 1.0 / zipf.zeta_n();
  const double u2 = (1.0 + std::pow(0.5, theta)) / zipf.zeta_n();
  if (rank == 0) return u1;
  if (rank == 1) return u2 - u1;
  const double eta = (1.0 - std::pow(2.0 / n, 1.0 - theta)) /
                     (1.0 - (1.0 + std::pow(0.5, theta)) / zipf.zeta_n());
  auto u_at_least = [&](double r) {
    return 1.0 - (1.0 - std::pow(r / n, 1.0 - theta)) / eta;
  };
  const double lo = std::max(u2, u_at_least(static_cast<double>(rank)));
  const double hi =
      rank + 1 == zipf.n() ? 1.0 : u_at_least(static_cast<double>(rank + 1));
  return std::max(0.0, hi - lo);
}

TEST(ZipfianGeneratorTest, Accessors) {
  const ZipfianGenerator zipf(3, 0.5);
  EXPECT_EQ(zipf.n(), 3u);
  EXPECT_EQ(zipf.theta(), 0.5);
  EXPECT_DOUBLE_EQ(zipf.zeta_n(),
                   1.0 + 1.0 / std::sqrt(2.0) + 1.0 / std::sqrt(3.0));
  EXPECT_EQ(ZipfianGenerator(10).theta(), ZipfianGenerator::kDefaultTheta);
}

// The YCSB configuration W1 uses: a million keys, theta 0.99.
TEST(ZipfianGeneratorTest, MatchesYcsbForAMillionItems) {
  constexpr uint64_t kN = 1000000;
  constexpr int kSamples = 2000000;
  const ZipfianGenerator zipf(kN);
  std::mt19937_64 rng(42);
  std::vector<int> hits(10, 0);
  for (int i = 0; i < kSamples; ++i) {
    const uint64_t rank = zipf.Sample(Uniform(rng));
    ASSERT_LT(rank, kN);
    if (rank < hits.size()) ++hits[rank];
  }

  // The hottest rank's share is exactly 1 / zeta_n = 6.497%.
  const double hottest = static_cast<double>(hits[0]) / kSamples;
  std::printf("rank 0 share: %.4f%% (exact %.4f%%)\n", 100 * hottest,
              100 * Pmf(zipf, 0));
  EXPECT_NEAR(Pmf(zipf, 0), 0.06497, 0.00001);

  for (uint64_t rank = 0; rank < hits.size(); ++rank) {
    const double got = static_cast<double>(hits[rank]) / kSamples;
    const double ycsb = YcsbPmf(zipf, rank);
    const double zipf_pmf = Pmf(zipf, rank);
    std::printf("rank %lu: %.5f  YCSB %.5f  Zipf %.5f (YCSB %+.2f%%)\n",
                static_cast<unsigned long>(rank), got, ycsb, zipf_pmf,
                100 * (ycsb / zipf_pmf - 1));
    // The generator is YCSB's method: within 5 binomial standard deviations.
    const double sigma = std::sqrt(ycsb * (1 - ycsb) / kSamples);
    EXPECT_NEAR(got, ycsb, 5 * sigma) << "rank " << rank;
    // Against the true pmf: ranks 0 and 1 are exact by construction. Gray's
    // closed form over-weights the next ranks (ranks 2, 3, 4 by 19%, 13%, 10%
    // at this n and theta), and is within 10% from rank 5 on.
    if (rank <= 1) {
      EXPECT_NEAR(ycsb / zipf_pmf, 1.0, 1e-12) << "rank " << rank;
    } else if (rank <= 4) {
      EXPECT_NEAR(got / zipf_pmf, 1.0, 0.25) << "rank " << rank;
    } else {
      EXPECT_NEAR(got / zipf_pmf, 1.0, 0.10) << "rank " << rank;
    }
  }
}

TEST(ZipfianGeneratorTest, SamplesStayInRange) {
  for (uint64_t n : {1, 2, 3, 10, 1000}) {
    const ZipfianGenerator zipf(n);
    std::mt19937_64 rng(n);
    for (int i = 0; i < 10000; ++i) {
      ASSERT_LT(zipf.Sample(Uniform(rng)), n) << "n=" << n;
    }
    // The extremes of [0, 1).
    EXPECT_EQ(zipf.Sample(0.0), 0u) << "n=" << n;
    EXPECT_LT(zipf.Sample(std::nextafter(1.0, 0.0)), n) << "n=" << n;
  }
}

TEST(ZipfianGeneratorTest, SmallNMatchesThePmfExactly) {
  // With n == 2 only the two exact cases are reachable.
  const ZipfianGenerator zipf(2);
  std::mt19937_64 rng(7);
  int ones = 0;
  constexpr int kSamples = 200000;
  for (int i = 0; i < kSamples; ++i) ones += zipf.Sample(Uniform(rng)) == 1;
  EXPECT_NEAR(static_cast<double>(ones) / kSamples, Pmf(zipf, 1), 0.005);
}

TEST(ZipfianGeneratorTest, IsAPureFunctionOfU) {
  const ZipfianGenerator zipf(100000);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1000; ++i) {
    const double u = Uniform(rng);
    ASSERT_EQ(zipf.Sample(u), zipf.Sample(u));
  }
  // Larger u never gives a smaller rank: the inverse CDF is monotone.
  uint64_t previous = 0;
  for (int i = 0; i < 100000; ++i) {
    const uint64_t rank = zipf.Sample(i / 100000.0);
    ASSERT_GE(rank, previous) << "u=" << i / 100000.0;
    previous = rank;
  }
}

TEST(W1IdForRankTest, IsABijectionOnAThousandKeys) {
  constexpr uint64_t kKeys = 1000;
  std::vector<bool> seen(kKeys, false);
  for (uint64_t rank = 0; rank < kKeys; ++rank) {
    const uint64_t id = W1IdForRank(rank, kKeys);
    ASSERT_LT(id, kKeys);
    ASSERT_FALSE(seen[id]) << "id " << id << " repeated at rank " << rank;
    seen[id] = true;
  }
}

TEST(W1IdForRankTest, KnownValues) {
  EXPECT_EQ(W1IdForRank(0, 1000000), 7u);
  EXPECT_EQ(W1IdForRank(1, 1000000), (2654435761u + 7) % 1000000);
  EXPECT_EQ(W1IdForRank(5, 0), 0u);
  // Large operands: computed modulo keys, without 64-bit wrap-around.
  constexpr uint64_t k32 = uint64_t{1} << 32;
  EXPECT_EQ(W1IdForRank(k32 - 1, k32), ((k32 - 1) * 2654435761 + 7) % k32);
  constexpr uint64_t kBig = (uint64_t{1} << 40) + 3;
  __extension__ typedef unsigned __int128 Uint128;
  EXPECT_EQ(W1IdForRank(kBig - 2, kBig),
            static_cast<uint64_t>(
                (static_cast<Uint128>(kBig - 2) * 2654435761 + 7) % kBig));
}

// How many distinct ids a million W1 draws touch on a million keys, next to
// the count expected under the exact Zipf pmf.
TEST(W1IdForRankTest, DistinctIdsTouchedByAMillionDraws) {
  constexpr uint64_t kKeys = 1000000;
  constexpr int kDraws = 1000000;
  const ZipfianGenerator zipf(kKeys);
  std::mt19937_64 rng(42);
  std::vector<bool> touched(kKeys, false);
  uint64_t distinct = 0;
  for (int i = 0; i < kDraws; ++i) {
    const uint64_t id = W1IdForRank(zipf.Sample(Uniform(rng)), kKeys);
    ASSERT_LT(id, kKeys);
    if (!touched[id]) {
      touched[id] = true;
      ++distinct;
    }
  }
  // W1IdForRank is a bijection, so the expected number of distinct ids is
  // the expected number of distinct ranks: the sum of 1 - (1 - p_r)^draws.
  double expected = 0;
  double expected_zipf = 0;
  for (uint64_t rank = 0; rank < kKeys; ++rank) {
    expected += 1.0 - std::pow(1.0 - YcsbPmf(zipf, rank), kDraws);
    expected_zipf += 1.0 - std::pow(1.0 - Pmf(zipf, rank), kDraws);
  }
  std::printf(
      "distinct ids touched by %d W1 draws over %lu keys: %lu (expected "
      "%.0f; %.0f under the exact Zipf pmf)\n",
      kDraws, static_cast<unsigned long>(kKeys),
      static_cast<unsigned long>(distinct), expected, expected_zipf);
  EXPECT_NEAR(static_cast<double>(distinct), expected, 0.005 * expected);
}

}  // namespace
}  // namespace tally::bench
