#include "storage/shard.h"

#include <fnmatch.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>

#include "storage/distinct_counter.h"
#include "storage/state_codec.h"
#include "storage/window_plan.h"

namespace tally {

namespace {

__extension__ typedef __int128
    Int128;  // window sums are accumulated wider than int64

// The bucket index of the first bucket a tier still retains (0 while the
// clock is younger than the tier's span).
uint32_t FirstKeptIndex(const TierSpec& tier, int64_t now_ms) {
  const int64_t index =
      std::max<int64_t>(0, RetainedStart(tier, now_ms)) / tier.resolution_ms;
  // A clock past year 2106 keeps nothing rather than wrapping around.
  return static_cast<uint32_t>(std::min<int64_t>(index, UINT32_MAX));
}

// Whether the bucket `index` (at `resolution`) of a raw key can take another
// count and amount: the same rule a tiered key applies to its bucket.
bool RawBucketCanApply(const KeyState& state, int64_t resolution,
                       uint32_t index, int64_t count, int64_t amount) {
  int64_t total_count = count, total_sum = amount;
  for (uint32_t i = 0; i < state.raw_size(); ++i) {
    const RawEvent& e = state.raw_events()[i];
    if (e.time_ms / resolution != index) continue;
    if (__builtin_add_overflow(total_count, e.count, &total_count) ||
        __builtin_add_overflow(total_sum, e.amount, &total_sum)) {
      return false;
    }
  }
  return true;
}

Status OverflowStatus(const AddEvent& event, const TierSpec& spec,
                      uint32_t index) {
  return Status::Overflow("adding count " + std::to_string(event.count) +
                          " and amount " + std::to_string(event.amount) +
                          " would overflow the " +
                          FormatDuration(spec.resolution_ms) + " bucket at " +
                          std::to_string(int64_t{index} * spec.resolution_ms));
}

// PlanWindow is a pure function of (tiers, now, from, to), and a decision asks
// the same windows of many keys within the same millisecond: remember the
// last few plans per thread. Keyed by the tiers' contents, not the policy's
// address, which a later engine may reuse for other tiers.
const WindowPlan& CachedPlan(const Policy& policy, int64_t now, int64_t from,
                             int64_t to) {
  struct Entry {
    int64_t now = -1, from = 0, to = 0;
    std::vector<TierSpec> tiers;
    WindowPlan plan;
  };
  thread_local Entry cache[4];
  thread_local uint32_t next = 0;
  for (Entry& e : cache) {
    if (e.now == now && e.from == from && e.to == to &&
        e.tiers == policy.tiers) {
      return e.plan;
    }
  }
  Entry& e = cache[next++ % 4];
  e.now = now;
  e.from = from;
  e.to = to;
  e.tiers = policy.tiers;
  e.plan = PlanWindow(policy.tiers, now, from, to);
  return e.plan;
}

std::string TimeRangeMessage(int64_t t, int64_t now, const Policy& policy) {
  if (t < 0 || t >= kMaxTimeMs) {
    return "event time " + std::to_string(t) + " is outside [0, " +
           std::to_string(kMaxTimeMs) + ") ms since the Unix epoch";
  }
  // Both in [0, kMaxTimeMs): the differences cannot overflow.
  if (t > now) {
    return "event time " + std::to_string(t) + " is " +
           std::to_string(t - now) + " ms ahead of the server clock " +
           std::to_string(now) + "; policy '" + policy.name +
           "' accepts at most " + FormatDuration(policy.max_skew_ms) + " ahead";
  }
  return "event time " + std::to_string(t) + " is " + std::to_string(now - t) +
         " ms behind the server clock " + std::to_string(now) + "; policy '" +
         policy.name + "' accepts events at most " +
         FormatDuration(policy.max_lateness_ms) + " late";
}

}  // namespace

uint64_t HashKeyBytes(std::string_view key, uint64_t seed) {
  return XXH3_64bits_withSeed(key.data(), key.size(), seed);
}

Shard::Shard(const EngineOptions* options, const PolicySet* policies,
             std::atomic<int64_t>* total_bytes)
    : options_(options),
      policies_(policies),
      keys_(0, Hasher{options->hash_seed}, Equal{}),
      total_bytes_(total_bytes) {}

Shard::~Shard() {
  for (KeyState* state : keys_) KeyState::Destroy(state, &bytes_);
  total_bytes_->fetch_sub(published_bytes_, std::memory_order_relaxed);
}

int64_t Shard::TableBytesLocked() const {
  return static_cast<int64_t>(keys_.bucket_count() * sizeof(KeyState*) +
                              keys_.bucket_count() * 16 / 15);
}

void Shard::PublishBytesLocked() {
  const int64_t now_bytes = bytes_ + TableBytesLocked();
  if (now_bytes == published_bytes_) return;
  total_bytes_->fetch_add(now_bytes - published_bytes_,
                          std::memory_order_relaxed);
  published_bytes_ = now_bytes;
}

int64_t Shard::AdvanceClock() {
  now_ms_ = std::max(now_ms_, options_->clock->NowMs());
  return now_ms_;
}

KeyState* Shard::FindLocked(KeyLookup key) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? nullptr : *it;
}

Result<AddResult> Shard::Add(const AddEvent& event, uint64_t hash,
                             uint64_t member_hash) {
  std::lock_guard<std::mutex> lock(mu_);
  return AddLocked(event, hash, member_hash);
}

void Shard::PrefetchKeyLocked(KeyLookup key) const {
  const KeyState* state = FindLocked(key);
  if (state != nullptr) __builtin_prefetch(state, 1);
}

void Shard::PrefetchPayloadLocked(KeyLookup key) const {
  const KeyState* state = FindLocked(key);
  if (state == nullptr) return;
  if (state->is_raw()) {
    // The append slot; the events before it are read by the overflow check
    // only when values are huge.
    if (state->raw_size() < state->raw_capacity()) {
      __builtin_prefetch(state->raw_events() + state->raw_size(), 1);
    }
    return;
  }
  for (size_t k = 0; k < state->tier_count(); ++k) {
    const TierRing& ring = state->tier(k);
    if (!ring.empty()) __builtin_prefetch(&ring.back(), 1);
  }
}

Result<AddResult> Shard::AddLocked(const AddEvent& event, uint64_t hash,
                                   uint64_t member_hash) {
  const PublishOnExit publish{this};
  // An explicit now (a replayed log record) decides the add on its own: the
  // watermark may be ahead of it, and must not change the outcome.
  int64_t now;
  if (event.now_ms == kNow) {
    now = AdvanceClock();
  } else {
    now = event.now_ms;
    now_ms_ = std::max(now_ms_, now);
  }
  KeyState* state = FindLocked({event.key, hash});
  const Policy& policy = state ? state->policy() : policies_->Match(event.key);
  const int64_t t = event.time_ms == kNow ? now : event.time_ms;
  if (t < now - policy.max_lateness_ms || t > now + policy.max_skew_ms ||
      t < 0 || t >= kMaxTimeMs) {
    ++rejected_time_;
    return Status::TimeOutOfRange(TimeRangeMessage(t, now, policy));
  }

  // Validate everything before changing anything: a failed add leaves no trace.
  const uint32_t* first_kept = FirstKept(policy, now);
  uint32_t indexes[kMaxTiers];
  BucketIndexes(policy, t, indexes);
  bool any_retained = false;
  for (const TierSpec& spec : policy.tiers) {
    const uint32_t index = indexes[&spec - policy.tiers.data()];
    if (index < first_kept[&spec - policy.tiers.data()]) continue;  // not kept
    any_retained = true;
    if (state == nullptr) continue;
    bool fits;
    if (state->is_raw()) {
      fits = (!state->raw_has_big_values() &&
              !KeyState::IsBig(event.count, event.amount)) ||
             RawBucketCanApply(*state, spec.resolution_ms, index, event.count,
                               event.amount);
    } else {
      TierRing& ring = state->tier(&spec - policy.tiers.data());
      const Bucket* b = nullptr;
      if (!ring.empty() && ring.back().index <= index) {
        // In-order events hit the newest bucket or start a new one.
        if (ring.back().index == index) b = &ring.back();
      } else {
        b = ring.Find(index);
      }
      fits = b == nullptr || CanApply(*b, event.count, event.amount);
    }
    if (!fits) {
      ++rejected_overflow_;
      return OverflowStatus(event, spec, index);
    }
  }
  AddResult result{t};
  ++adds_;
  if (!any_retained)
    return result;  // accepted, but older than every tier keeps

  const RawEvent raw{
      t, event.count, event.amount,
      event.has_member && policy.track_distinct ? member_hash : 0};
  if (state == nullptr) {
    state = KeyState::CreateRaw(&policy, event.key, 1, &bytes_);
    keys_.insert(state);
  }
  if (state->is_raw()) {
    if (state->raw_size() == state->raw_capacity()) {
      // Make room from events every tier has let go before growing.
      ExpireLocked(state, now);
    }
    if (state->raw_size() < state->raw_capacity()) {
      state->AppendRaw(raw);
      return result;
    }
    if (state->raw_capacity() < kMaxRawEvents) {
      keys_.erase(state);
      state = KeyState::GrowRaw(state, state->raw_capacity() * 2, &bytes_);
      keys_.insert(state);
      state->AppendRaw(raw);
      return result;
    }
    state = ConvertToTiered(state, now);
  }
  ApplyTiered(state, raw, indexes, first_kept);
  return result;
}

const uint32_t* Shard::FirstKept(const Policy& policy, int64_t now) {
  // Policies live as long as the engine, so within a shard their address
  // identifies their tiers. Recomputed when the clock moves (per ms at most).
  if (plan_policy_ != &policy || plan_now_ != now) {
    plan_policy_ = &policy;
    plan_now_ = now;
    for (size_t k = 0; k < policy.tiers.size(); ++k) {
      first_kept_[k] = FirstKeptIndex(policy.tiers[k], now);
      ratio_[k] =
          k == 0 ? 0
                 : static_cast<uint32_t>(policy.tiers[k].resolution_ms /
                                         policy.tiers[k - 1].resolution_ms);
    }
  }
  return first_kept_;
}

void Shard::BucketIndexes(const Policy& policy, int64_t t,
                          uint32_t* out) const {
  // REQUIRES: FirstKept(policy, ...) was called last (ratio_ belongs to it).
  // One 64-bit division, then cheaper 32-bit ones down the tiers.
  out[0] = static_cast<uint32_t>(t / policy.tiers[0].resolution_ms);
  for (size_t k = 1; k < policy.tiers.size(); ++k)
    out[k] = out[k - 1] / ratio_[k];
}

KeyState* Shard::ConvertToTiered(KeyState* raw_state, int64_t now) {
  KeyState* tiered =
      KeyState::CreateTiered(&raw_state->policy(), raw_state->key(), &bytes_);
  const uint32_t* first_kept = FirstKept(raw_state->policy(), now);
  uint32_t indexes[kMaxTiers];
  for (uint32_t i = 0; i < raw_state->raw_size(); ++i) {
    const RawEvent& e = raw_state->raw_events()[i];
    BucketIndexes(raw_state->policy(), e.time_ms, indexes);
    ApplyTiered(tiered, e, indexes, first_kept);
  }
  keys_.erase(raw_state);
  KeyState::Destroy(raw_state, &bytes_);
  keys_.insert(tiered);
  ++converted_keys_;
  return tiered;
}

void Shard::ApplyTiered(KeyState* state, const RawEvent& e,
                        const uint32_t* indexes, const uint32_t* first_kepts) {
  const Policy& policy = state->policy();
  for (size_t k = 0; k < policy.tiers.size(); ++k) {
    const uint32_t index = indexes[k];
    const uint32_t first_kept = first_kepts[k];
    if (index < first_kept) continue;  // older than this tier keeps
    TierRing& ring = state->tier(k);
    if (!ring.empty() && ring.at(0).index < first_kept) {
      const uint32_t dropped = ring.ExpireBefore(first_kept, &bytes_);
      buckets_ -= dropped;
      expired_buckets_ += dropped;
    }
    const uint32_t before = ring.size();
    Bucket* b = ring.FindOrInsert(index, &bytes_);
    buckets_ += ring.size() - before;
    ApplyToBucket(*b, e.count, e.amount);
    if (e.member != 0) {
      AddBucketMember(*b, e.member, options_->distinct_exact_limit, &bytes_);
    }
  }
}

Result<Answer> Shard::QueryLocked(const KeyState* state, const Policy& policy,
                                  int64_t now, int64_t from_ms, int64_t to_ms,
                                  uint32_t aggs) const {
  const WindowPlan& plan = CachedPlan(policy, now, from_ms, to_ms);
  Answer answer;
  answer.covered_from_ms = plan.covered_from_ms;
  answer.covered_to_ms = plan.covered_to_ms;
  answer.resolution_ms = plan.resolution_ms;
  if (state == nullptr) return answer;

  const bool want_distinct = (aggs & kAggDistinct) != 0;
  thread_local DistinctCounter distinct;
  if (want_distinct) distinct.Reset(options_->distinct_exact_limit);
  int64_t count = 0;
  Int128 sum = 0;
  int64_t min = std::numeric_limits<int64_t>::max();
  int64_t max = std::numeric_limits<int64_t>::min();
  bool count_overflow = false;
  if (state->is_raw()) {
    // The plan decided what is covered; the raw events inside it are exactly
    // what tier buckets would have summed.
    for (uint32_t i = 0; i < state->raw_size(); ++i) {
      const RawEvent& e = state->raw_events()[i];
      if (e.time_ms < plan.covered_from_ms || e.time_ms >= plan.covered_to_ms) {
        continue;
      }
      count_overflow |= __builtin_add_overflow(count, e.count, &count);
      sum += e.amount;
      min = std::min(min, e.amount);
      max = std::max(max, e.amount);
      if (want_distinct && e.member != 0) distinct.Add(e.member);
    }
  }
  for (uint32_t r = 0; !state->is_raw() && r < plan.run_count; ++r) {
    const TierRun& run = plan.runs[r];
    const TierRing& ring = state->tier(run.tier);
    for (uint32_t i = ring.LowerBound(run.first_index); i < ring.size(); ++i) {
      const Bucket& b = ring.at(i);
      if (b.index > run.last_index) break;
      count_overflow |= __builtin_add_overflow(count, b.count, &count);
      sum += b.sum;
      min = std::min(min, b.min);
      max = std::max(max, b.max);
      if (want_distinct) distinct.AddBucket(b);
    }
  }
  if (count_overflow || sum > std::numeric_limits<int64_t>::max() ||
      sum < std::numeric_limits<int64_t>::min()) {
    return Status::Overflow("the window's count or sum does not fit in int64");
  }
  answer.count = count;
  answer.sum = static_cast<int64_t>(sum);
  if (count > 0) {
    answer.min = min;
    answer.max = max;
    answer.avg = static_cast<double>(answer.sum) / static_cast<double>(count);
  }
  if (want_distinct) {
    answer.distinct = distinct.Count();
    answer.exact = distinct.exact();
    if (!answer.exact)
      answer.distinct_error = HyperLogLog::kRelativeStandardError;
  }
  return answer;
}

Result<Answer> Shard::Query(KeyLookup key, const Window& window,
                            uint32_t aggs) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = AdvanceClock();
  ++queries_;
  int64_t from = window.from_ms, to = window.to_ms;
  if (window.last) {
    const int64_t at = window.to_ms == kNow ? now : window.to_ms;
    if (window.length_ms <= 0 || at < 0 || at >= kMaxTimeMs) {
      ++rejected_invalid_;
      return Status::InvalidWindow(
          "a 'last' window needs a positive length and a time in range");
    }
    from = std::max<int64_t>(0, at - window.length_ms + 1);
    to = at + 1;
  }
  if (from < 0 || from >= to || to > kMaxTimeMs) {
    ++rejected_invalid_;
    return Status::InvalidWindow(
        "window [" + std::to_string(from) + ", " + std::to_string(to) +
        ") must satisfy 0 <= from < to <= " + std::to_string(kMaxTimeMs));
  }
  const KeyState* state = FindLocked(key);
  const Policy& policy = state ? state->policy() : policies_->Match(key.key);
  if ((aggs & kAggDistinct) && !policy.track_distinct) {
    ++rejected_invalid_;
    return Status::InvalidArgument("policy '" + policy.name +
                                   "' does not track distinct members");
  }
  return QueryLocked(state, policy, now, from, to, aggs);
}

Result<std::vector<RangePoint>> Shard::Range(KeyLookup key, int64_t from_ms,
                                             int64_t to_ms, int64_t step_ms,
                                             uint32_t aggs) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = AdvanceClock();
  ++queries_;
  if (from_ms < 0 || from_ms >= to_ms || to_ms > kMaxTimeMs || step_ms <= 0) {
    ++rejected_invalid_;
    return Status::InvalidWindow(
        "range needs 0 <= from < to and a positive step");
  }
  if ((to_ms - from_ms - 1) / step_ms + 1 > Engine::kMaxRangePoints) {
    ++rejected_invalid_;
    return Status::InvalidArgument("range would have more than " +
                                   std::to_string(Engine::kMaxRangePoints) +
                                   " points; use a larger step");
  }
  const KeyState* state = FindLocked(key);
  const Policy& policy = state ? state->policy() : policies_->Match(key.key);
  if ((aggs & kAggDistinct) && !policy.track_distinct) {
    ++rejected_invalid_;
    return Status::InvalidArgument("policy '" + policy.name +
                                   "' does not track distinct members");
  }
  std::vector<RangePoint> points;
  for (int64_t start = from_ms; start < to_ms;) {
    // No start + step: a step near INT64_MAX must not overflow.
    const int64_t end = to_ms - start <= step_ms ? to_ms : start + step_ms;
    Result<Answer> answer = QueryLocked(state, policy, now, start, end, aggs);
    if (!answer.ok()) return answer.status();
    points.push_back({start, *answer});
    start = end;
  }
  return points;
}

Result<KeyInfo> Shard::Inspect(KeyLookup key) {
  std::lock_guard<std::mutex> lock(mu_);
  AdvanceClock();
  const KeyState* state = FindLocked(key);
  if (state == nullptr) return Status::NotFound("no such key");
  const Policy& policy = state->policy();
  KeyInfo info;
  info.key = std::string(state->key());
  info.policy = policy.name;
  info.track_distinct = policy.track_distinct;
  info.max_lateness_ms = policy.max_lateness_ms;
  info.max_skew_ms = policy.max_skew_ms;
  info.bytes = state->AllocSize();
  info.raw = state->is_raw();
  if (state->is_raw()) {
    info.raw_events = state->raw_size();
    for (const TierSpec& spec : policy.tiers)
      info.tiers.push_back({.spec = spec});
    return info;
  }
  for (size_t k = 0; k < state->tier_count(); ++k) {
    const TierRing& ring = state->tier(k);
    TierInfo tier;
    tier.spec = policy.tiers[k];
    tier.buckets = ring.size();
    tier.bytes = ring.HeapBytes();
    for (uint32_t i = 0; i < ring.size(); ++i)
      tier.sketches += ring.at(i).is_sketch();
    if (!ring.empty()) {
      tier.first_bucket_ms =
          int64_t{ring.at(0).index} * tier.spec.resolution_ms;
      tier.last_bucket_ms =
          int64_t{ring.back().index} * tier.spec.resolution_ms;
    }
    info.bytes += tier.bytes;
    info.tiers.push_back(tier);
  }
  return info;
}

void Shard::EraseLocked(KeyState* state) {
  for (size_t k = 0; !state->is_raw() && k < state->tier_count(); ++k) {
    buckets_ -= state->tier(k).size();
  }
  keys_.erase(state);
  KeyState::Destroy(state, &bytes_);
}

bool Shard::Contains(KeyLookup key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return FindLocked(key) != nullptr;
}

bool Shard::Delete(KeyLookup key) {
  std::lock_guard<std::mutex> lock(mu_);
  KeyState* state = FindLocked(key);
  if (state == nullptr) return false;
  EraseLocked(state);
  ++deleted_keys_;
  PublishBytesLocked();
  return true;
}

uint64_t Shard::ExpireLocked(KeyState* state, int64_t now) {
  if (state->is_raw()) {
    // A raw event leaves once even the coarsest tier no longer keeps it.
    const TierSpec& coarsest = state->policy().tiers.back();
    return state->ExpireRawBefore(int64_t{FirstKeptIndex(coarsest, now)} *
                                  coarsest.resolution_ms);
  }
  uint64_t dropped = 0;
  for (size_t k = 0; k < state->tier_count(); ++k) {
    dropped += state->tier(k).ExpireBefore(
        FirstKeptIndex(state->policy().tiers[k], now), &bytes_);
  }
  buckets_ -= dropped;
  expired_buckets_ += dropped;
  return dropped;
}

uint64_t Shard::Sweep() {
  std::lock_guard<std::mutex> lock(mu_);
  return SweepLocked(AdvanceClock());
}

uint64_t Shard::Sweep(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  // Queries plan with the watermark: it must not stay behind what was
  // dropped.
  now_ms_ = std::max(now_ms_, now_ms);
  return SweepLocked(now_ms);
}

uint64_t Shard::SweepLocked(int64_t now) {
  std::vector<KeyState*> empty;
  for (KeyState* state : keys_) {
    ExpireLocked(state, now);
    if (state->empty()) empty.push_back(state);
  }
  for (KeyState* state : empty) EraseLocked(state);
  expired_keys_ += empty.size();
  PublishBytesLocked();
  return empty.size();
}

}  // namespace tally
