#include "storage/window_plan.h"

#include <algorithm>
#include <limits>

namespace tally {

namespace {

int64_t CeilTo(int64_t t, int64_t r) { return (t + r - 1) / r * r; }

// Walks backwards from `ct` towards `cf` (see the header). Stops early only
// when no tier can extend the interval, which valid policies make rare.
WindowPlan Walk(const std::vector<TierSpec>& tiers, const int64_t* start,
                int64_t ct, int64_t cf, int64_t near_resolution) {
  const int n = static_cast<int>(tiers.size());
  WindowPlan plan;
  plan.covered_to_ms = ct;
  plan.resolution_ms = near_resolution;
  uint32_t dead = 0;  // tiers that can no longer be used further back
  int64_t t = ct;
  while (t > cf) {
    int k = -1;
    for (int j = n - 1; j >= 0; --j) {
      if (dead & (1u << j)) continue;
      const int64_t r = tiers[j].resolution_ms;
      if (t % r != 0) continue;
      // Once a tier's aligned bucket falls before `cf` or out of retention,
      // every earlier one does too.
      if (t - r < cf || t - r < start[j]) {
        dead |= 1u << j;
        continue;
      }
      k = j;
      break;
    }
    if (k < 0) break;
    const int64_t r = tiers[k].resolution_ms;
    int64_t steps = std::min((t - cf) / r, (t - start[k]) / r);
    // Hand over to the next coarser live tier at its next boundary.
    for (int c = k + 1; c < n; ++c) {
      if (dead & (1u << c)) continue;
      steps = std::min(steps, (t % tiers[c].resolution_ms) / r);
      break;
    }
    const int64_t from = t - steps * r;
    TierRun* last = plan.run_count ? &plan.runs[plan.run_count - 1] : nullptr;
    if (last != nullptr && last->tier == static_cast<uint32_t>(k)) {
      last->first_index =
          static_cast<uint32_t>(from / r);  // a coarser tier died here
    } else {
      plan.runs[plan.run_count++] = {static_cast<uint32_t>(k),
                                     static_cast<uint32_t>(from / r),
                                     static_cast<uint32_t>(t / r - 1)};
    }
    plan.resolution_ms = r;
    t = from;
  }
  plan.covered_from_ms = t;
  return plan;
}

}  // namespace

WindowPlan PlanWindow(const std::vector<TierSpec>& tiers, int64_t now_ms,
                      int64_t from_ms, int64_t to_ms) {
  const int n = static_cast<int>(tiers.size());
  int64_t start[kMaxTiers];
  for (int k = 0; k < n; ++k) start[k] = RetainedStart(tiers[k], now_ms);

  // Far edge: the finest tier that still retains `from`, rounded inward.
  int64_t cf = -1;
  int64_t far_resolution = tiers[n - 1].resolution_ms;
  for (int k = 0; k < n && cf < 0; ++k) {
    if (start[k] <= from_ms) {
      far_resolution = tiers[k].resolution_ms;
      cf = CeilTo(from_ms, far_resolution);
    }
  }
  if (cf < 0) cf = start[n - 1];  // older than all retention: clamp

  // Near edge: the finest tier retaining `to - 1`, rounded outward. If its
  // walk cannot reach `cf` (the window ends right at that tier's retention
  // boundary), a coarser near edge is tried; the widest coverage wins.
  WindowPlan best;
  best.covered_from_ms = best.covered_to_ms = to_ms;
  best.resolution_ms = far_resolution;
  bool have_best = false;
  for (int k = 0; k < n; ++k) {
    if (start[k] > to_ms - 1) continue;
    const int64_t ct = CeilTo(to_ms, tiers[k].resolution_ms);
    if (cf >= ct) break;  // nothing to cover at this or any coarser edge
    WindowPlan plan = Walk(tiers, start, ct, cf, tiers[k].resolution_ms);
    if (plan.covered_from_ms == cf) {
      // The far edge was rounded at the far tier's resolution, even when the
      // last bucket summed there happens to be a finer one.
      plan.resolution_ms = far_resolution;
      return plan;
    }
    if (!have_best || plan.covered_from_ms < best.covered_from_ms) {
      best = plan;
      have_best = true;
    }
  }
  return best;
}

}  // namespace tally
