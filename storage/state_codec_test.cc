#include "storage/state_codec.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "storage/engine.h"
#include "storage/policy_codec.h"
#include "storage/window_plan.h"

namespace tally {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

Policy MakePolicy(std::string name, std::string prefix,
                  std::vector<TierSpec> tiers, bool track_distinct) {
  Policy p;
  p.name = std::move(name);
  p.prefix = std::move(prefix);
  p.tiers = std::move(tiers);
  p.track_distinct = track_distinct;
  return p;
}

// Default (4 tiers, distinct), "p:" (3 fine tiers, distinct), "q:" (no
// distinct), "r:" (one tier). `p_tiers` replaces p's tiers when given.
PolicySet TestPolicies(std::vector<TierSpec> p_tiers = {},
                       bool p_distinct = true) {
  if (p_tiers.empty()) {
    p_tiers = {{kSecondMs, kMinuteMs},
               {10 * kSecondMs, 10 * kMinuteMs},
               {kMinuteMs, kHourMs}};
  }
  auto set = PolicySet::Create(
      Policy(),
      {MakePolicy("p", "p:", p_tiers, p_distinct),
       MakePolicy("q", "q:", {{kMinuteMs, 2 * kHourMs}, {kHourMs, 2 * kDayMs}},
                  false),
       MakePolicy("r", "r:", {{kSecondMs, 30 * kSecondMs}}, true)});
  EXPECT_TRUE(set.ok()) << set.status().ToString();
  return *set;
}

// The version-1 state of the same engine: no policy set after the header.
// Its keys take the loading engine's policies, which is where the per-key
// rules below (tiers must match, members dropped) decide; a version-2 state
// puts its own policies in force first (storage/policy_reload_test.cc).
std::string AsVersion1(const Engine& engine) {
  std::string state;
  engine.SerializeTo(&state);
  std::string policies;
  EncodePolicySet(engine.policies(), &policies);
  state.erase(kStateHeaderSize, policies.size());
  state[0] = 1;
  return state;
}

struct TestEngine {
  explicit TestEngine(uint64_t seed, uint32_t shard_bits,
                      uint32_t exact_limit = 8,
                      PolicySet policies = TestPolicies())
      : clock(kT0) {
    EngineOptions options;
    options.clock = &clock;
    options.hash_seed = seed;
    options.shard_bits = shard_bits;
    options.distinct_exact_limit = exact_limit;
    options.policies = std::move(policies);
    engine = std::make_unique<Engine>(std::move(options));
  }
  ManualClock clock;
  std::unique_ptr<Engine> engine;
};

const char* const kPrefixes[] = {"p:", "q:", "r:", "u:"};

// Random adds (explicit nows, advancing), sweeps and deletes. Returns the
// last now. Keys: prefix + number; a key's number decides its member
// universe: tiny (inline, arrays), wide (sketches past the limit) or none.
int64_t Populate(Engine& engine, uint64_t seed, int events, int keys_per_prefix,
                 int64_t start = kT0) {
  std::mt19937_64 rng(seed);
  int64_t now = start;
  for (int i = 0; i < events; ++i) {
    // A few hot keys get most events, so they leave raw storage.
    const int k = rng() % 4 == 0 ? static_cast<int>(rng() % keys_per_prefix)
                                 : static_cast<int>(rng() % 3);
    const std::string key = kPrefixes[rng() % 4] + std::to_string(k);
    const int universe = k % 3 == 0 ? 3 : k % 3 == 1 ? 60 : 0;
    const std::string member =
        universe ? "m" + std::to_string(rng() % universe) : "";
    AddEvent e;
    e.key = key;
    const uint64_t r = rng() % 100;
    e.time_ms = r < 10   ? kNow
                : r < 25 ? now - static_cast<int64_t>(rng() % (3 * kHourMs))
                         : now - static_cast<int64_t>(rng() % 5000);
    e.count = 1 + static_cast<int64_t>(rng() % 3);
    e.amount = static_cast<int64_t>(rng() % 100'000) - 20'000;
    e.has_member = !member.empty();
    e.member = member;
    e.now_ms = now;
    (void)engine.Add(e);  // some are too late for their policy: fine
    if (rng() % 1000 == 0) engine.Sweep(now);
    if (rng() % 2000 == 0) engine.Delete(key);
    now += static_cast<int64_t>(rng() % 3000);
    if (rng() % 1500 == 0) now += 40 * kMinuteMs;  // fine tiers expire
  }
  return now;
}

std::vector<std::string> AllKeys(Engine& engine) {
  std::vector<std::string> keys;
  uint64_t cursor = 0;
  do {
    ScanPage page = engine.Scan(cursor, "", 1000);
    keys.insert(keys.end(), page.keys.begin(), page.keys.end());
    cursor = page.cursor;
  } while (cursor != 0);
  return keys;
}

void ExpectSameAnswer(const Result<Answer>& x, const Result<Answer>& y,
                      const std::string& what) {
  ASSERT_EQ(x.status().code(), y.status().code()) << what;
  if (!x.ok()) return;
  EXPECT_EQ(x->count, y->count) << what;
  EXPECT_EQ(x->sum, y->sum) << what;
  EXPECT_EQ(x->min, y->min) << what;
  EXPECT_EQ(x->max, y->max) << what;
  EXPECT_EQ(x->distinct, y->distinct) << what;
  EXPECT_EQ(x->exact, y->exact) << what;
  EXPECT_EQ(x->covered_from_ms, y->covered_from_ms) << what;
  EXPECT_EQ(x->covered_to_ms, y->covered_to_ms) << what;
}

void ExpectSameKeys(Engine& a, Engine& b) {
  EngineStats sa = a.Stats(), sb = b.Stats();
  EXPECT_EQ(sa.keys, sb.keys);
  EXPECT_EQ(sa.buckets, sb.buckets);
  // Key tables depend on the seed, the shard count and history (a table
  // never shrinks); everything else is exact.
  EXPECT_EQ(sa.bytes - sa.table_bytes, sb.bytes - sb.table_bytes);
  for (const std::string& key : AllKeys(a)) {
    Result<KeyInfo> x = a.Inspect(key), y = b.Inspect(key);
    ASSERT_TRUE(x.ok() && y.ok()) << key;
    EXPECT_EQ(x->bytes, y->bytes) << key;
    EXPECT_EQ(x->policy, y->policy) << key;
    EXPECT_EQ(x->raw, y->raw) << key;
    EXPECT_EQ(x->raw_events, y->raw_events) << key;
    ASSERT_EQ(x->tiers.size(), y->tiers.size()) << key;
    for (size_t k = 0; k < x->tiers.size(); ++k) {
      EXPECT_EQ(x->tiers[k].buckets, y->tiers[k].buckets) << key;
      EXPECT_EQ(x->tiers[k].sketches, y->tiers[k].sketches) << key;
      EXPECT_EQ(x->tiers[k].bytes, y->tiers[k].bytes) << key;
      EXPECT_EQ(x->tiers[k].first_bucket_ms, y->tiers[k].first_bucket_ms);
      EXPECT_EQ(x->tiers[k].last_bucket_ms, y->tiers[k].last_bucket_ms);
    }
  }
}

// Returns how many answers counted something.
int ExpectSameAnswers(Engine& a, Engine& b, int64_t now, uint64_t seed,
                      int queries) {
  std::mt19937_64 rng(seed);
  int nonzero = 0;
  for (int i = 0; i < queries; ++i) {
    const std::string prefix = kPrefixes[rng() % 4];
    const std::string key = prefix + std::to_string(rng() % (i % 2 ? 3 : 41));
    const uint32_t aggs = prefix == "q:" ? kAggAll & ~kAggDistinct : kAggAll;
    // Mostly over the hours the events span, sometimes far past them.
    const int64_t span = rng() % 8 == 0 ? 3 * kDayMs : 6 * kHourMs;
    const int64_t at = now - static_cast<int64_t>(rng() % span);
    const int64_t length = 1 + static_cast<int64_t>(rng() % span);
    const Result<Answer> x = a.Query(key, Window::Last(length, at), aggs);
    ExpectSameAnswer(x, b.Query(key, Window::Last(length, at), aggs), key);
    nonzero += x.ok() && x->count > 0;
    if (i % 10 == 0) {
      const int64_t step = kMinuteMs * (1 + static_cast<int64_t>(rng() % 60));
      auto xs = a.Range(key, at - 50 * step, at, step, aggs);
      auto ys = b.Range(key, at - 50 * step, at, step, aggs);
      EXPECT_EQ(xs.ok(), ys.ok());
      if (!xs.ok() || !ys.ok()) continue;
      EXPECT_EQ(xs->size(), ys->size());
      for (size_t p = 0; p < xs->size() && p < ys->size(); ++p) {
        ExpectSameAnswer((*xs)[p].answer, (*ys)[p].answer, key + " range");
      }
    }
  }
  return nonzero;
}

uint64_t CountSketches(Engine& engine) {
  uint64_t sketches = 0;
  for (const std::string& key : AllKeys(engine)) {
    const Result<KeyInfo> info = engine.Inspect(key);
    for (const TierInfo& t : info->tiers) sketches += t.sketches;
  }
  return sketches;
}

TEST(StateCodecTest, RoundTripGivesTheSameStateAnswersAndBytes) {
  TestEngine a(/*seed=*/7, /*shard_bits=*/3);
  const int64_t now = Populate(*a.engine, 1, 8000, 40);
  EngineStats before = a.engine->Stats();
  ASSERT_GT(before.keys, 50u);
  ASSERT_GT(before.converted_keys, 5u);
  ASSERT_GT(CountSketches(*a.engine), 0u);

  std::string snapshot;
  a.engine->SerializeTo(&snapshot);
  std::printf(
      "%llu keys (%llu converted), %llu buckets, %llu sketches: %zu "
      "bytes\n",
      static_cast<unsigned long long>(before.keys),
      static_cast<unsigned long long>(before.converted_keys),
      static_cast<unsigned long long>(before.buckets),
      static_cast<unsigned long long>(CountSketches(*a.engine)),
      snapshot.size());
  // Another seed and shard count: keys land in other shards.
  TestEngine b(/*seed=*/0xDEADBEEF, /*shard_bits=*/5);
  Status s = b.engine->LoadFrom(snapshot);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(a.engine->Digest(), b.engine->Digest());
  ExpectSameKeys(*a.engine, *b.engine);

  // The loaded engine starts at the snapshot's latest now; give the original
  // the same watermark in every shard.
  a.clock.Set(now);
  b.clock.Set(now);
  EXPECT_GT(ExpectSameAnswers(*a.engine, *b.engine, now, 3, 500), 100);

  // Serializing again gives the same keys in another order.
  std::string again;
  b.engine->SerializeTo(&again);
  EXPECT_EQ(again.size(), snapshot.size());
  TestEngine c(/*seed=*/99, /*shard_bits=*/1);
  ASSERT_TRUE(c.engine->LoadFrom(again).ok());
  EXPECT_EQ(c.engine->Digest(), a.engine->Digest());

  // The state is exact, capacities included: the same further events leave
  // the original and the loaded engine alike.
  const int64_t end_a = Populate(*a.engine, 2, 3000, 40, now);
  const int64_t end_b = Populate(*b.engine, 2, 3000, 40, now);
  EXPECT_EQ(end_a, end_b);
  EXPECT_EQ(a.engine->Digest(), b.engine->Digest());
  ExpectSameKeys(*a.engine, *b.engine);
  EXPECT_NE(a.engine->Digest(), c.engine->Digest());
}

TEST(StateCodecTest, DigestFollowsStateNotSeedsOrShards) {
  TestEngine a(1, 2), b(2, 4);
  Populate(*a.engine, 5, 2000, 10);
  Populate(*b.engine, 5, 2000, 10);
  EXPECT_EQ(a.engine->Digest(), b.engine->Digest());
  AddEvent e;
  e.key = "u:0";
  e.now_ms = kT0 + kDayMs;
  ASSERT_TRUE(a.engine->Add(e).ok());
  EXPECT_NE(a.engine->Digest(), b.engine->Digest());
  ASSERT_TRUE(b.engine->Add(e).ok());
  EXPECT_EQ(a.engine->Digest(), b.engine->Digest());
  EXPECT_TRUE(a.engine->Delete("u:0"));
  EXPECT_NE(a.engine->Digest(), b.engine->Digest());
  TestEngine empty(3, 3);
  std::string snapshot;
  empty.engine->SerializeTo(&snapshot);
  std::string policies;
  EncodePolicySet(empty.engine->policies(), &policies);
  EXPECT_EQ(snapshot.size(), kStateHeaderSize + policies.size());
  TestEngine loaded(4, 2);
  ASSERT_TRUE(loaded.engine->LoadFrom(snapshot).ok());
  EXPECT_EQ(loaded.engine->Digest(), empty.engine->Digest());
}

TEST(StateCodecTest, LoadNeedsAnEmptyEngine) {
  TestEngine a(1, 2);
  Populate(*a.engine, 1, 100, 5);
  std::string snapshot;
  a.engine->SerializeTo(&snapshot);
  const uint64_t digest = a.engine->Digest();
  EXPECT_EQ(a.engine->LoadFrom(snapshot).code(), Code::kInvalidArgument);
  EXPECT_EQ(a.engine->Digest(), digest);
}

TEST(StateCodecTest, ChangedTiersAreAClearErrorAndLeaveTheEngineEmpty) {
  TestEngine a(1, 2);
  Populate(*a.engine, 1, 3000, 10);
  const std::string snapshot = AsVersion1(*a.engine);
  TestEngine b(1, 2, 8,
               TestPolicies({{kSecondMs, 2 * kMinuteMs},
                             {10 * kSecondMs, 10 * kMinuteMs},
                             {kMinuteMs, kHourMs}}));
  Status s = b.engine->LoadFrom(snapshot);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("policy 'p''s tiers changed since the snapshot"),
            std::string_view::npos)
      << s.message();
  EXPECT_NE(s.message().find("key 'p:"), std::string_view::npos) << s.message();
  EXPECT_NE(s.message().find("1s x 1m"), std::string_view::npos) << s.message();
  EngineStats stats = b.engine->Stats();
  EXPECT_EQ(stats.keys, 0u);
  EXPECT_EQ(stats.buckets, 0u);
  EXPECT_EQ(stats.bytes, stats.table_bytes);
}

TEST(StateCodecTest, APolicyThatStoppedTrackingDistinctDropsMembers) {
  TestEngine a(1, 2);
  const int64_t now = Populate(*a.engine, 1, 3000, 10);
  const std::string snapshot = AsVersion1(*a.engine);
  TestEngine b(1, 2, 8, TestPolicies({}, /*p_distinct=*/false));
  ASSERT_TRUE(b.engine->LoadFrom(snapshot).ok());
  EXPECT_LT(b.engine->Stats().bytes, a.engine->Stats().bytes);
  a.clock.Set(now);
  b.clock.Set(now);
  for (int k = 0; k < 10; ++k) {
    const std::string key = "p:" + std::to_string(k);
    ExpectSameAnswer(a.engine->Query(key, Window::Last(kHourMs), kAggCount),
                     b.engine->Query(key, Window::Last(kHourMs), kAggCount),
                     key);
    EXPECT_EQ(b.engine->Query(key, Window::Last(kHourMs)).status().code(),
              Code::kInvalidArgument);
  }
}

// Exercises everything a loaded engine offers; a valid state must also
// survive another round trip unchanged.
void UseLoadedEngine(Engine& engine, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const uint64_t digest = engine.Digest();
  std::string snapshot;
  engine.SerializeTo(&snapshot);
  TestEngine again(5, 2);
  Status s = again.engine->LoadFrom(snapshot);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(again.engine->Digest(), digest);
  (void)engine.Stats();
  for (const std::string& key : AllKeys(engine)) {
    Result<KeyInfo> info = engine.Inspect(key);
    ASSERT_TRUE(info.ok());
    const uint32_t aggs =
        info->track_distinct ? kAggAll : kAggAll & ~kAggDistinct;
    for (int64_t length : {kSecondMs, kHourMs, 30 * kDayMs, 500 * kDayMs}) {
      (void)engine.Query(key, Window::Last(length), aggs);
      (void)engine.Query(
          key, Window::Last(length, static_cast<int64_t>(rng() % kMaxTimeMs)),
          aggs);
    }
    (void)engine.Range(key, kT0 - kDayMs, kT0 + kDayMs, kHourMs, aggs);
    AddEvent e;
    e.key = key;
    e.has_member = true;
    e.member = "x";
    e.amount = static_cast<int64_t>(rng());
    e.now_ms = kT0 + static_cast<int64_t>(rng() % kDayMs);
    (void)engine.Add(e);
  }
  engine.Sweep(kT0 + kDayMs);
  engine.Sweep(kMaxTimeMs);
  (void)engine.Digest();
}

// In the spirit of Redis' hyperloglog.tcl fuzzing: random overwrites,
// truncations and insertions never crash, hang or over-allocate; either the
// load fails (and leaves the engine empty) or the state is usable.
TEST(StateCodecTest, CorruptedSnapshotsFailCleanlyOrLoadValidState) {
  // A corpus without sketches, whose structure the mutations hit often, and
  // one with a few 16 KiB sketches.
  std::string corpora[2];
  {
    TestEngine a(1, 2, /*exact_limit=*/1000);
    Populate(*a.engine, 11, 600, 12);
    a.engine->SerializeTo(&corpora[0]);
    TestEngine b(1, 2, /*exact_limit=*/4);
    Populate(*b.engine, 12, 1500, 4);
    ASSERT_GT(CountSketches(*b.engine), 0u);
    b.engine->SerializeTo(&corpora[1]);
  }
  std::mt19937_64 rng(77);
  int loaded = 0, failed = 0;
  for (int round = 0; round < 1000; ++round) {
    std::string data = corpora[round % 4 == 3 ? 1 : 0];
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations && !data.empty(); ++m) {
      const size_t pos = rng() % data.size();
      switch (rng() % 6) {
        case 0:
        case 1:
          data[pos] = static_cast<char>(rng());
          break;
        case 2: {
          static constexpr char kSpecial[] = {0,    1,          2,         3,
                                              0x7F, char(0x80), char(0xFF)};
          data[pos] = kSpecial[rng() % sizeof(kSpecial)];
          break;
        }
        case 3:
          data.resize(pos);
          break;
        case 4:
          data.insert(pos, 1, static_cast<char>(rng()));
          break;
        case 5:
          data.erase(pos, 1 + rng() % 16);
          break;
      }
    }
    TestEngine target(round, 2, round % 2 ? 1000 : 4);
    Status s = target.engine->LoadFrom(data);
    if (!s.ok()) {
      ++failed;
      ASSERT_TRUE(s.code() == Code::kCorruption ||
                  s.code() == Code::kInvalidArgument)
          << s.ToString();
      EngineStats stats = target.engine->Stats();
      ASSERT_EQ(stats.keys, 0u);
      ASSERT_EQ(stats.buckets, 0u);
      ASSERT_EQ(stats.bytes, stats.table_bytes);
      continue;
    }
    ++loaded;
    UseLoadedEngine(*target.engine, round);
    if (HasFatalFailure()) return;
  }
  // Most mutations must be caught; some (an amount, a sum) are invisible.
  EXPECT_GT(failed, 500);
  EXPECT_GT(loaded, 20);
  std::printf("corrupted snapshots: %d loaded, %d refused\n", loaded, failed);
}

TEST(StateCodecTest, TruncationsAtEveryLengthAreRefused) {
  TestEngine a(1, 2, 4);
  Populate(*a.engine, 3, 200, 4);
  std::string snapshot;
  a.engine->SerializeTo(&snapshot);
  for (size_t n = 0; n < snapshot.size(); n += 1 + n / 64) {
    TestEngine b(2, 2);
    Status s = b.engine->LoadFrom(std::string_view(snapshot).substr(0, n));
    ASSERT_EQ(s.code(), Code::kCorruption) << n;
    ASSERT_EQ(b.engine->Stats().keys, 0u);
  }
}

TEST(StateCodecTest, HugeCountsAreRefusedBeforeAllocating) {
  std::string data;
  const size_t header = BeginState(&data);
  PatchStateHeader(&data, header, kT0, UINT64_MAX);
  EncodePolicySet(PolicySet(), &data);
  // One key whose first ring claims 2^32 - 1 buckets.
  PutU16(&data, 1);
  data += "u";
  PutU16(&data, 7);
  data += "default";
  PutU8(&data, kKeyFlagTrackDistinct);
  const Policy def;
  PutU8(&data, static_cast<uint8_t>(def.tiers.size()));
  for (const TierSpec& t : def.tiers) {
    PutI64(&data, t.resolution_ms);
    PutI64(&data, t.retention_ms);
  }
  std::string ring = data;
  PutU32(&ring, UINT32_MAX);
  PutU8(&ring, 31);
  TestEngine a(1, 2);
  Status s = a.engine->LoadFrom(ring);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("larger than the input"), std::string_view::npos)
      << s.message();
  // A member array claiming 2^30 hashes.
  std::string array = data;
  PutU32(&array, 1);
  PutU8(&array, 0);
  PutU32(&array, 5);
  for (int i = 0; i < 4; ++i) PutI64(&array, 1);
  PutU8(&array, kMembersArray);
  PutU32(&array, uint32_t{1} << 30);
  array.append(64, '\0');
  s = a.engine->LoadFrom(array);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("member count"), std::string_view::npos)
      << s.message();
  EXPECT_EQ(a.engine->Stats().keys, 0u);
}

TEST(StateCodecTest, ReaderRefusesReadsPastTheEnd) {
  std::string data;
  PutU32(&data, 0x01020304);
  PutI64(&data, -2);
  ByteReader r(data);
  uint32_t u;
  int64_t i;
  uint64_t big;
  ASSERT_TRUE(r.U32(&u));
  EXPECT_EQ(u, 0x01020304u);
  EXPECT_EQ(static_cast<uint8_t>(data[0]), 4);  // little-endian
  ASSERT_TRUE(r.I64(&i));
  EXPECT_EQ(i, -2);
  EXPECT_FALSE(r.U64(&big));
  std::string_view v;
  EXPECT_FALSE(r.Bytes(1, &v));
  EXPECT_EQ(r.remaining(), 0u);
}

}  // namespace
}  // namespace tally
