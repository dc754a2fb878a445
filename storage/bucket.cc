#include "storage/bucket.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace tally {

Bucket MakeBucket(uint32_t index) {
  Bucket b;
  b.index = index;
  b.members = 0;
  b.count = 0;
  b.sum = 0;
  b.min = std::numeric_limits<int64_t>::max();
  b.max = std::numeric_limits<int64_t>::min();
  b.member_data = 0;
  return b;
}

int64_t BucketMemberBytes(const Bucket& b) {
  if (b.members <= 1) return 0;
  if (b.is_sketch()) return static_cast<int64_t>(sizeof(HyperLogLog));
  return int64_t{MemberArrayCapacity(b.members)} * 8;
}

void FreeBucketMembers(Bucket& b, int64_t* bytes) {
  *bytes -= BucketMemberBytes(b);
  if (b.is_sketch()) {
    delete reinterpret_cast<HyperLogLog*>(b.member_data);
  } else if (b.members > 1) {
    std::free(reinterpret_cast<uint64_t*>(b.member_data));
  }
  b.members = 0;
  b.member_data = 0;
}

namespace {

uint64_t* AllocArray(uint32_t capacity) {
  void* p = std::malloc(size_t{capacity} * 8);
  if (p == nullptr) std::abort();  // like operator new: out of memory is fatal
  return static_cast<uint64_t*>(p);
}

void ConvertToSketch(Bucket& b, int64_t* bytes) {
  auto* sketch = new HyperLogLog();
  if (b.members == 1) {
    sketch->Add(b.member_data);
  } else {
    const uint64_t* array = b.member_array();
    for (uint32_t i = 0; i < b.members; ++i) sketch->Add(array[i]);
  }
  FreeBucketMembers(b, bytes);
  b.members = Bucket::kSketch;
  b.member_data = reinterpret_cast<uint64_t>(sketch);
  *bytes += static_cast<int64_t>(sizeof(HyperLogLog));
}

}  // namespace

uint64_t* SetBucketMemberArray(Bucket& b, uint32_t n, int64_t* bytes) {
  uint64_t* array = AllocArray(MemberArrayCapacity(n));
  b.members = n;
  b.member_data = reinterpret_cast<uint64_t>(array);
  *bytes += int64_t{MemberArrayCapacity(n)} * 8;
  return array;
}

HyperLogLog* SetBucketSketch(Bucket& b, int64_t* bytes) {
  auto* sketch = new HyperLogLog();
  b.members = Bucket::kSketch;
  b.member_data = reinterpret_cast<uint64_t>(sketch);
  *bytes += static_cast<int64_t>(sizeof(HyperLogLog));
  return sketch;
}

void AddBucketMember(Bucket& b, uint64_t h, uint32_t exact_limit,
                     int64_t* bytes) {
  if (b.is_sketch()) {
    reinterpret_cast<HyperLogLog*>(b.member_data)->Add(h);
    return;
  }
  if (b.members == 0) {
    b.member_data = h;
    b.members = 1;
    if (exact_limit == 0) ConvertToSketch(b, bytes);
    return;
  }
  if (b.members == 1) {
    if (b.member_data == h) return;
    uint64_t* array = AllocArray(2);
    array[0] = std::min(b.member_data, h);
    array[1] = std::max(b.member_data, h);
    b.member_data = reinterpret_cast<uint64_t>(array);
    b.members = 2;
    *bytes += 16;
  } else {
    uint64_t* array = reinterpret_cast<uint64_t*>(b.member_data);
    uint64_t* pos = std::lower_bound(array, array + b.members, h);
    if (pos != array + b.members && *pos == h) return;
    size_t at = static_cast<size_t>(pos - array);
    uint32_t capacity = MemberArrayCapacity(b.members);
    if (b.members == capacity) {
      uint64_t* grown = AllocArray(capacity * 2);
      std::memcpy(grown, array, at * 8);
      std::memcpy(grown + at + 1, array + at, (b.members - at) * 8);
      std::free(array);
      array = grown;
      b.member_data = reinterpret_cast<uint64_t>(array);
      *bytes += int64_t{capacity} * 8;
    } else {
      std::memmove(array + at + 1, array + at, (b.members - at) * 8);
    }
    array[at] = h;
    ++b.members;
  }
  if (b.members > exact_limit) ConvertToSketch(b, bytes);
}

}  // namespace tally
