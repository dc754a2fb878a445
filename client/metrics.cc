#include "client/tally/metrics.h"

#include <algorithm>

#include "client/tally/client.h"
#include "protocol/prometheus_text.h"

namespace tally {

namespace {

// Outcome index: 0 ok, 1 error (not transient), else 1 + the Degraded.
size_t OutcomeIndex(const CallRecord& call) {
  if (call.code == Code::kOk) return 0;
  if (call.degraded == Degraded::kNo) return 1;
  return 1 + static_cast<size_t>(call.degraded);
}

std::string_view OutcomeName(size_t index) {
  if (index == 0) return "ok";
  if (index == 1) return "error";
  return DegradedName(static_cast<Degraded>(index - 1));
}

constexpr std::array<CircuitState, 4> kStates = {
    CircuitState::kClosed, CircuitState::kOpen, CircuitState::kHalfOpen,
    CircuitState::kForcedOpen};

}  // namespace

void PrometheusClientMetrics::CallStarted(proto::Op) {
  inflight_.fetch_add(1, std::memory_order_relaxed);
}

void PrometheusClientMetrics::CallFinished(const CallRecord& call) {
  size_t op = static_cast<size_t>(call.op);
  if (op >= kOps) op = 0;
  const size_t outcome = std::min(OutcomeIndex(call), kOutcomes - 1);
  requests_[op][outcome].fetch_add(1, std::memory_order_relaxed);
  const auto ns =
      static_cast<uint64_t>(std::max<int64_t>(0, call.latency.count()));
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(kBoundsNs.begin(), kBoundsNs.end(), ns) -
      kBoundsNs.begin());
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  duration_sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  if (call.attempts > 1) {
    retries_.fetch_add(static_cast<uint64_t>(call.attempts - 1),
                       std::memory_order_relaxed);
  }
  if (call.fallback) {
    const size_t reason = static_cast<size_t>(call.degraded);
    if (reason < kReasons) {
      fallbacks_[reason].fetch_add(1, std::memory_order_relaxed);
    }
  }
  inflight_.fetch_sub(1, std::memory_order_relaxed);
}

void PrometheusClientMetrics::CircuitStateChanged(std::string_view endpoint,
                                                  CircuitState state) {
  std::lock_guard<std::mutex> lock(circuits_mu_);
  auto it = circuits_.find(endpoint);
  if (it == circuits_.end()) {
    circuits_.emplace(std::string(endpoint), state);
  } else {
    it->second = state;
  }
}

std::string PrometheusClientMetrics::Render() const {
  PromWriter w;
  auto load = [](const Counter& c) {
    return static_cast<double>(c.load(std::memory_order_relaxed));
  };
  w.Family("tally_client_requests_total",
           "Calls made through the tally client, by op and outcome.",
           "counter");
  for (size_t op = 0; op < kOps; ++op) {
    for (size_t outcome = 0; outcome < kOutcomes; ++outcome) {
      const double n = load(requests_[op][outcome]);
      if (n == 0) continue;
      w.Sample("tally_client_requests_total",
               {{"op", proto::OpName(static_cast<proto::Op>(op))},
                {"outcome", OutcomeName(outcome)}},
               n);
    }
  }
  w.Family("tally_client_request_duration_seconds",
           "Time from a call to its result, retries and fallback included.",
           "histogram");
  std::array<double, kBoundsNs.size()> bounds{};
  std::array<uint64_t, kBoundsNs.size()> cumulative{};
  uint64_t total = 0;
  for (size_t i = 0; i < kBoundsNs.size(); ++i) {
    bounds[i] = static_cast<double>(kBoundsNs[i]) / 1e9;
    total += buckets_[i].load(std::memory_order_relaxed);
    cumulative[i] = total;
  }
  total += buckets_.back().load(std::memory_order_relaxed);
  w.Histogram("tally_client_request_duration_seconds", {}, bounds, cumulative,
              load(duration_sum_ns_) / 1e9, total);
  w.Family("tally_client_retries_total",
           "Attempts beyond each call's first (reads and id-carrying adds).",
           "counter");
  w.Sample("tally_client_retries_total", load(retries_));
  w.Family("tally_client_fallbacks_total",
           "Calls answered with a fallback value, by why.", "counter");
  for (size_t r = 1; r < kReasons; ++r) {
    w.Sample("tally_client_fallbacks_total",
             {{"reason", DegradedName(static_cast<Degraded>(r))}},
             load(fallbacks_[r]));
  }
  w.Family("tally_client_circuit_state",
           "1 for each endpoint's current breaker state, 0 for the others.",
           "gauge");
  {
    std::lock_guard<std::mutex> lock(circuits_mu_);
    for (const auto& [endpoint, state] : circuits_) {
      for (CircuitState s : kStates) {
        w.Sample("tally_client_circuit_state",
                 {{"endpoint", endpoint}, {"state", CircuitStateName(s)}},
                 s == state ? 1 : 0);
      }
    }
  }
  w.Family("tally_client_inflight", "Calls made and not yet finished.",
           "gauge");
  w.Sample("tally_client_inflight",
           static_cast<double>(inflight_.load(std::memory_order_relaxed)));
  return w.Take();
}

}  // namespace tally
