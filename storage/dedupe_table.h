// DedupeTable: applies an event that carries an idempotency id at most once
// within a horizon, with bounded memory. A producer's retry of the same event
// (same id, same payload) is answered as a duplicate and not applied again;
// the same id with a different payload is a conflict (ID_CONFLICT).
//
// Bounds (docs/design.md, "Idempotency"): an id is remembered for
// `horizon_ms` after it was applied, and at most `max_entries` ids are kept.
// When the table is full, the oldest id is forgotten early and counted in
// `evicted_early`, so the promise narrows to "within the horizon or the last
// max_entries ids, whichever is shorter" rather than memory growing without
// bound or events being refused.
//
// Thread safety: all methods are thread-safe. Ids are spread over shards,
// each with its own mutex; Apply holds the id's shard mutex while the
// event is applied, so two concurrent requests with one id cannot both apply.

#ifndef TALLY_STORAGE_DEDUPE_TABLE_H_
#define TALLY_STORAGE_DEDUPE_TABLE_H_

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"

namespace tally {

inline constexpr size_t kMaxIdSize = 128;

struct DedupeOptions {
  int64_t horizon_ms = 24 * 3600 * 1000;  // how long an id is remembered
  size_t max_entries = 4'000'000;         // ~100 B each: ~400 MB at most
  uint32_t shard_bits = 6;
};

struct DedupeStats {
  uint64_t entries = 0;
  int64_t bytes = 0;
  uint64_t duplicates = 0;
  uint64_t conflicts = 0;
  uint64_t expired = 0;
  uint64_t evicted_early = 0;  // forgotten before the horizon: table full
};

class DedupeTable {
 public:
  enum class Outcome : uint8_t { kApplied, kDuplicate, kConflict, kFailed };

  explicit DedupeTable(DedupeOptions options = {});
  ~DedupeTable();

  // If `id` was applied within the horizon: kDuplicate when `digest` (a hash
  // of the event's payload) matches, with *time_ms set to the time applied
  // then; kConflict otherwise. Else calls apply(time_ms): when it returns OK
  // the id is remembered and the result is kApplied; when it fails, nothing
  // is remembered (a retry may succeed) and the result is kFailed with
  // *status set. REQUIRES: 1 <= id.size() <= kMaxIdSize.
  Outcome Apply(std::string_view id, uint64_t digest, int64_t now_ms,
                const std::function<Status(int64_t* time_ms)>& apply,
                int64_t* time_ms, Status* status);

  DedupeStats Stats() const;

  // Snapshots. Little-endian (readers and writers: storage/state_codec.h):
  //   table = version u8 (= 1) | shard_bits u8 | entry_count u64
  //         | entry x entry_count
  //   entry = id_size u8 (1..kMaxIdSize) | id | digest u64
  //         | applied_at_ms i64 | time_ms i64
  // Entries go shard by shard, each shard's oldest first: the order Apply
  // forgets them in. SerializeTo appends to *out, one shard at a time under
  // its mutex; the caller stops Apply for a consistent cut.
  void SerializeTo(std::string* out) const;
  // Loads a snapshot into this table, which must be empty
  // (INVALID_ARGUMENT otherwise). With the snapshot's shard_bits every
  // shard's order comes back as it was; with others, entries are ordered by
  // applied_at_ms so that expiry still forgets the oldest first. Entries
  // beyond max_entries are forgotten by the next Apply. CORRUPTION for any
  // structural problem (duplicate id, bad size, truncation, trailing bytes);
  // on failure the table is left empty. Statistics counters are not saved.
  Status LoadFrom(std::string_view data);
  // Order-independent digest of every entry (id, digest, applied_at_ms,
  // time_ms), mixed with their count.
  uint64_t Digest() const;

 private:
  struct Shard;
  Shard& ShardFor(std::string_view id);

  DedupeOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace tally

#endif  // TALLY_STORAGE_DEDUPE_TABLE_H_
