// TierRing: the non-empty buckets of one tier of one key, sorted by bucket
// index, in a circular buffer whose capacity follows the number of non-empty
// buckets (a power of two, grown by doubling, halved when a quarter full).
// A key that saw three events holds three buckets; a dense key holds a dense
// ring. New buckets append at the back, expired ones leave from the front, a
// late event's bucket is inserted in order.
//
// 16 bytes. Owned by a KeyState; Clear() must be called before it is dropped.
// Not thread-safe: the owning shard's mutex guards it.

#ifndef TALLY_STORAGE_TIER_RING_H_
#define TALLY_STORAGE_TIER_RING_H_

#include <cstddef>
#include <cstdint>

#include "storage/bucket.h"

namespace tally {

class TierRing {
 public:
  TierRing() = default;
  TierRing(const TierRing&) = delete;
  TierRing& operator=(const TierRing&) = delete;

  uint32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint32_t capacity() const {
    return buf_ == nullptr ? 0 : uint32_t{1} << cap_log2_;
  }

  // The i-th bucket in index order. REQUIRES: i < size().
  const Bucket& at(uint32_t i) const { return buf_[(head_ + i) & mask()]; }
  Bucket& at(uint32_t i) { return buf_[(head_ + i) & mask()]; }
  const Bucket& back() const { return at(size_ - 1); }

  // Position of the first bucket with index >= `index` (size() if none).
  uint32_t LowerBound(uint32_t index) const;

  // The bucket at `index`, inserted empty if absent. The pointer is valid
  // until the next mutation. Adds heap-byte changes to *bytes.
  Bucket* FindOrInsert(uint32_t index, int64_t* bytes) {
    if (size_ != 0) {
      Bucket& last = at(size_ - 1);
      if (last.index == index)
        return &last;  // the common case: the current bucket
      if (last.index < index) return Append(index, bytes);
    } else {
      return Append(index, bytes);
    }
    return InsertSorted(index, bytes);
  }
  // The bucket at `index`, or nullptr.
  Bucket* Find(uint32_t index);

  // Drops every bucket with index < `first_kept` (releasing members) and
  // shrinks the buffer when it is mostly empty. Returns buckets dropped.
  uint32_t ExpireBefore(uint32_t first_kept, int64_t* bytes);

  // For loading a snapshot: gives an empty ring without a buffer a buffer of
  // 2^cap_log2 buckets (REQUIRES cap_log2 <= 27), so that the buckets then
  // appended in index order leave it exactly as the snapshotted ring was.
  void Reserve(uint32_t cap_log2, int64_t* bytes) {
    Reallocate(cap_log2, bytes);
  }

  // Releases everything; the ring is empty afterwards.
  void Clear(int64_t* bytes);

  // Heap bytes held: the buffer plus member storage.
  int64_t HeapBytes() const;

 private:
  uint32_t mask() const { return (uint32_t{1} << cap_log2_) - 1; }
  Bucket* Append(uint32_t index, int64_t* bytes);
  Bucket* InsertSorted(uint32_t index, int64_t* bytes);
  void Reallocate(uint32_t new_cap_log2, int64_t* bytes);

  Bucket* buf_ = nullptr;
  uint32_t size_ = 0;
  uint32_t head_ : 27 = 0;
  uint32_t cap_log2_ : 5 = 0;
};
static_assert(sizeof(TierRing) == 16);

}  // namespace tally

#endif  // TALLY_STORAGE_TIER_RING_H_
