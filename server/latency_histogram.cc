#include "server/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace tally {

size_t PromBucket(uint64_t ns) {
  return static_cast<size_t>(
      std::lower_bound(kPromBoundsNs.begin(), kPromBoundsNs.end(), ns) -
      kPromBoundsNs.begin());
}

void HistogramSnapshot::Add(const HistogramSnapshot& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  for (size_t i = 0; i < prom_.size(); ++i) prom_[i] += other.prom_[i];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
}

uint64_t HistogramSnapshot::ValueAtPercentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // The rank of the sample at p% (1-based), at least the first.
  const uint64_t rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(
             std::ceil(p / 100.0 * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return HistogramLayout::HighestValue(i);
  }
  return HistogramLayout::HighestValue(buckets_.size() - 1);
}

uint64_t HistogramSnapshot::CumulativeCount(size_t prom_bucket) const {
  uint64_t total = 0;
  for (size_t i = 0; i <= prom_bucket && i < prom_.size(); ++i) {
    total += prom_[i];
  }
  return total;
}

void AtomicHistogram::AddTo(HistogramSnapshot* out) const {
  uint64_t count = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    const uint64_t n = buckets_[i].load(std::memory_order_relaxed);
    out->buckets_[i] += n;
    count += n;
  }
  for (size_t i = 0; i < prom_.size(); ++i) {
    out->prom_[i] += prom_[i].load(std::memory_order_relaxed);
  }
  out->count_ += count;
  out->sum_ns_ += sum_ns_.load(std::memory_order_relaxed);
}

void AtomicHistogram::Reset() {
  for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
  for (auto& b : prom_) b.store(0, std::memory_order_relaxed);
  sum_ns_.store(0, std::memory_order_relaxed);
}

}  // namespace tally
