// The closed-loop timed phase both runners share: start one worker per
// connection, let them warm up, measure for the phase's seconds, stop them,
// and merge what each counted while `measuring` was set.

#ifndef TALLY_TOOLS_BENCH_TIMED_PHASE_H_
#define TALLY_TOOLS_BENCH_TIMED_PHASE_H_

#include <atomic>
#include <functional>
#include <string>

#include "tools/bench/embedded_runner.h"
#include "tools/bench/report.h"

namespace tally::bench {

// Share of event ops (the rest are decisions) for a phase name:
// ingest 100, query 0, mixed 80.
int EventShare(const std::string& phase);

// `worker(c, measuring, stop, out)` loops until `stop`, counting into *out
// only while `measuring`. `cpu_seconds()` reads the CPU time to report
// (the process's own, or the server's).
using PhaseWorker =
    std::function<void(int connection, const std::atomic<bool>& measuring,
                       const std::atomic<bool>& stop, PhaseResult* out)>;
PhaseResult RunTimedPhase(const std::string& name, const RunOptions& options,
                          const PhaseWorker& worker,
                          const std::function<double()>& cpu_seconds);

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_TIMED_PHASE_H_
