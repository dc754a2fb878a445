// What a policy reload (SIGHUP) costs: Engine::ReplacePolicies holds every
// shard while it re-points each key, so adds and queries wait for it. Keys
// hold one event each (the common velocity key); 256 shards as in tallyd.
//   BM_ReplacePolicies/N       lateness changes only: one pass over N keys
//   BM_ReplaceWithNewTiers/N   a new prefix with other tiers and no keys
//                              under it: the tier check walks the keys too
// docs/benchmarks.md, "Policy reload".

#include <benchmark/benchmark.h>

#include <string>

#include "storage/engine.h"

namespace tally {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

PolicySet WithLateness(int64_t ms, bool new_prefix) {
  Policy def;
  def.max_lateness_ms = ms;
  std::vector<Policy> prefixed;
  if (new_prefix) {
    Policy fresh;
    fresh.name = "fresh";
    fresh.prefix = "fresh:";
    fresh.tiers = {{1000, 600'000}, {60'000, 86'400'000}};
    prefixed.push_back(fresh);
  }
  return *PolicySet::Create(def, prefixed);
}

void Populate(Engine& engine, int64_t keys) {
  std::string key;
  for (int64_t i = 0; i < keys; ++i) {
    key = "user:" + std::to_string(i);
    AddEvent e;
    e.key = key;
    e.amount = 100;
    (void)engine.Add(e);
  }
}

void Run(benchmark::State& state, bool new_prefix) {
  ManualClock clock(kT0);
  EngineOptions options;
  options.clock = &clock;
  Engine engine(options);
  Populate(engine, state.range(0));
  int64_t i = 0;
  for (auto _ : state) {
    const int64_t lateness = (++i % 2 == 0 ? 1 : 2) * 3'600'000;
    Status s = engine.ReplacePolicies(WithLateness(lateness, new_prefix));
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
  }
  state.counters["ns_per_key"] =
      benchmark::Counter(static_cast<double>(state.range(0)),
                         benchmark::Counter::kIsIterationInvariantRate |
                             benchmark::Counter::kInvert);
}

void BM_ReplacePolicies(benchmark::State& state) { Run(state, false); }
void BM_ReplaceWithNewTiers(benchmark::State& state) { Run(state, true); }
BENCHMARK(BM_ReplacePolicies)
    ->Arg(10'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReplaceWithNewTiers)
    ->Arg(10'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tally

BENCHMARK_MAIN();
