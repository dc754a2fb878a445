// Bucket: the aggregates of one time bucket of one tier of one key, and the
// distinct members seen in it. 48 bytes; member storage grows with what the
// bucket really holds (docs/design.md, "Memory per key"):
//   0 members          nothing
//   1 member           the hash itself, inline
//   2..limit members   a sorted heap array of hashes, capacity a power of two
//   more than limit    a HyperLogLog sketch (16 KiB)
//
// Buckets are plain data owned by a TierRing, which moves them with memcpy and
// releases their members through FreeBucketMembers. Not thread-safe.

#ifndef TALLY_STORAGE_BUCKET_H_
#define TALLY_STORAGE_BUCKET_H_

#include <cstdint>
#include <limits>

#include "storage/hyperloglog.h"

namespace tally {

struct Bucket {
  static constexpr uint32_t kSketch = std::numeric_limits<uint32_t>::max();

  uint32_t index;    // bucket start = index * resolution
  uint32_t members;  // exact member count, or kSketch
  int64_t count;
  int64_t sum;
  int64_t min;           // smallest amount added (INT64_MAX while count == 0)
  int64_t max;           // largest amount added (INT64_MIN while count == 0)
  uint64_t member_data;  // see the table above

  bool is_sketch() const { return members == kSketch; }
  const uint64_t* member_array() const {
    return reinterpret_cast<const uint64_t*>(member_data);
  }
  const HyperLogLog* sketch() const {
    return reinterpret_cast<const HyperLogLog*>(member_data);
  }
};
static_assert(sizeof(Bucket) == 48);

// An empty bucket at `index`.
Bucket MakeBucket(uint32_t index);

// Adds the member hash `h` (never 0). Exact while the bucket holds at most
// `exact_limit` members, then converts to a sketch. Adds the change in heap
// bytes to *bytes.
void AddBucketMember(Bucket& b, uint64_t h, uint32_t exact_limit,
                     int64_t* bytes);

// For loading a snapshot: gives a bucket without members an exact array of
// `n` members (2 <= n < kSketch) and returns it for the caller to fill with
// n strictly increasing hashes (capacity MemberArrayCapacity(n), as adds
// would have grown it). The bucket may be released before it is filled.
uint64_t* SetBucketMemberArray(Bucket& b, uint32_t n, int64_t* bytes);
// For loading a snapshot: gives a bucket without members an empty sketch and
// returns it for the caller to fill.
HyperLogLog* SetBucketSketch(Bucket& b, int64_t* bytes);

// Releases member storage; subtracts it from *bytes.
void FreeBucketMembers(Bucket& b, int64_t* bytes);

// Heap bytes held by the bucket's members (not counting the Bucket itself).
int64_t BucketMemberBytes(const Bucket& b);

// Capacity of the sorted array holding n >= 2 exact members.
inline uint32_t MemberArrayCapacity(uint32_t n) {
  return n <= 2 ? 2 : uint32_t{1} << (32 - __builtin_clz(n - 1));
}

// Applies `count`/`amount` to the aggregates. REQUIRES: CanApply(b, amount).
inline void ApplyToBucket(Bucket& b, int64_t count, int64_t amount) {
  b.count += count;
  b.sum += amount;
  if (amount < b.min) b.min = amount;
  if (amount > b.max) b.max = amount;
}

// False when adding would overflow the bucket's count or sum.
inline bool CanApply(const Bucket& b, int64_t count, int64_t amount) {
  int64_t ignored;
  return !__builtin_add_overflow(b.count, count, &ignored) &&
         !__builtin_add_overflow(b.sum, amount, &ignored);
}

}  // namespace tally

#endif  // TALLY_STORAGE_BUCKET_H_
