#include "storage/tier_ring.h"

#include <cstdlib>
#include <cstring>

namespace tally {

uint32_t TierRing::LowerBound(uint32_t index) const {
  uint32_t lo = 0, hi = size_;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (at(mid).index < index) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

Bucket* TierRing::Find(uint32_t index) {
  uint32_t pos = LowerBound(index);
  if (pos < size_ && at(pos).index == index) return &at(pos);
  return nullptr;
}

void TierRing::Reallocate(uint32_t new_cap_log2, int64_t* bytes) {
  uint32_t new_cap = uint32_t{1} << new_cap_log2;
  auto* fresh = static_cast<Bucket*>(std::malloc(sizeof(Bucket) * new_cap));
  if (fresh == nullptr)
    std::abort();  // out of memory is fatal, as with operator new
  // Unroll the circular contents to the front of the new buffer.
  for (uint32_t i = 0; i < size_; ++i) fresh[i] = at(i);
  *bytes += int64_t{sizeof(Bucket)} * (int64_t{new_cap} - capacity());
  std::free(buf_);
  buf_ = fresh;
  head_ = 0;
  cap_log2_ = new_cap_log2;
}

Bucket* TierRing::Append(uint32_t index, int64_t* bytes) {
  if (buf_ == nullptr) {
    Reallocate(0, bytes);
  } else if (size_ == capacity()) {
    Reallocate(cap_log2_ + 1, bytes);
  }
  Bucket& slot = buf_[(head_ + size_) & mask()];
  slot = MakeBucket(index);
  ++size_;
  return &slot;
}

Bucket* TierRing::InsertSorted(uint32_t index, int64_t* bytes) {
  uint32_t pos = LowerBound(index);
  if (pos < size_ && at(pos).index == index) return &at(pos);
  if (size_ == capacity()) Reallocate(cap_log2_ + 1, bytes);
  if (pos == 0) {
    head_ = (head_ + capacity() - 1) & mask();
  } else {
    // Late events land near the back, so shift the tail right by one.
    for (uint32_t i = size_; i > pos; --i) at(i) = at(i - 1);
  }
  ++size_;
  at(pos) = MakeBucket(index);
  return &at(pos);
}

uint32_t TierRing::ExpireBefore(uint32_t first_kept, int64_t* bytes) {
  uint32_t dropped = 0;
  while (size_ != 0 && at(0).index < first_kept) {
    FreeBucketMembers(at(0), bytes);
    head_ = (head_ + 1) & mask();
    --size_;
    ++dropped;
  }
  if (dropped == 0) return 0;
  if (size_ == 0) {
    Clear(bytes);
  } else if (cap_log2_ >= 2 && size_ <= capacity() / 4) {
    // Shrink to the smallest power of two holding twice what is left, so a
    // ring that lost most of its buckets does not keep their memory.
    uint32_t target = 32 - __builtin_clz(size_ * 2 - 1);
    Reallocate(target, bytes);
  }
  return dropped;
}

void TierRing::Clear(int64_t* bytes) {
  for (uint32_t i = 0; i < size_; ++i) FreeBucketMembers(at(i), bytes);
  *bytes -= int64_t{sizeof(Bucket)} * capacity();
  std::free(buf_);
  buf_ = nullptr;
  size_ = 0;
  head_ = 0;
  cap_log2_ = 0;
}

int64_t TierRing::HeapBytes() const {
  int64_t total = int64_t{sizeof(Bucket)} * capacity();
  for (uint32_t i = 0; i < size_; ++i) total += BucketMemberBytes(at(i));
  return total;
}

}  // namespace tally
