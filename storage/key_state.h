// KeyState: one key's policy, its tier rings and the key bytes, in a single
// allocation laid out as
//   [KeyState header 16 B][TierRing x tiers, 16 B each][key bytes]
// so a key with the default four tiers and a 10-byte key costs 90 bytes before
// any bucket. Created and destroyed only through Create/Destroy.
// Not thread-safe: the owning shard's mutex guards it.

#ifndef TALLY_STORAGE_KEY_STATE_H_
#define TALLY_STORAGE_KEY_STATE_H_

#include <cstdint>
#include <string_view>

#include "storage/policy.h"
#include "storage/tier_ring.h"

namespace tally {

inline constexpr size_t kMaxKeySize = 256;

class KeyState {
 public:
  // REQUIRES: 1 <= key.size() <= kMaxKeySize; policy outlives the KeyState.
  static KeyState* Create(const Policy* policy, std::string_view key,
                          int64_t* bytes);
  // Releases the key and all its buckets.
  static void Destroy(KeyState* state, int64_t* bytes);

  const Policy& policy() const { return *policy_; }
  std::string_view key() const {
    return {reinterpret_cast<const char*>(tiers() + tier_count_), key_size_};
  }
  size_t tier_count() const { return tier_count_; }
  TierRing& tier(size_t i) { return tiers()[i]; }
  const TierRing& tier(size_t i) const { return tiers()[i]; }

  // True when no tier holds a bucket: the key can be removed.
  bool empty() const;
  // Bytes of this allocation plus every ring's heap bytes.
  int64_t Bytes() const;
  // Size of the single allocation for `tiers` rings and a `key_size`-byte key.
  static int64_t AllocSize(size_t tiers, size_t key_size) {
    return static_cast<int64_t>(sizeof(KeyState) + tiers * sizeof(TierRing) +
                                key_size);
  }

 private:
  KeyState() = default;
  ~KeyState() = default;
  TierRing* tiers() { return reinterpret_cast<TierRing*>(this + 1); }
  const TierRing* tiers() const {
    return reinterpret_cast<const TierRing*>(this + 1);
  }

  const Policy* policy_;
  uint16_t key_size_;
  uint8_t tier_count_;
};
static_assert(sizeof(KeyState) == 16);

}  // namespace tally

#endif  // TALLY_STORAGE_KEY_STATE_H_
