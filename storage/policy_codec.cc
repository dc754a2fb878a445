#include "storage/policy_codec.h"

#include <algorithm>
#include <limits>
#include <map>
#include <utility>
#include <vector>

namespace tally {

namespace {

constexpr uint8_t kFlagTrackDistinct = 1;

void PutString16(std::string* out, std::string_view s) {
  const size_t n = std::min<size_t>(s.size(), UINT16_MAX);
  PutU16(out, static_cast<uint16_t>(n));
  out->append(s.data(), n);
}

bool GetString16(ByteReader* r, std::string* s) {
  uint16_t n;
  std::string_view bytes;
  if (!r->U16(&n) || !r->Bytes(n, &bytes)) return false;
  s->assign(bytes);
  return true;
}

void EncodePolicy(const Policy& p, std::string* out) {
  PutString16(out, p.name);
  PutString16(out, p.prefix);
  PutU8(out, p.track_distinct ? kFlagTrackDistinct : 0);
  PutI64(out, p.max_lateness_ms);
  PutI64(out, p.max_skew_ms);
  PutU8(out, static_cast<uint8_t>(p.tiers.size()));
  for (const TierSpec& t : p.tiers) {
    PutI64(out, t.resolution_ms);
    PutI64(out, t.retention_ms);
  }
}

// False when truncated or malformed; *why says what.
bool DecodePolicy(ByteReader* r, Policy* p, std::string* why) {
  uint8_t flags, tier_count;
  if (!GetString16(r, &p->name) || !GetString16(r, &p->prefix) ||
      !r->U8(&flags) || !r->I64(&p->max_lateness_ms) ||
      !r->I64(&p->max_skew_ms) || !r->U8(&tier_count)) {
    *why = "truncated policy";
    return false;
  }
  if ((flags & ~kFlagTrackDistinct) != 0) {
    *why = "unknown policy flags " + std::to_string(flags);
    return false;
  }
  p->track_distinct = (flags & kFlagTrackDistinct) != 0;
  if (tier_count == 0 || tier_count > kMaxTiers) {
    *why = "policy with " + std::to_string(tier_count) + " tiers";
    return false;
  }
  p->tiers.assign(tier_count, TierSpec{});
  for (TierSpec& t : p->tiers) {
    if (!r->I64(&t.resolution_ms) || !r->I64(&t.retention_ms)) {
      *why = "truncated tiers";
      return false;
    }
  }
  return true;
}

}  // namespace

void EncodePolicySet(const PolicySet& policies, std::string* out) {
  const std::vector<const Policy*> all = policies.All();
  PutU16(out, static_cast<uint16_t>(all.size()));
  for (const Policy* p : all) EncodePolicy(*p, out);
}

Result<PolicySet> DecodePolicySet(ByteReader* reader,
                                  std::string_view context) {
  const size_t start = reader->offset();
  uint16_t count;
  if (!reader->U16(&count)) {
    return CorruptionAt(context, "truncated policy count", start);
  }
  if (count == 0 || count > 1 + kMaxPolicies) {
    return CorruptionAt(context, std::to_string(count) + " policies", start);
  }
  Policy default_policy;
  std::vector<Policy> prefixed;
  for (uint16_t i = 0; i < count; ++i) {
    Policy p;
    std::string why;
    if (!DecodePolicy(reader, &p, &why)) {
      return CorruptionAt(context, why, reader->offset());
    }
    if ((i == 0) != p.prefix.empty()) {
      return CorruptionAt(context,
                          i == 0 ? "the default policy has a prefix"
                                 : "a prefixed policy without a prefix",
                          reader->offset());
    }
    if (i == 0) {
      default_policy = std::move(p);
    } else {
      prefixed.push_back(std::move(p));
    }
  }
  Result<PolicySet> set =
      PolicySet::Create(std::move(default_policy), std::move(prefixed));
  if (!set.ok()) {
    return CorruptionAt(
        context, "invalid policies: " + std::string(set.status().message()),
        start);
  }
  return set;
}

bool SamePolicies(const PolicySet& a, const PolicySet& b) {
  const std::vector<const Policy*> pa = a.All(), pb = b.All();
  if (pa.size() != pb.size()) return false;
  std::map<std::string_view, const Policy*> by_name;
  for (const Policy* p : pb) by_name.emplace(p->name, p);
  return std::all_of(pa.begin(), pa.end(), [&](const Policy* p) {
    auto it = by_name.find(p->name);
    return it != by_name.end() && *it->second == *p;
  });
}

}  // namespace tally
