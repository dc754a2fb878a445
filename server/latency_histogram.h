// Latency histograms for the server's per-command statistics: a log-linear
// (HDR-style) bucket layout for percentiles with bounded relative error, and
// a fixed set of Prometheus bounds (10 us .. 10 s) counted exactly.
//
// HistogramLayout maps a latency in nanoseconds to a bucket: values below
// 2 * kSubBuckets get a bucket each; above, every power of two is split into
// kSubBuckets equal parts, so a bucket's highest value exceeds any value in
// it by at most 1/kSubBuckets (6.25%) of that value. Values above kMaxValue
// (about 68 s) share the last bucket.
//
// AtomicHistogram is the concurrent recorder (relaxed atomics; no locks, no
// allocation after construction). HistogramSnapshot is a plain copy that
// answers percentiles and cumulative counts; snapshots add up, so per-thread
// shards are merged on read.
//
// Thread safety: AtomicHistogram::Record, Reset and Snapshot may run on any
// threads at once. A snapshot taken while others record is not a consistent
// cut (a sample may be in the buckets and not yet in the sum), which
// monitoring tolerates. HistogramSnapshot is a value type.

#ifndef TALLY_SERVER_LATENCY_HISTOGRAM_H_
#define TALLY_SERVER_LATENCY_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace tally {

struct HistogramLayout {
  static constexpr int kSubBucketBits = 4;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;
  // Largest value tracked at full resolution (2^36 ns, about 68.7 s).
  static constexpr int kMaxBits = 36;
  static constexpr uint64_t kMaxValue = (uint64_t{1} << kMaxBits) - 1;
  static constexpr size_t kBuckets =
      2 * kSubBuckets + (kMaxBits - kSubBucketBits - 1) * kSubBuckets;

  // O(1): one count-leading-zeros.
  static constexpr size_t Index(uint64_t ns) {
    if (ns > kMaxValue) ns = kMaxValue;
    if (ns < 2 * kSubBuckets) return static_cast<size_t>(ns);
    const int msb = 63 - std::countl_zero(ns);
    const int shift = msb - kSubBucketBits;
    return 2 * kSubBuckets + static_cast<size_t>(shift - 1) * kSubBuckets +
           static_cast<size_t>((ns >> shift) - kSubBuckets);
  }
  // The highest value bucket `index` stands for.
  static constexpr uint64_t HighestValue(size_t index) {
    if (index < 2 * kSubBuckets) return index;
    const size_t rest = index - 2 * kSubBuckets;
    const int shift = static_cast<int>(rest / kSubBuckets) + 1;
    const uint64_t mantissa = kSubBuckets + rest % kSubBuckets;
    return ((mantissa + 1) << shift) - 1;
  }
};

// Prometheus bucket bounds ("le"), in nanoseconds: 10 us .. 10 s, 1-2.5-5
// steps (the client library's defaults scaled down to a fast server).
inline constexpr std::array<uint64_t, 19> kPromBoundsNs = {
    10'000,        25'000,        50'000,        100'000,       250'000,
    500'000,       1'000'000,     2'500'000,     5'000'000,     10'000'000,
    25'000'000,    50'000'000,    100'000'000,   250'000'000,   500'000'000,
    1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

// Index of the first bound >= ns; kPromBoundsNs.size() for +Inf.
size_t PromBucket(uint64_t ns);

class HistogramSnapshot {
 public:
  void Add(const HistogramSnapshot& other);

  uint64_t count() const { return count_; }
  uint64_t sum_ns() const { return sum_ns_; }
  // HdrHistogram's semantics: the highest value of the smallest bucket that
  // holds at least p% of the samples, so the true percentile v satisfies
  // v <= result <= v * (1 + 1/16). p is clamped to [0, 100]; 0 if empty.
  uint64_t ValueAtPercentile(double p) const;
  // Samples <= kPromBoundsNs[i] (exact), for a Prometheus `le` bucket.
  uint64_t CumulativeCount(size_t prom_bucket) const;

 private:
  friend class AtomicHistogram;
  std::array<uint64_t, HistogramLayout::kBuckets> buckets_{};
  std::array<uint64_t, kPromBoundsNs.size() + 1> prom_{};
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
};

class AtomicHistogram {
 public:
  // Two relaxed increments and one add; no allocation.
  void Record(uint64_t ns) {
    buckets_[HistogramLayout::Index(ns)].fetch_add(1,
                                                   std::memory_order_relaxed);
    prom_[PromBucket(ns)].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  }
  // Adds this histogram's samples to `out`.
  void AddTo(HistogramSnapshot* out) const;
  void Reset();

 private:
  std::array<std::atomic<uint64_t>, HistogramLayout::kBuckets> buckets_{};
  std::array<std::atomic<uint64_t>, kPromBoundsNs.size() + 1> prom_{};
  std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace tally

#endif  // TALLY_SERVER_LATENCY_HISTOGRAM_H_
