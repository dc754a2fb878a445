// Runs workload W1 against an Engine in this process (tally-bench --embedded):
// the load phase (untimed history), then the timed phases in closed loop,
// one worker thread per "connection". The engine's clock is W1's simulated
// clock: the time of the latest event issued.

#ifndef TALLY_TOOLS_BENCH_EMBEDDED_RUNNER_H_
#define TALLY_TOOLS_BENCH_EMBEDDED_RUNNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tools/bench/report.h"
#include "tools/bench/w1.h"

namespace tally::bench {

struct RunOptions {
  W1Config w1;
  int connections = 1;  // worker threads, each with one operation in flight
  int batch = 1;        // events per event op
  double seconds = 5;   // measured seconds per timed phase
  double warmup_seconds = 1;
  std::vector<std::string> phases = {"ingest", "query", "mixed"};  // after load
  uint64_t seed = 1;
  // Time one event op in this many (each timing costs two clock reads,
  // a noticeable share of a sub-microsecond add). Decisions are all timed.
  int event_latency_sample = 8;
};

// Returns the report. Runs everything on the calling thread plus
// `connections` workers per timed phase.
BenchReport RunEmbedded(const RunOptions& options);

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_EMBEDDED_RUNNER_H_
