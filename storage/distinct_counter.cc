#include "storage/distinct_counter.h"

#include <cmath>

namespace tally {

void DistinctCounter::Reset(uint32_t exact_limit) {
  if (sketch_mode_) {
    sketch_->Clear();
    sketch_mode_ = false;
  }
  for (uint32_t slot : used_) table_[slot] = 0;
  used_.clear();
  if (exact_limit != limit_ || table_.empty()) {
    limit_ = exact_limit;
    // At least twice the limit so probes stay short; a power of two for
    // masking.
    size_t size = 16;
    while (size < 2 * (size_t{limit_} + 1)) size *= 2;
    table_.assign(size, 0);
    mask_ = static_cast<uint32_t>(size - 1);
    used_.reserve(limit_ + 1);
  }
}

void DistinctCounter::SwitchToSketch() {
  if (!sketch_) sketch_ = std::make_unique<HyperLogLog>();
  for (uint32_t slot : used_) {
    sketch_->Add(table_[slot]);
    table_[slot] = 0;
  }
  used_.clear();
  sketch_mode_ = true;
}

void DistinctCounter::AddSketch(const HyperLogLog& sketch) {
  if (!sketch_mode_) SwitchToSketch();
  sketch_->Merge(sketch);
}

void DistinctCounter::AddBucket(const Bucket& b) {
  if (b.members == 0) return;
  if (b.is_sketch()) {
    AddSketch(*b.sketch());
  } else if (b.members == 1) {
    Add(b.member_data);
  } else {
    const uint64_t* array = b.member_array();
    for (uint32_t i = 0; i < b.members; ++i) Add(array[i]);
  }
}

uint64_t DistinctCounter::Count() const {
  if (!sketch_mode_) return used_.size();
  return static_cast<uint64_t>(std::llround(sketch_->Estimate()));
}

}  // namespace tally
