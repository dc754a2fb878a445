// libtally: the client library the decision engine and producers link.
//
//   tally::ClientOptions options;                       // 127.0.0.1:7379
//   tally::Client client(options);                      // create once, share
//   tally::Batch decision;
//   decision.Query("user:42", 60'000).Query("user:42", 3'600'000)
//           .Query("card:7", 86'400'000, tally::proto::kAggDistinctBit);
//   auto result = client.Execute(decision);             // one round trip
//   if (result.ok()) use(result.value.queries[0].answer.count);
//   else if (result.degraded != tally::Degraded::kNo) ...  // fallback value
//
// Every call is bounded by a deadline (CallOptions::deadline, else
// ClientOptions::default_timeout) and ends by it with DEADLINE_EXCEEDED,
// never hangs. Reads are retried with exponential backoff and jitter inside
// the deadline; adds are retried only when every item carries an idempotency
// id (the client assigns one per item unless auto_idempotency_ids is off), so
// a retry never double-counts. A per-endpoint circuit breaker opens on errors
// and on slow calls; while it is open calls fail fast (CIRCUIT_OPEN) or
// return the configured fallback, and `degraded` says which, so a rule engine
// can route to manual review instead of hanging.
//
// Requests pipeline over a small pool of connections per endpoint; replies
// are matched by request id. Message types are the plain structs of
// protocol/messages.h; no FlatBuffers or Asio type appears here.
//
// Thread safety: Client is thread-safe; call it from any number of threads.
// REQUIRES: a Client is not destroyed from inside one of its own CallAsync
// callbacks; a sync call made from inside one fails with INVALID_ARGUMENT
// (it would wait on the thread that has to complete it).

#ifndef TALLY_CLIENT_TALLY_CLIENT_H_
#define TALLY_CLIENT_TALLY_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.h"
#include "protocol/result.h"

namespace tally {

class MetricsSink;  // tally/metrics.h

using ClientClock = std::chrono::steady_clock;

// Aggregate masks for Batch::Query are proto::kAgg*Bit (0 = everything the
// key's policy tracks).

// A server to connect to: host and port over TCP, or, when host is
// "unix:PATH", the Unix-domain socket at PATH (tallyd --unix_socket; port is
// then unused). No host name starts with "unix:", so the spelling is
// unambiguous, and in a URI (ClientOptions::FromUri) it is the same.
//   Endpoint{.host = "unix:/run/tally/tally.sock"}
// Over a Unix socket TLS is never used, whatever TlsOptions say: tallyd does
// not speak it there, and the socket's 0700 directory is the access
// control. Auth tokens are sent as over TCP.
struct Endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 7379;
};

// "host:port", or "unix:PATH" for a Unix socket: how errors, metrics and
// the CLI name an endpoint.
std::string EndpointName(const Endpoint& endpoint);

// Reads only (and adds whose items all carry ids). gRPC-style backoff:
// delay_n = min(max, initial * multiplier^n) * (1 +- jitter), never past the
// deadline.
struct RetryPolicy {
  int max_attempts = 3;  // including the first
  std::chrono::microseconds initial{200};
  std::chrono::microseconds max{2000};
  double multiplier = 1.6;
  double jitter = 0.2;
};

// Per endpoint, over a sliding time window (resilience4j semantics, with
// microsecond slow-call thresholds).
struct BreakerPolicy {
  bool enabled = true;
  std::chrono::milliseconds window{10'000};
  int minimum_calls = 20;     // no decision on fewer calls in the window
  double failure_rate = 0.5;  // failures / calls that opens the circuit
  std::chrono::microseconds slow_call{5000};
  double slow_call_rate = 0.5;  // slow calls / calls that opens the circuit
  std::chrono::milliseconds open_wait{5000};  // open -> half-open
  int half_open_calls = 5;  // trial calls; all must succeed to close
};

// What a call returns when it fails for a transient reason (timeout,
// unavailable, circuit open, rejected by the bulkhead).
enum class Fallback : uint8_t {
  kError,         // the error, no value
  kDefaultValue,  // a zero-valued result (counts 0), marked degraded
  kLastKnown,     // the last successful answer to the same query, if any
};

// Why a result is degraded (Hystrix's reasons); kNo for a real answer.
enum class Degraded : uint8_t {
  kNo,
  kTimeout,
  kShortCircuited,  // the breaker was open
  kRejected,        // max_in_flight reached (bulkhead)
  kFailure,         // connection or server failure
};

enum class CircuitState : uint8_t { kClosed, kOpen, kHalfOpen, kForcedOpen };

std::string_view DegradedName(Degraded d);
std::string_view CircuitStateName(CircuitState s);

// TLS to tallyd (--tls_cert_file). The server's certificate is always
// verified: its chain against ca_file (or the system's CAs), and its name
// (DNS or IP SAN) against server_name, which is also sent as SNI. There is
// no switch to turn verification off.
struct TlsOptions {
  bool enabled = false;
  std::string ca_file;      // PEM CA bundle; empty: the system's default CAs
  std::string server_name;  // expected name; empty: each endpoint's host
  std::string cert_file;    // client certificate (PEM, chain) for mutual TLS
  std::string key_file;     // its private key (PEM)
};

struct ClientOptions {
  std::vector<Endpoint> endpoints = {Endpoint{}};
  std::chrono::milliseconds connect_timeout{200};
  std::chrono::microseconds default_timeout{5000};
  int connections_per_endpoint = 2;
  int max_in_flight = 1024;  // bulkhead: calls beyond it fail fast
  RetryPolicy retry;
  BreakerPolicy breaker;
  Fallback fallback = Fallback::kError;
  // Give every add item without an id a unique one (random session id +
  // sequence), so retries of adds are safe. Costs ~30 bytes per item.
  bool auto_idempotency_ids = true;
  std::string client_name = "libtally";
  // Bearer token (docs/security.md), sent in AUTH right after HELLO on every
  // connection and reconnection; empty: none (a server without
  // --token_file). Never logged, and not settable by FromUri (URIs end up
  // in logs).
  std::string auth_token;
  // A connection's TLS handshake counts against connect_timeout. A file that
  // cannot be loaded fails every call with INVALID_ARGUMENT naming it.
  TlsOptions tls;
  // Receives every call's start and end and breaker state changes
  // (tally/metrics.h; PrometheusClientMetrics renders them). Not owned;
  // must outlive the client. Null: no metrics, no cost.
  MetricsSink* metrics = nullptr;

  // "tally://h1:7379,h2:7380?timeout=5ms&connect_timeout=100ms&pool_size=2
  //  &max_in_flight=1024&retries=3&fallback=error|default|last_known"
  // A host "unix:/absolute/path" is a Unix socket (a path with ',' or '?'
  // cannot be written in a URI: set Endpoint::host instead).
  static Result<ClientOptions> FromUri(std::string_view uri);
};

struct CallOptions {
  std::optional<ClientClock::time_point> deadline;  // else default_timeout
  std::optional<Fallback> fallback;                 // else the client's
  // Writes: answer only once the server has fsynced them, whatever its
  // --durability (like Redis WAITAOF). Costs one fdatasync of latency.
  bool wait_durable = false;
};

// A call's outcome. `value` is meaningful when ok(), or when degraded !=
// kNo and a fallback produced it.
template <typename T>
struct CallResult {
  Code code = Code::kOk;
  std::string message;
  T value{};
  Degraded degraded = Degraded::kNo;
  int attempts = 0;  // tries made (1 = no retry)
  bool ok() const { return code == Code::kOk; }
};

// A fluent batch: adds then queries, sent as one request (add_and_query when
// it has both), answered in one round trip, results in order.
class Batch {
 public:
  Batch& Add(std::string_view key, int64_t amount = 0,
             std::optional<std::string_view> member = std::nullopt,
             int64_t time_ms = 0, int64_t count = 1,
             std::optional<std::string_view> id = std::nullopt);
  // `last_ms` ms ending now (or at at_ms).
  Batch& Query(std::string_view key, int64_t last_ms, uint32_t aggs = 0,
               int64_t at_ms = 0);
  Batch& QueryBetween(std::string_view key, int64_t from_ms, int64_t to_ms,
                      uint32_t aggs = 0);
  const std::vector<proto::AddItem>& adds() const { return adds_; }
  const std::vector<proto::QueryItem>& queries() const { return queries_; }
  bool empty() const { return adds_.empty() && queries_.empty(); }

 private:
  std::vector<proto::AddItem> adds_;
  std::vector<proto::QueryItem> queries_;
};

struct BatchResult {
  std::vector<proto::AddItemResult> adds;       // one per Batch::Add, in order
  std::vector<proto::QueryItemResult> queries;  // one per Batch::Query
};

// The request a Batch sends, and its reply unpacked per item (used by
// Client::Execute and AsyncExecute in tally/async.h).
proto::Request BatchRequest(const Batch& batch);
CallResult<BatchResult> ToBatchResult(const Batch& batch,
                                      CallResult<proto::Response> reply);

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();  // waits for nothing: in-flight calls end with UNAVAILABLE
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One round trip for the whole batch. Per-item errors are in the items.
  CallResult<BatchResult> Execute(const Batch& batch,
                                  const CallOptions& call = {});

  // Shorthands.
  CallResult<proto::Aggregates> Query(std::string_view key, int64_t last_ms,
                                      uint32_t aggs = 0,
                                      const CallOptions& call = {});
  CallResult<proto::AddItemResult> Add(
      std::string_view key, int64_t amount = 0,
      std::optional<std::string_view> member = std::nullopt,
      const CallOptions& call = {});

  // Any request (the CLI and tools use this). Retried only when idempotent.
  CallResult<proto::Response> Call(const proto::Request& request,
                                   const CallOptions& call = {});

  // Asynchronous form of Call: `done` runs on a client thread once the call
  // ends (same deadline, retry and breaker rules). Never blocks.
  void CallAsync(proto::Request request, const CallOptions& call,
                 std::function<void(CallResult<proto::Response>)> done);

  // A request answered by a stream of frames (MONITOR): sent on a
  // connection of its own to the first endpoint (a monitor connection
  // carries nothing else), and every frame answering it goes to `on_frame`
  // on the client's I/O thread until on_frame returns false, or the stream
  // ends: then on_frame gets one last call with the error (UNAVAILABLE when
  // the server closed it or the Client is destroyed). No deadline after
  // connect, no retry, no breaker: streams are for operators' tools.
  // Returns at once.
  void Stream(proto::Request request,
              std::function<bool(Result<proto::Response>)> on_frame);

  CircuitState circuit_state(size_t endpoint = 0) const;
  // Operator kill switch: every call fails fast (or falls back) while forced.
  void ForceOpen(bool forced);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally

#endif  // TALLY_CLIENT_TALLY_CLIENT_H_
