// ZipfianGenerator: Zipf-distributed ranks for the benchmark's skewed
// workloads, reproducing YCSB's ZipfianGenerator (the method of Gray et al.,
// "Quickly generating billion-record synthetic databases", SIGMOD 1994), so
// that tally's numbers are comparable with YCSB-style ones.
//
// Ranks 0 and 1 are drawn with their exact probabilities; larger ranks come
// from Gray's closed-form approximation of the inverse CDF, which, like
// YCSB, over-draws the next few ranks: at n = 10^6 and theta = 0.99, ranks
// 2, 3 and 4 come up 19%, 13% and 10% more often than the Zipf pmf says.
//
// W1IdForRank scatters ranks over a key space so that hot keys are not
// neighbours.
//
// Thread safety: a ZipfianGenerator is immutable after construction, so one
// instance may be shared by any number of threads; each thread brings its own
// uniform random source. W1IdForRank is a pure function.

#ifndef TALLY_TOOLS_BENCH_ZIPF_H_
#define TALLY_TOOLS_BENCH_ZIPF_H_

#include <cstdint>

namespace tally::bench {

// Draws ranks in [0, n) with P(rank r) proportional to 1 / (r + 1)^theta
// (approximately; see above).
class ZipfianGenerator {
 public:
  // YCSB's default skew.
  static constexpr double kDefaultTheta = 0.99;

  // Requires n >= 1 and 0 <= theta < 1. Computes zeta(n, theta) once, in
  // O(n) time: about 10 ms per million items.
  explicit ZipfianGenerator(uint64_t n, double theta = kDefaultTheta);

  // Maps a uniform u in [0, 1) to a rank in [0, n). O(1).
  uint64_t Sample(double u) const;

  uint64_t n() const { return n_; }
  double theta() const { return theta_; }
  // zeta(n, theta) = sum over i = 1..n of 1 / i^theta.
  double zeta_n() const { return zeta_n_; }

 private:
  uint64_t n_;
  double theta_;
  double zeta_n_;
  double alpha_;            // 1 / (1 - theta)
  double eta_;              // Gray's correction term; unused when n <= 2.
  double rank1_threshold_;  // 1 + 0.5^theta: u * zeta_n below it is rank 1.
};

// W1's scatter of ranks onto ids: (rank * 2654435761 + 7) mod keys, computed
// without overflow for any keys > 0. 2654435761 is prime, so this is a
// bijection on [0, keys) unless keys is a multiple of it (for keys <= 2^32,
// unless keys == 2654435761). keys == 0 returns 0.
uint64_t W1IdForRank(uint64_t rank, uint64_t keys);

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_ZIPF_H_
