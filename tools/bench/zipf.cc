#include "tools/bench/zipf.h"

#include <cassert>
#include <cmath>

namespace tally::bench {

namespace {

// zeta(n, theta) = sum over i = 1..n of 1 / i^theta, in YCSB's order.
double Zeta(uint64_t n, double theta) {
  double sum = 0;
  for (uint64_t i = 1; i <= n; ++i) {
    sum += 1.0 / std::pow(static_cast<double>(i), theta);
  }
  return sum;
}

}  // namespace

ZipfianGenerator::ZipfianGenerator(uint64_t n, double theta)
    : n_(n),
      theta_(theta),
      zeta_n_(Zeta(n, theta)),
      alpha_(1.0 / (1.0 - theta)),
      eta_(0),
      rank1_threshold_(1.0 + std::pow(0.5, theta)) {
  assert(n >= 1);
  assert(theta >= 0 && theta < 1);
  // For n <= 2 the first two cases of Sample cover every u, and the formula
  // would divide by 1 - zeta(2) / zeta(2) == 0.
  if (n > 2) {
    const double zeta_2 = Zeta(2, theta);
    eta_ = (1.0 - std::pow(2.0 / static_cast<double>(n), 1.0 - theta)) /
           (1.0 - zeta_2 / zeta_n_);
  }
}

uint64_t ZipfianGenerator::Sample(double u) const {
  const double uz = u * zeta_n_;
  if (uz < 1.0 || n_ == 1) return 0;
  if (uz < rank1_threshold_ || n_ == 2) return 1;
  const double rank =
      static_cast<double>(n_) * std::pow(eta_ * u - eta_ + 1.0, alpha_);
  // u near 1 can round to n; the negated test also catches NaN, which a
  // u outside [0, 1) could produce, before the cast would be undefined.
  if (!(rank < static_cast<double>(n_ - 1))) return n_ - 1;
  return static_cast<uint64_t>(rank);
}

uint64_t W1IdForRank(uint64_t rank, uint64_t keys) {
  constexpr uint64_t kMultiplier = 2654435761;
  if (keys == 0) return 0;
  const uint64_t r = rank % keys;
  // (rank mod keys) < 2^32 keeps the product and the + 7 below 2^64.
  if (keys <= (uint64_t{1} << 32)) return (r * kMultiplier + 7) % keys;
  __extension__ typedef unsigned __int128 Uint128;
  return static_cast<uint64_t>((static_cast<Uint128>(r) * kMultiplier + 7) %
                               keys);
}

}  // namespace tally::bench
