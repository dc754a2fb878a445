#include "server/command_stats.h"

namespace tally {

namespace {

// Each thread's shard, assigned round robin the first time it records.
std::atomic<size_t> next_shard{0};

}  // namespace

HistogramSnapshot CommandStatsSnapshot::AllLatency() const {
  HistogramSnapshot all;
  for (const CommandSnapshot& c : commands) all.Add(c.latency);
  return all;
}

std::array<uint64_t, 32> CommandStatsSnapshot::AllErrors() const {
  std::array<uint64_t, 32> all{};
  for (const CommandSnapshot& c : commands) {
    for (size_t i = 0; i < all.size(); ++i) all[i] += c.errors[i];
  }
  return all;
}

CommandStats::CommandStats() : shards_(new Shard[kShards]) {}

CommandStats::~CommandStats() = default;

CommandStats::Shard& CommandStats::Mine() {
  thread_local const size_t shard =
      next_shard.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shards_[shard];
}

void CommandStats::Record(proto::Op op, Code code, uint64_t latency_ns) {
  size_t index = static_cast<size_t>(op);
  if (index >= kMaxOps) index = 0;
  Shard& shard = Mine();
  OpCounters& c = shard.ops[index];
  c.calls.fetch_add(1, std::memory_order_relaxed);
  if (code != Code::kOk) {
    size_t code_index = static_cast<size_t>(code);
    if (code_index >= kMaxCodes) code_index = kMaxCodes - 1;
    c.errors[code_index].fetch_add(1, std::memory_order_relaxed);
  }
  c.latency.Record(latency_ns);
  shard.inflight.fetch_sub(1, std::memory_order_relaxed);
}

CommandStatsSnapshot CommandStats::Snapshot() const {
  CommandStatsSnapshot out;
  for (size_t op = 0; op < kMaxOps; ++op) {
    CommandSnapshot c;
    c.op = static_cast<proto::Op>(op);
    for (size_t s = 0; s < kShards; ++s) {
      const OpCounters& counters = shards_[s].ops[op];
      c.calls += counters.calls.load(std::memory_order_relaxed);
      for (size_t k = 0; k < kMaxCodes; ++k) {
        const uint64_t n = counters.errors[k].load(std::memory_order_relaxed);
        c.errors[k] += n;
        c.failed += n;
      }
      counters.latency.AddTo(&c.latency);
    }
    if (c.calls > 0) out.commands.push_back(std::move(c));
  }
  for (size_t s = 0; s < kShards; ++s) {
    out.inflight += shards_[s].inflight.load(std::memory_order_relaxed);
    out.net_input_bytes += shards_[s].net_input.load(std::memory_order_relaxed);
    out.net_output_bytes +=
        shards_[s].net_output.load(std::memory_order_relaxed);
  }
  return out;
}

void CommandStats::Reset() {
  for (size_t s = 0; s < kShards; ++s) {
    for (OpCounters& c : shards_[s].ops) {
      c.calls.store(0, std::memory_order_relaxed);
      for (auto& e : c.errors) e.store(0, std::memory_order_relaxed);
      c.latency.Reset();
    }
  }
}

}  // namespace tally
