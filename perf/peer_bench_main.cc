// tally-peer-bench: workload W1 (PERFORMANCE.md) against one system — tallyd,
// Redis in the bucket-key designs a2/a3 (pipelined or Lua), or PostgreSQL
// with a detail table — through the same runner, so every system gets the
// same history, the same phases in the same order, the same probes and the
// same selfcheck. perf/compare.sh runs it once per system and puts the
// results side by side.
//
// Output: the human table, then (with --json) one JSON object on the last
// line: the system, memory per touched key, every phase's figures, the
// hottest key's 24 h distinct latency, the probe answers and the selfcheck.

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "perf/postgres_driver.h"
#include "perf/redis_driver.h"
#include "tools/bench/system_runner.h"
#include "tools/bench/tally_driver.h"
#include "tools/bench/w1_flags.h"

namespace {

struct PhaseSpec {
  std::string name;
  int connections = 1;
  int batch = 1;
};

// "ingest:64:16,query:8,mixed:8" -> phases (name:connections[:batch]).
bool ParsePlan(const std::string& plan, std::vector<PhaseSpec>* out,
               std::string* error) {
  std::stringstream items(plan);
  std::string item;
  while (std::getline(items, item, ',')) {
    PhaseSpec spec;
    std::stringstream parts(item);
    std::string part;
    std::vector<std::string> fields;
    while (std::getline(parts, part, ':')) fields.push_back(part);
    if (fields.empty() || fields.size() > 3 ||
        (fields[0] != "ingest" && fields[0] != "query" &&
         fields[0] != "mixed")) {
      *error = "bad phase '" + item +
               "': want ingest|query|mixed[:connections[:batch]]";
      return false;
    }
    spec.name = fields[0];
    try {
      if (fields.size() > 1) spec.connections = std::stoi(fields[1]);
      if (fields.size() > 2) spec.batch = std::stoi(fields[2]);
    } catch (const std::exception&) {
      *error = "bad numbers in phase '" + item + "'";
      return false;
    }
    if (spec.connections < 1 || spec.connections > 1024 || spec.batch < 1 ||
        spec.batch > 4096) {
      *error = "phase '" + item + "': connections 1..1024, batch 1..4096";
      return false;
    }
    out->push_back(spec);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tally::bench;
  CLI::App app{
      "tally-peer-bench: workload W1 against tally, Redis or PostgreSQL "
      "(see PERFORMANCE.md)"};
  RunOptions options;
  std::string system_name = "tally", host = "127.0.0.1", pg_conninfo,
              plan = "ingest:8:1,ingest:8:16,query:8,mixed:8";
  int port = 7379;
  bool json = false, hot_distinct = true;
  app.add_option("--system", system_name, "System under test")
      ->check(CLI::IsMember({"tally", "redis-a2", "redis-a3", "redis-a2-lua",
                             "redis-a3-lua", "postgres"}));
  std::string label;
  app.add_option("--label", label,
                 "Name the system in the report (default: --system), e.g. "
                 "tally-poll for a tallyd run with other flags");
  app.add_option("--host", host, "Server address (tally and Redis)");
  app.add_option("--port", port, "Server port (tally and Redis)");
  app.add_option("--pg", pg_conninfo,
                 "libpq connection string (PostgreSQL), e.g. "
                 "'host=/tmp/pg port=5432 dbname=postgres user=postgres'");
  app.add_option("--plan", plan,
                 "Timed phases after the load, in order: "
                 "phase:connections[:batch],...");
  app.add_option("--hot-distinct", hot_distinct,
                 "Also time the hottest key's 24 h distinct count (1 "
                 "connection)");
  tally::bench::AddW1Flags(app, &options);
  app.add_option("--t0", options.w1.t0_ms,
                 "T0 in ms since the epoch, a whole second (default: now); "
                 "give every system the same T0 to compare their probes");
  app.add_flag("--w2", options.w1.w2,
               "Workload W2: a 30-day history and w30d in every decision "
               "(Redis a2 keeps nothing older than 24 h and is refused)");
  app.add_flag("--json", json, "Print one final JSON object after the table");
  CLI11_PARSE(app, argc, argv);

  std::vector<PhaseSpec> specs;
  std::string error;
  if (!ParsePlan(plan, &specs, &error)) {
    std::cerr << "tally-peer-bench: " << error << "\n";
    return 2;
  }
  if (options.w1.t0_ms == 0) {
    options.w1.t0_ms = tally::bench::WallSecondMs();
  }
  if (options.w1.t0_ms % 1000 != 0) {
    std::cerr << "tally-peer-bench: --t0 must be a whole second\n";
    return 2;
  }

  if (options.w1.w2 && system_name.rfind("redis-a2", 0) == 0) {
    std::cerr << "tally-peer-bench: Redis a2 keeps no bucket older than 24 h, "
                 "so it cannot answer W2's 30-day window; use redis-a3\n";
    return 2;
  }
  std::unique_ptr<System> system;
  if (system_name == "tally") {
    system = std::make_unique<TallySystem>(host, static_cast<uint16_t>(port));
  } else if (system_name == "postgres") {
    system = std::make_unique<PostgresSystem>(pg_conninfo);
  } else {
    const auto design = system_name.rfind("redis-a2", 0) == 0
                            ? RedisSystem::Design::kA2
                            : RedisSystem::Design::kA3;
    const bool lua = system_name.ends_with("-lua");
    system = std::make_unique<RedisSystem>(host, static_cast<uint16_t>(port),
                                           design, lua);
  }

  BenchReport report;
  report.mode = "network";
  report.system = label.empty() ? system->name() : label;
  report.keys = options.w1.keys;
  report.history = options.w1.history;
  report.seconds = options.seconds;
  SystemRunner runner(options, system.get());
  report.phases.push_back(runner.Load(&report));
  const std::vector<ProbeAnswer> probes = runner.Probe();
  for (const PhaseSpec& spec : specs) {
    report.phases.push_back(
        runner.Timed(spec.name, spec.connections, spec.batch));
  }
  if (hot_distinct) report.phases.push_back(runner.HotDistinct());
  report.selfcheck = runner.Check();
  PrintTable(report);

  if (json) {
    nlohmann::json j;
    j["system"] = report.system;
    j["workload"] = options.w1.w2 ? "W2" : "W1";
    j["keys"] = report.keys;
    j["history"] = report.history;
    j["t0_ms"] = options.w1.t0_ms;
    j["seconds"] = options.seconds;
    j["keys_touched"] = report.keys_touched;
    j["bytes_per_key"] = report.bytes_per_key;
    j["memory_kind"] = report.memory_kind;
    j["selfcheck"] = report.selfcheck;
    j["phases"] = nlohmann::json::array();
    for (const PhaseResult& p : report.phases)
      j["phases"].push_back(PhaseJson(p));
    j["probes"] = nlohmann::json::array();
    for (const ProbeAnswer& a : probes) {
      j["probes"].push_back({{"rank", a.rank},
                             {"window", a.window},
                             {"count", a.answer.count},
                             {"sum", a.answer.sum},
                             {"distinct", a.answer.distinct},
                             {"exact", a.answer.exact},
                             {"error", a.error}});
    }
    std::cout << j.dump() << std::endl;
  }
  return report.selfcheck == "ok" ? 0 : 1;
}
