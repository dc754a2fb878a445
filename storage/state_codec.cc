#include "storage/state_codec.h"

#include <algorithm>

#include "storage/bucket.h"
#include "storage/hyperloglog.h"
#include "storage/window_plan.h"

namespace tally {

namespace {

constexpr std::string_view kContext = "engine snapshot";
// Ranks a HyperLogLog register can hold (1 + the 50 rank bits).
constexpr uint8_t kMaxRegister = 64 - HyperLogLog::kPrecision + 1;
constexpr int kRankBits = 64 - HyperLogLog::kPrecision;

// A key in an error message: printable bytes as they are, others as \xNN,
// at most 64 of them.
std::string Printable(std::string_view key) {
  std::string out;
  for (size_t i = 0; i < key.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (key.size() > 64) out += "...";
  return out;
}

// The hash whose Add() sets register `index` to exactly `rank` (1..51) in an
// empty sketch: the index in the top bits, then rank - 1 zeros and a one.
// HyperLogLog keeps its registers private, and this needs no access to them.
uint64_t HashForRegister(size_t index, uint8_t rank) {
  const uint64_t rest =
      rank > kRankBits ? 0 : uint64_t{1} << (kRankBits - rank);
  return (uint64_t{index} << kRankBits) | rest;
}

void EncodeBucket(const Bucket& b, std::string* out) {
  PutU32(out, b.index);
  PutI64(out, b.count);
  PutI64(out, b.sum);
  PutI64(out, b.min);
  PutI64(out, b.max);
  if (b.members == 0) {
    PutU8(out, kMembersNone);
  } else if (b.members == 1) {
    PutU8(out, kMembersInline);
    PutU64(out, b.member_data);
  } else if (b.is_sketch()) {
    PutU8(out, kMembersSketch);
    out->append(reinterpret_cast<const char*>(b.sketch()->registers()),
                HyperLogLog::kRegisters);
  } else {
    PutU8(out, kMembersArray);
    PutU32(out, b.members);
    const uint64_t* array = b.member_array();
    for (uint32_t i = 0; i < b.members; ++i) PutU64(out, array[i]);
  }
}

// Decodes a key record. Owns the partially built state: on failure it is
// destroyed and the caller's counters are left as they were.
class KeyDecoder {
 public:
  KeyDecoder(ByteReader* reader, const PolicySet& policies)
      : r_(reader), policies_(policies) {}
  ~KeyDecoder() {
    if (state_ != nullptr) KeyState::Destroy(state_, &bytes_);
  }

  Result<KeyState*> Decode(int64_t* bytes, uint64_t* buckets) {
    Status s = DecodeKey();
    if (!s.ok()) return s;
    *bytes += bytes_;
    *buckets += buckets_;
    KeyState* state = state_;
    state_ = nullptr;
    return state;
  }

 private:
  Status Fail(std::string_view what) const {
    std::string msg(what);
    if (!key_.empty()) msg += " (key '" + Printable(key_) + "')";
    return CorruptionAt(kContext, msg, r_->offset());
  }

  Status DecodeKey();
  Status CheckTiers(const Policy& policy, std::string_view stored_name,
                    const TierSpec* tiers, uint8_t tier_count) const;
  Status DecodeRaw(const Policy& policy, bool track_distinct, bool keep);
  Status DecodeRing(TierRing& ring, bool track_distinct, bool keep);
  Status DecodeMembers(Bucket& b, bool track_distinct, bool keep);

  ByteReader* r_;
  const PolicySet& policies_;
  std::string_view key_;
  KeyState* state_ = nullptr;
  int64_t bytes_ = 0;
  uint64_t buckets_ = 0;
};

Status KeyDecoder::DecodeKey() {
  uint16_t key_size;
  if (!r_->U16(&key_size)) return Fail("truncated key size");
  if (key_size == 0 || key_size > kMaxKeySize) {
    return Fail("key size " + std::to_string(key_size) + " outside [1, " +
                std::to_string(kMaxKeySize) + "]");
  }
  if (!r_->Bytes(key_size, &key_)) return Fail("truncated key");
  uint16_t name_size;
  std::string_view name;
  if (!r_->U16(&name_size) || !r_->Bytes(name_size, &name)) {
    return Fail("truncated policy name");
  }
  uint8_t flags, tier_count;
  if (!r_->U8(&flags) || !r_->U8(&tier_count)) {
    return Fail("truncated key flags");
  }
  if ((flags & ~(kKeyFlagRaw | kKeyFlagTrackDistinct)) != 0) {
    return Fail("unknown key flags " + std::to_string(flags));
  }
  if (tier_count == 0 || tier_count > kMaxTiers) {
    return Fail("tier count " + std::to_string(tier_count) + " outside [1, " +
                std::to_string(kMaxTiers) + "]");
  }
  TierSpec tiers[kMaxTiers];
  for (uint8_t k = 0; k < tier_count; ++k) {
    if (!r_->I64(&tiers[k].resolution_ms) || !r_->I64(&tiers[k].retention_ms)) {
      return Fail("truncated tier specs");
    }
  }
  const Policy& policy = policies_.Match(key_);
  Status s = CheckTiers(policy, name, tiers, tier_count);
  if (!s.ok()) return s;
  const bool track_distinct = (flags & kKeyFlagTrackDistinct) != 0;
  // A policy that stopped tracking distinct members can never be asked for
  // them again: their bytes would be dead weight.
  const bool keep = track_distinct && policy.track_distinct;
  if ((flags & kKeyFlagRaw) != 0)
    return DecodeRaw(policy, track_distinct, keep);
  state_ = KeyState::CreateTiered(&policy, key_, &bytes_);
  for (size_t k = 0; k < state_->tier_count(); ++k) {
    s = DecodeRing(state_->tier(k), track_distinct, keep);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status KeyDecoder::CheckTiers(const Policy& policy,
                              std::string_view stored_name,
                              const TierSpec* tiers, uint8_t tier_count) const {
  if (std::equal(tiers, tiers + tier_count, policy.tiers.begin(),
                 policy.tiers.end())) {
    return Status::Ok();
  }
  // Only now is it worth checking that the stored tiers make sense at all.
  Policy stored;
  stored.name = std::string(stored_name);
  stored.tiers.assign(tiers, tiers + tier_count);
  if (!ValidatePolicy(stored).ok()) return Fail("invalid tier specs");
  std::string msg = "key '" + Printable(key_) + "': policy '" + policy.name +
                    "''s tiers changed since the snapshot: snapshot has " +
                    FormatTiers(stored.tiers);
  if (stored.name != policy.name) {
    msg += " (policy '" + Printable(stored.name) + "')";
  }
  msg += ", the configuration has " + FormatTiers(policy.tiers) +
         "; rebucketing is not supported";
  return Status::InvalidArgument(msg);
}

Status KeyDecoder::DecodeRaw(const Policy& policy, bool track_distinct,
                             bool keep) {
  uint8_t capacity, size;
  if (!r_->U8(&capacity) || !r_->U8(&size)) return Fail("truncated raw key");
  if (capacity == 0 || capacity > kMaxRawEvents ||
      (capacity & (capacity - 1)) != 0 || size > capacity) {
    return Fail("raw capacity " + std::to_string(capacity) + " / size " +
                std::to_string(size) + " invalid");
  }
  if (size_t{size} * sizeof(RawEvent) > r_->remaining()) {
    return Fail("truncated raw events");
  }
  state_ = KeyState::CreateRaw(&policy, key_, capacity, &bytes_);
  for (uint8_t i = 0; i < size; ++i) {
    RawEvent e;
    if (!r_->I64(&e.time_ms) || !r_->I64(&e.count) || !r_->I64(&e.amount) ||
        !r_->U64(&e.member)) {
      return Fail("truncated raw event");
    }
    if (e.time_ms < 0 || e.time_ms >= kMaxTimeMs) {
      return Fail("raw event time " + std::to_string(e.time_ms) +
                  " out of range");
    }
    if (e.count < 1) return Fail("raw event count < 1");
    if (e.member != 0 && !track_distinct) {
      return Fail("raw event member without track_distinct");
    }
    if (!keep) e.member = 0;
    state_->AppendRaw(e);
  }
  return Status::Ok();
}

Status KeyDecoder::DecodeRing(TierRing& ring, bool track_distinct, bool keep) {
  uint32_t size;
  uint8_t cap_log2;
  if (!r_->U32(&size) || !r_->U8(&cap_log2)) return Fail("truncated ring");
  if (size == 0) {
    if (cap_log2 != 0) return Fail("empty ring with a capacity");
    return Status::Ok();
  }
  // The smallest bucket record is 4 + 4 * 8 + 1 bytes: a size the input
  // cannot hold is refused before anything is allocated.
  constexpr size_t kMinBucketBytes = 37;
  if (size > r_->remaining() / kMinBucketBytes) {
    return Fail("ring of " + std::to_string(size) +
                " buckets larger than the input");
  }
  // Rings double when full and halve to twice their size when a quarter
  // full, so a live ring's capacity is below four times its size.
  if (cap_log2 > 27 || (uint64_t{1} << cap_log2) < size ||
      (uint64_t{1} << cap_log2) > uint64_t{4} * size) {
    return Fail("ring capacity 2^" + std::to_string(cap_log2) +
                " does not fit " + std::to_string(size) + " buckets");
  }
  ring.Reserve(cap_log2, &bytes_);
  for (uint32_t i = 0; i < size; ++i) {
    uint32_t index;
    int64_t count, sum, min, max;
    if (!r_->U32(&index) || !r_->I64(&count) || !r_->I64(&sum) ||
        !r_->I64(&min) || !r_->I64(&max)) {
      return Fail("truncated bucket");
    }
    if (i > 0 && index <= ring.back().index) {
      return Fail("bucket indexes not strictly increasing");
    }
    if (count < 1 || min > max) return Fail("bucket aggregates invalid");
    Bucket* b = ring.FindOrInsert(index, &bytes_);  // appends: reserved
    ++buckets_;
    b->count = count;
    b->sum = sum;
    b->min = min;
    b->max = max;
    Status s = DecodeMembers(*b, track_distinct, keep);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status KeyDecoder::DecodeMembers(Bucket& b, bool track_distinct, bool keep) {
  uint8_t kind;
  if (!r_->U8(&kind)) return Fail("truncated member kind");
  if (kind == kMembersNone) return Status::Ok();
  if (kind > kMembersSketch) {
    return Fail("unknown member kind " + std::to_string(kind));
  }
  if (!track_distinct) return Fail("bucket members without track_distinct");
  if (kind == kMembersInline) {
    uint64_t h;
    if (!r_->U64(&h)) return Fail("truncated member");
    if (h == 0) return Fail("member hash 0");
    if (keep) {
      b.members = 1;
      b.member_data = h;
    }
    return Status::Ok();
  }
  if (kind == kMembersSketch) {
    std::string_view registers;
    if (!r_->Bytes(HyperLogLog::kRegisters, &registers)) {
      return Fail("truncated sketch");
    }
    for (char c : registers) {
      if (static_cast<uint8_t>(c) > kMaxRegister) {
        return Fail("sketch register above " + std::to_string(kMaxRegister));
      }
    }
    if (!keep) return Status::Ok();
    HyperLogLog* sketch = SetBucketSketch(b, &bytes_);
    for (size_t i = 0; i < HyperLogLog::kRegisters; ++i) {
      const auto rank = static_cast<uint8_t>(registers[i]);
      if (rank != 0) sketch->Add(HashForRegister(i, rank));
    }
    return Status::Ok();
  }
  uint32_t n;
  if (!r_->U32(&n)) return Fail("truncated member count");
  if (n < 2 || n > (uint32_t{1} << 30) || n > r_->remaining() / 8) {
    return Fail("member count " + std::to_string(n) + " invalid");
  }
  uint64_t prev = 0;
  uint64_t* array = keep ? SetBucketMemberArray(b, n, &bytes_) : nullptr;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t h;
    if (!r_->U64(&h)) return Fail("truncated members");
    if (h <= prev) return Fail("members not sorted, or 0");
    prev = h;
    if (array != nullptr) array[i] = h;
  }
  return Status::Ok();
}

}  // namespace

Status CorruptionAt(std::string_view context, std::string_view what,
                    size_t offset) {
  return Status(Code::kCorruption, std::string(context) + ": " +
                                       std::string(what) + " at byte " +
                                       std::to_string(offset));
}

size_t BeginState(std::string* out) {
  const size_t offset = out->size();
  PutU8(out, kStateFormatVersion);
  PutI64(out, 0);
  PutU64(out, 0);
  return offset;
}

void PatchStateHeader(std::string* out, size_t header_offset,
                      int64_t watermark_ms, uint64_t key_count) {
  std::string fields;
  PutI64(&fields, watermark_ms);
  PutU64(&fields, key_count);
  out->replace(header_offset + 1, fields.size(), fields);
}

Status ReadStateHeader(ByteReader* reader, uint8_t* version,
                       int64_t* watermark_ms, uint64_t* key_count) {
  if (!reader->U8(version)) {
    return CorruptionAt(kContext, "empty input", reader->offset());
  }
  if (*version != 1 && *version != kStateFormatVersion) {
    return CorruptionAt(
        kContext, "unknown format version " + std::to_string(*version), 0);
  }
  if (!reader->I64(watermark_ms) || !reader->U64(key_count)) {
    return CorruptionAt(kContext, "truncated header", reader->offset());
  }
  if (*watermark_ms < 0 || *watermark_ms > kMaxTimeMs) {
    return CorruptionAt(
        kContext,
        "watermark " + std::to_string(*watermark_ms) + " out of range", 1);
  }
  return Status::Ok();
}

void EncodeKeyState(const KeyState& state, std::string* out) {
  const Policy& policy = state.policy();
  const std::string_view key = state.key();
  PutU16(out, static_cast<uint16_t>(key.size()));
  out->append(key);
  const size_t name_size = std::min<size_t>(policy.name.size(), UINT16_MAX);
  PutU16(out, static_cast<uint16_t>(name_size));
  out->append(policy.name.data(), name_size);
  PutU8(out, (state.is_raw() ? kKeyFlagRaw : 0) |
                 (policy.track_distinct ? kKeyFlagTrackDistinct : 0));
  PutU8(out, static_cast<uint8_t>(policy.tiers.size()));
  for (const TierSpec& spec : policy.tiers) {
    PutI64(out, spec.resolution_ms);
    PutI64(out, spec.retention_ms);
  }
  if (state.is_raw()) {
    PutU8(out, static_cast<uint8_t>(state.raw_capacity()));
    PutU8(out, static_cast<uint8_t>(state.raw_size()));
    for (uint32_t i = 0; i < state.raw_size(); ++i) {
      const RawEvent& e = state.raw_events()[i];
      PutI64(out, e.time_ms);
      PutI64(out, e.count);
      PutI64(out, e.amount);
      PutU64(out, e.member);
    }
    return;
  }
  for (size_t k = 0; k < state.tier_count(); ++k) {
    const TierRing& ring = state.tier(k);
    PutU32(out, ring.size());
    PutU8(out, ring.empty()
                   ? 0
                   : static_cast<uint8_t>(std::countr_zero(ring.capacity())));
    for (uint32_t i = 0; i < ring.size(); ++i) EncodeBucket(ring.at(i), out);
  }
}

Result<KeyState*> DecodeKeyState(ByteReader* reader, const PolicySet& policies,
                                 int64_t* bytes, uint64_t* buckets) {
  KeyDecoder decoder(reader, policies);
  return decoder.Decode(bytes, buckets);
}

}  // namespace tally
