// Policy reloads: Engine::ReplacePolicies, the policy-set codec, the WAL's
// kPolicies record and snapshots that carry the policies in force, so that
// replay judges every event with the policies the live server judged it with
// (docs/operations.md, "Policy file").

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "storage/engine.h"
#include "storage/policy_codec.h"
#include "storage/recovery.h"
#include "storage/snapshot.h"
#include "storage/wal_record.h"
#include "storage/wal_test_util.h"

namespace tally {
namespace {

using testing_util::kT0;
using testing_util::LoggedRecord;

constexpr int64_t kMinute = 60 * 1000;
constexpr int64_t kHour = 60 * kMinute;

Policy Named(std::string name, std::string prefix) {
  Policy p;
  p.name = std::move(name);
  p.prefix = std::move(prefix);
  return p;
}

PolicySet Set(Policy def, std::vector<Policy> prefixed = {}) {
  Result<PolicySet> set =
      PolicySet::Create(std::move(def), std::move(prefixed));
  EXPECT_TRUE(set.ok()) << set.status().ToString();
  return set.ok() ? std::move(*set) : PolicySet();
}

// The default policy with another lateness.
PolicySet Lateness(int64_t ms) {
  Policy def;
  def.max_lateness_ms = ms;
  return Set(def);
}

AddEvent Event(std::string_view key, int64_t time_ms,
               std::string_view member = {}) {
  AddEvent e;
  e.key = key;
  e.time_ms = time_ms;
  e.amount = 10;
  e.has_member = !member.empty();
  e.member = member;
  return e;
}

class PolicyReloadTest : public ::testing::Test {
 protected:
  PolicyReloadTest() : clock_(kT0), engine_(Options(Lateness(kHour))) {}

  EngineOptions Options(PolicySet policies) {
    EngineOptions o = testing_util::SmallEngineOptions(&clock_);
    o.policies = std::move(policies);
    return o;
  }

  ManualClock clock_;
  Engine engine_;
};

TEST_F(PolicyReloadTest, NewLimitsApplyToStoredKeysAtOnce) {
  ASSERT_TRUE(engine_.Add(Event("user:1", kT0)).ok());
  // 90 minutes late: outside the first policy's hour.
  const AddEvent late = Event("user:1", kT0 - 90 * kMinute);
  EXPECT_EQ(engine_.Add(late).status().code(), Code::kTimeOutOfRange);

  ASSERT_TRUE(engine_.ReplacePolicies(Lateness(2 * kHour)).ok());
  EXPECT_TRUE(engine_.Add(late).ok());
  Result<KeyInfo> info = engine_.Inspect("user:1");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->max_lateness_ms, 2 * kHour);
  Result<Answer> a = engine_.Query("user:1", Window::Last(3 * kHour));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->count, 2);
}

TEST_F(PolicyReloadTest, ANewPrefixWithTheSameTiersTakesItsStoredKeys) {
  ASSERT_TRUE(engine_.Add(Event("m:1", kT0, "card-a")).ok());
  ASSERT_TRUE(engine_.Add(Event("u:1", kT0, "card-b")).ok());
  const int64_t bytes_before = engine_.memory_bytes();

  Policy merchant = Named("merchant", "m:");
  merchant.max_lateness_ms = kHour;
  merchant.track_distinct = false;
  Policy def;
  def.max_lateness_ms = kHour;
  ASSERT_TRUE(engine_.ReplacePolicies(Set(def, {merchant})).ok());

  Result<KeyInfo> m = engine_.Inspect("m:1");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->policy, "merchant");
  EXPECT_FALSE(m->track_distinct);
  EXPECT_EQ(
      engine_.Query("m:1", Window::Last(kMinute), kAggDistinct).status().code(),
      Code::kInvalidArgument);
  EXPECT_EQ(engine_.Inspect("u:1")->policy, "default");
  // The members "m:1" held are gone, as a snapshot load would drop them;
  // counts stay.
  EXPECT_LE(engine_.memory_bytes(), bytes_before);
  EXPECT_EQ(engine_.Query("m:1", Window::Last(kMinute), kAggCount)->count, 1);
  EXPECT_EQ(engine_.Query("u:1", Window::Last(kMinute))->distinct, 1u);
  // A snapshot of the result loads (no members without track_distinct).
  std::string snap;
  engine_.SerializeTo(&snap);
  Engine copy(Options(PolicySet()));
  ASSERT_TRUE(copy.LoadFrom(snap).ok());
  EXPECT_EQ(copy.Digest(), engine_.Digest());
}

TEST_F(PolicyReloadTest, TiersCannotChangeUnderStoredKeys) {
  ASSERT_TRUE(engine_.Add(Event("x:1", kT0)).ok());
  const uint64_t digest = engine_.Digest();
  Policy coarse = Named("coarse", "x:");
  coarse.tiers = {{kMinute, 2 * kHour}};

  Status s = engine_.ReplacePolicies(Set(Policy(), {coarse}));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("x:1"), std::string::npos)
      << s.ToString();
  EXPECT_NE(std::string(s.message()).find("rebucketed"), std::string::npos);
  // Nothing changed: not the policies, not the key.
  EXPECT_EQ(engine_.policies().All().size(), 1u);
  EXPECT_EQ(engine_.policies().default_policy().max_lateness_ms, kHour);
  EXPECT_EQ(engine_.Digest(), digest);

  // Without keys under it, the same change is fine, and new keys take it.
  ASSERT_TRUE(engine_.Delete("x:1"));
  ASSERT_TRUE(engine_.ReplacePolicies(Set(Policy(), {coarse})).ok());
  ASSERT_TRUE(engine_.Add(Event("x:2", kT0)).ok());
  EXPECT_EQ(engine_.Inspect("x:2")->tiers.size(), 1u);
}

TEST_F(PolicyReloadTest, SnapshotsCarryThePoliciesInForce) {
  ASSERT_TRUE(engine_.Add(Event("user:1", kT0, "a")).ok());
  ASSERT_TRUE(engine_.ReplacePolicies(Lateness(3 * kHour)).ok());
  std::string snap;
  engine_.SerializeTo(&snap);

  // Whatever the restart is configured with, the loaded engine judges with
  // the policies of the cut.
  Engine loaded(Options(Lateness(kMinute)));
  ASSERT_TRUE(loaded.LoadFrom(snap).ok());
  EXPECT_TRUE(SamePolicies(loaded.policies(), engine_.policies()));
  EXPECT_EQ(loaded.Digest(), engine_.Digest());
  EXPECT_TRUE(loaded.Add(Event("user:1", kT0 - 2 * kHour)).ok());
}

TEST_F(PolicyReloadTest, VersionOneStateStillLoadsWithTheConfiguredPolicies) {
  ASSERT_TRUE(engine_.Add(Event("user:1", kT0)).ok());
  std::string snap;
  engine_.SerializeTo(&snap);
  // Version 1 is version 2 without the policy set after the header.
  std::string policies;
  EncodePolicySet(engine_.policies(), &policies);
  ASSERT_EQ(snap.substr(kStateHeaderSize, policies.size()), policies);
  std::string v1 = snap;
  v1.erase(kStateHeaderSize, policies.size());
  v1[0] = 1;

  Engine loaded(Options(Lateness(5 * kHour)));
  ASSERT_TRUE(loaded.LoadFrom(v1).ok());
  EXPECT_EQ(loaded.policies().default_policy().max_lateness_ms, 5 * kHour);
  EXPECT_EQ(loaded.Digest(), engine_.Digest());
}

TEST(PolicyCodecTest, RoundTripsAndRefusesEveryTruncation) {
  Policy def;
  def.max_skew_ms = 2000;
  Policy card = Named("card", "card:");
  card.tiers = {{1000, 60 * 1000}, {60 * 1000, 2 * 3600 * 1000}};
  card.track_distinct = false;
  card.max_lateness_ms = 0;
  const PolicySet set = Set(def, {card, Named("ip", "ip:")});
  std::string bytes;
  EncodePolicySet(set, &bytes);

  ByteReader reader(bytes);
  Result<PolicySet> back = DecodePolicySet(&reader, "test");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(reader.remaining(), 0u);
  EXPECT_TRUE(SamePolicies(*back, set));
  EXPECT_FALSE(SamePolicies(*back, PolicySet()));

  for (size_t n = 0; n < bytes.size(); ++n) {
    ByteReader cut(std::string_view(bytes).substr(0, n));
    EXPECT_EQ(DecodePolicySet(&cut, "test").status().code(), Code::kCorruption)
        << n;
  }
}

TEST(PolicyCodecTest, InvalidPoliciesAreCorruption) {
  Policy def;
  std::string bytes;
  EncodePolicySet(Set(def), &bytes);
  // The first tier's resolution (after count, name, prefix, flags, lateness
  // and skew, tier count): 500 ms is not a whole second.
  const size_t at = 2 + 2 + def.name.size() + 2 + 1 + 8 + 8 + 1;
  std::string bad = bytes;
  const int64_t half_second = 500;
  std::memcpy(bad.data() + at, &half_second, 8);
  ByteReader reader(bad);
  Result<PolicySet> r = DecodePolicySet(&reader, "test");
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(std::string(r.status().message()).find("whole number of seconds"),
            std::string::npos)
      << r.status().ToString();
}

// A reload through the WAL: replay switches policies at the record's LSN,
// so an event the reloaded policy refused stays refused, and one the old
// policy accepted stays accepted, whatever the restart is configured with.
TEST(PolicyRecordTest, ReplaySwitchesPoliciesAtTheRecordsLsn) {
  ManualClock clock(kT0);
  testing_util::NoSyncFileSystem fs;
  testing_util::TempDir dir;
  const std::string data_dir = dir.path() + "/data";

  auto add = [](std::string_view key, int64_t time_ms) {
    wal::AddOp op;
    op.key = key;
    op.time_ms = time_ms;
    std::string payload;
    wal::EncodeAddBatch({&op, 1}, &payload);
    return payload;
  };
  std::string narrow;
  wal::EncodePolicies(Lateness(10 * kMinute), &narrow);
  std::string wide;
  wal::EncodePolicies(Lateness(3 * kHour), &wide);
  const std::vector<LoggedRecord> records = {
      {wal::RecordType::kAddBatch, 1, kT0, add("k", kT0 - 30 * kMinute)},
      {wal::RecordType::kPolicies, 2, kT0, narrow},
      {wal::RecordType::kAddBatch, 3, kT0, add("k", kT0 - 30 * kMinute)},
      {wal::RecordType::kPolicies, 4, kT0, wide},
      {wal::RecordType::kAddBatch, 5, kT0, add("k", kT0 - 2 * kHour)},
  };
  testing_util::WriteWal(&fs, data_dir, records, 1 << 20);

  // The live server: records applied in order, outcomes seen.
  EngineOptions live_options = testing_util::SmallEngineOptions(&clock);
  live_options.policies = Lateness(kHour);
  Engine live(live_options);
  DedupeTable dedupe(testing_util::SmallDedupeOptions());
  std::vector<int> accepted;
  for (const LoggedRecord& r : records) {
    std::vector<wal::ItemOutcome> out;
    ASSERT_TRUE(
        wal::ApplyRecord({&live, &dedupe}, r.type, r.time_ms, r.payload, &out)
            .ok());
    ASSERT_EQ(out.size(), 1u);
    accepted.push_back(out[0].status.ok() ? 1 : 0);
  }
  EXPECT_EQ(accepted, (std::vector<int>{1, 1, 0, 1, 1}));
  EXPECT_EQ(live.Query("k", Window::Last(3 * kHour))->count, 2);

  // The restart is configured with the first policies again: replay still
  // follows the records.
  RecoveryOptions options = testing_util::MakeRecoveryOptions(
      &fs, data_dir, RecoveryMode::kAbsolute, &clock);
  options.engine.policies = Lateness(kHour);
  Result<Recovered> r = Recover(options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->engine->Digest(), live.Digest());
  EXPECT_TRUE(SamePolicies(r->engine->policies(), live.policies()));
}

TEST(PolicyRecordTest, ARefusedReloadIsAnOutcomeNotACorruptRecord) {
  ManualClock clock(kT0);
  Engine engine(testing_util::SmallEngineOptions(&clock));
  DedupeTable dedupe(testing_util::SmallDedupeOptions());
  ASSERT_TRUE(engine.Add(Event("k", kT0)).ok());
  Policy one_tier;
  one_tier.tiers = {{kMinute, kHour}};
  std::string payload;
  wal::EncodePolicies(Set(one_tier), &payload);
  std::vector<wal::ItemOutcome> out;
  ASSERT_TRUE(wal::ApplyRecord({&engine, &dedupe}, wal::RecordType::kPolicies,
                               kT0, payload, &out)
                  .ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status.code(), Code::kInvalidArgument);
  EXPECT_EQ(engine.policies().default_policy().tiers.size(), 4u);

  EXPECT_EQ(wal::ApplyRecord({&engine, &dedupe}, wal::RecordType::kPolicies,
                             kT0, payload.substr(0, payload.size() - 1), &out)
                .code(),
            Code::kCorruption);
}

// Adds and queries on many threads while another replaces the policies:
// every accepted add is counted once (run under TSan: label concurrency).
TEST(PolicyReloadConcurrencyTest, AddsAndQueriesRaceReloads) {
  ManualClock clock(kT0);
  EngineOptions options = testing_util::SmallEngineOptions(&clock);
  Engine engine(options);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = "k" + std::to_string(t);
      for (int i = 0; i < 20000; ++i) {
        if (engine.Add(Event(key, kT0 - 90 * kMinute)).ok()) ++accepted;
        (void)engine.Query(key, Window::Last(kHour));
        (void)engine.policies().Match(key);
      }
    });
  }
  std::thread reloader([&] {
    for (int i = 0; !stop.load() && i < 5000; ++i) {
      ASSERT_TRUE(
          engine.ReplacePolicies(Lateness(i % 2 == 0 ? kHour : 2 * kHour))
              .ok());
    }
  });
  for (std::thread& t : threads) t.join();
  stop = true;
  reloader.join();
  int64_t counted = 0;
  for (int t = 0; t < 3; ++t) {
    counted +=
        engine.Query("k" + std::to_string(t), Window::Last(3 * kHour))->count;
  }
  EXPECT_EQ(counted, accepted.load());
}

}  // namespace
}  // namespace tally
