#include "storage/dedupe_table.h"

#include <xxhash.h>

#include <algorithm>

#include "storage/state_codec.h"

namespace tally {

namespace {

// Bytes an entry costs beyond its id: map slot, queue slot, string header.
constexpr int64_t kEntryOverhead = 96;

// DO NOT CHANGE: persisted (docs/wal_format.md).
constexpr uint8_t kDedupeFormatVersion = 1;
constexpr std::string_view kContext = "dedupe snapshot";
// id_size, digest, applied_at, time: an entry's bytes besides its id.
constexpr size_t kEntryFixedBytes = 1 + 8 + 8 + 8;

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

  // REQUIRES: mu held. Appends one entry's record.
  void EncodeEntry(const std::string& id, const Entry& e,
                   std::string* out) const {
    PutU8(out, static_cast<uint8_t>(id.size()));
    out->append(id);
    PutU64(out, e.digest);
    PutI64(out, e.applied_at_ms);
    PutI64(out, e.time_ms);
  }
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

namespace tally {

void DedupeTable::SerializeTo(std::string* out) const {
  const size_t header = out->size();
  PutU8(out, kDedupeFormatVersion);
  PutU8(out, static_cast<uint8_t>(options_.shard_bits));
  PutU64(out, 0);  // the entry count, filled in below
  uint64_t count = 0;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    for (const auto& [applied_at, id] : shard->order) {
      shard->EncodeEntry(id, shard->ids.find(id)->second, out);
    }
    count += shard->order.size();
  }
  std::string patch;
  PutU64(&patch, count);
  out->replace(header + 2, patch.size(), patch);
}

Status DedupeTable::LoadFrom(std::string_view data) {
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    if (!shard->ids.empty()) {
      return Status::InvalidArgument("LoadFrom needs an empty dedupe table");
    }
  }
  ByteReader reader(data);
  uint8_t version, shard_bits;
  uint64_t count;
  if (!reader.U8(&version)) return CorruptionAt(kContext, "empty input", 0);
  if (version != kDedupeFormatVersion) {
    return CorruptionAt(kContext,
                        "unknown format version " + std::to_string(version), 0);
  }
  if (!reader.U8(&shard_bits) || !reader.U64(&count)) {
    return CorruptionAt(kContext, "truncated header", reader.offset());
  }
  // Checked before reserving: every entry takes at least kEntryFixedBytes + 1.
  if (count > reader.remaining() / (kEntryFixedBytes + 1)) {
    return CorruptionAt(
        kContext, std::to_string(count) + " entries cannot fit in the input",
        reader.offset());
  }
  struct Loaded {
    std::string_view id;
    Shard::Entry entry;
  };
  std::vector<Loaded> entries;
  entries.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    uint8_t id_size;
    Loaded e;
    if (!reader.U8(&id_size)) {
      return CorruptionAt(kContext, "truncated entry", reader.offset());
    }
    if (id_size == 0 || id_size > kMaxIdSize) {
      return CorruptionAt(kContext,
                          "id size " + std::to_string(id_size) +
                              " outside [1, " + std::to_string(kMaxIdSize) +
                              "]",
                          reader.offset());
    }
    if (!reader.Bytes(id_size, &e.id) || !reader.U64(&e.entry.digest) ||
        !reader.I64(&e.entry.applied_at_ms) || !reader.I64(&e.entry.time_ms)) {
      return CorruptionAt(kContext, "truncated entry", reader.offset());
    }
    entries.push_back(e);
  }
  if (reader.remaining() != 0) {
    return CorruptionAt(
        kContext,
        std::to_string(reader.remaining()) + " bytes after the last entry",
        reader.offset());
  }
  // Entries of several old shards may meet in one new shard: Trim expects
  // each shard's order oldest first.
  if (shard_bits != options_.shard_bits) {
    std::stable_sort(entries.begin(), entries.end(),
                     [](const Loaded& a, const Loaded& b) {
                       return a.entry.applied_at_ms < b.entry.applied_at_ms;
                     });
  }
  bool duplicate = false;
  for (const Loaded& e : entries) {
    Shard& shard = ShardFor(e.id);
    std::lock_guard<std::mutex> lock(shard.mu);
    std::string id(e.id);
    if (!shard.ids.emplace(id, e.entry).second) {
      duplicate = true;
      break;
    }
    shard.bytes += kEntryOverhead + 2 * static_cast<int64_t>(id.size());
    shard.order.emplace_back(e.entry.applied_at_ms, std::move(id));
  }
  if (duplicate) {
    for (auto& shard : shards_) {
      std::lock_guard<std::mutex> lock(shard->mu);
      shard->ids.clear();
      shard->order.clear();
      shard->bytes = 0;
    }
    return CorruptionAt(kContext, "duplicate id", 0);
  }
  return Status::Ok();
}

uint64_t DedupeTable::Digest() const {
  uint64_t sum = 0, count = 0;
  std::string scratch;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    for (const auto& [id, entry] : shard->ids) {
      scratch.clear();
      shard->EncodeEntry(id, entry, &scratch);
      sum += XXH3_64bits(scratch.data(), scratch.size());
    }
    count += shard->ids.size();
  }
  scratch.clear();
  PutU64(&scratch, sum);
  PutU64(&scratch, count);
  return XXH3_64bits(scratch.data(), scratch.size());
}

}  // namespace tally
