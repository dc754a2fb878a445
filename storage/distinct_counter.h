// DistinctCounter: the union of the members of the buckets a query covers.
// Exact (a hash set of 64-bit member hashes) while the union holds at most
// `exact_limit` members; past that, or as soon as a bucket contributes a
// sketch, it folds everything into a HyperLogLog and estimates (relative
// standard error HyperLogLog::kRelativeStandardError).
//
// Meant to be reused: Reset() costs O(members added), not O(table size).
// Not thread-safe; the engine keeps one per thread.

#ifndef TALLY_STORAGE_DISTINCT_COUNTER_H_
#define TALLY_STORAGE_DISTINCT_COUNTER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "storage/bucket.h"
#include "storage/hyperloglog.h"

namespace tally {

class DistinctCounter {
 public:
  DistinctCounter() = default;

  // Empties the counter and sets the exact limit for the next union.
  void Reset(uint32_t exact_limit);

  // REQUIRES: h != 0.
  void Add(uint64_t h) {
    if (sketch_mode_) {
      sketch_->Add(h);
      return;
    }
    uint32_t slot = static_cast<uint32_t>(h) & mask_;
    while (table_[slot] != 0) {
      if (table_[slot] == h) return;
      slot = (slot + 1) & mask_;
    }
    table_[slot] = h;
    used_.push_back(slot);
    if (used_.size() > limit_) SwitchToSketch();
  }
  void AddSketch(const HyperLogLog& sketch);
  // Adds every member of a bucket.
  void AddBucket(const Bucket& b);

  bool exact() const { return !sketch_mode_; }
  // The exact count, or the rounded estimate.
  uint64_t Count() const;

 private:
  void SwitchToSketch();

  uint32_t limit_ = 0;
  uint32_t mask_ = 0;
  bool sketch_mode_ = false;
  std::vector<uint64_t> table_;  // open addressing, 0 = empty, load <= 1/2
  std::vector<uint32_t> used_;   // occupied slots, for a cheap Reset
  std::unique_ptr<HyperLogLog> sketch_;
};

}  // namespace tally

#endif  // TALLY_STORAGE_DISTINCT_COUNTER_H_
