#include "tools/bench/system_runner.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <unordered_set>

#include "tools/bench/timed_phase.h"
#include "tools/bench/zipf.h"

namespace tally::bench {

namespace {

using SteadyClock = std::chrono::steady_clock;

uint64_t Nanos(SteadyClock::time_point a, SteadyClock::time_point b) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
}

}  // namespace

SystemRunner::SystemRunner(const RunOptions& options, System* system)
    : options_(options), system_(system), w1_(options.w1), truth_(w1_) {
  admin_status_ = system_->Prepare();
  if (!admin_status_.ok()) return;
  Result<std::unique_ptr<SystemConnection>> c = system_->Connect();
  if (c.ok()) {
    admin_ = std::move(*c);
  } else {
    admin_status_ = c.status();
  }
}

SystemRunner::~SystemRunner() = default;

PhaseResult SystemRunner::Load(BenchReport* report) {
  PhaseResult result;
  result.name = "load";
  result.connections = 1;
  if (!admin_) {
    result.errors = options_.w1.history;
    return result;
  }
  const SystemStats before = system_->Stats();
  std::mt19937_64 rng(options_.seed);
  std::vector<W1Event> sampled, events;
  std::vector<bool> applied;
  std::unordered_set<uint64_t> touched;
  const auto start = SteadyClock::now();
  constexpr uint64_t kLoadBatch = 1000;
  result.batch = kLoadBatch;
  for (uint64_t i = 0; i < options_.w1.history; i += kLoadBatch) {
    events.clear();
    for (uint64_t j = i; j < std::min(i + kLoadBatch, options_.w1.history);
         ++j) {
      events.push_back(w1_.MakeEvent(w1_.DrawId(rng), w1_.HistoryTime(j), rng));
    }
    if (!admin_->Add(&events, &applied).ok()) {
      result.errors += events.size();
      continue;
    }
    for (size_t k = 0; k < events.size(); ++k) {
      if (!applied[k]) {
        ++result.errors;
        continue;
      }
      ++result.events;
      touched.insert(events[k].id);
      if (truth_.Tracks(events[k].id)) sampled.push_back(events[k]);
    }
  }
  result.seconds =
      std::chrono::duration<double>(SteadyClock::now() - start).count();
  truth_.Merge(sampled);
  if (Status s = system_->AfterLoad(); !s.ok()) {
    std::fprintf(stderr, "after load: %s\n", s.ToString().c_str());
  }
  const SystemStats after = system_->Stats();
  report->keys_touched = touched.size();
  const double keys = std::max<double>(1, static_cast<double>(touched.size()));
  report->bytes_per_key = (after.memory_bytes - before.memory_bytes) / keys;
  report->rss_bytes_per_key = report->bytes_per_key;
  report->engine_bytes_per_key = after.accounted_bytes / keys;
  report->memory_kind = after.memory_kind;
  return result;
}

std::vector<std::pair<std::string, W1Window>> ProbeWindows(const W1Config& w1) {
  constexpr int64_t kS = 1000, kM = 60 * kS, kH = 60 * kM, kD = 24 * kH;
  const int64_t t0 = w1.t0_ms;
  const int64_t minute = t0 / kM * kM, hour = t0 / kH * kH;
  std::vector<std::pair<std::string, W1Window>> windows = {
      {"90s from T0-10m", {t0 - 600 * kS, t0 - 510 * kS}},
      {"1m from T0-30m", {minute - 30 * kM, minute - 29 * kM}},
      {"1h from T0-2h", {hour - 2 * kH, hour - kH}},
      {"19h from T0-20h", {hour - 20 * kH, hour - kH}},
  };
  if (w1.w2)
    windows.push_back({"28d from T0-29d", {hour - 29 * kD, hour - kD}});
  return windows;
}

std::vector<ProbeAnswer> SystemRunner::Probe() {
  std::vector<ProbeAnswer> answers;
  char buf[32];
  for (uint64_t rank : {0, 10, 1000}) {
    if (rank >= options_.w1.keys) continue;
    const std::string key(W1::Key(W1IdForRank(rank, options_.w1.keys), buf));
    for (const auto& [name, w] : ProbeWindows(options_.w1)) {
      ProbeAnswer a;
      a.rank = rank;
      a.window = name;
      if (!admin_) {
        a.error = admin_status_.ToString();
      } else {
        Result<Observed> r = admin_->Query(key, w, false);
        if (r.ok()) {
          a.answer = *r;
        } else {
          a.error = r.status().ToString();
        }
      }
      answers.push_back(a);
    }
  }
  return answers;
}

PhaseResult SystemRunner::Timed(const std::string& phase, int connections,
                                int batch) {
  RunOptions options = options_;
  options.connections = connections;
  options.batch = batch;
  const int event_share = EventShare(phase);
  return RunTimedPhase(
      phase, options,
      [&](int c, const std::atomic<bool>& measuring,
          const std::atomic<bool>& stop, PhaseResult* out) {
        Result<std::unique_ptr<SystemConnection>> conn = system_->Connect();
        if (!conn.ok()) {
          ++out->errors;
          return;
        }
        std::mt19937_64 rng(options_.seed * 1000 + static_cast<uint64_t>(c) +
                            1 + static_cast<uint64_t>(WallSecondMs()));
        std::vector<W1Event> sampled, events;
        std::vector<bool> applied;
        DecisionAnswer answer;
        while (!stop.load(std::memory_order_relaxed)) {
          const bool measure = measuring.load(std::memory_order_relaxed);
          if (static_cast<int>(rng() % 100) < event_share) {
            events.clear();
            for (int b = 0; b < batch; ++b)
              events.push_back(w1_.MakeEvent(w1_.DrawId(rng), 0, rng));
            const auto t0 = SteadyClock::now();
            const Status s = (*conn)->Add(&events, &applied);
            const auto t1 = SteadyClock::now();
            if (!s.ok()) {
              ++out->errors;
              return;  // connection unusable
            }
            for (size_t k = 0; k < events.size(); ++k) {
              if (!applied[k]) {
                ++out->errors;
                continue;
              }
              if (truth_.Tracks(events[k].id)) sampled.push_back(events[k]);
              if (measure) ++out->events;
            }
            if (measure) out->event_latency.Record(Nanos(t0, t1));
          } else {
            Decision d;
            d.now_ms = WallSecondMs();
            d.u = w1_.DrawId(rng);
            d.u2 = w1_.DrawId(rng);
            d.w30d = options_.w1.w2;
            const auto t0 = SteadyClock::now();
            const Status s = (*conn)->Decide(d, &answer);
            const auto t1 = SteadyClock::now();
            if (!s.ok()) {
              ++out->errors;
              if (s.code() == Code::kUnavailable) return;
              continue;
            }
            if (measure) {
              out->decision_latency.Record(Nanos(t0, t1));
              ++out->decisions;
            }
          }
        }
        truth_.Merge(sampled);
      },
      [this] { return system_->Stats().cpu_seconds; });
}

PhaseResult SystemRunner::HotDistinct() {
  const uint64_t hottest = W1IdForRank(0, options_.w1.keys);
  RunOptions options = options_;
  options.connections = 1;
  options.batch = 1;
  return RunTimedPhase(
      "hot_distinct", options,
      [&](int, const std::atomic<bool>& measuring,
          const std::atomic<bool>& stop, PhaseResult* out) {
        Result<std::unique_ptr<SystemConnection>> conn = system_->Connect();
        if (!conn.ok()) {
          ++out->errors;
          return;
        }
        char buf[32];
        const std::string key(W1::Key(hottest, buf));
        while (!stop.load(std::memory_order_relaxed)) {
          const bool measure = measuring.load(std::memory_order_relaxed);
          const auto t0 = SteadyClock::now();
          Result<Observed> r =
              (*conn)->Query(key, W1::W24h(WallSecondMs()), true);
          const auto t1 = SteadyClock::now();
          if (!r.ok()) {
            ++out->errors;
            if (r.status().code() == Code::kUnavailable) return;
            continue;
          }
          if (measure) {
            out->decision_latency.Record(Nanos(t0, t1));
            ++out->decisions;
          }
        }
      },
      [this] { return system_->Stats().cpu_seconds; });
}

std::string SystemRunner::Check() {
  if (!admin_) return admin_status_.ToString();
  return truth_.Check(WallSecondMs(), [this](std::string_view key, W1Window w) {
    return admin_->Query(key, w, false);
  });
}

BenchReport RunSystem(const RunOptions& options, System* system) {
  BenchReport report;
  report.mode = "network";
  report.system = system->name();
  report.connections = options.connections;
  report.batch = options.batch;
  report.keys = options.w1.keys;
  report.history = options.w1.history;
  report.seconds = options.seconds;
  SystemRunner runner(options, system);
  report.phases.push_back(runner.Load(&report));
  for (const std::string& phase : options.phases) {
    report.phases.push_back(
        runner.Timed(phase, options.connections, options.batch));
  }
  report.selfcheck = runner.Check();
  return report;
}

}  // namespace tally::bench
