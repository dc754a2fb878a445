// Micro-benchmarks of tally::Engine on the W1 workload (PERFORMANCE.md):
// 1,000,000 keys "user:<id>", ids drawn Zipf(0.99) over ranks scattered by
// W1IdForRank; a history of 1,000,000 events evenly spaced over the 24 hours
// before T0; decisions of count+sum+distinct over 60 s, 1 h and 24 h of one
// key plus a 60 s count of another.
//
// Time is simulated with a ManualClock. The query benchmarks share one
// lazily-built engine holding the W1 history (loaded once per process, at its
// first use, outside any timed region). BM_AddW1 writes, so it gets an engine
// of its own, loaded with the same history, so that it measures steady-state
// adds and never changes what the query benchmarks see. Everything is seeded:
// two runs do identical work.

#include <benchmark/benchmark.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string_view>
#include <vector>

#include "storage/clock.h"
#include "storage/engine.h"
#include "tools/bench/zipf.h"

namespace tally {
namespace {

constexpr uint64_t kKeys = 1'000'000;
constexpr int64_t kHistoryEvents = 1'000'000;
constexpr int64_t kT0 = 1'700'000'000'000;  // a whole second
constexpr int64_t kSecondMs = 1000;
constexpr int64_t kMinuteMs = 60 * kSecondMs;
constexpr int64_t kHourMs = 60 * kMinuteMs;
constexpr int64_t kDayMs = 24 * kHourMs;
constexpr uint64_t kMembersPerKey = 8;
constexpr int64_t kMaxAmount = 100'000;
constexpr uint64_t kHashSeed = 0x7a11'7a11'7a11'7a11;
constexpr uint32_t kDecisionAggs = kAggCount | kAggSum | kAggDistinct;
// Pre-generated live events / query keys, cycled through by the timed loops.
constexpr size_t kLiveEvents = size_t{1} << 20;
constexpr size_t kQueryKeys = size_t{1} << 20;

// Seeds of the independent random streams.
constexpr uint64_t kHistorySeed = 1;
constexpr uint64_t kLiveSeed = 2;
constexpr uint64_t kQuerySeed = 3;
constexpr uint64_t kSingleKeySeed = 4;

// A short string held inline, so that pre-generated keys and members cost no
// allocation and no pointer chase.
struct ShortString {
  std::array<char, 23> bytes{};
  uint8_t size = 0;
  std::string_view view() const { return {bytes.data(), size}; }
};

ShortString FormatNumber(std::string_view prefix, uint64_t n) {
  ShortString s;
  char* p = s.bytes.data();
  for (char c : prefix) *p++ = c;
  p = std::to_chars(p, s.bytes.data() + s.bytes.size(), n).ptr;
  s.size = static_cast<uint8_t>(p - s.bytes.data());
  return s;
}

ShortString KeyFor(uint64_t id) { return FormatNumber("user:", id); }
ShortString MemberFor(uint64_t id, uint64_t j) {
  return FormatNumber("", id * kMembersPerKey + j);
}

[[noreturn]] void Die(const char* what, const Status& status) {
  std::fprintf(stderr, "engine_bench: %s: %s\n", what,
               status.ToString().c_str());
  std::abort();
}

const bench::ZipfianGenerator& W1Zipf() {
  static const auto* zipf = new bench::ZipfianGenerator(kKeys);
  return *zipf;
}

// Draws W1 ids, amounts and members from a seeded stream.
class W1Source {
 public:
  explicit W1Source(uint64_t seed) : rng_(seed) {}

  uint64_t NextId() {
    return bench::W1IdForRank(W1Zipf().Sample(u_(rng_)), kKeys);
  }

  struct Event {
    ShortString key;
    ShortString member;
    int64_t amount = 0;
  };
  Event NextEvent() {
    const uint64_t id = NextId();
    Event e;
    e.key = KeyFor(id);
    e.amount = amount_(rng_);
    e.member = MemberFor(id, member_(rng_));
    return e;
  }

 private:
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> u_{0.0, 1.0};
  std::uniform_int_distribution<int64_t> amount_{1, kMaxAmount};
  std::uniform_int_distribution<uint64_t> member_{0, kMembersPerKey - 1};
};

// An engine on a ManualClock, loaded with the W1 history; the clock is left at
// T0.
struct W1Engine {
  W1Engine() : clock(kT0 - kDayMs), engine(MakeOptions(&clock)) {
    W1Source source(kHistorySeed);
    for (int64_t i = 0; i < kHistoryEvents; ++i) {
      const int64_t ts = kT0 - kDayMs + i * kDayMs / kHistoryEvents;
      clock.Set(ts);
      const W1Source::Event e = source.NextEvent();
      Result<AddResult> r = engine.Add({.key = e.key.view(),
                                        .time_ms = ts,
                                        .count = 1,
                                        .amount = e.amount,
                                        .has_member = true,
                                        .member = e.member.view()});
      if (!r.ok()) Die("loading the W1 history", r.status());
    }
    clock.Set(kT0);
  }

  static EngineOptions MakeOptions(const Clock* clock) {
    EngineOptions options;
    options.clock = clock;
    options.hash_seed = kHashSeed;
    return options;
  }

  ManualClock clock;
  Engine engine;
};

// The query benchmarks' engine: never written after loading, never destroyed.
W1Engine& QueryEngine() {
  static auto* fixture = new W1Engine();
  return *fixture;
}

// Keys drawn from the W1 distribution, pre-formatted.
const std::vector<ShortString>& QueryKeys() {
  static const auto* keys = [] {
    auto* v = new std::vector<ShortString>();
    v->reserve(kQueryKeys);
    W1Source source(kQuerySeed);
    for (size_t i = 0; i < kQueryKeys; ++i) {
      v->push_back(KeyFor(source.NextId()));
    }
    return v;
  }();
  return *keys;
}

// W1's windows at `now`: 60 s and 1 h are `last` windows; 24 h is the 1440
// whole minutes ending with now's minute.
Window W1Window(int64_t seconds, int64_t now) {
  if (seconds == 86400) {
    const int64_t m = now / kMinuteMs;
    return Window::Between((m - 1439) * kMinuteMs, (m + 1) * kMinuteMs);
  }
  return Window::Last(seconds * kSecondMs, now);
}

void BM_AddSingleKey(benchmark::State& state) {
  ManualClock clock(kT0);
  Engine engine(W1Engine::MakeOptions(&clock));
  const uint64_t id = bench::W1IdForRank(0, kKeys);
  const ShortString key = KeyFor(id);
  std::array<ShortString, kMembersPerKey> members;
  for (uint64_t j = 0; j < kMembersPerKey; ++j) members[j] = MemberFor(id, j);
  // Member choices and amounts, drawn ahead of the timed loop.
  constexpr size_t kDraws = size_t{1} << 16;
  std::vector<uint8_t> js(kDraws);
  std::vector<int64_t> amounts(kDraws);
  std::mt19937_64 rng(kSingleKeySeed);
  std::uniform_int_distribution<uint64_t> member_dist(0, kMembersPerKey - 1);
  std::uniform_int_distribution<int64_t> amount_dist(1, kMaxAmount);
  for (size_t i = 0; i < kDraws; ++i) {
    js[i] = static_cast<uint8_t>(member_dist(rng));
    amounts[i] = amount_dist(rng);
  }

  int64_t i = 0;
  for (auto _ : state) {
    const size_t d = static_cast<size_t>(i) & (kDraws - 1);
    Result<AddResult> r = engine.Add({.key = key.view(),
                                      .time_ms = kNow,
                                      .count = 1,
                                      .amount = amounts[d],
                                      .has_member = true,
                                      .member = members[js[d]].view()});
    benchmark::DoNotOptimize(r);
    if (++i % 1000 == 0) clock.Advance(kSecondMs);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AddSingleKey);

void BM_AddW1(benchmark::State& state) {
  // Own engine (loaded with the history) and live stream, both persisting
  // across runs so that time only moves forward: live event n has
  // ts = T0 + n ms, i.e. 1000 adds per simulated second.
  static auto* fixture = new W1Engine();
  static const auto* events = [] {
    auto* v = new std::vector<W1Source::Event>();
    v->reserve(kLiveEvents);
    W1Source source(kLiveSeed);
    for (size_t i = 0; i < kLiveEvents; ++i) v->push_back(source.NextEvent());
    return v;
  }();
  static int64_t next = 0;

  for (auto _ : state) {
    const W1Source::Event& e =
        (*events)[static_cast<size_t>(next) % kLiveEvents];
    const int64_t ts = kT0 + next;
    fixture->clock.Set(ts);
    Result<AddResult> r = fixture->engine.Add({.key = e.key.view(),
                                               .time_ms = ts,
                                               .count = 1,
                                               .amount = e.amount,
                                               .has_member = true,
                                               .member = e.member.view()});
    benchmark::DoNotOptimize(r);
    ++next;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AddW1);

void BM_QueryHotKey(benchmark::State& state) {
  W1Engine& fixture = QueryEngine();
  const ShortString key = KeyFor(bench::W1IdForRank(0, kKeys));
  const Window window = W1Window(state.range(0), fixture.clock.NowMs());
  int64_t count = 0;
  for (auto _ : state) {
    Result<Answer> r = fixture.engine.Query(key.view(), window, kAggAll);
    benchmark::DoNotOptimize(r);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    count = r->count;
  }
  state.counters["events"] = static_cast<double>(count);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QueryHotKey)->Arg(60)->Arg(3600)->Arg(86400);

void BM_QueryW1(benchmark::State& state) {
  W1Engine& fixture = QueryEngine();
  const std::vector<ShortString>& keys = QueryKeys();
  const Window window = W1Window(state.range(0), fixture.clock.NowMs());
  size_t i = 0;
  for (auto _ : state) {
    Result<Answer> r = fixture.engine.Query(keys[i++ & (kQueryKeys - 1)].view(),
                                            window, kAggAll);
    benchmark::DoNotOptimize(r);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QueryW1)->Arg(60)->Arg(3600)->Arg(86400);

void BM_DecisionW1(benchmark::State& state) {
  W1Engine& fixture = QueryEngine();
  const std::vector<ShortString>& keys = QueryKeys();
  const int64_t now = fixture.clock.NowMs();
  const Window w60 = W1Window(60, now);
  const Window w1h = W1Window(3600, now);
  const Window w24h = W1Window(86400, now);
  size_t i = 0;
  for (auto _ : state) {
    const std::string_view u = keys[i++ & (kQueryKeys - 1)].view();
    const std::string_view u2 = keys[i++ & (kQueryKeys - 1)].view();
    Result<Answer> a60 = fixture.engine.Query(u, w60, kDecisionAggs);
    Result<Answer> a1h = fixture.engine.Query(u, w1h, kDecisionAggs);
    Result<Answer> a24h = fixture.engine.Query(u, w24h, kDecisionAggs);
    Result<Answer> b60 = fixture.engine.Query(u2, w60, kAggCount);
    benchmark::DoNotOptimize(a60);
    benchmark::DoNotOptimize(a1h);
    benchmark::DoNotOptimize(a24h);
    benchmark::DoNotOptimize(b60);
    if (!a60.ok() || !a1h.ok() || !a24h.ok() || !b60.ok()) {
      state.SkipWithError("a decision query failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["queries"] = benchmark::Counter(
      static_cast<double>(state.iterations() * 4), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecisionW1);

}  // namespace
}  // namespace tally

BENCHMARK_MAIN();
