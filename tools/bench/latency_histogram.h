// LatencyHistogram: an HDR-style log-linear histogram of latencies in
// nanoseconds, for the benchmark tool's percentile reports.
//
// Values are bucketed so that every power of two is split into 128 equal
// sub-buckets (values below 256 get a bucket each), so a reported value
// exceeds the recorded one by at most 1/128 of it. The tracked range is
// 0 .. kMaxValue (2^40 ns, about 18 minutes). Larger values are counted in one
// open-ended top bucket (see clamped_count()), which reports as max(); min(),
// max() and mean() stay exact for them.
//
// All storage is allocated by the constructor; Record, RecordN, Merge and
// Reset never allocate.
//
// Thread safety: not thread-safe. Each thread records into its own histogram
// and the histograms are merged afterwards.

#ifndef TALLY_TOOLS_BENCH_LATENCY_HISTOGRAM_H_
#define TALLY_TOOLS_BENCH_LATENCY_HISTOGRAM_H_

#include <cstdint>
#include <limits>
#include <vector>

namespace tally::bench {

class LatencyHistogram {
 public:
  // Largest value tracked at full resolution; larger ones share the top
  // bucket.
  static constexpr uint64_t kMaxValue = uint64_t{1} << 40;
  // log2 of the sub-buckets per power of two: relative error <= 2^-7.
  static constexpr int kSubBucketBits = 7;

  LatencyHistogram();

  // Records one value. O(1), no allocation.
  void Record(uint64_t value_ns) { RecordN(value_ns, 1); }
  // Records `n` occurrences of `value_ns`; n == 0 records nothing.
  void RecordN(uint64_t value_ns, uint64_t n);
  // Adds every sample of `other` to this histogram.
  void Merge(const LatencyHistogram& other);
  // Forgets all samples.
  void Reset();

  uint64_t count() const { return count_; }
  // Samples above kMaxValue (counted in the open-ended top bucket).
  uint64_t clamped_count() const { return clamped_count_; }
  // Exact smallest recorded value; 0 if empty.
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  // Exact largest recorded value; 0 if empty.
  uint64_t max() const { return max_; }
  // Exact sum / count of the recorded values; 0 if empty.
  double mean() const;

  // The smallest bucket v such that at least p% of the samples are <= v,
  // reported as the highest value v's bucket stands for, clamped to max().
  // (HdrHistogram's semantics.) The top bucket's highest value is unbounded,
  // so it reports max(). p is clamped to [0, 100]; 0 if empty.
  uint64_t ValueAtPercentile(double p) const;

 private:
  // __extension__ keeps -Wpedantic quiet about the GCC/Clang 128-bit type.
  __extension__ typedef unsigned __int128 Uint128;

  std::vector<uint64_t> counts_;  // One per bucket; sized once.
  uint64_t count_ = 0;
  uint64_t clamped_count_ = 0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ = 0;
  // 128 bits: the exact sum cannot overflow before count_ does.
  Uint128 sum_ = 0;
};

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_LATENCY_HISTOGRAM_H_
