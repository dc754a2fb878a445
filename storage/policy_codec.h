// The byte format of a policy set, persisted in two places: the engine state
// of a snapshot (the policies in force at its cut) and the WAL's kPolicies
// record (a reload, applied at its LSN). Replay judges every event with the
// policies the live server judged it with, whatever the configuration of the
// restart says (docs/wal_format.md, "Policies").
//
//   policy_set = count u16 (1..1 + kMaxPolicies) | policy x count
//                the default policy first
//   policy     = name_size u16 | name | prefix_size u16 | prefix
//              | flags u8: bit 0 track_distinct (others 0)
//              | max_lateness_ms i64 | max_skew_ms i64
//              | tier_count u8 (1..8) | (resolution_ms i64, retention_ms i64)
//                x tier_count
//
// DO NOT CHANGE: persisted (docs/wal_format.md). Decoding validates
// everything PolicySet::Create does; the input is never trusted.
//
// Thread safety: free functions over caller-owned data.

#ifndef TALLY_STORAGE_POLICY_CODEC_H_
#define TALLY_STORAGE_POLICY_CODEC_H_

#include <string>
#include <string_view>

#include "protocol/result.h"
#include "storage/policy.h"
#include "storage/state_codec.h"

namespace tally {

// More policies than any configuration needs; bounds a decoder's work.
inline constexpr size_t kMaxPolicies = 4096;

void EncodePolicySet(const PolicySet& policies, std::string* out);
// Reads one policy set at the reader's position. CORRUPTION (naming
// `context`) when it does not parse or validate.
Result<PolicySet> DecodePolicySet(ByteReader* reader, std::string_view context);

// Whether two sets hold the same policies (names, prefixes, tiers, limits),
// whatever their order.
bool SamePolicies(const PolicySet& a, const PolicySet& b);

}  // namespace tally

#endif  // TALLY_STORAGE_POLICY_CODEC_H_
