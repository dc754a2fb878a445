// Engine::AddBatch: the same outcomes and state as single adds, and
// concurrent batches over shared shards neither deadlock nor lose events.

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/clock.h"
#include "storage/engine.h"

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
