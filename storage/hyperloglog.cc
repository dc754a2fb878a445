#include "storage/hyperloglog.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numbers>

namespace tally {

namespace {

// Bits of the hash left for the rank once the index bits are taken (Ertl's
// q); register values range over [0, kRankBits + 1].
constexpr int kRankBits = 64 - HyperLogLog::kPrecision;
constexpr int kMaxRank = kRankBits + 1;

// alpha_inf = 1 / (2 ln 2), the bias constant for m -> infinity.
constexpr double kAlphaInf = 0.5 / std::numbers::ln2;

// Ertl's sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1), which corrects for the
// registers still at zero. The series is summed until adding a term no
// longer changes the double, so it stops after a few dozen steps.
double Sigma(double x) {
  if (x == 1.0) return std::numeric_limits<double>::infinity();
  double y = 1.0;
  double z = x;
  double z_old;
  do {
    x *= x;
    z_old = z;
    z += x * y;
    y += y;
  } while (z != z_old);
  return z;
}

// Ertl's tau(x) = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3, which
// corrects for the registers at the maximum value (the saturated end).
double Tau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1.0;
  double z = 1.0 - x;
  double z_old;
  do {
    x = std::sqrt(x);
    z_old = z;
    y *= 0.5;
    const double d = 1.0 - x;
    z -= d * d * y;
  } while (z != z_old);
  return z / 3.0;
}

// dst[i] = max(dst[i], src[i]) over all registers. A plain branch-free
// loop over non-aliasing (__restrict) byte arrays of constant length is what
// GCC's -O2 "very cheap" vectorizer needs to emit packed unsigned-byte max
// (pmaxub) with no runtime overlap check.
void MaxInto(uint8_t* __restrict dst, const uint8_t* __restrict src) {
  for (size_t i = 0; i < HyperLogLog::kRegisters; ++i) {
    dst[i] = std::max(dst[i], src[i]);
  }
}

}  // namespace

static_assert(HyperLogLog::bytes() == HyperLogLog::kRegisters,
              "a sketch should be exactly its registers");

HyperLogLog::HyperLogLog() { Clear(); }

void HyperLogLog::Add(uint64_t hash) {
  const size_t index = hash >> kRankBits;
  // Shifting out the index bits and planting a sentinel one just below the
  // 50 rank bits caps the leading-zero count at 50, i.e. the rank at 51,
  // without a branch for the all-zero case.
  const uint64_t rest =
      (hash << kPrecision) | (uint64_t{1} << (kPrecision - 1));
  const uint8_t rank = static_cast<uint8_t>(std::countl_zero(rest) + 1);
  registers_[index] = std::max(registers_[index], rank);
}

void HyperLogLog::Merge(const HyperLogLog& other) {
  // Merging with itself is a no-op, and ruling it out lets MaxInto() promise
  // the compiler that the arrays do not overlap.
  if (&other == this) return;
  MaxInto(registers_.data(), other.registers_.data());
}

double HyperLogLog::Estimate() const {
  // Histogram of register values; every register is in [0, kMaxRank]
  // because Add() caps the rank and Merge() only takes maxima.
  std::array<uint32_t, kMaxRank + 1> histogram{};
  for (uint8_t r : registers_) ++histogram[r];
  if (histogram[0] == kRegisters) return 0.0;

  const double m = static_cast<double>(kRegisters);
  double z = m * Tau(1.0 - histogram[kMaxRank] / m);
  for (int k = kRankBits; k >= 1; --k) {
    z = 0.5 * (z + histogram[k]);
  }
  z += m * Sigma(histogram[0] / m);
  return kAlphaInf * m * m / z;
}

void HyperLogLog::Clear() { registers_.fill(0); }

bool HyperLogLog::empty() const {
  return std::all_of(registers_.begin(), registers_.end(),
                     [](uint8_t r) { return r == 0; });
}

}  // namespace tally
