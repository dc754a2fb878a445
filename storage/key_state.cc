#include "storage/key_state.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace tally {

KeyState* KeyState::Create(const Policy* policy, std::string_view key,
                           int64_t* bytes) {
  size_t tiers = policy->tiers.size();
  int64_t size = AllocSize(tiers, key.size());
  void* raw = std::malloc(static_cast<size_t>(size));
  if (raw == nullptr)
    std::abort();  // out of memory is fatal, as with operator new
  auto* state = new (raw) KeyState();
  state->policy_ = policy;
  state->key_size_ = static_cast<uint16_t>(key.size());
  state->tier_count_ = static_cast<uint8_t>(tiers);
  for (size_t i = 0; i < tiers; ++i) new (&state->tiers()[i]) TierRing();
  std::memcpy(reinterpret_cast<char*>(state->tiers() + tiers), key.data(),
              key.size());
  *bytes += size;
  return state;
}

void KeyState::Destroy(KeyState* state, int64_t* bytes) {
  for (size_t i = 0; i < state->tier_count_; ++i) {
    state->tiers()[i].Clear(bytes);
    state->tiers()[i].~TierRing();
  }
  *bytes -= AllocSize(state->tier_count_, state->key_size_);
  state->~KeyState();
  std::free(state);
}

bool KeyState::empty() const {
  for (size_t i = 0; i < tier_count_; ++i) {
    if (!tiers()[i].empty()) return false;
  }
  return true;
}

int64_t KeyState::Bytes() const {
  int64_t total = AllocSize(tier_count_, key_size_);
  for (size_t i = 0; i < tier_count_; ++i) total += tiers()[i].HeapBytes();
  return total;
}

}  // namespace tally
