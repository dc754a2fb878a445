// CommandStats: per-command statistics for INFO commandstats / errorstats /
// latencystats and the Prometheus endpoint: for every protocol op, calls,
// failed calls by status code, and a latency histogram (frame received to
// reply queued for the socket write, docs/operations.md "Metrics"); plus
// the requests in flight and the bytes read and written by connections.
//
// Recording is on every request's path, so it takes no lock and allocates
// nothing: each thread records into one of kShards shards (picked once per
// thread, round robin) with relaxed atomics, and readers add the shards up.
// A shard's counters sit on their own cache lines, so threads on different
// shards never write the same line. Counters never synchronise anything.
//
// Thread safety: every method may be called from any thread at any time.
// Snapshot() is not a consistent cut across commands (monitoring tolerates
// it); Reset() while others record may lose or keep a concurrent sample.

#ifndef TALLY_SERVER_COMMAND_STATS_H_
#define TALLY_SERVER_COMMAND_STATS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "protocol/messages.h"
#include "protocol/status.h"
#include "server/latency_histogram.h"

namespace tally {

struct CommandSnapshot {
  proto::Op op = proto::Op::kNone;
  uint64_t calls = 0;
  uint64_t failed = 0;  // replies whose whole-request code is not OK
  // Failed calls by whole-request code (index: the Code's value).
  std::array<uint64_t, 32> errors{};
  HistogramSnapshot latency;  // every call, failed or not
};

struct CommandStatsSnapshot {
  // Only ops that were called at least once, in op order.
  std::vector<CommandSnapshot> commands;
  int64_t inflight = 0;
  uint64_t net_input_bytes = 0;
  uint64_t net_output_bytes = 0;
  // The sum of every command's latency histogram.
  HistogramSnapshot AllLatency() const;
  // Failed calls by code over every command.
  std::array<uint64_t, 32> AllErrors() const;
};

class CommandStats {
 public:
  // Ops are indexed by their wire value; values >= kMaxOps (a newer op this
  // table was not sized for) are counted with op 0 ("none").
  static constexpr size_t kMaxOps = 24;
  static constexpr size_t kMaxCodes = 32;
  static constexpr size_t kShards = 8;

  CommandStats();
  ~CommandStats();
  CommandStats(const CommandStats&) = delete;
  CommandStats& operator=(const CommandStats&) = delete;

  // A request was received (its reply is owed).
  void Started() { Mine().inflight.fetch_add(1, std::memory_order_relaxed); }
  // A reply was queued: counts the call, its code and latency, and ends the
  // request's in-flight time.
  void Record(proto::Op op, Code code, uint64_t latency_ns);
  // Requests whose reply will never be recorded (their connection closed).
  void Abandoned(int64_t n) {
    Mine().inflight.fetch_sub(n, std::memory_order_relaxed);
  }
  void NetInput(uint64_t bytes) {
    Mine().net_input.fetch_add(bytes, std::memory_order_relaxed);
  }
  void NetOutput(uint64_t bytes) {
    Mine().net_output.fetch_add(bytes, std::memory_order_relaxed);
  }

  CommandStatsSnapshot Snapshot() const;
  // Forgets calls, errors and latencies (CONFIG RESETSTAT); in-flight and
  // network totals are kept.
  void Reset();

 private:
  struct alignas(64) OpCounters {
    std::atomic<uint64_t> calls{0};
    std::array<std::atomic<uint64_t>, kMaxCodes> errors{};
    AtomicHistogram latency;
  };
  struct alignas(64) Shard {
    std::array<OpCounters, kMaxOps> ops;
    alignas(64) std::atomic<int64_t> inflight{0};
    std::atomic<uint64_t> net_input{0};
    std::atomic<uint64_t> net_output{0};
  };

  Shard& Mine();

  std::unique_ptr<Shard[]> shards_;
};

}  // namespace tally

#endif  // TALLY_SERVER_COMMAND_STATS_H_
