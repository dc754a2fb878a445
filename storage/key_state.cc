#include "storage/key_state.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace tally {

KeyState* KeyState::Allocate(const Policy* policy, std::string_view key,
                             size_t payload_bytes, int64_t* bytes) {
  const size_t size = PayloadOffset(key.size()) + payload_bytes;
  void* raw = std::malloc(size);
  if (raw == nullptr)
    std::abort();  // out of memory is fatal, as with operator new
  auto* state = new (raw) KeyState();
  state->policy_ = policy;
  state->key_size_ = static_cast<uint16_t>(key.size());
  state->raw_ = false;
  state->raw_size_ = 0;
  state->raw_capacity_ = 0;
  state->raw_big_ = false;
  std::memcpy(reinterpret_cast<char*>(state + 1), key.data(), key.size());
  *bytes += static_cast<int64_t>(size);
  return state;
}

KeyState* KeyState::CreateRaw(const Policy* policy, std::string_view key,
                              uint32_t capacity, int64_t* bytes) {
  KeyState* state = Allocate(policy, key, capacity * sizeof(RawEvent), bytes);
  state->raw_ = true;
  state->raw_capacity_ = static_cast<uint8_t>(capacity);
  return state;
}

KeyState* KeyState::GrowRaw(KeyState* state, uint32_t capacity,
                            int64_t* bytes) {
  KeyState* grown = CreateRaw(state->policy_, state->key(), capacity, bytes);
  std::memcpy(grown->raw_events(), state->raw_events(),
              state->raw_size_ * sizeof(RawEvent));
  grown->raw_size_ = state->raw_size_;
  grown->raw_big_ = state->raw_big_;
  Destroy(state, bytes);
  return grown;
}

KeyState* KeyState::CreateTiered(const Policy* policy, std::string_view key,
                                 int64_t* bytes) {
  const size_t tiers = policy->tiers.size();
  KeyState* state = Allocate(policy, key, tiers * sizeof(TierRing), bytes);
  for (size_t i = 0; i < tiers; ++i) new (&state->tier(i)) TierRing();
  return state;
}

void KeyState::Destroy(KeyState* state, int64_t* bytes) {
  if (!state->raw_) {
    for (size_t i = 0; i < state->tier_count(); ++i) {
      state->tier(i).Clear(bytes);
      state->tier(i).~TierRing();
    }
  }
  *bytes -= state->AllocSize();
  state->~KeyState();
  std::free(state);
}

uint32_t KeyState::ExpireRawBefore(int64_t min_time_ms) {
  RawEvent* events = raw_events();
  uint32_t kept = 0;
  for (uint32_t i = 0; i < raw_size_; ++i) {
    if (events[i].time_ms >= min_time_ms) events[kept++] = events[i];
  }
  const uint32_t dropped = raw_size_ - kept;
  raw_size_ = static_cast<uint8_t>(kept);
  return dropped;
}

bool KeyState::empty() const {
  if (raw_) return raw_size_ == 0;
  for (size_t i = 0; i < tier_count(); ++i) {
    if (!tier(i).empty()) return false;
  }
  return true;
}

int64_t KeyState::AllocSize() const {
  const size_t payload =
      raw_ ? raw_capacity_ * sizeof(RawEvent) : tier_count() * sizeof(TierRing);
  return static_cast<int64_t>(PayloadOffset(key_size_) + payload);
}

int64_t KeyState::Bytes() const {
  int64_t total = AllocSize();
  if (!raw_) {
    for (size_t i = 0; i < tier_count(); ++i) total += tier(i).HeapBytes();
  }
  return total;
}

}  // namespace tally
