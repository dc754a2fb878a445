// CircuitBreaker: one endpoint's breaker, resilience4j semantics over a
// sliding time window, with an injected clock so it is tested
// deterministically.
//
// CLOSED: every call is admitted. Each outcome is recorded in the window
//   (BreakerPolicy::window, kept as kBuckets buckets so old outcomes age out
//   bucket by bucket). Once the window holds >= minimum_calls calls and either
//   failures / calls >= failure_rate or slow / calls >= slow_call_rate, the
//   breaker OPENs. A failure is a timeout, an unavailable server or a
//   connection error (the caller decides; see Record); a slow call is one
//   whose latency exceeds slow_call, whatever its outcome.
// OPEN: no call is admitted until open_wait has passed; the first Allow()
//   after that moves to HALF_OPEN.
// HALF_OPEN: at most half_open_calls trial calls are admitted. Any failed or
//   slow trial re-OPENs the breaker; once half_open_calls trials have all
//   succeeded it CLOSEs with an empty window.
// FORCED_OPEN (ForceOpen(true)): nothing is admitted until ForceOpen(false),
//   which returns to CLOSED with an empty window.
// With policy.enabled == false every call is admitted and the state stays
// CLOSED (a forced open still applies: it is the operator's kill switch).
//
// Every admitted call must be recorded exactly once (Record), or half-open
// trials leak; the client records a call that ends by its deadline as a
// failure.
//
// Thread safety: thread-safe (one mutex); the client calls it from its I/O
// thread and circuit_state() from any thread.

#ifndef TALLY_CLIENT_CIRCUIT_BREAKER_H_
#define TALLY_CLIENT_CIRCUIT_BREAKER_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

#include "client/tally/client.h"

namespace tally::client_internal {

class CircuitBreaker {
 public:
  using Now = std::function<ClientClock::time_point()>;
  static constexpr int kBuckets = 10;

  // `now` defaults to ClientClock::now.
  explicit CircuitBreaker(BreakerPolicy policy, Now now = nullptr);

  // Whether a call may go ahead now. May move OPEN -> HALF_OPEN. An admitted
  // call must be followed by exactly one Record().
  bool Allow();
  // The outcome of an admitted call: `failure` as defined above, `latency`
  // from send to outcome.
  void Record(bool failure, std::chrono::microseconds latency);

  CircuitState state() const;
  void ForceOpen(bool forced);

  // Counts in the current window (for tests and metrics).
  struct Counts {
    int64_t calls = 0;
    int64_t failures = 0;
    int64_t slow = 0;
  };
  Counts WindowCounts() const;

 private:
  static constexpr int64_t kNoEpoch = INT64_MIN;
  struct Bucket {
    // Which window slice the counts belong to; kNoEpoch when unused.
    int64_t epoch = kNoEpoch;
    Counts counts;
  };

  int64_t EpochLocked(ClientClock::time_point t) const;
  Counts SumLocked(int64_t epoch) const;
  void ResetWindowLocked();
  void OpenLocked(ClientClock::time_point now);

  const BreakerPolicy policy_;
  const Now now_;
  const std::chrono::microseconds bucket_width_;

  mutable std::mutex mu_;
  CircuitState state_ = CircuitState::kClosed;
  bool forced_ = false;
  std::array<Bucket, kBuckets> buckets_{};
  ClientClock::time_point opened_at_{};
  int half_open_admitted_ = 0;
  int half_open_succeeded_ = 0;
};

}  // namespace tally::client_internal

#endif  // TALLY_CLIENT_CIRCUIT_BREAKER_H_
