// Window planning: which buckets of which tiers answer a window [from, to).
//
// The covered interval is chosen as DESIGN.md says: coarse buckets in the
// middle, the finest still-retained buckets at the edges.
//  * Far edge (from): rounded *inward* to the resolution of the finest tier
//    that still retains `from` (the far-edge resolution), so the covered
//    interval starts within one far-edge bucket after `from`. A window older
//    than every tier's retention is clamped to the oldest retained bucket.
//  * Near edge (to): rounded *outward* to the resolution of the finest tier
//    retaining `to - 1`, so the current partial bucket (the event just added)
//    is always included; for the default policy that is < 1 s.
// Between the edges a walk from the near edge backwards takes, at each step,
// the coarsest bucket that is aligned, retained, and inside the interval.
// The result is a short list of runs (at most two per tier) of consecutive
// bucket indexes. Pure function of (tiers, now, from, to): no clock, no I/O.

#ifndef TALLY_STORAGE_WINDOW_PLAN_H_
#define TALLY_STORAGE_WINDOW_PLAN_H_

#include <cstdint>
#include <vector>

#include "storage/policy.h"

namespace tally {

// Largest time a bucket index can hold at 1 s resolution (year 2106).
inline constexpr int64_t kMaxTimeMs = int64_t{0xFFFFFFFF} * 1000;

struct TierRun {
  uint32_t tier;         // index into the policy's tiers
  uint32_t first_index;  // bucket indexes, inclusive
  uint32_t last_index;
};

struct WindowPlan {
  int64_t covered_from_ms =
      0;  // what the runs cover: [covered_from, covered_to)
  int64_t covered_to_ms = 0;
  int64_t resolution_ms = 0;  // resolution at the far edge
  uint32_t run_count = 0;
  TierRun runs[2 * kMaxTiers];  // near edge first
};

// The first bucket start still retained by a tier at `now_ms`: a tier keeps
// its current bucket and the buckets() - 1 before it.
inline int64_t RetainedStart(const TierSpec& tier, int64_t now_ms) {
  return (now_ms / tier.resolution_ms - tier.buckets() + 1) *
         tier.resolution_ms;
}

// REQUIRES: tiers valid (ValidatePolicy), 0 <= from_ms < to_ms <= kMaxTimeMs,
// now_ms >= 0.
WindowPlan PlanWindow(const std::vector<TierSpec>& tiers, int64_t now_ms,
                      int64_t from_ms, int64_t to_ms);

}  // namespace tally

#endif  // TALLY_STORAGE_WINDOW_PLAN_H_
