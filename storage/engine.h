// Engine: tally's in-memory counter store. Keys are spread over shards by a
// seeded XXH3 hash; each shard has its own mutex, key table and clock
// watermark, so threads working on different shards never contend
// (docs/design.md, "Shards and concurrency").
//
// Every method is thread-safe. The engine never reads the clock except through
// options.clock, never touches files or sockets, and reads no flags.

#ifndef TALLY_STORAGE_ENGINE_H_
#define TALLY_STORAGE_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"
#include "storage/clock.h"
#include "storage/policy.h"

namespace tally {

class Shard;

struct EngineOptions {
  // Source of "now"; not owned, must outlive the engine.
  const Clock* clock = SystemClock::Default();
  PolicySet policies;
  // Seed of the key hash. Pick it at random per process (hash flooding); fix
  // it in tests for determinism.
  uint64_t hash_seed = 0;
  // 2^shard_bits shards (default 256: contention stays low with dozens of
  // threads, and each shard's table stays small enough to sweep quickly).
  uint32_t shard_bits = 8;
  // A distinct answer is exact while the union of members holds at most this
  // many; above it, it is a HyperLogLog estimate (0.81 % standard error).
  uint32_t distinct_exact_limit = 1000;
};

// A fresh random key-hash seed (64 bits from std::random_device), for
// EngineOptions::hash_seed in a server: keys an attacker chose to collide
// under one seed do not collide under another (RELIABILITY.md P11).
uint64_t RandomHashSeed();

// Marks "use the engine's clock" where a time is optional.
inline constexpr int64_t kNow = std::numeric_limits<int64_t>::min();

struct AddEvent {
  std::string_view key;
  int64_t time_ms = kNow;   // event time; kNow = the engine's clock
  int64_t count = 1;        // >= 1
  int64_t amount = 0;       // minor units; may be negative (refunds)
  bool has_member = false;  // distinct member present?
  std::string_view member;  // binary-safe; may be empty when has_member
  // The "now" this add is judged against; kNow = the shard's clock watermark
  // (max(last, clock)). An explicit now decides everything about the add
  // (accepted time range, which tiers keep its bucket, lazy expiry, the time
  // of a kNow event) and raises the shard's watermark to it, so a replay of
  // logged (event, now) pairs never reads the clock and rebuilds the same
  // state. REQUIRES (else INVALID_ARGUMENT): kNow or 0 <= now_ms <
  // kMaxTimeMs (storage/window_plan.h). A log writer should pass a
  // non-decreasing now: an add judged against an earlier now than a previous
  // one may re-create a bucket that was already expired.
  int64_t now_ms = kNow;
};

struct AddResult {
  int64_t time_ms = 0;  // the event time applied
};

// Aggregate bit mask.
enum Agg : uint32_t {
  kAggCount = 1,
  kAggSum = 2,
  kAggMin = 4,
  kAggMax = 8,
  kAggAvg = 16,
  kAggDistinct = 32,
  kAggAll = 63,
};

// A window: `last length ms ending at at_ms (inclusive)` = [at - length + 1,
// at + 1), or the absolute half-open [from_ms, to_ms).
struct Window {
  static Window Last(int64_t length_ms, int64_t at_ms = kNow) {
    return {.last = true, .length_ms = length_ms, .from_ms = 0, .to_ms = at_ms};
  }
  static Window Between(int64_t from_ms, int64_t to_ms) {
    return {.last = false, .length_ms = 0, .from_ms = from_ms, .to_ms = to_ms};
  }
  bool last = false;      // a `last` window: length_ms ending at to_ms (or now)
  int64_t length_ms = 0;  // > 0 for a `last` window
  int64_t from_ms = 0;
  int64_t to_ms = 0;
};

// An answer and its envelope: exactly what was summed.
struct Answer {
  int64_t count = 0;
  int64_t sum = 0;
  int64_t min = 0;  // 0 when count == 0
  int64_t max = 0;
  double avg = 0;  // sum / count; 0 when count == 0
  uint64_t distinct = 0;
  bool exact = true;            // false when `distinct` is an estimate
  double distinct_error = 0;    // relative standard error when !exact
  int64_t covered_from_ms = 0;  // [covered_from, covered_to): what was summed
  int64_t covered_to_ms = 0;
  int64_t resolution_ms = 0;  // bucket width at the far edge
};

struct RangePoint {
  int64_t start_ms = 0;  // the step's requested start
  Answer answer;
};

struct TierInfo {
  TierSpec spec;
  uint32_t buckets = 0;         // non-empty buckets held
  uint32_t sketches = 0;        // buckets whose distinct state is a sketch
  int64_t first_bucket_ms = 0;  // start of the oldest / newest bucket held
  int64_t last_bucket_ms = 0;
  int64_t bytes = 0;
};

struct KeyInfo {
  std::string key;
  std::string policy;
  bool track_distinct = false;
  int64_t max_lateness_ms = 0;
  int64_t max_skew_ms = 0;
  // A key with few events keeps them raw (exact) instead of in tier buckets
  // until it has more than kMaxRawEvents (docs/design.md).
  bool raw = false;
  uint32_t raw_events = 0;
  std::vector<TierInfo> tiers;
  int64_t bytes = 0;  // everything this key holds
};

struct ScanPage {
  uint64_t cursor = 0;  // pass back for the next page; 0 when the scan is done
  std::vector<std::string> keys;
};

struct EngineStats {
  uint64_t keys = 0;
  uint64_t buckets = 0;
  int64_t bytes = 0;        // keys, buckets, members and key tables
  int64_t table_bytes = 0;  // of which the key tables
  uint64_t adds = 0;
  uint64_t queries = 0;
  uint64_t rejected_invalid = 0;  // bad key, count, window...
  uint64_t rejected_time = 0;     // event time out of the policy's range
  uint64_t rejected_overflow = 0;
  uint64_t expired_buckets = 0;
  uint64_t expired_keys = 0;
  uint64_t converted_keys = 0;  // raw keys that grew into tier rings
  uint64_t deleted_keys = 0;
};

class Engine {
 public:
  // REQUIRES: options.clock != nullptr, 1 <= shard_bits <= 16.
  explicit Engine(EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Records one event in every tier of the key's policy. Nothing changes when
  // it fails: INVALID_KEY, INVALID_ARGUMENT (count < 1), TIME_OUT_OF_RANGE
  // (outside [now - max_lateness, now + max_skew]), OVERFLOW.
  Result<AddResult> Add(const AddEvent& event);

  // Adds many events; out[i] receives event i's outcome, exactly as Add
  // would give it (events are applied in order). Faster than a loop of Add
  // for keys not in cache: the batch's memory accesses are overlapped.
  // REQUIRES: out.size() >= events.size().
  struct AddOutcome {
    Status status;
    AddResult result;
  };
  void AddBatch(std::span<const AddEvent> events, std::span<AddOutcome> out);

  // Aggregates of `key` over `window`. A key never seen answers zeros with its
  // envelope. INVALID_KEY, INVALID_WINDOW, INVALID_ARGUMENT (distinct asked of
  // a policy that does not track it), OVERFLOW (sum outside int64).
  Result<Answer> Query(std::string_view key, const Window& window,
                       uint32_t aggs = kAggAll);

  // One answer per step over [from, to): [from, from+step), ... At most
  // kMaxRangePoints points.
  static constexpr int64_t kMaxRangePoints = 10000;
  Result<std::vector<RangePoint>> Range(std::string_view key, int64_t from_ms,
                                        int64_t to_ms, int64_t step_ms,
                                        uint32_t aggs = kAggAll);

  // Policy, tiers, buckets and bytes of one key. NOT_FOUND if absent.
  Result<KeyInfo> Inspect(std::string_view key);

  // Keys whose bytes match the glob `pattern` (fnmatch(3); empty = all), in
  // hash order from `cursor` (0 to start). Returns about `count` keys per call.
  // Every key present for the whole scan is returned exactly once, whatever
  // is inserted or removed meanwhile.
  ScanPage Scan(uint64_t cursor, std::string_view pattern, size_t count);

  // Removes a key. Returns whether it existed.
  bool Delete(std::string_view key);

  // Drops expired buckets in every key of every shard and removes keys left
  // empty. Returns the number of keys removed. Reads and writes proceed
  // between shards.
  uint64_t Sweep();
  // The same for one shard; for a background sweeper that spreads the work.
  uint64_t SweepShard(size_t shard);
  // The same, expiring against exactly `now_ms` (clamped to [0, kMaxTimeMs])
  // instead of the clock, for replaying a log; raises the swept shards'
  // watermarks to now_ms so that queries never plan over dropped buckets.
  // Which keys a shard holds depends on hash_seed() and shard_bits: replaying
  // SweepShard needs both unchanged, Sweep(now_ms) does not.
  uint64_t Sweep(int64_t now_ms);
  uint64_t SweepShard(size_t shard, int64_t now_ms);
  size_t shard_count() const { return shards_.size(); }

  // Whether `key` holds state now (false for an invalid key).
  bool Contains(std::string_view key);

  EngineStats Stats() const;
  // Bytes held by keys, buckets, members and key tables: Stats().bytes,
  // kept current by every shard as it changes, read with one atomic load
  // (for a memory cap checked on every add).
  int64_t memory_bytes() const {
    return memory_bytes_.load(std::memory_order_relaxed);
  }
  // The policies in force (options.policies until ReplacePolicies or a
  // LoadFrom that carries policies). The reference stays valid for the
  // engine's lifetime; a later replacement does not change what it refers
  // to.
  const PolicySet& policies() const {
    return *policies_.load(std::memory_order_acquire);
  }
  // Puts `next` in force for every key (a policy reload, a WAL kPolicies
  // record): each key takes next.Match(key) at once, with its limits
  // (lateness, skew) and whether it tracks distinct members (a key whose
  // new policy does not drops its members, as LoadFrom does). Refused with
  // INVALID_ARGUMENT, nothing changed, when a stored key's tiers would
  // change: buckets cannot be rebucketed. Holds every shard's mutex while
  // it walks the keys (O(keys)): adds and queries wait meanwhile. A pure
  // function of (state, next), like every mutation: replay decides the
  // same.
  Status ReplacePolicies(PolicySet next);
  const EngineOptions& options() const { return options_; }
  uint64_t hash_seed() const { return options_.hash_seed; }

  // Snapshots (format: storage/state_codec.h). SerializeTo appends every key
  // to *out, one shard at a time under that shard's mutex: queries may run
  // meanwhile, but the caller must stop mutations (adds, sweeps, deletes)
  // for the cut to be consistent. Keys appear in shard/table order, which
  // depends on the hash seed; compare snapshots with Digest(), not bytes.
  void SerializeTo(std::string* out) const;
  // Loads a snapshot into this engine, which must hold no keys
  // (INVALID_ARGUMENT otherwise). A snapshot that carries the policies in
  // force at its cut (state version 2) puts them in force first, so replay
  // judges events as the live server did; then each key takes
  // policies().Match(key). A policy whose tiers differ from the snapshot's
  // is INVALID_ARGUMENT (buckets cannot be rebucketed), and a policy that no
  // longer tracks distinct members drops them. Any structural problem is
  // CORRUPTION; the input is never trusted (no crash, no allocation beyond a
  // small multiple of data.size()). On failure the engine is left empty.
  // Shard watermarks are raised to the snapshot's latest "now".
  Status LoadFrom(std::string_view data);
  // An order-independent digest of every key's state: the wrapping sum of
  // XXH3 of each key's snapshot encoding, mixed with the key count. Equal
  // for engines holding the same keys with the same state, whatever their
  // hash seeds, shard counts or clocks. Ring and raw capacities are part of
  // a key's state (they decide its bytes); a ring's head position is not.
  // Excludes watermarks, key tables and statistics counters.
  uint64_t Digest() const;

 private:
  uint64_t HashKey(std::string_view key) const;
  Shard& ShardFor(uint64_t hash) {
    return *shards_[hash >> (64 - options_.shard_bits)];
  }

  // REQUIRES: policy_mu_ held. Keeps `next` alive for the engine's
  // lifetime (keys and shards point into it) and returns it.
  const PolicySet* KeepPolicies(PolicySet next);

  EngineOptions options_;
  // Every policy set ever in force, never freed: a key's Policy pointer and
  // a caller's policies() reference stay valid. Reloads are rare.
  std::mutex policy_mu_;
  std::vector<std::unique_ptr<const PolicySet>> policy_sets_;
  std::atomic<const PolicySet*> policies_{nullptr};
  // Before shards_: the shards add to it until they are destroyed.
  std::atomic<int64_t> memory_bytes_{0};
  std::vector<std::unique_ptr<Shard>> shards_;
};

// The member hash used for distinct counting: XXH3 with a fixed seed (stable
// across restarts, unlike the key hash), never 0.
uint64_t HashMember(std::string_view member);

}  // namespace tally

#endif  // TALLY_STORAGE_ENGINE_H_
