// Backoff: the delay before retry n of a call (gRPC connection-backoff
// formula), and before reconnect n of a connection.
//
//   delay_n = min(max, initial * multiplier^n) * (1 + jitter * u),
//   u uniform in [-1, 1)
//
// so successive delays grow geometrically up to `max`, each spread by +-jitter
// to keep clients that failed together from retrying together. The random
// source is injected so tests are deterministic.
//
// Thread safety: BackoffDelay is pure. A Backoff object is not thread-safe
// (it owns its random source); the client uses one per I/O thread.

#ifndef TALLY_CLIENT_BACKOFF_H_
#define TALLY_CLIENT_BACKOFF_H_

#include <chrono>
#include <functional>

#include "client/tally/client.h"

namespace tally::client_internal {

// The delay before retry `retry` (0 = the first retry, after the first
// attempt failed). `random01` is a sample uniform in [0, 1) (values outside
// are clamped). Never negative; at most max * (1 + jitter). A policy with
// non-positive or non-finite fields is read as: initial >= 0, max >= initial,
// multiplier >= 1, jitter in [0, 1].
std::chrono::microseconds BackoffDelay(const RetryPolicy& policy, int retry,
                                       double random01);

class Backoff {
 public:
  // `random01` returns samples uniform in [0, 1); it is called once per
  // Delay().
  Backoff(RetryPolicy policy, std::function<double()> random01);

  // BackoffDelay(policy, retry, random01()).
  std::chrono::microseconds Delay(int retry);
  const RetryPolicy& policy() const { return policy_; }

 private:
  RetryPolicy policy_;
  std::function<double()> random01_;
};

}  // namespace tally::client_internal

#endif  // TALLY_CLIENT_BACKOFF_H_
