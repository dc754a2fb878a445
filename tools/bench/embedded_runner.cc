#include "tools/bench/embedded_runner.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "storage/engine.h"
#include "tools/bench/timed_phase.h"
#include "tools/bench/truth.h"

#ifdef TALLY_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace tally::bench {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Allocator bytes in use (jemalloc's stats.allocated), or 0 without jemalloc.
int64_t AllocatedBytes() {
#ifdef TALLY_HAVE_JEMALLOC
  uint64_t epoch = 1;
  size_t len = sizeof(epoch);
  mallctl("epoch", &epoch, &len, &epoch, len);
  size_t allocated = 0;
  len = sizeof(allocated);
  if (mallctl("stats.allocated", &allocated, &len, nullptr, 0) == 0) {
    return static_cast<int64_t>(allocated);
  }
#endif
  return 0;
}

int64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

double CpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// The engine's view of a W1 event; the key and member bytes live in the
// caller's buffers.
AddEvent ToAddEvent(const W1Event& e, std::array<char, 32>& key,
                    std::array<char, 32>& member) {
  AddEvent add;
  add.key = W1::Key(e.id, key.data());
  add.time_ms = e.ts_ms;
  add.amount = e.amount;
  add.has_member = true;
  add.member = W1::Member(e.member, member.data());
  return add;
}

Status AddEventTo(Engine& engine, const W1Event& e) {
  std::array<char, 32> key, member;
  return engine.Add(ToAddEvent(e, key, member)).status();
}

class Runner {
 public:
  explicit Runner(const RunOptions& options)
      : options_(options),
        w1_(options.w1),
        clock_(options.w1.t0_ms),
        truth_(w1_) {
    EngineOptions engine_options;
    engine_options.clock = &clock_;
    engine_options.hash_seed = options.seed * 0x9E3779B97F4A7C15ull;
    engine_ = std::make_unique<Engine>(std::move(engine_options));
  }

  BenchReport Run() {
    BenchReport report;
    report.mode = "embedded";
    report.connections = options_.connections;
    report.batch = options_.batch;
    report.keys = options_.w1.keys;
    report.history = options_.w1.history;
    report.seconds = options_.seconds;
    report.phases.push_back(Load(&report));
    for (const std::string& phase : options_.phases)
      report.phases.push_back(Timed(phase));
    const int64_t now = latest_ts_.load() / 1000 * 1000;
    report.selfcheck = truth_.Check(now, [this](std::string_view key,
                                                W1Window w) {
      Result<Answer> a =
          engine_->Query(key, Window::Between(w.from_ms, w.to_ms));
      if (!a.ok()) return Result<Observed>(a.status());
      return Result<Observed>(Observed{a->count, a->sum, a->distinct, a->exact,
                                       a->covered_from_ms, a->covered_to_ms});
    });
    return report;
  }

 private:
  PhaseResult Load(BenchReport* report) {
    PhaseResult result;
    result.name = "load";
    const int64_t allocated_before = AllocatedBytes();
    const int64_t rss_before = RssBytes();
    std::mt19937_64 rng(options_.seed);
    std::vector<W1Event> sampled;
    const double cpu0 = CpuSeconds();
    const auto start = SteadyClock::now();
    for (uint64_t i = 0; i < options_.w1.history; ++i) {
      const int64_t ts = w1_.HistoryTime(i);
      clock_.Set(ts);
      const W1Event e = w1_.MakeEvent(w1_.DrawId(rng), ts, rng);
      if (AddEventTo(*engine_, e).ok()) {
        ++result.events;
        if (truth_.Tracks(e.id)) sampled.push_back(e);
      } else {
        ++result.errors;
      }
    }
    result.seconds =
        std::chrono::duration<double>(SteadyClock::now() - start).count();
    result.cpu_percent =
        100 * (CpuSeconds() - cpu0) / std::max(result.seconds, 1e-9);
    latest_ts_ = w1_.HistoryTime(options_.w1.history - 1);
    truth_.Merge(sampled);
    // Memory after load: what the keys really hold once expired buckets are
    // reclaimed.
    engine_->Sweep();
    const EngineStats stats = engine_->Stats();
    report->keys_touched = stats.keys;
    const double keys = std::max<double>(1, stats.keys);
    report->bytes_per_key = (AllocatedBytes() - allocated_before) / keys;
    report->engine_bytes_per_key = stats.bytes / keys;
    report->rss_bytes_per_key = (RssBytes() - rss_before) / keys;
    return result;
  }

  PhaseResult Timed(const std::string& phase) {
    const int event_share = EventShare(phase);
    return RunTimedPhase(
        phase, options_,
        [&](int c, const std::atomic<bool>& measuring,
            const std::atomic<bool>& stop,
            PhaseResult* out) { Worker(c, event_share, measuring, stop, out); },
        CpuSeconds);
  }

  void Worker(int c, int event_share, const std::atomic<bool>& measuring,
              const std::atomic<bool>& stop, PhaseResult* out) {
    std::mt19937_64 rng(options_.seed * 1000 + static_cast<uint64_t>(c) + 1 +
                        next_event_.load() * 7);
    std::vector<W1Event> sampled;
    uint64_t ops = 0;
    char key[32];
    std::vector<W1Event> batch(options_.batch);
    std::vector<AddEvent> adds(options_.batch);
    std::vector<Engine::AddOutcome> outcomes(options_.batch);
    std::vector<std::array<char, 32>> keys(options_.batch),
        members(options_.batch);
    while (!stop.load(std::memory_order_relaxed)) {
      const bool measure = measuring.load(std::memory_order_relaxed);
      const bool is_event = static_cast<int>(rng() % 100) < event_share;
      if (is_event) {
        // Generate the op's events first: the op's latency is the engine's.
        const uint64_t first =
            next_event_.fetch_add(options_.batch, std::memory_order_relaxed);
        const int64_t last_ts = w1_.TimedTime(first + options_.batch - 1);
        if (last_ts > clock_.NowMs()) clock_.Set(last_ts);
        for (int b = 0; b < options_.batch; ++b) {
          batch[b] =
              w1_.MakeEvent(w1_.DrawId(rng), w1_.TimedTime(first + b), rng);
          adds[b] = ToAddEvent(batch[b], keys[b], members[b]);
        }
        const bool timed =
            measure && (ops++ % options_.event_latency_sample == 0);
        const auto t0 = timed ? SteadyClock::now() : SteadyClock::time_point();
        if (options_.batch == 1) {
          outcomes[0].status = engine_->Add(adds[0]).status();
        } else {
          engine_->AddBatch(adds, outcomes);
        }
        if (timed) {
          out->event_latency.Record(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(
                  SteadyClock::now() - t0)
                  .count()));
        }
        for (int b = 0; b < options_.batch; ++b) {
          if (!outcomes[b].status.ok()) {
            ++out->errors;
            continue;
          }
          if (truth_.Tracks(batch[b].id)) sampled.push_back(batch[b]);
          if (measure) ++out->events;
        }
        uint64_t ts =
            static_cast<uint64_t>(w1_.TimedTime(first + options_.batch - 1));
        uint64_t seen = latest_ts_.load(std::memory_order_relaxed);
        while (ts > seen && !latest_ts_.compare_exchange_weak(seen, ts)) {
        }
      } else {
        const int64_t now =
            static_cast<int64_t>(latest_ts_.load(std::memory_order_relaxed)) /
            1000 * 1000;
        const uint64_t u = w1_.DrawId(rng), u2 = w1_.DrawId(rng);
        const auto t0 = SteadyClock::now();
        bool ok = true;
        constexpr uint32_t kAggs = kAggCount | kAggSum | kAggDistinct;
        for (const W1Window& w : {W1::W60(now), W1::W1h(now), W1::W24h(now)}) {
          ok &= engine_
                    ->Query(W1::Key(u, key),
                            Window::Between(w.from_ms, w.to_ms), kAggs)
                    .ok();
        }
        const W1Window w60 = W1::W60(now);
        ok &= engine_
                  ->Query(W1::Key(u2, key),
                          Window::Between(w60.from_ms, w60.to_ms), kAggCount)
                  .ok();
        if (measure) {
          out->decision_latency.Record(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(
                  SteadyClock::now() - t0)
                  .count()));
          ++out->decisions;
        }
        if (!ok) ++out->errors;
      }
    }
    truth_.Merge(sampled);
  }

  const RunOptions options_;
  const W1 w1_;
  ManualClock clock_;
  Truth truth_;
  std::unique_ptr<Engine> engine_;
  std::atomic<uint64_t> next_event_{0};
  std::atomic<uint64_t> latest_ts_{0};
};

}  // namespace

BenchReport RunEmbedded(const RunOptions& options) {
  return Runner(options).Run();
}

}  // namespace tally::bench
