// Runs workload W1 against any System (driver.h) over the network: the load
// phase (history, untimed, 1,000-event round trips), the timed phases in
// closed loop (one connection and thread per "connection", one operation in
// flight each), the hottest key's 24 h distinct count, the answers to a few
// fixed probes after the load (compared across systems by perf/compare.sh),
// and the selfcheck against client-side ground truth at the end.
//
// Clock: the history carries W1's timestamps (the 24 h before T0). In the
// timed phases events carry no time: tallyd stamps them itself (W1's
// simulated clock would run ahead of the server's at more than 1,000
// events/s, past its allowed skew), a peer's driver stamps them with the
// wall clock; the times used come back and feed the selfcheck. Decisions
// ask at the current wall-clock second.

#ifndef TALLY_TOOLS_BENCH_SYSTEM_RUNNER_H_
#define TALLY_TOOLS_BENCH_SYSTEM_RUNNER_H_

#include <memory>
#include <string>
#include <vector>

#include "tools/bench/driver.h"
#include "tools/bench/embedded_runner.h"
#include "tools/bench/report.h"
#include "tools/bench/truth.h"

namespace tally::bench {

// One answer to a fixed probe after the load: key rank, window, answer.
struct ProbeAnswer {
  uint64_t rank = 0;
  std::string window;  // see ProbeWindows
  Observed answer;
  std::string error;  // empty when answered
};

// The probes' windows, fixed relative to T0 and aligned to the resolution
// they need, so that every system can still answer them exactly for the
// whole of a comparison run: a store that expires its buckets by the wall
// clock (Redis) has long dropped the 1 s buckets of "w1h at T0 - 1 s" by the
// time its turn comes. 90 s in 1 s buckets (kept 1 h), a whole minute, a
// whole hour and 19 whole hours within the last day (W2: 28 whole days).
std::vector<std::pair<std::string, W1Window>> ProbeWindows(const W1Config& w1);

class SystemRunner {
 public:
  SystemRunner(const RunOptions& options, System* system);
  ~SystemRunner();

  // Loads the history; fills the report's memory figures. Returns the phase.
  PhaseResult Load(BenchReport* report);
  // The probes: ranks 0, 10 and 1000 over ProbeWindows, right after the
  // load.
  std::vector<ProbeAnswer> Probe();
  // One timed phase: ingest, query or mixed, with its own connection count
  // and batch size.
  PhaseResult Timed(const std::string& phase, int connections, int batch);
  // The hottest key's distinct count over w24h, one connection, closed loop,
  // for the options' seconds (after the warm-up).
  PhaseResult HotDistinct();
  // "ok", or what differed from the ground truth.
  std::string Check();

 private:
  const RunOptions options_;
  System* const system_;
  const W1 w1_;
  Truth truth_;
  std::unique_ptr<SystemConnection> admin_;
  Status admin_status_;
};

// The whole run as tally-bench does it: load, the options' phases, check.
BenchReport RunSystem(const RunOptions& options, System* system);

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_SYSTEM_RUNNER_H_
