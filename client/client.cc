// Client: the call pipeline of client.h. Every call becomes a CallState that
// lives on the client's single I/O thread from submission to completion:
//
//   Submit (caller thread: bulkhead, ids, deadline)
//     -> Start (I/O thread: deadline timer)
//     -> Attempt: breaker of the chosen endpoint, a connection, Send
//     -> OnReply / connection failure / deadline
//     -> retry after a backoff (idempotent requests, transient errors, time
//        left) on the next endpoint, or Finish: fallback, last-known cache,
//        the caller's callback.
//
// Endpoint order: the first endpoint is the primary; retry n goes to
// endpoint n mod size, and an endpoint whose breaker refuses is skipped.

#include <cstring>
#include <future>
#include <string>
#include <utility>
#include <vector>

#include "client/client_impl.h"
#include "client/tally/metrics.h"
#include "protocol/codec.h"

namespace tally {

namespace asio = boost::asio;
using ci::CallState;
using ci::Done;

namespace {

template <typename Items>
bool AllHaveIds(const Items& items) {
  for (const auto& item : items) {
    if (!item.id) return false;
  }
  return true;
}

bool IsIdempotent(const proto::Request& r) {
  switch (r.op()) {
    case proto::Op::kNone:
      return false;
    case proto::Op::kAdd:
      return AllHaveIds(std::get<proto::AddRequest>(r.body).items);
    case proto::Op::kAddAndQuery:
      return AllHaveIds(std::get<proto::AddAndQueryRequest>(r.body).adds);
    default:
      return true;  // reads, hello, ping, and delete (deleting twice is fine)
  }
}

// Why a call that ended with `code` is degraded (kNo: not transient).
Degraded DegradedFor(Code code) {
  switch (code) {
    case Code::kDeadlineExceeded:
      return Degraded::kTimeout;
    case Code::kUnavailable:
    case Code::kBusy:
      return Degraded::kFailure;
    default:
      return Degraded::kNo;
  }
}

}  // namespace

namespace client_internal {

// One call, from submission to completion. Owned by shared_ptrs held by the
// I/O thread's handlers; touched only on the I/O thread after Submit.
struct CallState {
  CallState(asio::io_context& io, proto::Request r)
      : request(std::move(r)), deadline_timer(io), retry_timer(io) {}

  proto::Request request;
  ClientClock::time_point deadline;
  Fallback fallback = Fallback::kError;
  bool idempotent = false;
  bool rejected = false;  // by the bulkhead: finish at once
  Done done;
  asio::steady_timer deadline_timer;
  asio::steady_timer retry_timer;
  int attempts = 0;  // sent or failed at the connection
  bool finished = false;
  Status last_error;
  // The attempt in flight, if any.
  bool in_flight = false;
  ci::Connection* connection = nullptr;
  uint64_t request_id = 0;
  size_t endpoint = 0;
  ClientClock::time_point sent_at;
  ClientClock::time_point started;  // for ClientOptions::metrics
};

}  // namespace client_internal

namespace {

uint64_t RandomSessionId() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

ClientOptions Sanitize(ClientOptions o) {
  if (o.endpoints.empty()) o.endpoints.push_back(Endpoint{});
  if (o.connections_per_endpoint < 1) o.connections_per_endpoint = 1;
  if (o.max_in_flight < 1) o.max_in_flight = 1;
  if (o.retry.max_attempts < 1) o.retry.max_attempts = 1;
  return o;
}

}  // namespace

Client::Impl::Impl(ClientOptions options)
    : options_(Sanitize(std::move(options))),
      session_id_(RandomSessionId()),
      work_(asio::make_work_guard(io_)),
      rng_(std::random_device{}()),
      retry_backoff_(options_.retry, [this] { return Random01(); }) {
  std::shared_ptr<asio::ssl::context> tls_context;
  if (options_.tls.enabled) {
    Result<std::shared_ptr<asio::ssl::context>> made =
        ci::MakeClientTlsContext(options_.tls);
    if (made.ok()) {
      tls_context = std::move(*made);
    } else {
      tls_error_ = made.status();
    }
  }
  for (const Endpoint& endpoint : options_.endpoints) {
    auto state = std::make_unique<EndpointState>(options_.breaker);
    for (int i = 0; i < options_.connections_per_endpoint; ++i) {
      ci::ConnectionOptions co;
      co.endpoint = endpoint;
      co.connect_timeout = options_.connect_timeout;
      co.client_name = options_.client_name;
      co.auth_token = options_.auth_token;
      co.tls_context = tls_context;
      co.tls_server_name = options_.tls.server_name;
      state->connections.push_back(std::make_shared<ci::Connection>(
          io_, co, [this] { return Random01(); }));
      if (endpoints_.empty() && i == 0) stream_options_ = co;
    }
    endpoints_.push_back(std::move(state));
    endpoint_names_.push_back(EndpointName(endpoint));
    reported_states_.push_back(CircuitState::kClosed);
    if (options_.metrics) {
      options_.metrics->CircuitStateChanged(endpoint_names_.back(),
                                            CircuitState::kClosed);
    }
  }
  thread_ = std::thread([this] {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (...) {
        // A handler threw (only allocation can): keep the loop alive.
      }
    }
  });
}

Client::Impl::~Impl() {
  asio::post(io_, [this] { Shutdown(); });
  work_.reset();
  if (thread_.joinable()) thread_.join();
}

void Client::Impl::Shutdown() {
  shutting_down_ = true;
  for (auto& ep : endpoints_) {
    for (auto& c : ep->connections) c->Shutdown("client shut down");
  }
  std::vector<std::shared_ptr<ci::Connection>> streams;
  streams.swap(streams_);
  for (auto& c : streams) c->Shutdown("client shut down");
  std::vector<CallPtr> calls;
  calls.reserve(active_.size());
  for (auto& [raw, call] : active_) calls.push_back(call);
  for (const CallPtr& call : calls) {
    Finish(call, Status(Code::kUnavailable, "client shut down"), {},
           Degraded::kFailure);
  }
}

void Client::Impl::AssignIds(proto::Request* request) {
  std::vector<proto::AddItem>* items = nullptr;
  if (auto* add = std::get_if<proto::AddRequest>(&request->body)) {
    items = &add->items;
  } else if (auto* aq =
                 std::get_if<proto::AddAndQueryRequest>(&request->body)) {
    items = &aq->adds;
  }
  if (items == nullptr) return;
  for (proto::AddItem& item : *items) {
    if (item.id) continue;
    // 16 bytes: the session id then the item's sequence, little-endian.
    const uint64_t words[2] = {session_id_, next_item_seq_.fetch_add(1)};
    std::string id(sizeof(words), '\0');
    std::memcpy(id.data(), words, sizeof(words));
    item.id = std::move(id);
  }
}

void Client::Impl::Submit(proto::Request request, const CallOptions& call,
                          Done done) {
  if (options_.auto_idempotency_ids) AssignIds(&request);
  if (call.wait_durable) request.wait_durable = true;
  auto state = std::make_shared<CallState>(io_, std::move(request));
  state->deadline = DeadlineOf(call);
  state->fallback = call.fallback.value_or(options_.fallback);
  state->idempotent = IsIdempotent(state->request);
  state->done = std::move(done);
  if (options_.metrics) {
    state->started = ClientClock::now();
    options_.metrics->CallStarted(state->request.op());
  }
  if (in_flight_.fetch_add(1, std::memory_order_relaxed) >=
      options_.max_in_flight) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    state->rejected = true;
  }
  asio::post(io_, [this, state] { Start(state); });
}

void Client::Impl::Start(const CallPtr& call) {
  active_.emplace(call.get(), call);
  if (call->rejected) {
    Finish(call,
           Status(Code::kResourceExhausted,
                  "too many calls in flight (max_in_flight = " +
                      std::to_string(options_.max_in_flight) + ")"),
           {}, Degraded::kRejected);
    return;
  }
  if (shutting_down_) {
    Finish(call, Status(Code::kUnavailable, "client shut down"), {},
           Degraded::kFailure);
    return;
  }
  if (!tls_error_.ok()) {
    Finish(call, tls_error_, {}, Degraded::kNo);
    return;
  }
  if (call->request.op() == proto::Op::kNone) {
    Finish(call, Status::InvalidArgument("request without an operation"), {},
           Degraded::kNo);
    return;
  }
  call->deadline_timer.expires_at(call->deadline);
  call->deadline_timer.async_wait([this, call](boost::system::error_code ec) {
    if (!ec) OnDeadline(call);
  });
  Attempt(call);
}

void Client::Impl::Attempt(const CallPtr& call) {
  const ClientClock::time_point now = ClientClock::now();
  if (now >= call->deadline) {
    OnDeadline(call);
    return;
  }
  // The remaining budget travels with the request (rounded up: the server
  // must not give up before we do).
  const auto left_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           call->deadline - now)
                           .count();
  call->request.deadline_ms = static_cast<uint32_t>(
      std::min<int64_t>((left_us + 999) / 1000, UINT32_MAX));
  const std::vector<uint8_t> body = EncodeRequest(call->request);
  if (body.size() > kDefaultMaxFrameBody) {
    Finish(call,
           Status(Code::kFrameTooLarge, "request of " +
                                            std::to_string(body.size()) +
                                            " bytes is over the frame limit"),
           {}, Degraded::kNo);
    return;
  }

  // The first endpoint (from this attempt's turn) whose breaker admits it.
  const size_t n = endpoints_.size();
  EndpointState* endpoint = nullptr;
  size_t endpoint_index = 0;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (static_cast<size_t>(call->attempts) + k) % n;
    if (endpoints_[i]->breaker.Allow()) {
      endpoint = endpoints_[i].get();
      endpoint_index = i;
      break;
    }
  }
  if (endpoint == nullptr) {
    Finish(call, Status(Code::kUnavailable, "circuit open"), {},
           Degraded::kShortCircuited);
    return;
  }

  ++call->attempts;
  auto& connections = endpoint->connections;
  const size_t start = endpoint->next++ % connections.size();
  ci::Connection* connection = connections[start].get();
  for (size_t k = 0; k < connections.size(); ++k) {
    ci::Connection* c = connections[(start + k) % connections.size()].get();
    if (c->Usable(now)) {
      connection = c;
      break;
    }
  }
  const int attempt = call->attempts;
  Result<uint64_t> id = connection->Send(
      body, [this, call, attempt](Result<proto::Response> reply) {
        OnReply(call, attempt, std::move(reply));
      });
  if (!id.ok()) {
    endpoint->breaker.Record(/*failure=*/true, std::chrono::microseconds(0));
    AttemptFailed(call, id.status());
    return;
  }
  call->in_flight = true;
  call->connection = connection;
  call->request_id = *id;
  call->endpoint = endpoint_index;
  call->sent_at = now;
}

void Client::Impl::OnReply(const CallPtr& call, int attempt,
                           Result<proto::Response> reply) {
  if (call->finished || !call->in_flight || attempt != call->attempts) return;
  call->in_flight = false;
  const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(
      ClientClock::now() - call->sent_at);
  ci::CircuitBreaker& breaker = endpoints_[call->endpoint]->breaker;
  if (!reply.ok()) {
    breaker.Record(/*failure=*/true, latency);
    if (reply.status().code() == Code::kUnavailable) {
      AttemptFailed(call, reply.status());
    } else {
      Finish(call, reply.status(), {}, Degraded::kFailure);
    }
    return;
  }
  proto::Response& response = *reply;
  const Code code = response.code;
  breaker.Record(DegradedFor(code) != Degraded::kNo, latency);
  if (code == Code::kBusy || code == Code::kUnavailable) {
    AttemptFailed(call, response.status());
    return;
  }
  if (code == Code::kOk && response.op() != call->request.op()) {
    Finish(call,
           Status(Code::kProtocolError,
                  "the server answered " +
                      std::string(proto::OpName(response.op())) + " to " +
                      std::string(proto::OpName(call->request.op()))),
           {}, Degraded::kNo);
    return;
  }
  Status status = response.status();
  Finish(call, status, std::move(response), DegradedFor(code));
}

void Client::Impl::AttemptFailed(const CallPtr& call, const Status& status) {
  call->last_error = status;
  const Degraded degraded = DegradedFor(status.code());
  if (!call->idempotent || call->attempts >= options_.retry.max_attempts ||
      shutting_down_) {
    Finish(call, status, {}, degraded);
    return;
  }
  const auto delay = retry_backoff_.Delay(call->attempts - 1);
  if (ClientClock::now() + delay >= call->deadline) {
    Finish(call, status, {}, degraded);
    return;
  }
  call->retry_timer.expires_after(delay);
  call->retry_timer.async_wait([this, call](boost::system::error_code ec) {
    if (!ec && !call->finished) Attempt(call);
  });
}

void Client::Impl::OnDeadline(const CallPtr& call) {
  if (call->finished) return;
  std::string message = "deadline exceeded after " +
                        std::to_string(call->attempts) + " attempt(s)";
  if (call->in_flight) {
    call->in_flight = false;
    call->connection->Cancel(call->request_id);
    endpoints_[call->endpoint]->breaker.Record(
        /*failure=*/true, std::chrono::duration_cast<std::chrono::microseconds>(
                              ClientClock::now() - call->sent_at));
  } else if (!call->last_error.ok()) {
    message += "; last error: " + call->last_error.ToString();
  }
  Finish(call, Status(Code::kDeadlineExceeded, message), {},
         Degraded::kTimeout);
}

void Client::Impl::Finish(const CallPtr& call, const Status& status,
                          proto::Response value, Degraded degraded) {
  if (call->finished) return;
  call->finished = true;
  call->deadline_timer.cancel();
  call->retry_timer.cancel();
  if (call->in_flight) {
    call->in_flight = false;
    call->connection->Cancel(call->request_id);
  }
  if (!call->rejected) in_flight_.fetch_sub(1, std::memory_order_relaxed);

  CallResult<proto::Response> result;
  bool fallback_used = false;
  result.code = status.code();
  result.message = std::string(status.message());
  result.attempts = call->attempts;
  result.degraded = status.ok() ? Degraded::kNo : degraded;
  if (status.ok()) {
    if (call->fallback == Fallback::kLastKnown) {
      last_known_.Remember(call->request, value);
    }
    result.value = std::move(value);
  } else if (result.degraded != Degraded::kNo &&
             call->fallback != Fallback::kError &&
             call->request.op() != proto::Op::kNone) {
    fallback_used = true;
    result.value = ci::ZeroResponse(call->request, status);
    if (call->fallback == Fallback::kLastKnown) {
      last_known_.Recall(call->request, &result.value);
    }
  } else if (value.code != Code::kOk) {
    result.value = std::move(value);  // the server's error response
  } else {
    result.value = proto::Response::Error(status);
  }

  if (options_.metrics) {
    options_.metrics->CallFinished(
        {.op = call->request.op(),
         .code = result.code,
         .degraded = result.degraded,
         .fallback = fallback_used,
         .attempts = call->attempts,
         .latency = ClientClock::now() - call->started});
    ReportCircuits();
  }
  Done done = std::move(call->done);
  active_.erase(call.get());
  if (done) {
    try {
      done(std::move(result));
    } catch (...) {
      // A caller's callback must not throw; never let it kill the I/O thread.
    }
  }
}

void Client::Impl::ReportCircuits() {
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const CircuitState now = endpoints_[i]->breaker.state();
    if (now == reported_states_[i]) continue;
    reported_states_[i] = now;
    options_.metrics->CircuitStateChanged(endpoint_names_[i], now);
  }
}

// ------------------------------------------------------------------ Client

Client::Client(ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() = default;

void Client::CallAsync(proto::Request request, const CallOptions& call,
                       std::function<void(CallResult<proto::Response>)> done) {
  impl_->Submit(std::move(request), call, std::move(done));
}

CallResult<proto::Response> Client::Call(const proto::Request& request,
                                         const CallOptions& call) {
  if (impl_->OnIoThread()) {
    CallResult<proto::Response> r;
    r.code = Code::kInvalidArgument;
    r.message =
        "synchronous call from a CallAsync callback would deadlock; use "
        "CallAsync";
    return r;
  }
  CallOptions bounded = call;
  bounded.deadline = impl_->DeadlineOf(call);
  auto promise = std::make_shared<std::promise<CallResult<proto::Response>>>();
  std::future<CallResult<proto::Response>> future = promise->get_future();
  impl_->Submit(request, bounded, [promise](CallResult<proto::Response> r) {
    promise->set_value(std::move(r));
  });
  // The deadline timer ends the call; the margin only guards against a
  // stalled I/O thread, so a sync call can never hang.
  if (future.wait_until(*bounded.deadline + std::chrono::seconds(2)) !=
      std::future_status::ready) {
    CallResult<proto::Response> r;
    r.code = Code::kDeadlineExceeded;
    r.message = "the client's I/O thread did not answer in time";
    r.degraded = Degraded::kTimeout;
    return r;
  }
  return future.get();
}

CircuitState Client::circuit_state(size_t endpoint) const {
  return impl_->circuit_state(endpoint);
}

void Client::ForceOpen(bool forced) { impl_->ForceOpen(forced); }

}  // namespace tally
