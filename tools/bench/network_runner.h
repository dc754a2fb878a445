// Runs workload W1 against a running tallyd (tally-bench --host/--port):
// the load phase (history, untimed, batched), then the timed phases in
// closed loop, one connection and thread per "connection", one request in
// flight each. A decision is one request (4 query items, 10 counters).
//
// Clock: the history carries W1's timestamps (the 24 h before T0). In the
// timed phases events carry no time and the server stamps them (W1's
// simulated clock would run ahead of the server's at more than 1,000
// events/s, past its allowed skew); the stamped times come back in the
// replies and feed the selfcheck.

#ifndef TALLY_TOOLS_BENCH_NETWORK_RUNNER_H_
#define TALLY_TOOLS_BENCH_NETWORK_RUNNER_H_

#include <string>

#include "tools/bench/embedded_runner.h"
#include "tools/bench/report.h"

namespace tally::bench {

// `tls_ca_file` non-empty: TLS, the server verified against that CA.
BenchReport RunNetwork(const RunOptions& options, const std::string& host,
                       uint16_t port, const std::string& tls_ca_file = "");

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_NETWORK_RUNNER_H_
