// Shard: one slice of the key space (by the top bits of the key hash) with its
// own mutex, key table, clock watermark, byte count and statistics. Internal
// to the engine: callers go through Engine, which hashes the key once and
// picks the shard.
//
// Thread safety: every public method takes the shard's mutex.

#ifndef TALLY_STORAGE_SHARD_H_
#define TALLY_STORAGE_SHARD_H_

#include <atomic>
#include <boost/unordered/unordered_flat_set.hpp>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/engine.h"
#include "storage/key_state.h"

namespace tally {

// A key and its engine hash, for lookups without building a KeyState.
struct KeyLookup {
  std::string_view key;
  uint64_t hash;
};

uint64_t HashKeyBytes(std::string_view key, uint64_t seed);

class Shard {
 public:
  // `total_bytes` (the engine's, not owned) receives every change of this
  // shard's bytes (as AddStats counts them), so the engine can read its
  // memory use with one atomic load (Engine::memory_bytes()).
  // `policies` (not owned) decides the policy of new keys until
  // SetPoliciesLocked.
  Shard(const EngineOptions* options, const PolicySet* policies,
        std::atomic<int64_t>* total_bytes);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  Result<AddResult> Add(const AddEvent& event, uint64_t hash,
                        uint64_t member_hash);

  // For batches (Engine::AddBatch), which hold several shards' mutexes at once
  // so that the cache misses of many keys overlap. REQUIRES: mu() held.
  std::mutex& mu() { return mu_; }
  Result<AddResult> AddLocked(const AddEvent& event, uint64_t hash,
                              uint64_t member_hash);
  // Looks the key up (warming the table) and prefetches its state.
  void PrefetchKeyLocked(KeyLookup key) const;
  // Prefetches the lines an add will write: the raw append slot, or the
  // newest bucket of every tier.
  void PrefetchPayloadLocked(KeyLookup key) const;
  Result<Answer> Query(KeyLookup key, const Window& window, uint32_t aggs);
  Result<std::vector<RangePoint>> Range(KeyLookup key, int64_t from_ms,
                                        int64_t to_ms, int64_t step_ms,
                                        uint32_t aggs);
  Result<KeyInfo> Inspect(KeyLookup key);
  bool Delete(KeyLookup key);
  bool Contains(KeyLookup key) const;
  // Expires against the clock watermark, or exactly `now_ms` (which raises
  // the watermark).
  uint64_t Sweep();
  uint64_t Sweep(int64_t now_ms);

  // Snapshots (storage/state_codec.h). Appends every key's record; returns
  // how many and raises *watermark to this shard's.
  uint64_t SerializeTo(std::string* out, int64_t* watermark) const;
  // Adds XXH3 of every key's record to *sum (wrapping); returns how many.
  // `scratch` is reused between keys.
  uint64_t AddDigest(uint64_t* sum, std::string* scratch) const;
  // Takes a decoded key whose engine hash is `hash`, with its `bytes` and
  // `buckets`. False (and nothing taken) if the key is already present.
  bool InsertLoaded(uint64_t hash, KeyState* state, int64_t bytes,
                    uint64_t buckets);
  void RaiseWatermark(int64_t now_ms);
  // Removes every key (a failed load); statistics counters are kept.
  void Clear();
  size_t key_count() const;

  // Appends (hash, key) for the keys with hash >= min_hash, smallest hashes
  // first: at least `limit` of them when the shard has that many (more when
  // hashes tie at the cut). Returns false when the shard has no more keys
  // past those appended.
  bool ScanFrom(uint64_t min_hash, size_t limit,
                std::vector<std::pair<uint64_t, std::string>>* out);

  void AddStats(EngineStats* stats) const;

  // Policy replacement (Engine::ReplacePolicies, which holds every shard's
  // mutex). REQUIRES: mu() held. OK when every key keeps its tiers under
  // `next`, else INVALID_ARGUMENT naming the first key that would not.
  Status CheckPoliciesLocked(const PolicySet& next) const;
  // Every key takes next->Match(key); new keys too from now on. A key whose
  // policy stops tracking distinct members drops them (as a snapshot load
  // does). REQUIRES: mu() held, CheckPoliciesLocked(*next) is OK; *next
  // outlives the shard.
  void SetPoliciesLocked(const PolicySet* next);

 private:
  struct Hasher {
    using is_transparent = void;
    using is_avalanching = void;
    uint64_t seed;
    size_t operator()(const KeyState* s) const {
      return Remix(HashKeyBytes(s->key(), seed));
    }
    size_t operator()(const KeyLookup& k) const { return Remix(k.hash); }
    // The top bits chose the shard; spread the rest over the table.
    static size_t Remix(uint64_t h) {
      h ^= h >> 31;
      h *= 0x9E3779B97F4A7C15ull;
      return h ^ (h >> 29);
    }
  };
  struct Equal {
    using is_transparent = void;
    bool operator()(const KeyState* a, const KeyState* b) const {
      return a->key() == b->key();
    }
    bool operator()(const KeyLookup& a, const KeyState* b) const {
      return a.key == b->key();
    }
    bool operator()(const KeyState* a, const KeyLookup& b) const {
      return a->key() == b.key;
    }
  };
  using Table = boost::unordered_flat_set<KeyState*, Hasher, Equal>;

  // REQUIRES: mu_ held. Bytes of the key table (boost's flat table: one
  // pointer per slot plus 16 metadata bytes per 15 slots).
  int64_t TableBytesLocked() const;
  // REQUIRES: mu_ held. Adds the change of bytes_ + table bytes since the
  // last call to *total_bytes_ (one relaxed atomic add, only when it moved).
  void PublishBytesLocked();
  // Publishes on scope exit, whichever way an add returns.
  struct PublishOnExit {
    Shard* shard;
    ~PublishOnExit() { shard->PublishBytesLocked(); }
  };

  // REQUIRES: mu_ held. Time never goes backwards within a shard.
  int64_t AdvanceClock();
  KeyState* FindLocked(KeyLookup key) const;
  Result<Answer> QueryLocked(const KeyState* state, const Policy& policy,
                             int64_t now, int64_t from_ms, int64_t to_ms,
                             uint32_t aggs) const;
  // Drops buckets past retention in every tier; returns buckets dropped.
  uint64_t ExpireLocked(KeyState* state, int64_t now);
  // Expires every key at `now` and removes the empty ones; returns how many.
  uint64_t SweepLocked(int64_t now);
  void EraseLocked(KeyState* state);
  // Replays a full raw key into tier rings; returns the tiered key.
  KeyState* ConvertToTiered(KeyState* raw_state, int64_t now);
  // Applies one event to every tier that still keeps its bucket; `indexes`
  // are its bucket indexes, `first_kept` each tier's oldest kept index.
  void ApplyTiered(KeyState* state, const RawEvent& e, const uint32_t* indexes,
                   const uint32_t* first_kept);
  // Each tier's oldest kept bucket index at `now`, cached per (policy, now).
  const uint32_t* FirstKept(const Policy& policy, int64_t now);
  // The bucket index of time `t` in every tier of `policy`.
  void BucketIndexes(const Policy& policy, int64_t t, uint32_t* out) const;

  // REQUIRES: mu_ held. Frees every distinct member the key holds.
  void DropMembersLocked(KeyState* state);

  const EngineOptions* options_;
  const PolicySet* policies_;  // guarded by mu_
  mutable std::mutex mu_;
  Table keys_;
  int64_t now_ms_ = 0;
  int64_t bytes_ = 0;  // key states, rings and members (not the table)
  std::atomic<int64_t>* total_bytes_;
  int64_t published_bytes_ = 0;  // bytes_ + table last added to total_bytes_
  uint64_t buckets_ = 0;
  uint64_t adds_ = 0;
  mutable uint64_t queries_ = 0;
  uint64_t rejected_invalid_ = 0;
  uint64_t rejected_time_ = 0;
  uint64_t rejected_overflow_ = 0;
  uint64_t expired_buckets_ = 0;
  uint64_t expired_keys_ = 0;
  uint64_t deleted_keys_ = 0;
  uint64_t converted_keys_ = 0;
  // FirstKept's cache.
  const Policy* plan_policy_ = nullptr;
  int64_t plan_now_ = -1;
  uint32_t first_kept_[kMaxTiers] = {};
  uint32_t ratio_[kMaxTiers] = {};
};

}  // namespace tally

#endif  // TALLY_STORAGE_SHARD_H_
