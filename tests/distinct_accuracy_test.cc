// Measures the accuracy of distinct counts over windows that merge many
// buckets, at 1k, 10k, 100k and 1M distinct members.
//
// For each size n, a fresh key of the default policy (1s x 2h, 1m x 48h,
// 1h x 35d, 1d x 400d) receives n distinct members spread evenly over the last
// 23 hours, and 10 % of them a second time elsewhere in those 23 hours. Three
// windows are asked for distinct + count: the last 24 hours (hour buckets in
// the middle, minute buckets at the edges), the last 90 minutes (second and
// minute buckets) and an absolute 6 hours in the middle. Each answer is
// compared with the truth over the interval the engine reports it covered,
// computed from a record of every (time, member) added:
//  * count is always exact;
//  * distinct is exact exactly when the truth is within distinct_exact_limit;
//  * otherwise it is within 4 standard errors of the truth (the member hash
//    is fixed, so the figures are deterministic), reports that error, and
//    equals the estimate of one sketch fed the true members: merging bucket
//    sketches and exact buckets loses nothing beyond the sketch's own error.
// The suite prints a table of the figures (for docs/) and records each
// relative error as a test property.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "storage/clock.h"
#include "storage/engine.h"
#include "storage/hyperloglog.h"
#include "storage/policy.h"

namespace tally {
namespace {

// The engine's clock for the whole test: not aligned to any bucket width.
constexpr int64_t kNowMs = 1'700'012'345'678;
// Members are spread over [kNowMs - kSpanMs, kNowMs).
constexpr int64_t kSpanMs = 23 * kHourMs;

struct Event {
  int64_t t;
  uint32_t member;  // "m<member>"
};

// One line of the printed table.
struct Row {
  int64_t n;
  std::string window;
  uint64_t truth;
  uint64_t estimate;
  double relative_error;  // (estimate - truth) / truth
  bool exact;
};

std::string MemberName(uint32_t member) { return "m" + std::to_string(member); }

// The truth over [from, to) of `events` (sorted by time), and the sketch of
// its members: what an estimate must equal, since merging sketches gives
// exactly the sketch of the union.
struct Truth {
  int64_t count = 0;
  uint64_t distinct = 0;
  HyperLogLog sketch;
};

Truth TruthOver(const std::vector<Event>& events, uint32_t members,
                int64_t from, int64_t to) {
  Truth truth;
  std::vector<bool> seen(members, false);
  auto it = std::lower_bound(events.begin(), events.end(), from,
                             [](const Event& e, int64_t t) { return e.t < t; });
  for (; it != events.end() && it->t < to; ++it) {
    ++truth.count;
    if (!seen[it->member]) {
      seen[it->member] = true;
      ++truth.distinct;
      truth.sketch.Add(HashMember(MemberName(it->member)));
    }
  }
  return truth;
}

// Every member once at an even spacing, and every tenth member again a third
// of the span later (wrapping), half a spacing off any first occurrence.
// Sorted by time.
std::vector<Event> MakeEvents(uint32_t n) {
  const int64_t start = kNowMs - kSpanMs;
  std::vector<Event> events;
  events.reserve(n + n / 10 + 1);
  for (uint32_t i = 0; i < n; ++i) {
    events.push_back({start + int64_t{i} * kSpanMs / n, i});
  }
  for (uint32_t i = 7; i < n; i += 10) {
    const int64_t slot = (int64_t{i} + n / 3) % n;
    events.push_back({start + (2 * slot + 1) * kSpanMs / (2 * int64_t{n}), i});
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& a, const Event& b) { return a.t < b.t; });
  return events;
}

std::string SizeName(int64_t n) {
  if (n >= 1'000'000 && n % 1'000'000 == 0) {
    return std::to_string(n / 1'000'000) + "M";
  }
  if (n >= 1000 && n % 1000 == 0) return std::to_string(n / 1000) + "k";
  return std::to_string(n);
}

class DistinctAccuracyTest : public testing::TestWithParam<uint32_t> {
 protected:
  static void SetUpTestSuite() { rows_ = new std::vector<Row>(); }

  static void TearDownTestSuite() {
    char line[160];
    std::cout << "\nDistinct accuracy (default policy, exact limit "
              << EngineOptions().distinct_exact_limit
              << ", 4 sigma = " << 400 * HyperLogLog::kRelativeStandardError
              << " %)\n";
    std::snprintf(line, sizeof(line), "%9s  %-10s %9s %9s %10s  %s\n", "n",
                  "window", "truth", "estimate", "rel.error", "exact");
    std::cout << line;
    for (const Row& r : *rows_) {
      std::snprintf(line, sizeof(line),
                    "%9lld  %-10s %9llu %9llu %+9.3f%%  %s\n",
                    static_cast<long long>(r.n), r.window.c_str(),
                    static_cast<unsigned long long>(r.truth),
                    static_cast<unsigned long long>(r.estimate),
                    100 * r.relative_error, r.exact ? "yes" : "no");
      std::cout << line;
    }
    std::cout << std::flush;
    delete rows_;
    rows_ = nullptr;
  }

  static std::vector<Row>* rows_;
};

std::vector<Row>* DistinctAccuracyTest::rows_ = nullptr;

TEST_P(DistinctAccuracyTest, ExactUpToTheLimitAndWithinFourSigmaBeyond) {
  const uint32_t n = GetParam();
  ManualClock clock(kNowMs);
  EngineOptions options;
  options.clock = &clock;
  options.hash_seed = 0x5eed'd15c'7acc'0001;
  options.shard_bits = 2;
  Engine engine(options);
  const uint32_t limit = options.distinct_exact_limit;
  const std::string key = "distinct:" + SizeName(n);

  const std::vector<Event> events = MakeEvents(n);
  std::string member;
  for (const Event& e : events) {
    member = MemberName(e.member);
    AddEvent add;
    add.key = key;
    add.time_ms = e.t;
    add.has_member = true;
    add.member = member;
    Result<AddResult> r = engine.Add(add);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // Past the limit per hour, the hour buckets are sketches: the long windows
  // then merge sketches, not just overflow an exact union.
  Result<KeyInfo> info = engine.Inspect(key);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_EQ(info->tiers.size(), 4u);
  EXPECT_EQ(info->tiers[2].spec.resolution_ms, kHourMs);
  if (n / 23 > limit) {
    EXPECT_GT(info->tiers[2].sketches, 0u);
  }

  struct Case {
    std::string name;
    Window window;
  };
  const int64_t middle_from =
      kNowMs - 14 * kHourMs - 30 * kMinuteMs - 7 * kSecondMs;
  const std::vector<Case> cases = {
      {"last 24h", Window::Last(24 * kHourMs)},
      {"last 90m", Window::Last(90 * kMinuteMs)},
      {"6h middle", Window::Between(middle_from, middle_from + 6 * kHourMs)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "n=" << n << " window=" << c.name);
    Result<Answer> r = engine.Query(key, c.window, kAggDistinct | kAggCount);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const Answer& a = *r;
    const Truth truth =
        TruthOver(events, n, a.covered_from_ms, a.covered_to_ms);
    ASSERT_GT(truth.distinct, 0u)
        << "covered [" << a.covered_from_ms << ", " << a.covered_to_ms << ")";
    if (c.name == "last 24h") {
      EXPECT_EQ(truth.distinct, n);  // the window holds every member
    }

    EXPECT_EQ(a.count, truth.count);
    EXPECT_EQ(a.exact, truth.distinct <= limit) << "truth " << truth.distinct;
    const double relative_error = (static_cast<double>(a.distinct) -
                                   static_cast<double>(truth.distinct)) /
                                  static_cast<double>(truth.distinct);
    if (a.exact) {
      EXPECT_EQ(a.distinct, truth.distinct);
      EXPECT_EQ(a.distinct_error, 0.0);
    } else {
      EXPECT_LE(std::abs(relative_error),
                4 * HyperLogLog::kRelativeStandardError)
          << "estimate " << a.distinct << " truth " << truth.distinct;
      EXPECT_EQ(a.distinct_error, HyperLogLog::kRelativeStandardError);
      EXPECT_EQ(a.distinct,
                static_cast<uint64_t>(std::llround(truth.sketch.Estimate())))
          << "the merged buckets are not the sketch of their union";
    }

    rows_->push_back(
        {n, c.name, truth.distinct, a.distinct, relative_error, a.exact});
    std::string property = "relative_error_" + SizeName(n) + "_" + c.name;
    std::replace(property.begin(), property.end(), ' ', '_');
    char value[32];
    std::snprintf(value, sizeof(value), "%.6f", relative_error);
    RecordProperty(property, value);
  }
}

// 1M runs once: its adds dominate the runtime.
INSTANTIATE_TEST_SUITE_P(Sizes, DistinctAccuracyTest,
                         testing::Values(1000u, 10'000u, 100'000u, 1'000'000u),
                         [](const testing::TestParamInfo<uint32_t>& size) {
                           return "n" + SizeName(size.param);
                         });

}  // namespace
}  // namespace tally
