#include "storage/engine.h"

#include <fnmatch.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "storage/key_state.h"
#include "storage/policy_codec.h"
#include "storage/shard.h"
#include "storage/state_codec.h"
#include "storage/window_plan.h"

namespace tally {

uint64_t RandomHashSeed() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

namespace {

Status CheckKey(std::string_view key) {
  if (key.empty()) return Status::InvalidKey("key is empty");
  if (key.size() > kMaxKeySize) {
    return Status::InvalidKey("key is " + std::to_string(key.size()) +
                              " bytes; the maximum is " +
                              std::to_string(kMaxKeySize));
  }
  return Status::Ok();
}

bool GlobMatch(std::string_view pattern, const std::string& key) {
  if (pattern.empty()) return true;
  // fnmatch(3) works on C strings: a NUL byte inside a key ends what it sees.
  return fnmatch(std::string(pattern).c_str(), key.c_str(), 0) == 0;
}

// An explicit now must keep the add's time arithmetic far from int64's
// limits, as the clock does.
Status CheckNow(int64_t now_ms) {
  if (now_ms == kNow || (now_ms >= 0 && now_ms < kMaxTimeMs)) {
    return Status::Ok();
  }
  return Status::InvalidArgument("now " + std::to_string(now_ms) +
                                 " is outside [0, " +
                                 std::to_string(kMaxTimeMs) + ") ms");
}

}  // namespace

uint64_t HashMember(std::string_view member) {
  uint64_t h = XXH3_64bits(member.data(), member.size());
  return h == 0 ? 1 : h;
}

Engine::Engine(EngineOptions options) : options_(std::move(options)) {
  // Programming errors, not input: fail loudly in every build type.
  if (options_.clock == nullptr || options_.shard_bits < 1 ||
      options_.shard_bits > 16) {
    std::fprintf(stderr,
                 "tally::Engine: needs a clock and 1 <= shard_bits <= 16\n");
    std::abort();
  }
  const PolicySet* policies = nullptr;
  {
    std::lock_guard<std::mutex> lock(policy_mu_);
    policies = KeepPolicies(options_.policies);
  }
  shards_.reserve(size_t{1} << options_.shard_bits);
  for (size_t i = 0; i < (size_t{1} << options_.shard_bits); ++i) {
    shards_.push_back(
        std::make_unique<Shard>(&options_, policies, &memory_bytes_));
  }
}

const PolicySet* Engine::KeepPolicies(PolicySet next) {
  policy_sets_.push_back(std::make_unique<const PolicySet>(std::move(next)));
  const PolicySet* kept = policy_sets_.back().get();
  policies_.store(kept, std::memory_order_release);
  return kept;
}

namespace {

// Whether some key could get other tiers under `next` than under `now`.
// A key's policy is decided by the longest configured prefix it starts
// with; the longer of its two longest prefixes (one per set) is itself a
// key with the same two matches, so checking every prefix of both sets
// (and "") covers every key.
bool TiersMayChange(const PolicySet& now, const PolicySet& next) {
  std::vector<std::string_view> prefixes = {""};
  for (const Policy* p : now.All()) prefixes.push_back(p->prefix);
  for (const Policy* p : next.All()) prefixes.push_back(p->prefix);
  return std::any_of(prefixes.begin(), prefixes.end(), [&](auto prefix) {
    return now.Match(prefix).tiers != next.Match(prefix).tiers;
  });
}

}  // namespace

Status Engine::ReplacePolicies(PolicySet next) {
  std::lock_guard<std::mutex> replace_lock(policy_mu_);
  // Equal sets route every key to an equal policy: nothing to walk (every
  // start logs its policies, usually unchanged).
  if (SamePolicies(policies(), next)) return Status::Ok();
  // Shard by shard, one mutex at a time (holding all 256 at once would
  // stall every reader for the whole walk, and exceeds what TSan's deadlock
  // detector tracks). tallyd applies every mutation on the journal's
  // thread, this included, so no add runs between the check and the switch
  // there; a caller adding concurrently may see some shards switched before
  // others.
  if (TiersMayChange(policies(), next)) {
    for (auto& shard : shards_) {
      std::lock_guard<std::mutex> lock(shard->mu());
      Status s = shard->CheckPoliciesLocked(next);
      if (!s.ok()) return s;
    }
  }
  const PolicySet* kept = KeepPolicies(std::move(next));
  for (auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu());
    shard->SetPoliciesLocked(kept);
  }
  return Status::Ok();
}

Engine::~Engine() = default;

uint64_t Engine::HashKey(std::string_view key) const {
  return HashKeyBytes(key, options_.hash_seed);
}

Result<AddResult> Engine::Add(const AddEvent& event) {
  Status s = CheckKey(event.key);
  if (!s.ok()) return s;
  if (event.count < 1) {
    return Status::InvalidArgument("count must be >= 1, got " +
                                   std::to_string(event.count));
  }
  s = CheckNow(event.now_ms);
  if (!s.ok()) return s;
  const uint64_t hash = HashKey(event.key);
  const uint64_t member_hash = event.has_member ? HashMember(event.member) : 0;
  return ShardFor(hash).Add(event, hash, member_hash);
}

void Engine::AddBatch(std::span<const AddEvent> events,
                      std::span<AddOutcome> out) {
  // Work in chunks: each holds the mutexes of the shards it touches (taken in
  // index order, so two batches cannot deadlock) while it runs three passes:
  // look every key up and prefetch its state, prefetch the lines each add
  // will write, then apply. The misses of one pass overlap instead of
  // following each other; the apply pass is the single-add path.
  constexpr size_t kChunk = 32;
  struct Item {
    uint64_t hash;
    uint64_t member_hash;
    Shard* shard;
    bool valid;
  };
  for (size_t base = 0; base < events.size(); base += kChunk) {
    const size_t n = std::min(kChunk, events.size() - base);
    Item items[kChunk];
    Shard* shards[kChunk];
    size_t shard_count = 0;
    for (size_t i = 0; i < n; ++i) {
      const AddEvent& e = events[base + i];
      Item& item = items[i];
      Status s = CheckKey(e.key);
      if (s.ok() && e.count < 1) {
        s = Status::InvalidArgument("count must be >= 1, got " +
                                    std::to_string(e.count));
      }
      if (s.ok()) s = CheckNow(e.now_ms);
      item.valid = s.ok();
      if (!item.valid) {
        out[base + i] = {std::move(s), {}};
        continue;
      }
      item.hash = HashKey(e.key);
      item.member_hash = e.has_member ? HashMember(e.member) : 0;
      item.shard = &ShardFor(item.hash);
      shards[shard_count++] = item.shard;
    }
    std::sort(shards, shards + shard_count);
    shard_count = std::unique(shards, shards + shard_count) - shards;
    for (size_t i = 0; i < shard_count; ++i) shards[i]->mu().lock();
    for (size_t i = 0; i < n; ++i) {
      if (items[i].valid) {
        items[i].shard->PrefetchKeyLocked(
            {events[base + i].key, items[i].hash});
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (items[i].valid) {
        items[i].shard->PrefetchPayloadLocked(
            {events[base + i].key, items[i].hash});
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (!items[i].valid) continue;
      Result<AddResult> r = items[i].shard->AddLocked(
          events[base + i], items[i].hash, items[i].member_hash);
      out[base + i] =
          r.ok() ? AddOutcome{Status::Ok(), *r} : AddOutcome{r.status(), {}};
    }
    for (size_t i = shard_count; i > 0; --i) shards[i - 1]->mu().unlock();
  }
}

Result<Answer> Engine::Query(std::string_view key, const Window& window,
                             uint32_t aggs) {
  Status s = CheckKey(key);
  if (!s.ok()) return s;
  const uint64_t hash = HashKey(key);
  return ShardFor(hash).Query({key, hash}, window, aggs);
}

Result<std::vector<RangePoint>> Engine::Range(std::string_view key,
                                              int64_t from_ms, int64_t to_ms,
                                              int64_t step_ms, uint32_t aggs) {
  Status s = CheckKey(key);
  if (!s.ok()) return s;
  const uint64_t hash = HashKey(key);
  return ShardFor(hash).Range({key, hash}, from_ms, to_ms, step_ms, aggs);
}

Result<KeyInfo> Engine::Inspect(std::string_view key) {
  Status s = CheckKey(key);
  if (!s.ok()) return s;
  const uint64_t hash = HashKey(key);
  return ShardFor(hash).Inspect({key, hash});
}

bool Engine::Contains(std::string_view key) {
  if (!CheckKey(key).ok()) return false;
  const uint64_t hash = HashKey(key);
  return ShardFor(hash).Contains({key, hash});
}

bool Engine::Delete(std::string_view key) {
  if (!CheckKey(key).ok()) return false;
  const uint64_t hash = HashKey(key);
  return ShardFor(hash).Delete({key, hash});
}

ScanPage Engine::Scan(uint64_t cursor, std::string_view pattern, size_t count) {
  if (count == 0) count = 1;
  const uint32_t shift = 64 - options_.shard_bits;
  ScanPage page;
  size_t shard = cursor >> shift;
  uint64_t min_hash = cursor;
  std::vector<std::pair<uint64_t, std::string>> items;
  size_t visited = 0;
  while (shard < shards_.size()) {
    items.clear();
    const bool more =
        shards_[shard]->ScanFrom(min_hash, count - visited, &items);
    visited += items.size();
    for (const auto& [hash, key] : items) {
      if (GlobMatch(pattern, key)) page.keys.push_back(key);
    }
    if (more) {
      // Resume just after the last hash returned; all its ties were included.
      const uint64_t last = items.back().first;
      page.cursor = last == UINT64_MAX ? 0 : last + 1;
      return page;
    }
    ++shard;
    min_hash = uint64_t{shard} << shift;
    if (visited >= count) break;
  }
  page.cursor = shard < shards_.size() ? min_hash : 0;
  return page;
}

uint64_t Engine::Sweep() {
  uint64_t removed = 0;
  for (auto& shard : shards_) removed += shard->Sweep();
  return removed;
}

uint64_t Engine::SweepShard(size_t shard) { return shards_.at(shard)->Sweep(); }

uint64_t Engine::Sweep(int64_t now_ms) {
  uint64_t removed = 0;
  for (size_t i = 0; i < shards_.size(); ++i) removed += SweepShard(i, now_ms);
  return removed;
}

uint64_t Engine::SweepShard(size_t shard, int64_t now_ms) {
  return shards_.at(shard)->Sweep(std::clamp<int64_t>(now_ms, 0, kMaxTimeMs));
}

void Engine::SerializeTo(std::string* out) const {
  // A snapshot is about as large as what the keys hold in memory (plus their
  // tier specs): reserving once spares a large snapshot its doublings.
  const EngineStats stats = Stats();
  out->reserve(out->size() + kStateHeaderSize +
               static_cast<size_t>(stats.bytes - stats.table_bytes) +
               stats.keys * 64);
  // The header's watermark and key count are known only at the end.
  const size_t header = BeginState(out);
  EncodePolicySet(policies(), out);
  int64_t watermark = 0;
  uint64_t keys = 0;
  for (const auto& shard : shards_) keys += shard->SerializeTo(out, &watermark);
  PatchStateHeader(out, header, watermark, keys);
}

Status Engine::LoadFrom(std::string_view data) {
  for (const auto& shard : shards_) {
    if (shard->key_count() != 0) {
      return Status::InvalidArgument("LoadFrom needs an engine without keys");
    }
  }
  ByteReader reader(data);
  uint8_t version;
  int64_t watermark;
  uint64_t key_count;
  Status s = ReadStateHeader(&reader, &version, &watermark, &key_count);
  if (!s.ok()) return s;
  if (version >= 2) {
    Result<PolicySet> carried = DecodePolicySet(&reader, "engine snapshot");
    if (!carried.ok()) return carried.status();
    // No key yet: nothing to check or move (equal sets return at once).
    s = ReplacePolicies(std::move(*carried));
    if (!s.ok()) return s;
  }
  // Every key record consumes bytes, so a key count larger than the input
  // ends in a truncation error, not in a long loop.
  for (uint64_t i = 0; i < key_count && s.ok(); ++i) {
    int64_t bytes = 0;
    uint64_t buckets = 0;
    Result<KeyState*> state =
        DecodeKeyState(&reader, policies(), &bytes, &buckets);
    if (!state.ok()) {
      s = state.status();
      break;
    }
    const uint64_t hash = HashKey((*state)->key());
    if (!ShardFor(hash).InsertLoaded(hash, *state, bytes, buckets)) {
      KeyState::Destroy(*state, &bytes);
      s = CorruptionAt("engine snapshot", "duplicate key", reader.offset());
    }
  }
  if (s.ok() && reader.remaining() != 0) {
    s = CorruptionAt(
        "engine snapshot",
        std::to_string(reader.remaining()) + " bytes after the last key",
        reader.offset());
  }
  if (!s.ok()) {
    for (auto& shard : shards_) shard->Clear();
    return s;
  }
  for (auto& shard : shards_) shard->RaiseWatermark(watermark);
  return Status::Ok();
}

uint64_t Engine::Digest() const {
  // A sum, not a hash of the concatenation: key order depends on the seed.
  uint64_t sum = 0, keys = 0;
  std::string scratch;
  for (const auto& shard : shards_) keys += shard->AddDigest(&sum, &scratch);
  std::string mixed;
  PutU64(&mixed, sum);
  PutU64(&mixed, keys);
  return XXH3_64bits(mixed.data(), mixed.size());
}

EngineStats Engine::Stats() const {
  EngineStats stats;
  for (const auto& shard : shards_) shard->AddStats(&stats);
  return stats;
}

}  // namespace tally
