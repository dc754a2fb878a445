// Workload W1 (PERFORMANCE.md), defined by events and decisions rather than
// by any system's commands, so the embedded runner and the network runner
// (and the peers' drivers) produce the same stream.
//
// Thread safety: W1 is immutable after construction; draws take the caller's
// RNG, so threads share one W1 and keep their own RNGs.

#ifndef TALLY_TOOLS_BENCH_W1_H_
#define TALLY_TOOLS_BENCH_W1_H_

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tools/bench/zipf.h"

namespace tally::bench {

struct W1Config {
  uint64_t keys = 1'000'000;     // K
  uint64_t history = 1'000'000;  // H, spread over the 24 h before T0
  int64_t t0_ms = 0;             // T0: a whole second
  // W2 (PERFORMANCE.md): the history spreads over the 30 days before T0 and
  // decisions also ask for w30d, the 720 whole hours ending with now's.
  bool w2 = false;
};

struct W1Event {
  uint64_t id;
  int64_t ts_ms;
  int64_t amount;   // uniform in [1, 100000]
  uint64_t member;  // id * 8 + j, j uniform in [0, 8)
};

// A window as the half-open [from_ms, to_ms) every system must answer.
struct W1Window {
  int64_t from_ms;
  int64_t to_ms;
};

// The wall clock in ms since the epoch, and the same cut to a whole second
// (T0, a decision's `now`, a peer driver's stamp for an untimed event).
int64_t WallMs();
int64_t WallSecondMs();

class W1 {
 public:
  explicit W1(const W1Config& config);

  const W1Config& config() const { return config_; }
  // An entity id drawn from the scattered Zipf(0.99) key distribution.
  uint64_t DrawId(std::mt19937_64& rng) const;
  W1Event MakeEvent(uint64_t id, int64_t ts_ms, std::mt19937_64& rng) const;
  // The i-th history event's time: evenly spaced over [T0 - 24 h, T0)
  // (W2: [T0 - 30 d, T0)).
  int64_t HistoryTime(uint64_t i) const;
  // The i-th timed event's time: T0 + floor(i / 1000) seconds.
  int64_t TimedTime(uint64_t i) const {
    return config_.t0_ms + static_cast<int64_t>(i / 1000) * 1000;
  }

  // W1's windows at `now_ms` (a whole second): w60 = [now-59 s, now],
  // w1h = [now-3599 s, now], w24h = the 1,440 whole minutes ending with now's.
  static W1Window W60(int64_t now_ms) {
    return {now_ms - 59'000, now_ms + 1000};
  }
  static W1Window W1h(int64_t now_ms) {
    return {now_ms - 3'599'000, now_ms + 1000};
  }
  static W1Window W24h(int64_t now_ms) {
    const int64_t minute = now_ms / 60'000;
    return {(minute - 1439) * 60'000, (minute + 1) * 60'000};
  }
  // W2's w30d: the 720 whole hours ending with now's hour.
  static W1Window W30d(int64_t now_ms) {
    const int64_t hour = now_ms / 3'600'000;
    return {(hour - 719) * 3'600'000, (hour + 1) * 3'600'000};
  }
  // The windows a decision asks of its first key, with their names: w60,
  // w1h, w24h, and with W2 w30d.
  std::vector<std::pair<const char*, W1Window>> Windows(int64_t now_ms) const;

  // "user:<id>" written into `buf` (>= 32 bytes); returns the view.
  static std::string_view Key(uint64_t id, char* buf);
  // The member's bytes: decimal of id * 8 + j.
  static std::string_view Member(uint64_t member, char* buf);

 private:
  W1Config config_;
  ZipfianGenerator zipf_;
};

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_W1_H_
