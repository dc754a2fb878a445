#include "storage/engine.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <thread>

#include "storage/key_state.h"

namespace tally {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;  // a whole second

class EngineTest : public testing::Test {
 protected:
  EngineTest() : clock_(kT0) { Reset({}); }

  void Reset(std::vector<Policy> prefixed, uint32_t distinct_limit = 1000) {
    EngineOptions options;
    options.clock = &clock_;
    options.hash_seed = 42;
    options.shard_bits = 4;
    options.distinct_exact_limit = distinct_limit;
    auto policies = PolicySet::Create(Policy(), std::move(prefixed));
    EXPECT_TRUE(policies.ok()) << policies.status().ToString();
    options.policies = *policies;
    engine_ = std::make_unique<Engine>(std::move(options));
  }

  Status Add(std::string_view key, int64_t t = kNow, int64_t amount = 0,
             std::string_view member = {}, int64_t count = 1) {
    AddEvent e;
    e.key = key;
    e.time_ms = t;
    e.amount = amount;
    e.count = count;
    e.has_member = !member.empty();
    e.member = member;
    return engine_->Add(e).status();
  }

  Answer Last(std::string_view key, int64_t length_ms) {
    Result<Answer> a = engine_->Query(key, Window::Last(length_ms));
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? *a : Answer();
  }

  ManualClock clock_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, UnknownKeyAnswersZerosWithItsEnvelope) {
  Answer a = Last("user:nobody", kHourMs);
  EXPECT_EQ(a.count, 0);
  EXPECT_EQ(a.sum, 0);
  EXPECT_EQ(a.distinct, 0u);
  EXPECT_TRUE(a.exact);
  EXPECT_EQ(a.covered_to_ms, kT0 + 1000);
  EXPECT_EQ(a.covered_from_ms, kT0 + 1000 - kHourMs);
  EXPECT_EQ(a.resolution_ms, 1000);
}

TEST_F(EngineTest, AddThenQueryCountsSumsAndExtremes) {
  ASSERT_TRUE(Add("user:1", kNow, 500, "card:a").ok());
  ASSERT_TRUE(Add("user:1", kNow, -200, "card:b").ok());
  ASSERT_TRUE(Add("user:1", kNow, 900, "card:a", 3).ok());
  Answer a = Last("user:1", 60 * kSecondMs);
  EXPECT_EQ(a.count, 5);
  EXPECT_EQ(a.sum, 1200);
  EXPECT_EQ(a.min, -200);
  EXPECT_EQ(a.max, 900);
  EXPECT_DOUBLE_EQ(a.avg, 240.0);
  EXPECT_EQ(a.distinct, 2u);
  EXPECT_TRUE(a.exact);
}

TEST_F(EngineTest, WindowsSeeOnlyTheirEvents) {
  ASSERT_TRUE(Add("k", kT0 - 30 * kMinuteMs).ok());
  ASSERT_TRUE(Add("k", kT0 - 5 * kMinuteMs).ok());
  ASSERT_TRUE(Add("k", kT0 - 10 * kSecondMs).ok());
  EXPECT_EQ(Last("k", 60 * kSecondMs).count, 1);
  EXPECT_EQ(Last("k", 10 * kMinuteMs).count, 2);
  EXPECT_EQ(Last("k", kHourMs).count, 3);
  Result<Answer> abs = engine_->Query(
      "k", Window::Between(kT0 - 31 * kMinuteMs, kT0 - kMinuteMs));
  ASSERT_TRUE(abs.ok());
  EXPECT_EQ(abs->count, 2);
}

TEST_F(EngineTest, LateEventsWithinLatenessLandInTheirBuckets) {
  clock_.Advance(10 * kHourMs);
  ASSERT_TRUE(Add("k", kT0 + 10 * kHourMs - 5 * kHourMs)
                  .ok());  // 5 h late: no 1 s tier
  ASSERT_TRUE(Add("k").ok());
  EXPECT_EQ(Last("k", 6 * kHourMs).count, 2);
  EXPECT_EQ(Last("k", kHourMs).count, 1);
}

TEST_F(EngineTest, EventTooLateIsRejectedAndChangesNothing) {
  Status s = Add("k", kT0 - 49 * kHourMs);
  EXPECT_EQ(s.code(), Code::kTimeOutOfRange);
  EXPECT_NE(s.message().find("late"), std::string_view::npos) << s.message();
  EXPECT_FALSE(engine_->Inspect("k").ok());
  EXPECT_EQ(engine_->Stats().rejected_time, 1u);
}

TEST_F(EngineTest, EventTooFarInTheFutureIsRejected) {
  EXPECT_EQ(Add("k", kT0 + 6 * kSecondMs).code(), Code::kTimeOutOfRange);
  EXPECT_TRUE(Add("k", kT0 + 5 * kSecondMs).ok());
  // Accepted future events are counted once their bucket is inside a window.
  clock_.Advance(5 * kSecondMs);
  EXPECT_EQ(Last("k", 10 * kSecondMs).count, 1);
}

TEST_F(EngineTest, InvalidInputIsRejectedWithSpecificCodes) {
  EXPECT_EQ(Add("").code(), Code::kInvalidKey);
  EXPECT_EQ(Add(std::string(257, 'k')).code(), Code::kInvalidKey);
  EXPECT_TRUE(Add(std::string(256, 'k')).ok());
  EXPECT_EQ(Add("k", kNow, 0, {}, 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(Add("k", kNow, 0, {}, -3).code(), Code::kInvalidArgument);
  EXPECT_EQ(engine_->Query("k", Window::Between(10, 10)).status().code(),
            Code::kInvalidWindow);
  EXPECT_EQ(engine_->Query("k", Window::Between(-5, 10)).status().code(),
            Code::kInvalidWindow);
  EXPECT_EQ(engine_->Query("k", Window::Last(-1)).status().code(),
            Code::kInvalidWindow);
  EXPECT_EQ(engine_->Query("", Window::Last(1000)).status().code(),
            Code::kInvalidKey);
}

TEST_F(EngineTest, ExtremeInputsGetErrorsNotOverflow) {
  // Found by review: these used to overflow signed arithmetic (UBSan aborts).
  Status s = Add("k", std::numeric_limits<int64_t>::min() + 1);
  EXPECT_EQ(s.code(), Code::kTimeOutOfRange);
  EXPECT_NE(s.message().find("outside"), std::string_view::npos) << s.message();
  EXPECT_EQ(Add("k", std::numeric_limits<int64_t>::max()).code(),
            Code::kTimeOutOfRange);
  auto points = engine_->Range("k", 1, 2, std::numeric_limits<int64_t>::max());
  ASSERT_TRUE(points.ok()) << points.status().ToString();
  EXPECT_EQ(points->size(), 1u);
  EXPECT_EQ(engine_->Query("k", Window::Last(0, 5000)).status().code(),
            Code::kInvalidWindow);
  EXPECT_FALSE(ParseTiers("106751991d x 106751991d").ok());
}

TEST_F(EngineTest, AFullRawKeyDropsExpiredEventsBeforeGrowing) {
  for (uint32_t i = 0; i < kMaxRawEvents; ++i) ASSERT_TRUE(Add("k").ok());
  clock_.Advance(401 * kDayMs);  // every event is past every tier
  ASSERT_TRUE(Add("k").ok());
  auto info = engine_->Inspect("k");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->raw);
  EXPECT_EQ(info->raw_events, 1u);
  EXPECT_EQ(engine_->Stats().converted_keys, 0u);
}

TEST_F(EngineTest, KeysAreBinarySafe) {
  const std::string a("a\0b", 3), b("a\0c", 3);
  ASSERT_TRUE(Add(a).ok());
  ASSERT_TRUE(Add(b).ok());
  ASSERT_TRUE(Add(b).ok());
  EXPECT_EQ(Last(a, kHourMs).count, 1);
  EXPECT_EQ(Last(b, kHourMs).count, 2);
  EXPECT_EQ(Last("a", kHourMs).count, 0);
}

TEST_F(EngineTest, OverflowIsAnErrorAndAppliesNothing) {
  const int64_t big = std::numeric_limits<int64_t>::max() - 10;
  ASSERT_TRUE(Add("k", kNow, big).ok());
  EXPECT_EQ(Add("k", kNow, 100).code(), Code::kOverflow);
  Answer a = Last("k", kHourMs);
  EXPECT_EQ(a.count, 1);
  EXPECT_EQ(a.sum, big);
  // A different second still overflows the shared minute bucket.
  clock_.Advance(kSecondMs);
  EXPECT_EQ(Add("k", kNow, 100).code(), Code::kOverflow);
  EXPECT_EQ(Last("k", kHourMs).count, 1);
  EXPECT_EQ(engine_->Stats().rejected_overflow, 2u);
}

TEST_F(EngineTest, WindowSumOutsideInt64IsAnErrorNotAWrap) {
  const int64_t big = std::numeric_limits<int64_t>::max() / 2 + 1;
  ASSERT_TRUE(Add("k", kT0 - 2 * kDayMs, big).ok());
  ASSERT_TRUE(Add("k", kNow, big).ok());
  EXPECT_EQ(engine_->Query("k", Window::Last(3 * kDayMs)).status().code(),
            Code::kOverflow);
}

TEST_F(EngineTest, LongestPrefixPolicyWins) {
  Policy ip;
  ip.name = "ip";
  ip.prefix = "ip:";
  ip.tiers = {{kSecondMs, 10 * kMinuteMs}, {kMinuteMs, 2 * kHourMs}};
  ip.track_distinct = false;
  Policy ip6 = ip;
  ip6.name = "ip6";
  ip6.prefix = "ip:6:";
  ip6.tiers = {{kMinuteMs, kHourMs}};
  Reset({ip, ip6});
  ASSERT_TRUE(Add("ip:1.2.3.4").ok());
  ASSERT_TRUE(Add("ip:6:ff").ok());
  ASSERT_TRUE(Add("user:1").ok());
  EXPECT_EQ(engine_->Inspect("ip:1.2.3.4")->policy, "ip");
  EXPECT_EQ(engine_->Inspect("ip:6:ff")->policy, "ip6");
  EXPECT_EQ(engine_->Inspect("user:1")->policy, "default");
  EXPECT_EQ(engine_->Inspect("ip:6:ff")->tiers.size(), 1u);
  // Distinct on a policy that does not track it is an explicit error.
  EXPECT_EQ(
      engine_->Query("ip:1.2.3.4", Window::Last(kMinuteMs)).status().code(),
      Code::kInvalidArgument);
  EXPECT_TRUE(
      engine_->Query("ip:1.2.3.4", Window::Last(kMinuteMs), kAggCount).ok());
}

TEST_F(EngineTest, DistinctBecomesAnEstimateAboveTheExactLimit) {
  Reset({}, /*distinct_limit=*/100);
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(Add("k", kNow, 1, "m" + std::to_string(i)).ok());
  Answer a = Last("k", kMinuteMs);
  EXPECT_TRUE(a.exact);
  EXPECT_EQ(a.distinct, 100u);
  for (int i = 100; i < 5000; ++i)
    ASSERT_TRUE(Add("k", kNow, 1, "m" + std::to_string(i)).ok());
  a = Last("k", kMinuteMs);
  EXPECT_FALSE(a.exact);
  EXPECT_GT(a.distinct_error, 0.0);
  EXPECT_NEAR(static_cast<double>(a.distinct), 5000.0,
              5000 * 4 * a.distinct_error);
}

TEST_F(EngineTest, DistinctUnionAcrossBucketsCountsEachMemberOnce) {
  for (int s = 0; s < 120; ++s) {
    ASSERT_TRUE(Add("k", kNow, 1, "card:" + std::to_string(s % 7)).ok());
    clock_.Advance(kSecondMs);
  }
  EXPECT_EQ(Last("k", kHourMs).distinct, 7u);
  EXPECT_EQ(Last("k", 3 * kSecondMs).distinct,
            2u);  // seconds 118, 119 and the empty 120
}

TEST_F(EngineTest, RangeGivesOneAnswerPerStep) {
  clock_.Set(kT0 + 5 * kMinuteMs);
  for (int m = 0; m < 5; ++m) {
    for (int i = 0; i <= m; ++i)
      ASSERT_TRUE(Add("k", kT0 + m * kMinuteMs + i * kSecondMs).ok());
  }
  auto points = engine_->Range("k", kT0, kT0 + 5 * kMinuteMs, kMinuteMs);
  ASSERT_TRUE(points.ok()) << points.status().ToString();
  ASSERT_EQ(points->size(), 5u);
  for (int m = 0; m < 5; ++m) {
    EXPECT_EQ((*points)[m].start_ms, kT0 + m * kMinuteMs);
    EXPECT_EQ((*points)[m].answer.count, m + 1);
  }
  EXPECT_EQ(engine_->Range("k", kT0, kT0 + kDayMs, 1).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(engine_->Range("k", kT0, kT0 + kDayMs, 0).status().code(),
            Code::kInvalidWindow);
}

TEST_F(EngineTest, InspectReportsTiersBucketsAndBytes) {
  ASSERT_TRUE(Add("k", kNow, 1, "m").ok());
  ASSERT_TRUE(Add("k", kT0 - 2 * kMinuteMs, 1, "n").ok());
  auto info = engine_->Inspect("k");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->policy, "default");
  EXPECT_TRUE(info->raw);  // two events: kept raw
  EXPECT_EQ(info->raw_events, 2u);
  ASSERT_EQ(info->tiers.size(), 4u);
  // Past kMaxRawEvents the key moves into tier rings.
  for (uint32_t i = 0; i < kMaxRawEvents; ++i) ASSERT_TRUE(Add("k").ok());
  info = engine_->Inspect("k");
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->raw);
  EXPECT_EQ(info->tiers[0].buckets, 2u);  // two seconds
  EXPECT_EQ(info->tiers[1].buckets, 2u);  // two minutes
  EXPECT_EQ(info->tiers[2].buckets, 1u);  // one hour
  EXPECT_EQ(info->tiers[0].last_bucket_ms, kT0);
  EXPECT_EQ(info->tiers[0].first_bucket_ms, kT0 - 2 * kMinuteMs);
  EXPECT_GT(info->bytes, 0);
  EXPECT_EQ(engine_->Stats().converted_keys, 1u);
  EXPECT_EQ(engine_->Inspect("nope").status().code(), Code::kNotFound);
}

TEST_F(EngineTest, ASparseKeyCostsBytesNotADenseRing) {
  ASSERT_TRUE(Add("user:42", kNow, 100, "card:1").ok());
  auto info = engine_->Inspect("user:42");
  ASSERT_TRUE(info.ok());
  // 16 B header + 7 B key padded to 8 + one 32 B raw event.
  EXPECT_EQ(info->bytes, 16 + 8 + 32);
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE(Add("user:42", kNow, 100, "card:1").ok());
  info = engine_->Inspect("user:42");
  // Tiered, all 41 events in one bucket per tier: header, 4 rings, 4 buckets.
  EXPECT_EQ(info->bytes, 16 + 8 + 4 * 16 + 4 * 48);
}

TEST_F(EngineTest, ExpiredBucketsAreReclaimedAndEmptyKeysDisappear) {
  for (uint32_t i = 0; i <= kMaxRawEvents; ++i) ASSERT_TRUE(Add("k").ok());
  ASSERT_TRUE(Add("raw").ok());
  const int64_t full = engine_->Stats().bytes;
  clock_.Advance(3 * kHourMs);  // past the 1 s tier
  EXPECT_EQ(engine_->Sweep(), 0u);
  EXPECT_EQ(engine_->Inspect("k")->tiers[0].buckets, 0u);
  EXPECT_LT(engine_->Stats().bytes, full);
  clock_.Advance(401 * kDayMs);  // past every tier
  EXPECT_EQ(engine_->Sweep(), 2u);
  EXPECT_EQ(engine_->Inspect("k").status().code(), Code::kNotFound);
  EXPECT_EQ(engine_->Inspect("raw").status().code(), Code::kNotFound);
  EngineStats stats = engine_->Stats();
  EXPECT_EQ(stats.keys, 0u);
  EXPECT_EQ(stats.buckets, 0u);
  EXPECT_EQ(stats.bytes, stats.table_bytes);
  EXPECT_EQ(stats.expired_keys, 2u);
}

TEST_F(EngineTest, RawAndTieredKeysGiveTheSameAnswers) {
  // "raw" keeps 32 events raw; "tiered" gets the same events plus one 47 h
  // old, which moves it into tier rings but lies outside every window below.
  std::mt19937_64 rng(11);
  for (uint32_t i = 0; i < kMaxRawEvents; ++i) {
    const int64_t t = kT0 - static_cast<int64_t>(rng() % (3 * kHourMs));
    const int64_t amount = static_cast<int64_t>(rng() % 1000) - 100;
    const std::string member = "m" + std::to_string(rng() % 9);
    ASSERT_TRUE(Add("raw", t, amount, member).ok());
    ASSERT_TRUE(Add("tiered", t, amount, member).ok());
  }
  ASSERT_TRUE(Add("tiered", kT0 - 47 * kHourMs, 5, "old").ok());
  ASSERT_TRUE(engine_->Inspect("raw")->raw);
  ASSERT_FALSE(engine_->Inspect("tiered")->raw);
  for (int i = 0; i < 500; ++i) {
    const int64_t to = kT0 + 1 - static_cast<int64_t>(rng() % (4 * kHourMs));
    const int64_t from = to - 1 - static_cast<int64_t>(rng() % (2 * kHourMs));
    const Window w =
        Window::Between(std::max<int64_t>(from, kT0 - 40 * kHourMs), to);
    Answer a = *engine_->Query("raw", w), b = *engine_->Query("tiered", w);
    ASSERT_EQ(a.count, b.count) << i;
    ASSERT_EQ(a.sum, b.sum);
    ASSERT_EQ(a.min, b.min);
    ASSERT_EQ(a.max, b.max);
    ASSERT_EQ(a.distinct, b.distinct);
    ASSERT_EQ(a.covered_from_ms, b.covered_from_ms);
    ASSERT_EQ(a.covered_to_ms, b.covered_to_ms);
  }
}

TEST_F(EngineTest, DeleteRemovesTheKeyAndItsMemory) {
  ASSERT_TRUE(Add("k", kNow, 5, "m").ok());
  EXPECT_TRUE(engine_->Delete("k"));
  EXPECT_FALSE(engine_->Delete("k"));
  EXPECT_EQ(Last("k", kHourMs).count, 0);
  EngineStats stats = engine_->Stats();
  EXPECT_EQ(stats.bytes, stats.table_bytes);
  EXPECT_EQ(stats.deleted_keys, 1u);
}

TEST_F(EngineTest, ClockGoingBackwardsDoesNotMoveServerTime) {
  ASSERT_TRUE(Add("k").ok());
  clock_.Set(kT0 - kHourMs);
  ASSERT_TRUE(Add("k").ok());  // stamped at kT0, the last time seen
  EXPECT_EQ(Last("k", kSecondMs).count, 2);
}

TEST_F(EngineTest, ScanReturnsEveryKeyOnceAcrossPages) {
  std::set<std::string> all;
  for (int i = 0; i < 500; ++i) {
    all.insert("user:" + std::to_string(i));
    ASSERT_TRUE(Add("user:" + std::to_string(i)).ok());
  }
  std::multiset<std::string> seen;
  uint64_t cursor = 0;
  int pages = 0;
  do {
    ScanPage page = engine_->Scan(cursor, "", 37);
    seen.insert(page.keys.begin(), page.keys.end());
    cursor = page.cursor;
    ASSERT_LT(++pages, 1000);
  } while (cursor != 0);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), all);
  EXPECT_EQ(seen.size(), all.size());
}

TEST_F(EngineTest, ScanIsStableUnderConcurrentInserts) {
  for (int i = 0; i < 300; ++i)
    ASSERT_TRUE(Add("old:" + std::to_string(i)).ok());
  std::multiset<std::string> seen;
  uint64_t cursor = 0;
  int next_new = 0;
  do {
    ScanPage page = engine_->Scan(cursor, "old:*", 20);
    seen.insert(page.keys.begin(), page.keys.end());
    cursor = page.cursor;
    // Inserting between pages may rehash a table; the cursor must not care.
    for (int i = 0; i < 50; ++i)
      ASSERT_TRUE(Add("new:" + std::to_string(next_new++)).ok());
  } while (cursor != 0);
  EXPECT_EQ(seen.size(), 300u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 300u);
}

TEST_F(EngineTest, ScanMatchesGlobs) {
  ASSERT_TRUE(Add("user:1").ok());
  ASSERT_TRUE(Add("user:2").ok());
  ASSERT_TRUE(Add("card:1").ok());
  ScanPage page = engine_->Scan(0, "user:*", 1000);
  EXPECT_EQ(page.cursor, 0u);
  EXPECT_EQ(std::set<std::string>(page.keys.begin(), page.keys.end()),
            (std::set<std::string>{"user:1", "user:2"}));
}

}  // namespace
}  // namespace tally

namespace tally {
namespace {

TEST(EngineBatchTest, AddBatchGivesTheSameOutcomesAndStateAsSingleAdds) {
  ManualClock clock(1'700'000'000'000);
  EngineOptions options;
  options.clock = &clock;
  options.hash_seed = 9;
  options.shard_bits = 3;  // few shards: batches revisit shards and keys
  Engine single(options), batched(options);
  std::mt19937_64 rng(5);
  std::vector<std::string> keys, members;
  std::vector<AddEvent> events;
  for (int round = 0; round < 200; ++round) {
    const size_t n = 1 + rng() % 40;
    keys.resize(n);
    members.resize(n);
    events.assign(n, AddEvent());
    for (size_t i = 0; i < n; ++i) {
      const uint64_t r = rng() % 100;
      // Mostly a few hot keys (raw -> tiered inside a batch), some bad input.
      keys[i] = r < 3 ? "" : "k" + std::to_string(rng() % 12);
      members[i] = "m" + std::to_string(rng() % 20);
      AddEvent& e = events[i];
      e.key = keys[i];
      e.time_ms = r < 6 ? clock.NowMs() - 3 * kDayMs  // too late
                        : clock.NowMs() - static_cast<int64_t>(rng() % 600'000);
      e.count = r == 7 ? 0 : 1;
      e.amount = static_cast<int64_t>(rng() % 10'000);
      e.has_member = true;
      e.member = members[i];
    }
    std::vector<Engine::AddOutcome> out(n);
    batched.AddBatch(events, out);
    for (size_t i = 0; i < n; ++i) {
      Result<AddResult> expected = single.Add(events[i]);
      ASSERT_EQ(out[i].status.code(), expected.status().code())
          << round << "/" << i;
      if (expected.ok()) {
        ASSERT_EQ(out[i].result.time_ms, expected->time_ms);
      }
    }
    clock.Advance(static_cast<int64_t>(rng() % 5000));
  }
  for (int k = 0; k < 12; ++k) {
    const std::string key = "k" + std::to_string(k);
    for (int64_t length : {kSecondMs, kMinuteMs, 10 * kMinuteMs, kHourMs}) {
      Answer a = *single.Query(key, Window::Last(length));
      Answer b = *batched.Query(key, Window::Last(length));
      ASSERT_EQ(a.count, b.count) << key;
      ASSERT_EQ(a.sum, b.sum);
      ASSERT_EQ(a.distinct, b.distinct);
    }
  }
  EXPECT_EQ(single.Stats().bytes, batched.Stats().bytes);
  EXPECT_GT(batched.Stats().converted_keys, 0u);
}

TEST(EngineBatchTest, ConcurrentBatchesOverSharedShardsDoNotDeadlockOrLose) {
  ManualClock clock(1'700'000'000'000);
  EngineOptions options;
  options.clock = &clock;
  options.shard_bits = 2;  // every batch touches most shards
  Engine engine(options);
  constexpr int kThreads = 4, kRounds = 2000, kBatch = 24;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&engine, t] {
      std::vector<std::string> keys(kBatch);
      std::vector<AddEvent> events(kBatch);
      std::vector<Engine::AddOutcome> out(kBatch);
      for (int round = 0; round < kRounds; ++round) {
        for (int i = 0; i < kBatch; ++i) {
          keys[i] = "key" + std::to_string((round * 7 + i * 13 + t) % 50);
          events[i].key = keys[i];
        }
        engine.AddBatch(events, out);
        for (const auto& o : out)
          ASSERT_TRUE(o.status.ok()) << o.status.ToString();
      }
    });
  }
  for (auto& th : threads) th.join();
  int64_t total = 0;
  for (int k = 0; k < 50; ++k) {
    total +=
        engine.Query("key" + std::to_string(k), Window::Last(kHourMs))->count;
  }
  EXPECT_EQ(total, int64_t{kThreads} * kRounds * kBatch);
}

}  // namespace
}  // namespace tally

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
