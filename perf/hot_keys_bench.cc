// What HOTKEYS' tracker (storage/hot_keys.h) costs on the add path: the
// per-add check `if (ShouldSample()) Record(key, now)` that Service::DoAdds
// runs, over W1's keys (1,000,000 "user:<id>", Zipf(0.99) ranks scattered by
// W1IdForRank), at several sampling rates, on one and two threads (two
// threads contend on the tracker's stripes). BM_Record is the cost of one
// sampled add alone. Keys are drawn once, outside the timed loops; seeded.
//
//   build/bin/hot_keys_bench --benchmark_min_time=0.5

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "storage/hot_keys.h"
#include "tools/bench/zipf.h"

namespace tally {
namespace {

constexpr uint64_t kKeys = 1'000'000;

const std::vector<std::string>& W1Keys() {
  static const std::vector<std::string>* keys = [] {
    auto* out = new std::vector<std::string>();
    bench::ZipfianGenerator zipf(kKeys);
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    out->reserve(1 << 16);
    for (int i = 0; i < (1 << 16); ++i) {
      out->push_back("user:" + std::to_string(bench::W1IdForRank(
                                   zipf.Sample(u(rng)), kKeys)));
    }
    return out;
  }();
  return *keys;
}

// Arg: sample_every (0 = tracker off: the check alone).
void BM_AddPathCheck(benchmark::State& state) {
  // Shared by the run's threads; made by thread 0 before the loop's start
  // barrier and never freed (other threads may still be in their loop when
  // thread 0 leaves its own).
  static HotKeys* tracker = nullptr;
  if (state.thread_index() == 0) {
    tracker =
        new HotKeys({.sample_every = static_cast<uint32_t>(state.range(0))});
  }
  const std::vector<std::string>& keys = W1Keys();
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  int64_t now_ms = 0;
  for (auto _ : state) {
    const std::string& key = keys[i++ & (keys.size() - 1)];
    benchmark::DoNotOptimize(key.data());
    if (tracker->ShouldSample()) tracker->Record(key, now_ms);
    now_ms += (i & 1023) == 0 ? 1 : 0;  // ~1 ms per 1,024 adds
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AddPathCheck)
    ->Arg(0)
    ->Arg(64)
    ->Arg(16)
    ->Arg(1)
    ->Threads(1)
    ->Threads(2);

// One sampled add: hash, stripe lock, lookup, forward-decay weight.
void BM_Record(benchmark::State& state) {
  HotKeys tracker({.sample_every = 1});
  const std::vector<std::string>& keys = W1Keys();
  size_t i = 0;
  int64_t now_ms = 0;
  for (auto _ : state) {
    tracker.Record(keys[i++ & (keys.size() - 1)], now_ms);
    now_ms += (i & 63) == 0 ? 1 : 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Record);

// HOTKEYS COUNT 10 over a full tracker (512 keys).
void BM_Top10(benchmark::State& state) {
  HotKeys tracker({.sample_every = 1});
  const std::vector<std::string>& keys = W1Keys();
  for (size_t i = 0; i < keys.size(); ++i) tracker.Record(keys[i], 0);
  for (auto _ : state) benchmark::DoNotOptimize(tracker.Top(10, 1000));
}
BENCHMARK(BM_Top10);

}  // namespace
}  // namespace tally

BENCHMARK_MAIN();
