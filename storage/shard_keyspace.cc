// Shard operations over the whole key table: snapshots, digests, scans,
// statistics and policy replacement. The per-key paths (adds, queries,
// expiry) are in shard.cc.

#include <xxhash.h>

#include <algorithm>

#include "storage/shard.h"
#include "storage/state_codec.h"

namespace tally {

uint64_t Shard::SerializeTo(std::string* out, int64_t* watermark) const {
  std::lock_guard<std::mutex> lock(mu_);
  *watermark = std::max(*watermark, now_ms_);
  for (const KeyState* state : keys_) EncodeKeyState(*state, out);
  return keys_.size();
}

uint64_t Shard::AddDigest(uint64_t* sum, std::string* scratch) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const KeyState* state : keys_) {
    scratch->clear();
    EncodeKeyState(*state, scratch);
    *sum += XXH3_64bits(scratch->data(), scratch->size());
  }
  return keys_.size();
}

bool Shard::InsertLoaded(uint64_t hash, KeyState* state, int64_t bytes,
                         uint64_t buckets) {
  std::lock_guard<std::mutex> lock(mu_);
  if (FindLocked({state->key(), hash}) != nullptr) return false;
  keys_.insert(state);
  bytes_ += bytes;
  buckets_ += buckets;
  PublishBytesLocked();
  return true;
}

void Shard::RaiseWatermark(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ms_ = std::max(now_ms_, now_ms);
}

void Shard::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  for (KeyState* state : keys_) KeyState::Destroy(state, &bytes_);
  // A fresh table: a cleared one would keep its slots (and table bytes).
  keys_ = Table(0, Hasher{options_->hash_seed}, Equal{});
  buckets_ = 0;
  PublishBytesLocked();
}

size_t Shard::key_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return keys_.size();
}

bool Shard::ScanFrom(uint64_t min_hash, size_t limit,
                     std::vector<std::pair<uint64_t, std::string>>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<uint64_t, const KeyState*>> candidates;
  for (const KeyState* state : keys_) {
    uint64_t h = HashKeyBytes(state->key(), options_->hash_seed);
    if (h >= min_hash) candidates.emplace_back(h, state);
  }
  auto by_hash = [](const auto& a, const auto& b) { return a.first < b.first; };
  size_t take = candidates.size();
  if (limit < candidates.size()) {
    std::nth_element(candidates.begin(), candidates.begin() + limit - 1,
                     candidates.end(), by_hash);
    const uint64_t cut = candidates[limit - 1].first;
    // Keys sharing the cut hash go out together, or the cursor would skip one.
    auto tail = std::partition(candidates.begin() + limit, candidates.end(),
                               [cut](const auto& c) { return c.first == cut; });
    take = static_cast<size_t>(tail - candidates.begin());
  }
  std::sort(candidates.begin(), candidates.begin() + take, by_hash);
  for (size_t i = 0; i < take; ++i) {
    out->emplace_back(candidates[i].first,
                      std::string(candidates[i].second->key()));
  }
  return take < candidates.size();
}

void Shard::AddStats(EngineStats* stats) const {
  std::lock_guard<std::mutex> lock(mu_);
  stats->keys += keys_.size();
  stats->buckets += buckets_;
  const int64_t table = TableBytesLocked();
  stats->table_bytes += table;
  stats->bytes += bytes_ + table;
  stats->adds += adds_;
  stats->queries += queries_;
  stats->rejected_invalid += rejected_invalid_;
  stats->rejected_time += rejected_time_;
  stats->rejected_overflow += rejected_overflow_;
  stats->expired_buckets += expired_buckets_;
  stats->expired_keys += expired_keys_;
  stats->deleted_keys += deleted_keys_;
  stats->converted_keys += converted_keys_;
}

Status Shard::CheckPoliciesLocked(const PolicySet& next) const {
  for (const KeyState* state : keys_) {
    const Policy& now = state->policy();
    const Policy& then = next.Match(state->key());
    if (now.tiers == then.tiers) continue;
    return Status::InvalidArgument(
        "key '" + std::string(state->key()) + "' holds buckets of policy '" +
        now.name + "' (" + FormatTiers(now.tiers) + ") and would move to '" +
        then.name + "' (" + FormatTiers(then.tiers) +
        "): tiers cannot change under stored keys, their buckets cannot be "
        "rebucketed; keep the tiers, or delete those keys first");
  }
  return Status::Ok();
}

void Shard::SetPoliciesLocked(const PolicySet* next) {
  policies_ = next;
  for (KeyState* state : keys_) {
    const Policy& policy = next->Match(state->key());
    if (state->policy().track_distinct && !policy.track_distinct) {
      DropMembersLocked(state);
    }
    state->set_policy(&policy);
  }
  PublishBytesLocked();
}

void Shard::DropMembersLocked(KeyState* state) {
  if (state->is_raw()) {
    for (uint32_t i = 0; i < state->raw_size(); ++i) {
      state->raw_events()[i].member = 0;
    }
    return;
  }
  for (size_t k = 0; k < state->tier_count(); ++k) {
    TierRing& ring = state->tier(k);
    for (uint32_t i = 0; i < ring.size(); ++i) {
      FreeBucketMembers(ring.at(i), &bytes_);
    }
  }
}

}  // namespace tally
