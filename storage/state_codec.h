// State codec: the byte format of the engine's keys in snapshots, which is
// also the canonical encoding Engine::Digest() hashes, and the little-endian
// readers and writers the snapshot formats share (DedupeTable's too).
//
// Engine state (Engine::SerializeTo / LoadFrom). Every integer is
// little-endian; u = unsigned, i = two's complement; xN = repeated N times.
//
//   state   = version u8 (1 or 2) | watermark_ms i64 | key_count u64
//           | [version 2: policy_set] | key x key_count
//             watermark_ms: the latest "now" of any shard (a floor for every
//             shard's clock after loading), in [0, kMaxTimeMs].
//             policy_set (storage/policy_codec.h): the policies in force at
//             the cut; version 1 (before policy reloads) has none, and its
//             keys take the configured policies.
//   key     = key_size u16 (1..256) | key bytes
//           | name_size u16 | policy name (as it was; informational)
//           | flags u8: bit 0 raw, bit 1 track_distinct (others 0)
//           | tier_count u8 (1..8) | (resolution_ms i64, retention_ms i64)
//             x tier_count: the policy's tiers as they were
//           | raw ? raw_body : ring x tier_count
//   raw_body = capacity u8 (1, 2, 4, .., kMaxRawEvents) | size u8 (<= capacity)
//            | (time_ms i64 in [0, kMaxTimeMs), count i64 >= 1, amount i64,
//               member u64 (hash; 0 = none)) x size, in arrival order
//   ring    = size u32 | cap_log2 u8 | bucket x size
//             size == 0: cap_log2 == 0 (no buffer); else size <= 2^cap_log2
//             <= 4 * size. Buckets strictly increasing by index.
//   bucket  = index u32 | count i64 (>= 1) | sum i64 | min i64 | max i64
//             (min <= max) | member_kind u8 | members
//   members = kind 0: nothing
//             kind 1: hash u64 (!= 0)
//             kind 2: n u32 (>= 2) | hash u64 x n, strictly increasing, != 0
//             kind 3: HyperLogLog: 16384 registers u8, each <= 51 (plain)
//
// Member hashes (raw or in buckets) appear only when track_distinct is set.
// The capacities (raw capacity, ring cap_log2) are stored because the
// engine's byte accounting follows them and they depend on the key's history
// (a ring halves only when a quarter full); a ring's head position is not
// stored: buckets are written in index order.
//
// Thread safety: free functions over caller-owned data; a KeyState must be
// guarded by its shard's mutex while encoded.

#ifndef TALLY_STORAGE_STATE_CODEC_H_
#define TALLY_STORAGE_STATE_CODEC_H_

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "protocol/result.h"
#include "storage/key_state.h"
#include "storage/policy.h"

namespace tally {

// DO NOT CHANGE: persisted (docs/wal_format.md).
// Version written; ReadStateHeader also reads version 1.
inline constexpr uint8_t kStateFormatVersion = 2;
// DO NOT CHANGE: persisted (docs/wal_format.md). Key flags.
inline constexpr uint8_t kKeyFlagRaw = 1;
inline constexpr uint8_t kKeyFlagTrackDistinct = 2;
// DO NOT CHANGE: persisted (docs/wal_format.md). Bucket member kinds.
inline constexpr uint8_t kMembersNone = 0;
inline constexpr uint8_t kMembersInline = 1;
inline constexpr uint8_t kMembersArray = 2;
inline constexpr uint8_t kMembersSketch = 3;
// Size of the state header before the keys.
inline constexpr size_t kStateHeaderSize = 1 + 8 + 8;

// ---- Little-endian writers: append to *out. ----

template <typename T>
inline void PutLittleEndian(std::string* out, T v) {
  static_assert(std::is_integral_v<T>);
  using U = std::make_unsigned_t<T>;
  U u = static_cast<U>(v);
  char buf[sizeof(T)];
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(buf, &u, sizeof(T));
  } else {
    for (size_t i = 0; i < sizeof(T); ++i) {
      buf[i] = static_cast<char>(u >> (8 * i));
    }
  }
  out->append(buf, sizeof(T));
}
inline void PutU8(std::string* out, uint8_t v) { out->push_back(char(v)); }
inline void PutU16(std::string* out, uint16_t v) { PutLittleEndian(out, v); }
inline void PutU32(std::string* out, uint32_t v) { PutLittleEndian(out, v); }
inline void PutU64(std::string* out, uint64_t v) { PutLittleEndian(out, v); }
inline void PutI64(std::string* out, int64_t v) { PutLittleEndian(out, v); }

// ---- A bounds-checked little-endian reader over untrusted bytes. ----
// Every read fails (returns false, consuming nothing) when too few bytes
// remain, so callers check a count against remaining() before allocating.
class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}

  size_t remaining() const { return data_.size() - pos_; }
  size_t offset() const { return pos_; }

  bool U8(uint8_t* v) { return Get(v); }
  bool U16(uint16_t* v) { return Get(v); }
  bool U32(uint32_t* v) { return Get(v); }
  bool U64(uint64_t* v) { return Get(v); }
  bool I64(int64_t* v) { return Get(v); }
  // The next n bytes, in place.
  bool Bytes(size_t n, std::string_view* v) {
    if (n > remaining()) return false;
    *v = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  template <typename T>
  bool Get(T* v) {
    if (sizeof(T) > remaining()) return false;
    using U = std::make_unsigned_t<T>;
    U u = 0;
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(&u, data_.data() + pos_, sizeof(T));
    } else {
      for (size_t i = 0; i < sizeof(T); ++i) {
        u |= static_cast<U>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
      }
    }
    *v = static_cast<T>(u);
    pos_ += sizeof(T);
    return true;
  }

  std::string_view data_;
  size_t pos_ = 0;
};

// CORRUPTION: "<what> ... at byte <offset>", prefixed by `context`.
Status CorruptionAt(std::string_view context, std::string_view what,
                    size_t offset);

// ---- Engine state. ----

// Appends a header with placeholder watermark and key count; returns the
// offset of the header for PatchStateHeader.
size_t BeginState(std::string* out);
// Fills in the header begun at `header_offset`.
void PatchStateHeader(std::string* out, size_t header_offset,
                      int64_t watermark_ms, uint64_t key_count);
// Reads and checks the header.
// *version: 1 (keys follow) or 2 (a policy set, then the keys).
Status ReadStateHeader(ByteReader* reader, uint8_t* version,
                       int64_t* watermark_ms, uint64_t* key_count);

// Appends the key record of `state` (see the top of this file).
void EncodeKeyState(const KeyState& state, std::string* out);

// Decodes one key record into a new KeyState whose policy is
// policies.Match(key). Adds the state's bytes to *bytes and its buckets to
// *buckets. On failure nothing is allocated and the counters are unchanged:
// CORRUPTION for structural problems, INVALID_ARGUMENT when the key's
// current policy has other tiers than the snapshot's.
Result<KeyState*> DecodeKeyState(ByteReader* reader, const PolicySet& policies,
                                 int64_t* bytes, uint64_t* buckets);

}  // namespace tally

#endif  // TALLY_STORAGE_STATE_CODEC_H_
