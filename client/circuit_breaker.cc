#include "client/circuit_breaker.h"

#include <algorithm>
#include <utility>

namespace tally::client_internal {

namespace {

std::chrono::microseconds BucketWidth(const BreakerPolicy& policy) {
  const auto window =
      std::chrono::duration_cast<std::chrono::microseconds>(policy.window);
  return std::max(std::chrono::microseconds(1),
                  window / CircuitBreaker::kBuckets);
}

}  // namespace

CircuitBreaker::CircuitBreaker(BreakerPolicy policy, Now now)
    : policy_(std::move(policy)),
      now_(now ? std::move(now) : Now([] { return ClientClock::now(); })),
      bucket_width_(BucketWidth(policy_)) {}

int64_t CircuitBreaker::EpochLocked(ClientClock::time_point t) const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             t.time_since_epoch())
             .count() /
         bucket_width_.count();
}

CircuitBreaker::Counts CircuitBreaker::SumLocked(int64_t epoch) const {
  Counts sum;
  for (const Bucket& b : buckets_) {
    if (b.epoch == kNoEpoch || b.epoch <= epoch - kBuckets || b.epoch > epoch) {
      continue;
    }
    sum.calls += b.counts.calls;
    sum.failures += b.counts.failures;
    sum.slow += b.counts.slow;
  }
  return sum;
}

void CircuitBreaker::ResetWindowLocked() { buckets_.fill(Bucket{}); }

void CircuitBreaker::OpenLocked(ClientClock::time_point now) {
  state_ = CircuitState::kOpen;
  opened_at_ = now;
  half_open_admitted_ = 0;
  half_open_succeeded_ = 0;
  ResetWindowLocked();
}

bool CircuitBreaker::Allow() {
  std::lock_guard<std::mutex> lock(mu_);
  if (forced_) return false;
  if (!policy_.enabled) return true;
  switch (state_) {
    case CircuitState::kClosed:
      return true;
    case CircuitState::kOpen:
      if (now_() - opened_at_ < policy_.open_wait) return false;
      state_ = CircuitState::kHalfOpen;
      half_open_admitted_ = 0;
      half_open_succeeded_ = 0;
      [[fallthrough]];
    case CircuitState::kHalfOpen:
      if (half_open_admitted_ >= std::max(1, policy_.half_open_calls)) {
        return false;
      }
      ++half_open_admitted_;
      return true;
    case CircuitState::kForcedOpen:
      return false;
  }
  return false;
}

void CircuitBreaker::Record(bool failure, std::chrono::microseconds latency) {
  std::lock_guard<std::mutex> lock(mu_);
  if (forced_ || !policy_.enabled) return;
  const ClientClock::time_point now = now_();
  const bool slow = latency > policy_.slow_call;
  switch (state_) {
    case CircuitState::kClosed: {
      const int64_t epoch = EpochLocked(now);
      Bucket& b = buckets_[static_cast<size_t>(((epoch % kBuckets) + kBuckets) %
                                               kBuckets)];
      if (b.epoch != epoch) b = Bucket{.epoch = epoch, .counts = {}};
      ++b.counts.calls;
      if (failure) ++b.counts.failures;
      if (slow) ++b.counts.slow;
      const Counts sum = SumLocked(epoch);
      if (sum.calls < std::max(1, policy_.minimum_calls)) return;
      const double calls = static_cast<double>(sum.calls);
      if (static_cast<double>(sum.failures) / calls >= policy_.failure_rate ||
          static_cast<double>(sum.slow) / calls >= policy_.slow_call_rate) {
        OpenLocked(now);
      }
      return;
    }
    case CircuitState::kHalfOpen:
      if (failure || slow) {
        OpenLocked(now);
        return;
      }
      if (++half_open_succeeded_ >= std::max(1, policy_.half_open_calls)) {
        state_ = CircuitState::kClosed;
        ResetWindowLocked();
      }
      return;
    case CircuitState::kOpen:
    case CircuitState::kForcedOpen:
      // A call admitted before the breaker opened: its outcome no longer
      // matters.
      return;
  }
}

CircuitState CircuitBreaker::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (forced_) return CircuitState::kForcedOpen;
  return state_;
}

void CircuitBreaker::ForceOpen(bool forced) {
  std::lock_guard<std::mutex> lock(mu_);
  if (forced_ == forced) return;
  forced_ = forced;
  state_ = CircuitState::kClosed;
  half_open_admitted_ = 0;
  half_open_succeeded_ = 0;
  ResetWindowLocked();
}

CircuitBreaker::Counts CircuitBreaker::WindowCounts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return SumLocked(EpochLocked(now_()));
}

}  // namespace tally::client_internal
