// Clock: where the engine gets "now", behind an interface so that tests and
// simulations control time. Times are Unix milliseconds.
//
// Thread safety: implementations must be safe to call from many threads.

#ifndef TALLY_STORAGE_CLOCK_H_
#define TALLY_STORAGE_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace tally {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in Unix milliseconds. May jump (NTP, operator); callers
  // that need monotonic "now" keep max(last, NowMs()).
  virtual int64_t NowMs() const = 0;
};

// The system's real-time clock (CLOCK_REALTIME).
class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  // A process-wide instance; never destroyed.
  static SystemClock* Default();
};

// A clock that moves only when told to: for tests, simulations and the
// embedded benchmark (whose W1 clock is simulated).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms = 0) : now_ms_(now_ms) {}
  int64_t NowMs() const override {
    return now_ms_.load(std::memory_order_relaxed);
  }
  void Set(int64_t now_ms) { now_ms_.store(now_ms, std::memory_order_relaxed); }
  void Advance(int64_t delta_ms) {
    now_ms_.fetch_add(delta_ms, std::memory_order_relaxed);
  }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace tally

#endif  // TALLY_STORAGE_CLOCK_H_
