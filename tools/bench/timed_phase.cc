#include "tools/bench/timed_phase.h"

#include <chrono>
#include <thread>
#include <vector>

namespace tally::bench {

int EventShare(const std::string& phase) {
  return phase == "ingest" ? 100 : phase == "query" ? 0 : 80;
}

PhaseResult RunTimedPhase(const std::string& name, const RunOptions& options,
                          const PhaseWorker& worker,
                          const std::function<double()>& cpu_seconds) {
  using SteadyClock = std::chrono::steady_clock;
  std::atomic<bool> measuring{false}, stop{false};
  std::vector<PhaseResult> per_thread(options.connections);
  std::vector<std::thread> threads;
  for (int c = 0; c < options.connections; ++c) {
    threads.emplace_back(
        [&, c] { worker(c, measuring, stop, &per_thread[c]); });
  }
  std::this_thread::sleep_for(
      std::chrono::duration<double>(options.warmup_seconds));
  const double cpu0 = cpu_seconds();
  const auto start = SteadyClock::now();
  measuring = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(options.seconds));
  measuring = false;
  const double elapsed =
      std::chrono::duration<double>(SteadyClock::now() - start).count();
  const double cpu = cpu_seconds() - cpu0;
  stop = true;
  for (auto& t : threads) t.join();
  PhaseResult result;
  result.name = name;
  result.connections = options.connections;
  result.batch = options.batch;
  result.seconds = elapsed;
  result.cpu_percent = 100 * cpu / elapsed;
  for (const PhaseResult& p : per_thread) {
    result.events += p.events;
    result.decisions += p.decisions;
    result.errors += p.errors;
    result.event_latency.Merge(p.event_latency);
    result.decision_latency.Merge(p.decision_latency);
  }
  return result;
}

}  // namespace tally::bench
