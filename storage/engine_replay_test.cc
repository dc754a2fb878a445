// Adds and sweeps with an explicit now (AddEvent::now_ms, Sweep(now)): what
// WAL replay relies on. The state is a function of the events and their nows,
// not of the clock, hash seed or shard count.

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "storage/clock.h"
#include "storage/engine.h"

namespace tally {
namespace {

// Replay determinism: an add or sweep with an explicit now is a pure function
// of (state, event, now). Two engines that share nothing but the sequence of
// (event, now) — not the clock, hash seed or shard count — end in the same
// state and answer alike.
TEST(EngineExplicitNowTest, SameEventsAndNowsGiveTheSameStateWhateverTheClock) {
  constexpr int64_t kStart = 1'700'000'000'000;
  ManualClock epoch(1), far_future(4'000'000'000'000);  // 1970 and 2096
  Policy fine;
  fine.name = "fine";
  fine.prefix = "f:";
  fine.tiers = {{kSecondMs, kMinuteMs}, {10 * kSecondMs, 10 * kMinuteMs}};
  fine.max_lateness_ms = 15 * kMinuteMs;
  auto policies = PolicySet::Create(Policy(), {fine});
  ASSERT_TRUE(policies.ok());
  EngineOptions a_options, b_options;
  a_options.clock = &epoch;
  a_options.hash_seed = 1;
  a_options.shard_bits = 3;
  a_options.policies = *policies;
  a_options.distinct_exact_limit = 6;
  b_options = a_options;
  b_options.clock = &far_future;
  b_options.hash_seed = 0x9E3779B97F4A7C15ull;
  b_options.shard_bits = 6;
  Engine a(a_options), b(b_options);
  EXPECT_EQ(b.hash_seed(), 0x9E3779B97F4A7C15ull);

  std::mt19937_64 rng(2024);
  int64_t now = kStart;
  std::vector<std::string> keys, members;
  std::vector<AddEvent> events;
  std::vector<Engine::AddOutcome> out;
  uint64_t accepted = 0, rejected = 0;
  for (int round = 0; round < 300; ++round) {
    const size_t n = 1 + rng() % 30;
    keys.resize(n);
    members.resize(n);
    events.assign(n, AddEvent());
    for (size_t i = 0; i < n; ++i) {
      const uint64_t r = rng() % 100;
      keys[i] = (r % 2 ? "f:" : "u:") + std::to_string(rng() % 25);
      members[i] = "m" + std::to_string(rng() % 12);
      AddEvent& e = events[i];
      e.key = keys[i];
      // Mostly recent, some late (a few too late for "fine"), some ahead
      // (a few too far), some stamped with the now itself.
      e.time_ms = r < 10   ? kNow
                  : r < 20 ? now - static_cast<int64_t>(rng() % kHourMs)
                  : r < 25 ? now + static_cast<int64_t>(rng() % 8000)
                           : now - static_cast<int64_t>(rng() % 20'000);
      e.amount = static_cast<int64_t>(rng() % 2000) - 500;
      e.has_member = r % 3 != 0;
      e.member = members[i];
      e.now_ms = now;
    }
    // One engine takes single adds, the other batches: both honour now_ms.
    out.resize(n);
    b.AddBatch(events, out);
    for (size_t i = 0; i < n; ++i) {
      Result<AddResult> expected = a.Add(events[i]);
      ASSERT_EQ(out[i].status.code(), expected.status().code())
          << round << "/" << i << " " << expected.status().ToString();
      if (expected.ok()) {
        ASSERT_EQ(out[i].result.time_ms, expected->time_ms);
        if (events[i].time_ms == kNow) {
          ASSERT_EQ(expected->time_ms, now);
        }
        ++accepted;
      } else {
        ++rejected;
      }
    }
    if (round % 40 == 39) {
      EXPECT_EQ(a.Sweep(now), b.Sweep(now));
    }
    now += static_cast<int64_t>(rng() % 20'000);
    if (round % 100 == 99) now += 20 * kMinuteMs;  // expire the fine tiers
  }
  EXPECT_GT(accepted, 1000u);
  EXPECT_GT(rejected, 10u);
  EXPECT_EQ(a.Digest(), b.Digest());
  EngineStats sa = a.Stats(), sb = b.Stats();
  EXPECT_EQ(sa.keys, sb.keys);
  EXPECT_EQ(sa.buckets, sb.buckets);
  // Key tables depend on the shard count; everything else must agree.
  EXPECT_EQ(sa.bytes - sa.table_bytes, sb.bytes - sb.table_bytes);
  EXPECT_EQ(sa.converted_keys, sb.converted_keys);
  EXPECT_GT(sa.converted_keys, 0u);

  // Queries plan with the watermark (max of the nows and the clock): give
  // both the same one. The clocks no longer matter: they are behind it.
  far_future.Set(1);
  a.Sweep(now);
  b.Sweep(now);
  EXPECT_EQ(a.Digest(), b.Digest());
  for (int i = 0; i < 400; ++i) {
    const std::string key = (i % 2 ? "f:" : "u:") + std::to_string(rng() % 27);
    const int64_t at = now - static_cast<int64_t>(rng() % (2 * kHourMs));
    const int64_t length = 1 + static_cast<int64_t>(rng() % (3 * kHourMs));
    const uint32_t aggs = kAggAll;
    Result<Answer> x = a.Query(key, Window::Last(length, at), aggs);
    Result<Answer> y = b.Query(key, Window::Last(length, at), aggs);
    ASSERT_EQ(x.status().code(), y.status().code());
    if (!x.ok()) continue;
    ASSERT_EQ(x->count, y->count) << key << " " << at << " " << length;
    ASSERT_EQ(x->sum, y->sum);
    ASSERT_EQ(x->min, y->min);
    ASSERT_EQ(x->max, y->max);
    ASSERT_EQ(x->distinct, y->distinct);
    ASSERT_EQ(x->exact, y->exact);
    ASSERT_EQ(x->covered_from_ms, y->covered_from_ms);
    ASSERT_EQ(x->covered_to_ms, y->covered_to_ms);
    ASSERT_EQ(x->resolution_ms, y->resolution_ms);
    Result<KeyInfo> ia = a.Inspect(key), ib = b.Inspect(key);
    ASSERT_EQ(ia.ok(), ib.ok());
    if (ia.ok()) {
      ASSERT_EQ(ia->bytes, ib->bytes) << key;
    }
  }
}

AddEvent EventAt(std::string_view key, int64_t time_ms, int64_t now_ms) {
  AddEvent e;
  e.key = key;
  e.time_ms = time_ms;
  e.now_ms = now_ms;
  return e;
}

TEST(EngineExplicitNowTest, AnExplicitNowIsUsedEvenBehindTheWatermark) {
  ManualClock clock(1'700'000'000'000);
  EngineOptions options;
  options.clock = &clock;
  options.shard_bits = 1;
  Engine engine(options);
  const int64_t now = clock.NowMs();
  // The clock moved a day on; a replayed add still judges by its own now.
  clock.Advance(kDayMs);
  ASSERT_TRUE(engine.Add(EventAt("k", kNow, kNow)).ok());  // watermark now+1d
  // 1 s late at `now`, though a day and a second behind the watermark.
  Result<AddResult> r = engine.Add(EventAt("k", now - kSecondMs, now));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(engine.Inspect("k")->raw_events, 2u);
  // kNow means `now_ms`, not the clock.
  EXPECT_EQ(engine.Add(EventAt("k", kNow, now))->time_ms, now);
  // Too late against `now` is too late, whatever the watermark.
  EXPECT_EQ(engine.Add(EventAt("k", now - 49 * kHourMs, now)).status().code(),
            Code::kTimeOutOfRange);
  // Out of range nows are input errors, in batches too.
  const AddEvent bad = EventAt("k", kNow, -5);
  EXPECT_EQ(engine.Add(bad).status().code(), Code::kInvalidArgument);
  Engine::AddOutcome outcome;
  engine.AddBatch({&bad, 1}, {&outcome, 1});
  EXPECT_EQ(outcome.status.code(), Code::kInvalidArgument);
  EXPECT_EQ(engine.Inspect("k")->raw_events, 3u);
}

TEST(EngineExplicitNowTest,
     SweepWithANowExpiresAgainstItAndRaisesTheWatermark) {
  ManualClock clock(1'700'000'000'000);
  EngineOptions options;
  options.clock = &clock;
  options.shard_bits = 2;
  Engine engine(options);
  ASSERT_TRUE(engine.Add(EventAt("k", kNow, kNow)).ok());
  const int64_t later = clock.NowMs() + 401 * kDayMs;
  // At the clock's now nothing has expired; at `later` everything has.
  EXPECT_EQ(engine.Sweep(clock.NowMs()), 0u);
  EXPECT_EQ(engine.Stats().keys, 1u);
  EXPECT_EQ(engine.SweepShard(0, later) + engine.SweepShard(1, later) +
                engine.SweepShard(2, later) + engine.SweepShard(3, later),
            1u);
  EXPECT_EQ(engine.Stats().keys, 0u);
  // Every swept shard's watermark moved to `later`, ahead of the clock.
  EXPECT_EQ(engine.Add(EventAt("k", kNow, kNow))->time_ms, later);
}

}  // namespace
}  // namespace tally
