#include "storage/wal_record.h"

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <xxhash.h>

#include "storage/policy_codec.h"

namespace tally::wal {

namespace {

enum : uint8_t { kHasMember = 1, kHasId = 2, kHasTime = 4 };

// What the protocol admits (protocol/limits.h); a record never holds more,
// and the dedupe table's snapshot refuses longer ids.
constexpr size_t kMaxMemberSize = 256;

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

// Bounds-checked reads over a payload.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  template <typename T>
  bool Get(T* v) {
    if (data_.size() < sizeof(T)) return false;
    std::memcpy(v, data_.data(), sizeof(T));
    data_.remove_prefix(sizeof(T));
    return true;
  }
  bool Bytes(size_t n, std::string_view* v) {
    if (data_.size() < n) return false;
    *v = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }
  bool done() const { return data_.empty(); }
  size_t remaining() const { return data_.size(); }

 private:
  std::string_view data_;
};

Status Bad(std::string_view what) {
  return Status(Code::kCorruption,
                "WAL record payload does not parse: " + std::string(what));
}

AddEvent ToEvent(const AddOp& op, int64_t time_ms) {
  AddEvent e;
  e.key = op.key;
  e.time_ms = op.time_ms;
  e.count = op.count;
  e.amount = op.amount;
  e.has_member = op.has_member;
  e.member = op.member;
  e.now_ms = time_ms;
  return e;
}

}  // namespace

uint64_t EventDigest(const AddOp& op) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  const uint64_t sizes[2] = {op.key.size(),
                             op.has_member ? op.member.size() + 1 : 0};
  XXH3_64bits_update(&state, sizes, sizeof(sizes));
  XXH3_64bits_update(&state, op.key.data(), op.key.size());
  const int64_t fields[3] = {op.time_ms, op.count, op.amount};
  XXH3_64bits_update(&state, fields, sizeof(fields));
  if (op.has_member)
    XXH3_64bits_update(&state, op.member.data(), op.member.size());
  return XXH3_64bits_digest(&state);
}

void EncodeAddBatch(std::span<const AddOp> ops, std::string* out) {
  Put<uint32_t>(out, static_cast<uint32_t>(ops.size()));
  for (const AddOp& op : ops) {
    const uint8_t flags = (op.has_member ? kHasMember : 0) |
                          (op.has_id ? kHasId : 0) |
                          (op.time_ms != kNow ? kHasTime : 0);
    Put<uint8_t>(out, flags);
    Put<uint16_t>(out, static_cast<uint16_t>(op.key.size()));
    out->append(op.key);
    Put<int64_t>(out, op.count);
    Put<int64_t>(out, op.amount);
    if (flags & kHasTime) Put<int64_t>(out, op.time_ms);
    if (flags & kHasMember) {
      Put<uint16_t>(out, static_cast<uint16_t>(op.member.size()));
      out->append(op.member);
    }
    if (flags & kHasId) {
      Put<uint8_t>(out, static_cast<uint8_t>(op.id.size()));
      out->append(op.id);
      Put<uint64_t>(out, op.digest);
    }
  }
}

Status DecodeAddBatch(std::string_view payload, std::vector<AddOp>* out) {
  Reader r(payload);
  uint32_t n = 0;
  if (!r.Get(&n)) return Bad("add batch without an item count");
  // Each item takes at least 20 bytes: a count beyond that is a lie, and
  // must not size an allocation.
  if (n > r.remaining() / 20) return Bad("add batch item count too large");
  out->clear();
  out->reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    AddOp op;
    uint8_t flags = 0;
    uint16_t key_size = 0;
    if (!r.Get(&flags) || (flags & ~7) != 0 || !r.Get(&key_size) ||
        key_size == 0 || key_size > kMaxKeySize ||
        !r.Bytes(key_size, &op.key) || !r.Get(&op.count) ||
        !r.Get(&op.amount)) {
      return Bad("add item " + std::to_string(i));
    }
    if ((flags & kHasTime) && !r.Get(&op.time_ms)) return Bad("add time");
    if (flags & kHasMember) {
      uint16_t size = 0;
      op.has_member = true;
      if (!r.Get(&size) || size > kMaxMemberSize ||
          !r.Bytes(size, &op.member)) {
        return Bad("member");
      }
    }
    if (flags & kHasId) {
      uint8_t size = 0;
      op.has_id = true;
      if (!r.Get(&size) || size == 0 || size > kMaxIdSize ||
          !r.Bytes(size, &op.id) || !r.Get(&op.digest)) {
        return Bad("idempotency id");
      }
    }
    out->push_back(op);
  }
  if (!r.done()) return Bad("trailing bytes after the add batch");
  return Status::Ok();
}

void EncodeDelete(std::span<const std::string_view> keys, std::string* out) {
  Put<uint32_t>(out, static_cast<uint32_t>(keys.size()));
  for (std::string_view key : keys) {
    Put<uint16_t>(out, static_cast<uint16_t>(key.size()));
    out->append(key);
  }
}

Status DecodeDelete(std::string_view payload,
                    std::vector<std::string_view>* keys) {
  Reader r(payload);
  uint32_t n = 0;
  if (!r.Get(&n) || n > r.remaining() / 3) return Bad("delete key count");
  keys->clear();
  keys->reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    uint16_t size = 0;
    std::string_view key;
    if (!r.Get(&size) || size == 0 || size > kMaxKeySize ||
        !r.Bytes(size, &key)) {
      return Bad("delete key " + std::to_string(i));
    }
    keys->push_back(key);
  }
  if (!r.done()) return Bad("trailing bytes after the delete");
  return Status::Ok();
}

void EncodeSweep(uint32_t first_shard, uint32_t shard_count, std::string* out) {
  Put<uint32_t>(out, first_shard);
  Put<uint32_t>(out, shard_count);
}

Status DecodeSweep(std::string_view payload, uint32_t* first_shard,
                   uint32_t* shard_count) {
  Reader r(payload);
  if (!r.Get(first_shard) || !r.Get(shard_count) || !r.done()) {
    return Bad("sweep");
  }
  return Status::Ok();
}

void EncodePolicies(const PolicySet& policies, std::string* out) {
  EncodePolicySet(policies, out);
}

Status DecodePolicies(std::string_view payload, PolicySet* out) {
  ByteReader reader(payload);
  Result<PolicySet> set = DecodePolicySet(&reader, "policies record");
  if (!set.ok()) return set.status();
  if (reader.remaining() != 0) return Bad("policies");
  *out = std::move(*set);
  return Status::Ok();
}

Status ApplyRecord(const State& state, RecordType type, int64_t time_ms,
                   std::string_view payload,
                   std::vector<ItemOutcome>* outcomes) {
  switch (type) {
    case RecordType::kAddBatch: {
      thread_local std::vector<AddOp> ops;
      thread_local std::vector<AddEvent> batch;
      thread_local std::vector<size_t> positions;
      thread_local std::vector<Engine::AddOutcome> results;
      if (Status s = DecodeAddBatch(payload, &ops); !s.ok()) return s;
      std::vector<ItemOutcome> local;
      std::vector<ItemOutcome>& out = outcomes ? *outcomes : local;
      out.assign(ops.size(), ItemOutcome{});
      // Runs of id-less adds go through AddBatch (overlapped cache misses);
      // adds with an id through the dedupe table, one by one. Order is kept.
      size_t i = 0;
      while (i < ops.size()) {
        if (!ops[i].has_id) {
          batch.clear();
          positions.clear();
          for (; i < ops.size() && !ops[i].has_id; ++i) {
            batch.push_back(ToEvent(ops[i], time_ms));
            positions.push_back(i);
          }
          results.resize(batch.size());
          state.engine->AddBatch(batch, results);
          for (size_t k = 0; k < batch.size(); ++k) {
            out[positions[k]].status = results[k].status;
            out[positions[k]].time_ms = results[k].result.time_ms;
          }
          continue;
        }
        const AddOp& op = ops[i];
        ItemOutcome& o = out[i];
        const AddEvent event = ToEvent(op, time_ms);
        const auto result = state.dedupe->Apply(
            op.id, op.digest, time_ms,
            [&](int64_t* applied_ms) {
              Result<AddResult> added = state.engine->Add(event);
              if (!added.ok()) return added.status();
              *applied_ms = added->time_ms;
              return Status::Ok();
            },
            &o.time_ms, &o.status);
        o.duplicate = result == DedupeTable::Outcome::kDuplicate;
        ++i;
      }
      return Status::Ok();
    }
    case RecordType::kDelete: {
      std::vector<std::string_view> keys;
      if (Status s = DecodeDelete(payload, &keys); !s.ok()) return s;
      if (outcomes) outcomes->assign(keys.size(), ItemOutcome{});
      for (size_t i = 0; i < keys.size(); ++i) {
        const bool existed = state.engine->Delete(keys[i]);
        if (outcomes) (*outcomes)[i].existed = existed;
      }
      return Status::Ok();
    }
    case RecordType::kSweep: {
      uint32_t first = 0, count = 0;
      if (Status s = DecodeSweep(payload, &first, &count); !s.ok()) return s;
      const size_t shards = state.engine->shard_count();
      for (uint32_t k = 0; k < count && k < shards; ++k) {
        state.engine->SweepShard((first + k) % shards, time_ms);
      }
      if (outcomes) outcomes->clear();
      return Status::Ok();
    }
    case RecordType::kPolicies: {
      PolicySet next;
      if (Status s = DecodePolicies(payload, &next); !s.ok()) return s;
      Status replaced = state.engine->ReplacePolicies(std::move(next));
      if (outcomes) outcomes->assign(1, ItemOutcome{.status = replaced});
      return Status::Ok();
    }
  }
  return Bad("unknown record type " + std::to_string(static_cast<int>(type)));
}

Status Replayer::Apply(RecordType type, int64_t time_ms,
                       std::string_view payload) {
  if (type != RecordType::kAddBatch) {
    Flush();
    return ApplyRecord(state_, type, time_ms, payload, nullptr);
  }
  if (Status s = DecodeAddBatch(payload, &ops_); !s.ok()) return s;
  for (const AddOp& op : ops_) {
    if (op.has_id) {
      // Ids go through the dedupe table: keep it simple and exact.
      Flush();
      return ApplyRecord(state_, type, time_ms, payload, nullptr);
    }
  }
  for (const AddOp& op : ops_) {
    Pending p{op, time_ms, arena_.size(), 0};
    arena_.append(op.key);
    p.member_at = arena_.size();
    arena_.append(op.member);
    pending_.push_back(p);
  }
  if (pending_.size() >= kBatch) Flush();
  return Status::Ok();
}

void Replayer::Flush() {
  if (pending_.empty()) return;
  events_.clear();
  for (const Pending& p : pending_) {
    AddOp op = p.op;
    op.key = std::string_view(arena_).substr(p.key_at, p.op.key.size());
    op.member =
        std::string_view(arena_).substr(p.member_at, p.op.member.size());
    events_.push_back(ToEvent(op, p.now_ms));
  }
  outcomes_.resize(events_.size());
  state_.engine->AddBatch(events_, outcomes_);
  pending_.clear();
  arena_.clear();
}

}  // namespace tally::wal
