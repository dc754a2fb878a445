// What per-command statistics cost on the request path (docs/benchmarks.md,
// "Metrics overhead"): CommandStats::Record alone, with the clock read that
// Connection adds, from several threads at once, and a full Snapshot (what
// a scrape or INFO pays).

#include <benchmark/benchmark.h>

#include <chrono>

#include "server/command_stats.h"

namespace tally {
namespace {

CommandStats& Stats() {
  static CommandStats* stats = new CommandStats();
  return *stats;
}

// Started + Record, the two calls one request makes.
void BM_Record(benchmark::State& state) {
  CommandStats& stats = Stats();
  uint64_t ns = 20'000;
  for (auto _ : state) {
    stats.Started();
    stats.Record(proto::Op::kQuery, Code::kOk, ns);
    ns = ns * 7 % 1'000'003 + 1000;  // spread over buckets
  }
}
BENCHMARK(BM_Record)->Threads(1)->Threads(2)->Threads(4);

// The same plus the steady_clock read Complete() makes for the latency.
void BM_RecordWithClock(benchmark::State& state) {
  CommandStats& stats = Stats();
  const auto received = std::chrono::steady_clock::now();
  for (auto _ : state) {
    stats.Started();
    stats.Record(proto::Op::kQuery, Code::kOk,
                 static_cast<uint64_t>(
                     std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::steady_clock::now() - received)
                         .count()));
  }
}
BENCHMARK(BM_RecordWithClock);

void BM_Snapshot(benchmark::State& state) {
  CommandStats& stats = Stats();
  for (auto _ : state) {
    benchmark::DoNotOptimize(stats.Snapshot());
  }
}
BENCHMARK(BM_Snapshot);

}  // namespace
}  // namespace tally

BENCHMARK_MAIN();
