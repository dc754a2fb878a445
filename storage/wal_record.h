// WAL record payloads and the one function that applies them.
//
// Every mutation of the engine and the idempotency table goes through
// ApplyRecord, both live (the journal's writer thread, in LSN order, right
// after the record is written) and during recovery. Its effect is a pure
// function of (state, record): it judges events against the record's time,
// never the clock, so replay rebuilds exactly the state the server had
// (RELIABILITY.md 1.4, D8).
//
// Payload layouts (little-endian; DO NOT CHANGE: persisted,
// docs/wal_format.md):
//   kAddBatch := count u32, item*
//     item := flags u8 (1 member, 2 id, 4 time) | key_len u16 | key
//             | count i64 | amount i64 | [time_ms i64] | [member_len u16 |
//             member] | [id_len u8 | id | digest u64]
//   kDelete   := count u32, (key_len u16 | key)*
//   kSweep    := first_shard u32 | shard_count u32
//   kPolicies := policy_set (storage/policy_codec.h)

#ifndef TALLY_STORAGE_WAL_RECORD_H_
#define TALLY_STORAGE_WAL_RECORD_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"
#include "storage/dedupe_table.h"
#include "storage/engine.h"
#include "storage/key_state.h"
#include "storage/wal_format.h"

namespace tally::wal {

// One add as logged. Views point into the payload (or the caller's data).
struct AddOp {
  std::string_view key;
  int64_t time_ms = kNow;  // the event time; kNow = the record's time
  int64_t count = 1;
  int64_t amount = 0;
  bool has_member = false;
  std::string_view member;
  bool has_id = false;
  std::string_view id;  // idempotency id, when has_id
  uint64_t digest = 0;  // of the event's payload, when has_id
};

// What a retry must repeat exactly for its id to be a duplicate rather than a
// conflict: key, time, count, amount and member.
uint64_t EventDigest(const AddOp& op);

void EncodeAddBatch(std::span<const AddOp> ops, std::string* out);
Status DecodeAddBatch(std::string_view payload, std::vector<AddOp>* out);
void EncodeDelete(std::span<const std::string_view> keys, std::string* out);
Status DecodeDelete(std::string_view payload,
                    std::vector<std::string_view>* keys);
void EncodeSweep(uint32_t first_shard, uint32_t shard_count, std::string* out);
Status DecodeSweep(std::string_view payload, uint32_t* first_shard,
                   uint32_t* shard_count);

// A kPolicies payload: the policy set to put in force.
void EncodePolicies(const PolicySet& policies, std::string* out);
Status DecodePolicies(std::string_view payload, PolicySet* out);

// The outcome of one item of a record.
struct ItemOutcome {
  Status status;
  int64_t time_ms = 0;     // the event time applied (adds)
  bool duplicate = false;  // an id seen before: nothing applied (adds)
  bool existed = false;    // the key existed (deletes)
};

struct State {
  Engine* engine = nullptr;
  DedupeTable* dedupe = nullptr;
};

// Applies one record whose CRC was checked. `outcomes` (may be null) gets
// one entry per item. CORRUPTION when the payload does not parse; nothing
// is applied then. A kPolicies record has one item: its status is
// Engine::ReplacePolicies's (a refusal changes nothing, live or in replay).
Status ApplyRecord(const State& state, RecordType type, int64_t time_ms,
                   std::string_view payload,
                   std::vector<ItemOutcome>* outcomes);

// Replays records with the effect of ApplyRecord on each in turn, faster:
// the id-less adds of consecutive records are gathered (their bytes copied)
// into one Engine::AddBatch of up to kBatch events, whose cache misses
// overlap. Any other record flushes the batch first, so order is kept.
// Outcomes are not reported (recovery needs none). Call Flush() at the end.
class Replayer {
 public:
  static constexpr size_t kBatch = 256;
  explicit Replayer(const State& state) : state_(state) {}
  Status Apply(RecordType type, int64_t time_ms, std::string_view payload);
  void Flush();

 private:
  struct Pending {
    AddOp op;  // views are offsets into arena_ until Flush
    int64_t now_ms;
    size_t key_at, member_at;
  };
  State state_;
  std::vector<AddOp> ops_;
  std::vector<Pending> pending_;
  std::string arena_;
  std::vector<AddEvent> events_;
  std::vector<Engine::AddOutcome> outcomes_;
};

}  // namespace tally::wal

#endif  // TALLY_STORAGE_WAL_RECORD_H_
