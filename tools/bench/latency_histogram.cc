#include "tools/bench/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace tally::bench {

namespace {

constexpr int kSubBuckets = 1 << LatencyHistogram::kSubBucketBits;

// Bucket layout. A value v with bit width w has shift s = max(0, w - 8), and
// lies in the bucket of width 2^s starting at (v >> s) << s. Its index is
// s * 128 + (v >> s): for s == 0 that is v itself (indexes 0..255, exact), and
// for s >= 1, v >> s is in [128, 256), so each shift owns the 128 indexes
// [(s + 1) * 128, (s + 2) * 128) and the layout has no gaps.
constexpr int BucketIndex(uint64_t value) {
  const int width = static_cast<int>(std::bit_width(value));
  const int shift = std::max(0, width - (LatencyHistogram::kSubBucketBits + 1));
  return shift * kSubBuckets + static_cast<int>(value >> shift);
}

// The largest value counted in bucket `index` (the inverse of BucketIndex).
constexpr uint64_t HighestEquivalentValue(int index) {
  const int shift = index < 2 * kSubBuckets ? 0 : index / kSubBuckets - 1;
  const uint64_t sub = static_cast<uint64_t>(index - shift * kSubBuckets);
  return ((sub + 1) << shift) - 1;
}

// The open-ended bucket for values above kMaxValue, after kMaxValue's own.
constexpr int kTopBucket = BucketIndex(LatencyHistogram::kMaxValue) + 1;

static_assert(BucketIndex(255) == 255 && BucketIndex(256) == 256);
static_assert(HighestEquivalentValue(BucketIndex(256)) == 257);
static_assert(kTopBucket == 4353);

}  // namespace

LatencyHistogram::LatencyHistogram()
    : counts_(static_cast<size_t>(kTopBucket) + 1, 0) {}

void LatencyHistogram::RecordN(uint64_t value_ns, uint64_t n) {
  if (n == 0) return;
  if (value_ns > kMaxValue) {
    clamped_count_ += n;
    counts_[kTopBucket] += n;
  } else {
    counts_[BucketIndex(value_ns)] += n;
  }
  count_ += n;
  sum_ += static_cast<Uint128>(value_ns) * n;
  min_ = std::min(min_, value_ns);
  max_ = std::max(max_, value_ns);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  clamped_count_ += other.clamped_count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  clamped_count_ = 0;
  sum_ = 0;
  min_ = std::numeric_limits<uint64_t>::max();
  max_ = 0;
}

double LatencyHistogram::mean() const {
  if (count_ == 0) return 0.0;
  return static_cast<double>(sum_) / static_cast<double>(count_);
}

uint64_t LatencyHistogram::ValueAtPercentile(double p) const {
  if (count_ == 0) return 0;
  if (!(p > 0.0)) p = 0.0;  // Also maps NaN to 0.
  if (p > 100.0) p = 100.0;
  // p * count before / 100: when p% of count is a whole number this is
  // computed exactly, where p / 100 * count may land just above it
  // (0.07 * 100 == 7.000000000000001) and ceil would skip a sample.
  const double wanted = std::ceil(p * static_cast<double>(count_) / 100.0);
  uint64_t rank = 1;
  if (wanted >= static_cast<double>(count_)) {
    rank = count_;
  } else if (wanted > 1.0) {
    rank = static_cast<uint64_t>(wanted);
  }
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const int index = static_cast<int>(i);
      if (index == kTopBucket) return max_;
      return std::min(HighestEquivalentValue(index), max_);
    }
  }
  return max_;  // Unreachable: the buckets hold count_ samples.
}

}  // namespace tally::bench
