#include "storage/window_plan.h"

#include <gtest/gtest.h>

#include <random>

namespace tally {
namespace {

const std::vector<TierSpec> kDefaultTiers = Policy().tiers;
// A "now" well past every tier's span, on no particular boundary.
constexpr int64_t kNow = 1'700'000'123'456;

int64_t CoveredSpan(const std::vector<TierSpec>& tiers,
                    const WindowPlan& plan) {
  int64_t span = 0;
  for (uint32_t i = 0; i < plan.run_count; ++i) {
    const TierRun& run = plan.runs[i];
    span += (int64_t{run.last_index} - run.first_index + 1) *
            tiers[run.tier].resolution_ms;
  }
  return span;
}

// The runs tile [covered_from, covered_to) exactly: contiguous, no overlap,
// every bucket retained by its tier.
void ExpectTiled(const std::vector<TierSpec>& tiers, int64_t now,
                 const WindowPlan& plan) {
  int64_t t = plan.covered_to_ms;
  for (uint32_t i = 0; i < plan.run_count; ++i) {
    const TierRun& run = plan.runs[i];
    const int64_t r = tiers[run.tier].resolution_ms;
    ASSERT_LE(run.first_index, run.last_index);
    EXPECT_EQ((int64_t{run.last_index} + 1) * r, t)
        << "run " << i << " is not contiguous";
    EXPECT_GE(int64_t{run.first_index} * r, RetainedStart(tiers[run.tier], now))
        << "run " << i << " reads an expired bucket";
    t = int64_t{run.first_index} * r;
  }
  EXPECT_EQ(t, plan.covered_from_ms);
  EXPECT_EQ(CoveredSpan(tiers, plan),
            plan.covered_to_ms - plan.covered_from_ms);
}

TEST(WindowPlanTest, LastMinuteUsesSecondBucketsAndIncludesTheCurrentSecond) {
  // "last 60 s at now" = [now - 59999, now + 1).
  WindowPlan plan = PlanWindow(kDefaultTiers, kNow, kNow - 59'999, kNow + 1);
  ExpectTiled(kDefaultTiers, kNow, plan);
  EXPECT_EQ(plan.covered_to_ms, (kNow / 1000 + 1) * 1000);  // near edge outward
  EXPECT_EQ(plan.covered_from_ms,
            (kNow - 59'999 + 999) / 1000 * 1000);  // far edge inward
  EXPECT_EQ(plan.resolution_ms, 1000);
}

TEST(WindowPlanTest, DayWindowUsesHoursInTheMiddleAndMinutesAtTheFarEdge) {
  const int64_t minute = kNow / kMinuteMs;
  const int64_t from = (minute - 1439) * kMinuteMs,
                to = (minute + 1) * kMinuteMs;
  WindowPlan plan = PlanWindow(kDefaultTiers, kNow, from, to);
  ExpectTiled(kDefaultTiers, kNow, plan);
  EXPECT_EQ(plan.covered_from_ms, from);
  EXPECT_EQ(plan.covered_to_ms, to);
  EXPECT_EQ(plan.resolution_ms, kMinuteMs);
  bool used_hours = false;
  for (uint32_t i = 0; i < plan.run_count; ++i)
    used_hours |= plan.runs[i].tier == 2;
  EXPECT_TRUE(used_hours);
  EXPECT_LE(plan.run_count, 3u);
}

TEST(WindowPlanTest, FarEdgeBeyondSecondRetentionFallsBackToMinutes) {
  // 3 h back: the 1 s tier keeps 2 h, so the far edge is at minute resolution.
  WindowPlan plan =
      PlanWindow(kDefaultTiers, kNow, kNow - 3 * kHourMs, kNow + 1);
  ExpectTiled(kDefaultTiers, kNow, plan);
  EXPECT_EQ(plan.resolution_ms, kMinuteMs);
  EXPECT_GE(plan.covered_from_ms, kNow - 3 * kHourMs);
  EXPECT_LT(plan.covered_from_ms, kNow - 3 * kHourMs + kMinuteMs);
}

TEST(WindowPlanTest, WindowOlderThanAllRetentionIsClampedToTheOldestBucket) {
  const int64_t oldest = RetainedStart(kDefaultTiers.back(), kNow);
  WindowPlan plan = PlanWindow(kDefaultTiers, kNow, 0, kNow + 1);
  ExpectTiled(kDefaultTiers, kNow, plan);
  EXPECT_EQ(plan.covered_from_ms, oldest);
  EXPECT_EQ(plan.resolution_ms, kDayMs);
}

TEST(WindowPlanTest, WindowEntirelyPastRetentionCoversNothing) {
  WindowPlan plan = PlanWindow(kDefaultTiers, kNow, 0, 1000);
  EXPECT_EQ(plan.run_count, 0u);
  EXPECT_EQ(plan.covered_from_ms, plan.covered_to_ms);
}

TEST(WindowPlanTest, WindowNarrowerThanItsResolutionCoversNothing) {
  // 10 s, 3 days ago: only hour buckets remain there, none fits inside.
  const int64_t from = (kNow - 3 * kDayMs) / kHourMs * kHourMs + 5000;
  WindowPlan plan = PlanWindow(kDefaultTiers, kNow, from, from + 10'000);
  EXPECT_EQ(plan.run_count, 0u);
  EXPECT_EQ(plan.covered_to_ms - plan.covered_from_ms, 0);
}

TEST(WindowPlanTest, EndingAtTheSecondTiersRetentionBoundaryStaysContiguous) {
  // `to` a few seconds inside the 1 s tier's retention: the near edge must
  // not leave a hole between second and minute buckets.
  const int64_t boundary = RetainedStart(kDefaultTiers[0], kNow);
  for (int64_t delta = 1; delta < 70'000; delta += 997) {
    WindowPlan plan = PlanWindow(kDefaultTiers, kNow, boundary - 5 * kHourMs,
                                 boundary + delta);
    ExpectTiled(kDefaultTiers, kNow, plan);
    EXPECT_LT(plan.covered_from_ms - (boundary - 5 * kHourMs),
              plan.resolution_ms);
  }
}

TEST(WindowPlanTest, RandomWindowsAreTiledAndWithinOneFarEdgeBucket) {
  std::mt19937_64 rng(7);
  const std::vector<TierSpec> tiers = {
      {1000, 60'000}, {10'000, 600'000}, {60'000, 3'600'000}};
  for (int i = 0; i < 20000; ++i) {
    const int64_t now = 10'000'000 + static_cast<int64_t>(rng() % 10'000'000);
    const int64_t from = now - static_cast<int64_t>(rng() % 5'000'000);
    const int64_t to = from + 1 + static_cast<int64_t>(rng() % 4'000'000);
    WindowPlan plan = PlanWindow(tiers, now, from, to);
    ExpectTiled(tiers, now, plan);
    if (HasFailure()) {
      ADD_FAILURE() << "now=" << now << " from=" << from << " to=" << to;
      return;
    }
    if (plan.run_count == 0) continue;
    if (from >= RetainedStart(tiers.back(), now)) {
      EXPECT_GE(plan.covered_from_ms, from);
      EXPECT_LT(plan.covered_from_ms - from, plan.resolution_ms);
    }
    EXPECT_GE(plan.covered_to_ms, to);
  }
}

}  // namespace
}  // namespace tally
