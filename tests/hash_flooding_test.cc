// P11 (RELIABILITY.md 3.4): hash flooding. The engine spreads keys over
// shards and over each shard's table by a seeded XXH3 hash; tallyd picks the
// seed at random (RandomHashSeed) for a new data directory (recovery then
// keeps the persisted one, so replay puts keys in the same shards).
//
// The attack: keys chosen so that, under a known seed (0 here), they all
// land in one shard AND in a small part of its table (the top bits of the
// table's position hash). Found by brute force. The tests check the
// behaviour (the seed is random; such keys spread under a random seed) and
// print the insert throughput of colliding keys versus random keys; the
// figures are recorded in docs/fuzzing.md, never asserted (shared CPU).
//
// TALLY_P11_KEYS sets the number of colliding keys (default 8000).

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "storage/clock.h"
#include "storage/engine.h"
#include "storage/shard.h"

namespace tally {
namespace {

constexpr uint32_t kShardBits = 8;  // the engine's default
// Bits of the in-shard table position the colliding keys also share.
constexpr uint32_t kTableBits = 4;

// The table's position hash (storage/shard.h, Shard::Hasher::Remix): its top
// bits choose the group. Copied here because the attack needs it; if the
// engine's changes, the keys still collide on their shard.
uint64_t Remix(uint64_t h) {
  h ^= h >> 31;
  h *= 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 29);
}

bool Collides(uint64_t h) {
  return (h >> (64 - kShardBits)) == 0 && (Remix(h) >> (64 - kTableBits)) == 0;
}

size_t KeyCount() {
  const char* v = std::getenv("TALLY_P11_KEYS");
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : 8000;
}

// n keys "f<number>" that all collide under seed 0 (brute force, bounded:
// about n * 2^(kShardBits + kTableBits) hashes).
const std::vector<std::string>& CollidingKeys() {
  static const std::vector<std::string>* keys = [] {
    auto* out = new std::vector<std::string>;
    const size_t n = KeyCount();
    const uint64_t budget = uint64_t{n} << (kShardBits + kTableBits + 3);
    char buf[32];
    for (uint64_t i = 0; out->size() < n && i < budget; ++i) {
      const int len = std::snprintf(buf, sizeof buf, "f%llu",
                                    static_cast<unsigned long long>(i));
      if (Collides(HashKeyBytes(std::string_view(buf, len), 0))) {
        out->emplace_back(buf, len);
      }
    }
    return out;
  }();
  return *keys;
}

std::vector<std::string> RandomKeys(size_t n, uint64_t seed) {
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back("r" + std::to_string(seed) + ":" + std::to_string(i));
  }
  return out;
}

TEST(HashFloodingTest, TheSeedIsRandomPerCall) {
  std::set<uint64_t> seeds;
  for (int i = 0; i < 16; ++i) seeds.insert(RandomHashSeed());
  EXPECT_EQ(seeds.size(), 16u);
  EXPECT_FALSE(seeds.contains(0));
}

TEST(HashFloodingTest, KeysCollidingUnderSeedZeroSpreadUnderARandomSeed) {
  const std::vector<std::string>& keys = CollidingKeys();
  ASSERT_EQ(keys.size(), KeyCount()) << "brute force ran out of budget";
  for (const std::string& k : keys) ASSERT_TRUE(Collides(HashKeyBytes(k, 0)));

  const uint64_t seed = RandomHashSeed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::vector<size_t> per_shard(size_t{1} << kShardBits);
  size_t still_colliding = 0;
  for (const std::string& k : keys) {
    const uint64_t h = HashKeyBytes(k, seed);
    ++per_shard[h >> (64 - kShardBits)];
    if (Collides(h)) ++still_colliding;
  }
  const double expected = double(keys.size()) / per_shard.size();
  const size_t max = *std::max_element(per_shard.begin(), per_shard.end());
  const size_t used =
      per_shard.size() - std::count(per_shard.begin(), per_shard.end(), 0u);
  std::printf(
      "P11: %zu keys colliding under seed 0; under a random seed: "
      "%zu of %zu shards used, max %zu keys per shard (expected "
      "%.1f), %zu still colliding\n",
      keys.size(), used, per_shard.size(), max, expected, still_colliding);
  // Binomial tails: with 8000 keys (31 per shard) these bounds fail with
  // probability far below 1e-12.
  EXPECT_LE(double(max), 2 * expected + 40);
  EXPECT_GE(used, per_shard.size() * 9 / 10);
  EXPECT_LE(double(still_colliding), 10 + keys.size() / 1000.0);
}

double InsertsPerSecond(uint64_t seed, const std::vector<std::string>& keys) {
  ManualClock clock(1'700'000'000'000);
  EngineOptions options;
  options.clock = &clock;
  options.hash_seed = seed;
  Engine engine(options);
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < 3; ++round) {  // an insert, then 2 increments
    for (const std::string& k : keys) {
      AddEvent e;
      e.key = k;
      e.amount = 1;
      if (!engine.Add(e).ok()) ADD_FAILURE() << "add " << k;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_EQ(engine.Stats().keys, keys.size());
  return 3.0 * keys.size() / seconds;
}

// Figures only (docs/fuzzing.md, "P11"): no timing assertion.
TEST(HashFloodingTest, ThroughputOfCollidingVersusRandomKeys) {
  const std::vector<std::string>& colliding = CollidingKeys();
  const uint64_t seed = RandomHashSeed();
  const std::vector<std::string> random = RandomKeys(colliding.size(), seed);
  const double attack_fixed_seed = InsertsPerSecond(0, colliding);
  const double attack_random_seed = InsertsPerSecond(seed, colliding);
  const double baseline = InsertsPerSecond(seed, random);
  std::printf(
      "P11: adds/s with %zu keys: colliding keys, seed 0 (the attack "
      "against a fixed seed): %.0f; colliding keys, random seed (tallyd): "
      "%.0f; random keys, random seed (baseline): %.0f; random-seed "
      "attack/baseline = %.2f\n",
      colliding.size(), attack_fixed_seed, attack_random_seed, baseline,
      attack_random_seed / baseline);
}

}  // namespace
}  // namespace tally
