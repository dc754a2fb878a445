// Client::Impl, the client's machinery behind client/tally/client.h: shared
// by client.cc (the call pipeline) and client_stream.cc (Client::Stream's
// connections). Internal: not installed, not for users.
//
// Thread safety: see client.cc; everything past Submit/Stream runs on the
// client's single I/O thread.

#ifndef TALLY_CLIENT_CLIENT_IMPL_H_
#define TALLY_CLIENT_CLIENT_IMPL_H_

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/backoff.h"
#include "client/circuit_breaker.h"
#include "client/connection.h"
#include "client/fallback.h"
#include "client/tally/client.h"

namespace tally {

namespace client_internal {

using Done = std::function<void(CallResult<proto::Response>)>;
// One call, from submission to completion (client.cc).
struct CallState;

}  // namespace client_internal

namespace ci = client_internal;

class Client::Impl {
 public:
  explicit Impl(ClientOptions options);
  ~Impl();

  // Any thread. `done` runs on the I/O thread.
  void Submit(proto::Request request, const CallOptions& call, ci::Done done);
  // Any thread: Client::Stream.
  void Stream(proto::Request request,
              std::function<bool(Result<proto::Response>)> on_frame);
  ClientClock::time_point DeadlineOf(const CallOptions& call) const {
    return call.deadline ? *call.deadline
                         : ClientClock::now() + options_.default_timeout;
  }
  bool OnIoThread() const {
    return std::this_thread::get_id() == thread_.get_id();
  }
  CircuitState circuit_state(size_t endpoint) const {
    if (endpoint >= endpoints_.size()) return CircuitState::kClosed;
    return endpoints_[endpoint]->breaker.state();
  }
  void ForceOpen(bool forced) {
    for (auto& ep : endpoints_) ep->breaker.ForceOpen(forced);
  }

 private:
  struct EndpointState {
    explicit EndpointState(const BreakerPolicy& policy) : breaker(policy) {}
    ci::CircuitBreaker breaker;
    std::vector<std::shared_ptr<ci::Connection>> connections;
    size_t next = 0;
  };
  using CallPtr = std::shared_ptr<ci::CallState>;

  void AssignIds(proto::Request* request);
  double Random01() { return uniform_(rng_); }

  // I/O thread only, from here on.
  void Start(const CallPtr& call);
  void Attempt(const CallPtr& call);
  void OnReply(const CallPtr& call, int attempt, Result<proto::Response> reply);
  void AttemptFailed(const CallPtr& call, const Status& status);
  void OnDeadline(const CallPtr& call);
  void Finish(const CallPtr& call, const Status& status, proto::Response value,
              Degraded degraded);
  void Shutdown();
  // Tells options_.metrics of breaker states that changed since last told.
  void ReportCircuits();

  const ClientOptions options_;
  const uint64_t session_id_;
  std::atomic<uint64_t> next_item_seq_{1};
  std::atomic<int> in_flight_{0};

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type>
      work_;
  std::vector<std::unique_ptr<EndpointState>> endpoints_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
  ci::Backoff retry_backoff_;
  ci::LastKnownCache last_known_;
  std::unordered_map<ci::CallState*, CallPtr> active_;
  // EndpointName() of each endpoint, and the breaker state last reported to
  // options_.metrics (I/O thread only).
  std::vector<std::string> endpoint_names_;
  std::vector<CircuitState> reported_states_;
  // Client::Stream's connections, each carrying one stream.
  std::vector<std::shared_ptr<ci::Connection>> streams_;
  // Options of the first endpoint's connections (streams open more).
  ci::ConnectionOptions stream_options_;
  bool shutting_down_ = false;
  Status tls_error_;    // a TLS file that would not load fails every call
  std::thread thread_;  // last: starts once everything else exists
};

}  // namespace tally

#endif  // TALLY_CLIENT_CLIENT_IMPL_H_
