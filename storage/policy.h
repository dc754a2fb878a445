// Policies: how a key's history is kept. A policy is a list of retention tiers
// (resolution x retention), whether distinct members are tracked, and the
// window of event times it accepts. A key's policy is the configured one with
// the longest prefix of the key, else the default.
//
// Thread safety: Policy and PolicySet are immutable after creation and may be
// read from any thread.

#ifndef TALLY_STORAGE_POLICY_H_
#define TALLY_STORAGE_POLICY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"
#include "storage/duration.h"

namespace tally {

inline constexpr size_t kMaxTiers = 8;
// A tier's ring holds at most this many buckets (1s x 48d); bounds per-key
// memory.
inline constexpr int64_t kMaxBucketsPerTier = int64_t{1} << 22;

// Longest retention a tier may have (100 years); keeps time arithmetic far
// from int64's limits.
inline constexpr int64_t kMaxRetentionMs = int64_t{36500} * 24 * 3600 * 1000;

struct TierSpec {
  int64_t resolution_ms = 0;  // bucket width; a whole number of seconds
  int64_t retention_ms =
      0;  // how far back buckets are kept; multiple of resolution
  int64_t buckets() const { return retention_ms / resolution_ms; }
  bool operator==(const TierSpec&) const = default;
};

struct Policy {
  std::string name = "default";
  std::string prefix;  // empty for the default policy
  std::vector<TierSpec> tiers = {{kSecondMs, 2 * kHourMs},
                                 {kMinuteMs, 48 * kHourMs},
                                 {kHourMs, 35 * kDayMs},
                                 {kDayMs, 400 * kDayMs}};
  bool track_distinct = true;
  int64_t max_lateness_ms = 48 * kHourMs;  // oldest accepted event: now - this
  int64_t max_skew_ms = 5 * kSecondMs;     // newest accepted event: now + this
  bool operator==(const Policy&) const = default;
};

// Checks the rules the window planner relies on (docs/design.md, "Tiers"):
// 1..8 tiers; resolutions whole seconds, strictly increasing, each dividing the
// next; retention a multiple of resolution, at most kMaxBucketsPerTier buckets;
// each tier keeps at least one bucket beyond the span of the finer one
// (retention[i] - resolution[i] >= retention[i-1]); lateness and skew >= 0,
// skew <= 1 day.
Status ValidatePolicy(const Policy& policy);

// Parses "1s x 2h, 1m x 48h, 1h x 35d" (spaces optional, 'x' or 'X').
// Validates the tier rules above.
Result<std::vector<TierSpec>> ParseTiers(std::string_view text);
// The inverse of ParseTiers: "1s x 2h, 1m x 48h".
std::string FormatTiers(const std::vector<TierSpec>& tiers);

class PolicySet {
 public:
  // A set holding only the built-in default policy.
  PolicySet();
  // Validates every policy; prefixed policies need distinct non-empty prefixes
  // and distinct names.
  static Result<PolicySet> Create(Policy default_policy,
                                  std::vector<Policy> prefixed);

  // The policy with the longest prefix of `key`, else the default. The
  // reference stays valid for the lifetime of this PolicySet.
  const Policy& Match(std::string_view key) const;
  const Policy& default_policy() const { return *default_; }
  // Every policy, the default first.
  std::vector<const Policy*> All() const;

 private:
  std::shared_ptr<const Policy> default_;
  std::vector<std::shared_ptr<const Policy>> prefixed_;  // longest prefix first
};

}  // namespace tally

#endif  // TALLY_STORAGE_POLICY_H_
