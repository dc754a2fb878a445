#include "tools/bench/report.h"

#include <fmt/core.h>

#include <nlohmann/json.hpp>

namespace tally::bench {

namespace {

double Us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

const PhaseResult* Find(const BenchReport& r, const std::string& name) {
  for (const PhaseResult& p : r.phases) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

}  // namespace

nlohmann::json PhaseJson(const PhaseResult& p) {
  return {
      {"name", p.name},
      {"connections", p.connections},
      {"batch", p.batch},
      {"seconds", p.seconds},
      {"events", p.events},
      {"decisions", p.decisions},
      {"errors", p.errors},
      {"events_per_sec", p.events_per_sec()},
      {"decisions_per_sec", p.decisions_per_sec()},
      {"cpu_percent", p.cpu_percent},
      {"event_p50_us", Us(p.event_latency.ValueAtPercentile(50))},
      {"event_p99_us", Us(p.event_latency.ValueAtPercentile(99))},
      {"decision_p50_us", Us(p.decision_latency.ValueAtPercentile(50))},
      {"decision_p99_us", Us(p.decision_latency.ValueAtPercentile(99))},
      {"decision_p999_us", Us(p.decision_latency.ValueAtPercentile(99.9))},
  };
}

void PrintTable(const BenchReport& r) {
  fmt::print(
      "W1 against {} ({} mode): K={} H={} connections={} batch={} "
      "phase={}s\n",
      r.system, r.mode, r.keys, r.history, r.connections, r.batch, r.seconds);
  fmt::print(
      "{:<12} {:>4} {:>4} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} "
      "{:>7}\n",
      "phase", "C", "b", "events/s", "decisions/s", "dec p50", "dec p99",
      "dec p999", "ev p50", "ev p99", "cpu%", "errors");
  for (const PhaseResult& p : r.phases) {
    const auto& d = p.decision_latency;
    const auto& e = p.event_latency;
    fmt::print(
        "{:<12} {:>4} {:>4} {:>12.0f} {:>12.0f} {:>7.2f}us {:>7.2f}us "
        "{:>7.2f}us {:>7.2f}us "
        "{:>7.2f}us "
        "{:>7.0f} {:>7}\n",
        p.name, p.connections, p.batch, p.events_per_sec(),
        p.decisions_per_sec(), Us(d.ValueAtPercentile(50)),
        Us(d.ValueAtPercentile(99)), Us(d.ValueAtPercentile(99.9)),
        Us(e.ValueAtPercentile(50)), Us(e.ValueAtPercentile(99)), p.cpu_percent,
        p.errors);
  }
  fmt::print(
      "memory after load: {} keys touched, {:.0f} B/key (allocator), {:.0f} "
      "B/key "
      "(engine accounting), {:.0f} B/key (RSS)\n",
      r.keys_touched, r.bytes_per_key, r.engine_bytes_per_key,
      r.rss_bytes_per_key);
  if (!r.memory_kind.empty())
    fmt::print("memory measured as: {}\n", r.memory_kind);
  fmt::print("selfcheck: {}\n", r.selfcheck);
}

std::string ToJson(const BenchReport& r) {
  nlohmann::json j;
  const PhaseResult* events = Find(r, "ingest");
  if (events == nullptr) events = Find(r, "mixed");
  const PhaseResult* decisions = Find(r, "query");
  if (decisions == nullptr) decisions = Find(r, "mixed");
  j["mode"] = r.mode;
  j["system"] = r.system;
  j["connections"] = r.connections;
  j["batch"] = r.batch;
  j["keys"] = r.keys;
  j["history"] = r.history;
  j["events_per_sec"] = events ? events->events_per_sec() : 0.0;
  j["event_p50_us"] =
      events ? Us(events->event_latency.ValueAtPercentile(50)) : 0.0;
  j["event_p99_us"] =
      events ? Us(events->event_latency.ValueAtPercentile(99)) : 0.0;
  j["decisions_per_sec"] = decisions ? decisions->decisions_per_sec() : 0.0;
  for (auto [field, p] :
       {std::pair{"decision_p50_us", 50.0}, std::pair{"decision_p99_us", 99.0},
        std::pair{"decision_p999_us", 99.9}}) {
    j[field] =
        decisions ? Us(decisions->decision_latency.ValueAtPercentile(p)) : 0.0;
  }
  j["bytes_per_key"] = r.bytes_per_key;
  j["engine_bytes_per_key"] = r.engine_bytes_per_key;
  j["rss_bytes_per_key"] = r.rss_bytes_per_key;
  j["keys_touched"] = r.keys_touched;
  j["selfcheck"] = r.selfcheck;
  nlohmann::json phases = nlohmann::json::object();
  for (const PhaseResult& p : r.phases) {
    phases[p.name] = PhaseJson(p);
  }
  j["phases"] = phases;
  return j.dump();
}

}  // namespace tally::bench
