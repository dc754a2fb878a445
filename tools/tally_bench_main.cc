// tally-bench: workload W1 (PERFORMANCE.md) against the engine in-process
// (--embedded) or a running tallyd (--host/--port). Prints a table and, with
// --json, one final JSON object.

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "tools/bench/embedded_runner.h"
#include "tools/bench/network_runner.h"
#include "tools/bench/report.h"
#include "tools/bench/w1_flags.h"

int main(int argc, char** argv) {
  CLI::App app{"tally-bench: workload W1 against tally (see PERFORMANCE.md)"};
  app.set_version_flag("--version", "tally-bench " TALLY_VERSION);
  tally::bench::RunOptions options;
  bool embedded = false, json = false;
  std::string host = "127.0.0.1", phase;
  int port = 7379;
  app.add_flag("--embedded", embedded,
               "Run the storage engine in this process");
  app.add_option("--host", host, "tallyd address (network mode)");
  app.add_option("--port", port, "tallyd port (network mode)");
  std::string tls_ca_file;
  app.add_option("--tls_ca_file", tls_ca_file,
                 "Connect over TLS, verifying tallyd's certificate against "
                 "this PEM CA and --host (network mode)");
  app.add_option("--connections,-c", options.connections,
                 "Closed-loop connections; in --embedded mode, worker threads "
                 "(default 1: "
                 "the per-core figure)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--phase", phase,
                 "Run only this phase after the (untimed) load: "
                 "load|ingest|query|mixed "
                 "(default: ingest, query and mixed)")
      ->check(CLI::IsMember({"load", "ingest", "query", "mixed"}));
  app.add_option("--batch,-b", options.batch,
                 "Events per event op (W1 uses 1 and 16)")
      ->check(CLI::Range(1, 4096));
  tally::bench::AddW1Flags(app, &options);
  app.add_flag("--json", json, "Print one final JSON object after the table");
  CLI11_PARSE(app, argc, argv);

  if (!phase.empty()) {
    options.phases.clear();
    if (phase != "load") options.phases.push_back(phase);
  }
  // T0: the wall clock at start, on a whole second (PERFORMANCE.md).
  options.w1.t0_ms = tally::bench::WallSecondMs();
  tally::bench::BenchReport report =
      embedded ? tally::bench::RunEmbedded(options)
               : tally::bench::RunNetwork(
                     options, host, static_cast<uint16_t>(port), tls_ca_file);
  tally::bench::PrintTable(report);
  if (json) std::cout << tally::bench::ToJson(report) << std::endl;
  return report.selfcheck == "ok" ? 0 : 1;
}
