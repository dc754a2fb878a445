#include "storage/dedupe_table.h"

#include <xxhash.h>

namespace tally {

namespace {

// Bytes an entry costs beyond its id: map slot, queue slot, string header.
constexpr int64_t kEntryOverhead = 96;

}  // namespace

struct DedupeTable::Shard {
  struct Entry {
    uint64_t digest;
    int64_t applied_at_ms;  // server time the id was recorded
    int64_t time_ms;        // the event time applied
  };
  std::mutex mu;
  boost::unordered_flat_map<std::string, Entry> ids;
  std::deque<std::pair<int64_t, std::string>>
      order;  // (applied_at, id), oldest first
  size_t max_entries = 0;
  int64_t bytes = 0;
  DedupeStats stats;

  void Forget(const std::string& id) {
    bytes -= kEntryOverhead + 2 * static_cast<int64_t>(id.size());
    ids.erase(id);
  }
  // Drops ids past the horizon, then the oldest while over capacity.
  void Trim(int64_t now_ms, int64_t horizon_ms) {
    while (!order.empty() && (order.front().first <= now_ms - horizon_ms ||
                              ids.size() >= max_entries)) {
      if (order.front().first <= now_ms - horizon_ms) {
        ++stats.expired;
      } else {
        ++stats.evicted_early;
      }
      Forget(order.front().second);
      order.pop_front();
    }
  }
};

DedupeTable::DedupeTable(DedupeOptions options) : options_(options) {
  const size_t count = size_t{1} << options_.shard_bits;
  for (size_t i = 0; i < count; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->max_entries =
        std::max<size_t>(1, options_.max_entries / count);
  }
}

DedupeTable::~DedupeTable() = default;

DedupeTable::Shard& DedupeTable::ShardFor(std::string_view id) {
  const uint64_t h = XXH3_64bits(id.data(), id.size());
  return *shards_[h >> (64 - options_.shard_bits)];
}

DedupeTable::Outcome DedupeTable::Apply(
    std::string_view id, uint64_t digest, int64_t now_ms,
    const std::function<Status(int64_t* time_ms)>& apply, int64_t* time_ms,
    Status* status) {
  Shard& shard = ShardFor(id);
  std::lock_guard<std::mutex> lock(shard.mu);
  shard.Trim(now_ms, options_.horizon_ms);
  auto it = shard.ids.find(std::string(id));
  if (it != shard.ids.end()) {
    *time_ms = it->second.time_ms;
    if (it->second.digest == digest) {
      ++shard.stats.duplicates;
      return Outcome::kDuplicate;
    }
    ++shard.stats.conflicts;
    *status = Status(Code::kIdConflict,
                     "idempotency id reused with a different event");
    return Outcome::kConflict;
  }
  *status = apply(time_ms);
  if (!status->ok()) return Outcome::kFailed;
  shard.ids.emplace(std::string(id), Shard::Entry{digest, now_ms, *time_ms});
  shard.order.emplace_back(now_ms, std::string(id));
  shard.bytes += kEntryOverhead + 2 * static_cast<int64_t>(id.size());
  return Outcome::kApplied;
}

DedupeStats DedupeTable::Stats() const {
  DedupeStats total;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    total.entries += shard->ids.size();
    total.bytes += shard->bytes;
    total.duplicates += shard->stats.duplicates;
    total.conflicts += shard->stats.conflicts;
    total.expired += shard->stats.expired;
    total.evicted_early += shard->stats.evicted_early;
  }
  return total;
}

}  // namespace tally
