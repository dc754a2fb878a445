// The W1 flags every load generator shares (tally-bench, tally-peer-bench):
// --seconds, --warmup, --keys, --history, --seed, with W1's defaults and
// ranges. Header-only: it needs CLI11, which only the binaries link.

#ifndef TALLY_TOOLS_BENCH_W1_FLAGS_H_
#define TALLY_TOOLS_BENCH_W1_FLAGS_H_

#include <CLI/CLI.hpp>

#include "tools/bench/embedded_runner.h"

namespace tally::bench {

inline void AddW1Flags(CLI::App& app, RunOptions* options) {
  app.add_option("--seconds", options->seconds,
                 "Measured seconds per timed phase (W1: 5)")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--warmup", options->warmup_seconds,
                 "Warm-up seconds before each phase (W1: 1)")
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--keys,-k", options->w1.keys, "Key space K (W1: 1,000,000)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  app.add_option("--history", options->w1.history,
                 "History events H over 24 h (W1: 1,000,000)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1'000'000'000}));
  app.add_option("--seed", options->seed,
                 "Random seed (runs are reproducible per seed)");
}

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_W1_FLAGS_H_
