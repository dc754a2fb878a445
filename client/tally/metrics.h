// Client metrics: the hook the client library calls as calls start and end
// (ClientOptions::metrics; null, the default, costs one branch per call),
// and PrometheusClientMetrics, a ready-made sink that renders the client
// metrics of docs/client.md ("Metrics") in the Prometheus text format for
// the application to append to its own /metrics:
//
//   tally_client_requests_total{op,outcome}   outcome: ok, error, timeout,
//                                             short_circuited, rejected,
//                                             failure
//   tally_client_request_duration_seconds     histogram, call start to end
//   tally_client_retries_total
//   tally_client_fallbacks_total{reason}      a fallback value was returned
//   tally_client_circuit_state{endpoint,state}  1 for the current state
//   tally_client_inflight
//
//   tally::PrometheusClientMetrics metrics;     // outlives the client
//   options.metrics = &metrics;
//   ... in the application's /metrics handler:  body += metrics.Render();
//
// Thread safety: a sink is called from the client's I/O thread and from
// callers' threads at once; PrometheusClientMetrics is thread-safe and its
// recording takes no lock (relaxed atomics).

#ifndef TALLY_CLIENT_TALLY_METRICS_H_
#define TALLY_CLIENT_TALLY_METRICS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "protocol/messages.h"
#include "protocol/status.h"

namespace tally {

enum class Degraded : uint8_t;
enum class CircuitState : uint8_t;

// One finished call, as the caller saw it.
struct CallRecord {
  proto::Op op = proto::Op::kNone;
  Code code = Code::kOk;
  Degraded degraded{};    // why it is degraded (kNo: a real answer)
  bool fallback = false;  // a fallback value was returned
  int attempts = 0;       // tries made; retries = attempts - 1
  std::chrono::nanoseconds latency{0};  // from the call to its result
};

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  // A call was made (it is in flight until CallFinished).
  virtual void CallStarted(proto::Op op) = 0;
  // Exactly once per CallStarted.
  virtual void CallFinished(const CallRecord& call) = 0;
  // An endpoint's breaker is now in `state` (also called once per endpoint
  // at start, with kClosed). `endpoint` is "host:port".
  virtual void CircuitStateChanged(std::string_view endpoint,
                                   CircuitState state) = 0;
};

class PrometheusClientMetrics : public MetricsSink {
 public:
  // Upper bounds of the duration histogram, in nanoseconds: 50 us .. 10 s.
  static constexpr std::array<uint64_t, 17> kBoundsNs = {
      50'000,        100'000,       250'000,     500'000,       1'000'000,
      2'500'000,     5'000'000,     10'000'000,  25'000'000,    50'000'000,
      100'000'000,   250'000'000,   500'000'000, 1'000'000'000, 2'500'000'000,
      5'000'000'000, 10'000'000'000};

  void CallStarted(proto::Op op) override;
  void CallFinished(const CallRecord& call) override;
  void CircuitStateChanged(std::string_view endpoint,
                           CircuitState state) override;

  // The metrics in the text exposition format 0.0.4 (HELP and TYPE lines
  // included): append it to the application's /metrics body.
  std::string Render() const;

 private:
  static constexpr size_t kOps = 24;
  static constexpr size_t kOutcomes = 6;  // ok, error, then Degraded 1..4
  static constexpr size_t kReasons = 5;   // Degraded values

  using Counter = std::atomic<uint64_t>;
  std::array<std::array<Counter, kOutcomes>, kOps> requests_{};
  std::array<Counter, kBoundsNs.size() + 1> buckets_{};  // last: +Inf
  Counter duration_sum_ns_{0};
  Counter retries_{0};
  std::array<Counter, kReasons> fallbacks_{};
  std::atomic<int64_t> inflight_{0};
  mutable std::mutex circuits_mu_;
  std::map<std::string, CircuitState, std::less<>> circuits_;
};

}  // namespace tally

#endif  // TALLY_CLIENT_TALLY_METRICS_H_
