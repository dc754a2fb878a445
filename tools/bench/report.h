// The benchmark's report: per-phase figures, the human table and the final
// JSON object whose schema (PERFORMANCE.md) is shared by --embedded and
// network mode.

#ifndef TALLY_TOOLS_BENCH_REPORT_H_
#define TALLY_TOOLS_BENCH_REPORT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/bench/latency_histogram.h"

namespace tally::bench {

struct PhaseResult {
  std::string name;  // load, ingest, query, mixed, hot_distinct
  int connections = 1;
  int batch = 1;
  double seconds = 0;
  uint64_t events = 0;
  uint64_t decisions = 0;
  uint64_t errors = 0;
  double cpu_percent = 0;  // process CPU time / wall time, 100 = one core
  LatencyHistogram event_latency;     // per event op (a batch is one op)
  LatencyHistogram decision_latency;  // per decision
  double events_per_sec() const { return seconds > 0 ? events / seconds : 0; }
  double decisions_per_sec() const {
    return seconds > 0 ? decisions / seconds : 0;
  }
};

struct BenchReport {
  std::string mode;              // "embedded" or "network"
  std::string system = "tally";  // in network mode, the system under test
  int connections = 1;
  int batch = 1;
  uint64_t keys = 0;
  uint64_t history = 0;
  double seconds = 0;
  uint64_t keys_touched = 0;
  double bytes_per_key = 0;         // allocator bytes after load / keys touched
  double engine_bytes_per_key = 0;  // the engine's own accounting
  double rss_bytes_per_key = 0;
  std::string memory_kind;  // what bytes_per_key measures, when not the above
  std::string selfcheck = "not run";
  std::vector<PhaseResult> phases;
};

// One phase's figures as a JSON object (the entries of ToJson's "phases").
nlohmann::json PhaseJson(const PhaseResult& phase);

// Human-readable table on stdout.
void PrintTable(const BenchReport& report);
// One JSON object on one line. The headline fields come from the ingest phase
// (events) and the query phase (decisions), falling back to mixed.
std::string ToJson(const BenchReport& report);

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_REPORT_H_
