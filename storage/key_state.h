// KeyState: one key's policy, its key bytes and its history, in a single
// allocation. A key starts small and grows up:
//
//  raw    [header 16 B][key][pad to 8][RawEvent x capacity]
//         Its events as they came (32 B each), while it has at most
//         kMaxRawEvents. Most keys in a velocity workload see a handful of
//         events; storing them raw costs a fraction of one bucket per tier,
//         and answers are the same (the window plan decides what is covered).
//  tiered [header 16 B][key][pad to 8][TierRing x tiers, 16 B each]
//         One bucket ring per retention tier, once the key outgrows raw.
//
// Created, grown and destroyed only through the static functions; growing
// returns a new pointer. Not thread-safe: the owning shard's mutex guards it.

#ifndef TALLY_STORAGE_KEY_STATE_H_
#define TALLY_STORAGE_KEY_STATE_H_

#include <cstdint>
#include <string_view>

#include "storage/policy.h"
#include "storage/tier_ring.h"

namespace tally {

inline constexpr size_t kMaxKeySize = 256;
// A raw key switches to tier rings when it would hold more events than this.
inline constexpr uint32_t kMaxRawEvents = 32;

struct RawEvent {
  int64_t time_ms;
  int64_t count;
  int64_t amount;
  uint64_t member;  // member hash; 0 = none
};
static_assert(sizeof(RawEvent) == 32);

class KeyState {
 public:
  // A raw key with room for `capacity` events. REQUIRES: 1 <= key.size() <=
  // kMaxKeySize; 1 <= capacity <= kMaxRawEvents; policy outlives the state.
  static KeyState* CreateRaw(const Policy* policy, std::string_view key,
                             uint32_t capacity, int64_t* bytes);
  // A copy of raw `state` with room for `capacity` events; destroys `state`.
  static KeyState* GrowRaw(KeyState* state, uint32_t capacity, int64_t* bytes);
  // An empty tiered key (no bucket yet).
  static KeyState* CreateTiered(const Policy* policy, std::string_view key,
                                int64_t* bytes);
  // Releases the key and everything it holds.
  static void Destroy(KeyState* state, int64_t* bytes);

  const Policy& policy() const { return *policy_; }
  // A policy reload. REQUIRES: `policy` has the same tiers and outlives the
  // state.
  void set_policy(const Policy* policy) { policy_ = policy; }
  std::string_view key() const {
    return {reinterpret_cast<const char*>(this + 1), key_size_};
  }
  bool is_raw() const { return raw_; }

  // Tiered keys only.
  size_t tier_count() const { return policy_->tiers.size(); }
  TierRing& tier(size_t i) { return reinterpret_cast<TierRing*>(payload())[i]; }
  const TierRing& tier(size_t i) const {
    return reinterpret_cast<const TierRing*>(payload())[i];
  }

  // Raw keys only.
  uint32_t raw_size() const { return raw_size_; }
  uint32_t raw_capacity() const { return raw_capacity_; }
  RawEvent* raw_events() { return reinterpret_cast<RawEvent*>(payload()); }
  const RawEvent* raw_events() const {
    return reinterpret_cast<const RawEvent*>(payload());
  }
  // REQUIRES: raw_size() < raw_capacity().
  void AppendRaw(const RawEvent& e) {
    raw_events()[raw_size_++] = e;
    raw_big_ |= IsBig(e.count, e.amount);
  }
  // Below 2^57 in magnitude, no sum of kMaxRawEvents + 1 values can leave
  // int64, so a raw key without big values needs no overflow check.
  static bool IsBig(int64_t count, int64_t amount) {
    constexpr int64_t kSafe = int64_t{1} << 57;
    return count >= kSafe || amount >= kSafe || amount <= -kSafe;
  }
  bool raw_has_big_values() const { return raw_big_; }
  // Drops raw events older than `min_time_ms`; returns how many.
  uint32_t ExpireRawBefore(int64_t min_time_ms);

  // True when nothing is held: the key can be removed.
  bool empty() const;
  // Bytes of this allocation plus every ring's heap bytes.
  int64_t Bytes() const;
  int64_t AllocSize() const;

 private:
  KeyState() = default;
  ~KeyState() = default;
  static size_t PayloadOffset(size_t key_size) {
    return (sizeof(KeyState) + key_size + 7) & ~size_t{7};
  }
  static KeyState* Allocate(const Policy* policy, std::string_view key,
                            size_t payload_bytes, int64_t* bytes);
  char* payload() {
    return reinterpret_cast<char*>(this) + PayloadOffset(key_size_);
  }
  const char* payload() const {
    return reinterpret_cast<const char*>(this) + PayloadOffset(key_size_);
  }

  const Policy* policy_;
  uint16_t key_size_;
  bool raw_;
  uint8_t raw_size_;
  uint8_t raw_capacity_;
  bool raw_big_;  // some raw event's count or amount IsBig()
};
static_assert(sizeof(KeyState) == 16);

}  // namespace tally

#endif  // TALLY_STORAGE_KEY_STATE_H_
