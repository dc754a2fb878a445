// A system under workload W1 seen through one connection: tallyd, or one of
// the peers of PERFORMANCE.md (Redis bucket keys, a PostgreSQL detail table,
// whose drivers live in perf/). The runner (system_runner.h) drives every
// system through this interface, so all of them get the same events, the
// same decisions, the same phases and the same checks.
//
// Thread safety: a SystemConnection belongs to one thread. A System may be
// asked for connections and stats from any thread.

#ifndef TALLY_TOOLS_BENCH_DRIVER_H_
#define TALLY_TOOLS_BENCH_DRIVER_H_

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"
#include "tools/bench/truth.h"
#include "tools/bench/w1.h"

namespace tally::bench {

// One W1 decision: count, sum and distinct of `u` over w60, w1h and w24h at
// `now_ms`, and the count of `u2` over w60: ten counters. W2 adds count, sum
// and distinct of `u` over w30d: thirteen.
struct Decision {
  uint64_t u = 0;
  uint64_t u2 = 0;
  int64_t now_ms = 0;  // a whole second
  bool w30d = false;
};

// The counters, in the order of the Decision's comment.
struct DecisionAnswer {
  int64_t values[13] = {};
};

class SystemConnection {
 public:
  virtual ~SystemConnection() = default;

  // Applies `events` in one round trip. An event whose ts_ms is 0 takes the
  // system's (or, for a peer without a clock of its own, the driver's) wall
  // clock, and its ts_ms is set to the time used. `applied[i]` says whether
  // event i was accepted; the status is not ok only when the connection is
  // unusable.
  virtual Status Add(std::vector<W1Event>* events,
                     std::vector<bool>* applied) = 0;

  // One decision in one round trip.
  virtual Status Decide(const Decision& decision, DecisionAnswer* answer) = 0;

  // count, sum and distinct of one key over one window (whole seconds).
  // `distinct_only` asks for the distinct count alone (the other fields may
  // then be 0).
  virtual Result<Observed> Query(std::string_view key, W1Window window,
                                 bool distinct_only) = 0;
};

// A numeric field of a server's INFO text ("name:value" lines, as tallyd
// and Redis write them), or 0 when absent.
inline double InfoField(std::string_view text, std::string_view name) {
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(at, end - at);
    if (line.size() > name.size() && line.starts_with(name) &&
        line[name.size()] == ':') {
      return std::strtod(std::string(line.substr(name.size() + 1)).c_str(),
                         nullptr);
    }
    at = end + 1;
  }
  return 0;
}

// What the server reports of itself, for cpu% and bytes per key.
struct SystemStats {
  double cpu_seconds = 0;      // the server's CPU time so far (user + system)
  double memory_bytes = 0;     // memory (or storage) holding the counters
  double accounted_bytes = 0;  // the server's own accounting, 0 if none
  std::string memory_kind;     // what memory_bytes measures
};

class System {
 public:
  virtual ~System() = default;
  virtual std::string name() const = 0;
  // Prepares an empty store (schema, scripts); called once before the load.
  virtual Status Prepare() { return Status::Ok(); }
  // Called once after the history is loaded, before anything is measured:
  // what an operator does after a bulk load (PostgreSQL: ANALYZE).
  virtual Status AfterLoad() { return Status::Ok(); }
  virtual Result<std::unique_ptr<SystemConnection>> Connect() = 0;
  virtual SystemStats Stats() = 0;
};

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_DRIVER_H_
