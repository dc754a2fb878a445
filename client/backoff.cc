#include "client/backoff.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace tally::client_internal {

std::chrono::microseconds BackoffDelay(const RetryPolicy& policy, int retry,
                                       double random01) {
  const double initial =
      std::max<double>(0, static_cast<double>(policy.initial.count()));
  const double max =
      std::max<double>(initial, static_cast<double>(policy.max.count()));
  const double multiplier =
      std::isfinite(policy.multiplier) ? std::max(1.0, policy.multiplier) : 1.0;
  const double jitter =
      std::isfinite(policy.jitter) ? std::clamp(policy.jitter, 0.0, 1.0) : 0.0;
  if (!std::isfinite(random01)) random01 = 0.5;
  random01 = std::clamp(random01, 0.0, 1.0);

  // pow() overflows to inf for large n; min() then picks max.
  double base = initial * std::pow(multiplier, std::max(0, retry));
  if (!std::isfinite(base) || base > max) base = max;
  const double spread = 1.0 + jitter * (2.0 * random01 - 1.0);
  const double delay = std::max(0.0, base * spread);
  return std::chrono::microseconds(static_cast<int64_t>(std::llround(delay)));
}

Backoff::Backoff(RetryPolicy policy, std::function<double()> random01)
    : policy_(std::move(policy)), random01_(std::move(random01)) {}

std::chrono::microseconds Backoff::Delay(int retry) {
  return BackoffDelay(policy_, retry, random01_ ? random01_() : 0.5);
}

}  // namespace tally::client_internal
