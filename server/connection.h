// Connection: one client's byte stream (TCP, TLS or a Unix socket). Reads
// into a FrameDecoder, answers every complete frame in order through the
// Service, and writes the replies back coalesced (one write for all replies
// ready). Replies leave in request order, so clients pipeline freely.
//
// Errors (docs/protocol.md): a body that fails to decode is answered with an
// error reply and the connection stays; broken framing (bad magic, version,
// an oversized length) is answered with one error reply, then the connection
// closes, since the stream can no longer be split into frames.
//
// Mutations are answered when the journal completes them (after the WAL
// write, or its sync), queries at once; replies still leave in request
// order: each request takes a slot, and slots are written in order as they
// fill.
//
// Backpressure: while more than max_output_bytes of replies wait to be
// written (a client that does not read), or max_in_flight requests are
// unanswered (waiting for the WAL), the connection stops reading.
//
// Limits (docs/operations.md, "Limits"): once a frame's first byte has
// arrived, its header must arrive within frame_timeout_ms and its body at no
// less than min_frame_rate_bytes_per_s after that grace (slowloris); a
// connection without a frame for idle_timeout_ms is closed. One timer per
// connection, armed only while a frame is partial or an idle timeout is set,
// and not re-armed per read: it fires, re-checks, and re-arms. While nothing
// is buffered the read buffer is small (idle_read_chunk) and a large one is
// freed, so idle connections are cheap.
// TLS: over a TLS stream, the handshake comes first; one that has not
// finished within tls_handshake_timeout closes the connection.
//
// Introspection (server/introspection.h, connection_introspection.cc): a
// connection registers in the server's client registry (CLIENT LIST/KILL),
// times its requests for SLOWLOG, feeds MONITOR, and, once it has sent
// MONITOR itself, carries only the monitor stream.
//
// Thread safety: all work happens on the socket's strand.

#ifndef TALLY_SERVER_CONNECTION_H_
#define TALLY_SERVER_CONNECTION_H_

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "protocol/frame.h"
#include "server/auth.h"
#include "server/boot_timer.h"
#include "server/command_stats.h"
#include "server/command_summary.h"
#include "server/introspection.h"
#include "server/limit_stats.h"
#include "server/service.h"
#include "server/stream.h"

namespace tally {

struct ConnectionOptions {
  size_t max_frame_body = kDefaultMaxFrameBody;
  size_t max_output_bytes = 8 << 20;
  size_t read_chunk = 64 << 10;
  size_t max_in_flight = 4096;
  // Slowloris: a frame's header within frame_timeout_ms of its first byte,
  // then its body at >= min_frame_rate_bytes_per_s (0: either check off).
  int64_t frame_timeout_ms = 10000;
  int64_t min_frame_rate_bytes_per_s = 1024;
  // Closes a connection without a frame for this long (0: never).
  int64_t idle_timeout_ms = 0;
  // Read size while nothing is buffered (the buffer an idle connection holds).
  size_t idle_read_chunk = 4096;
  // Tokens and pre-auth limits (server/auth.h); null: no authentication,
  // every connection is admin.
  std::shared_ptr<const AuthConfig> auth;
  // Admin operations from a peer that is not loopback are refused unless
  // this is set (--admin_allow_remote; RELIABILITY.md 4.3).
  bool admin_allow_remote = false;

  std::chrono::milliseconds tls_handshake_timeout{10000};
  // Set by the Server: the client registry, slow log and monitors (null:
  // none of them, e.g. a connection built alone in a test).
  std::shared_ptr<Introspection> introspection;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `socket`: a tcp::socket, a TLS stream over one, or a Unix socket.
  Connection(Stream socket, Service* service, const ConnectionOptions& options);
  ~Connection();
  // Starts reading. REQUIRES: owned by a shared_ptr.
  void Start();
  // Stops reading, flushes the replies already produced, then closes.
  // Safe from any thread.
  void Shutdown();

 private:
  // TLS: handshakes (bounded by tls_handshake_timeout), then reads.
  void Handshake();
  void DoRead();
  void OnRead(const boost::system::error_code& ec, size_t n);
  void ProcessFrames();
  // Stores the reply to request number `seq` and moves every reply now in
  // order to pending_.
  void Complete(uint64_t seq, uint64_t request_id,
                const proto::Response& response);
  bool Idle() const {
    return !writing_now_ && pending_.empty() && slots_.empty();
  }
  void MaybeWrite();
  void OnWrite(const boost::system::error_code& ec);
  void Close();
  // Answers AUTH, or checks `request` against the session; true when it
  // was answered here (denied, or AUTH).
  bool AnsweredByAuth(uint64_t seq, uint64_t request_id,
                      proto::Request* request, std::vector<size_t>* denied);
  // Answers a failed AUTH after AuthConfig::failure_delay (brute force).
  void DelayAuthReply(uint64_t seq, uint64_t request_id,
                      proto::Response response);

  // Limits (the frame deadline, idle timeout, AUTH and TLS-handshake
  // deadlines, the AUTH failure delay) run on BootClock and BootTimer
  // (server/boot_timer.h): a wall-clock step moves none of them.

  // Introspection (connection_introspection.cc).
  // Joins the client registry. From Start().
  void RegisterClient();
  // Leaves the registry and the monitors. Idempotent.
  void UnregisterClient();
  uint64_t client_id() const { return client_ ? client_->id() : 0; }
  // Gives CLIENT LIST the session's token id when it changed (AUTH).
  void NoteUser();
  // Notes `request` for CLIENT LIST and MONITOR; true when it was answered
  // here (MONITOR, and every request on a monitor connection).
  bool AnsweredByIntrospection(uint64_t seq, uint64_t request_id,
                               const proto::Request& request,
                               BootClock::time_point received);
  // SLOWLOG: what a request answered later must keep to be logged (nullopt
  // while the slow log is off).
  std::optional<CommandSummary> SlowProbe(const proto::Request& request) const;
  // SLOWLOG: the request received at `received` has its reply now.
  void LogIfSlow(BootClock::time_point received, const proto::Request& request);
  void LogIfSlow(BootClock::time_point received, const CommandSummary& command);
  // After a reply that came later (the journal's): SLOWLOG, and monitor
  // events that waited for it.
  void AfterDeferredReply(BootClock::time_point received,
                          const std::optional<CommandSummary>& slow);
  // CLIENT LIST's inflight= and obuf=, and the monitor's bound.
  void PublishLoad();
  // CLIENT KILL, from any thread: closes on the strand, at once (pending
  // replies dropped) or once the replies owed are written.
  void Kill(bool after_reply);
  // Moves queued monitor events to the output (the strand).
  void DrainMonitor();

  // Tracks the partial frame after a read of n bytes that completed
  // `frames_done` frames.
  void TrackFrame(size_t n, bool frames_done);
  // When the partial frame becomes too slow, if one is partial and checked.
  std::optional<BootClock::time_point> FrameDeadline() const;
  // The earliest time a limit may close this connection; nullopt if none
  // applies now.
  std::optional<BootClock::time_point> NextCheck() const;
  void ArmTimer();
  void OnTimer(uint64_t generation);
  // Closes for a limit: answers `why` first when nothing else is pending.
  void CloseForLimit(const Status& why);

  Stream socket_;
  // TLS only: bounds the handshake.
  std::unique_ptr<BootTimer> handshake_timer_;
  Service* service_;
  const ConnectionOptions options_;
  FrameDecoder decoder_;
  std::vector<uint8_t> pending_;  // replies not yet handed to the socket
  std::vector<uint8_t> writing_;  // replies being written
  // A request from its frame to its reply; `op` and `received` feed the
  // per-command statistics (server/command_stats.h).
  struct Slot {
    std::optional<std::vector<uint8_t>> reply;  // nullopt: not answered yet
    proto::Op op = proto::Op::kNone;
    BootClock::time_point received;
  };
  // Adds the slot of a request received at `received`; returns its seq.
  uint64_t NewSlot(BootClock::time_point received);
  // Replies of requests from slot_base_ on, in request order.
  std::deque<Slot> slots_;
  uint64_t slot_base_ = 0;
  // Requests answered later (mutations, and reads ordered behind them).
  size_t deferred_ = 0;
  bool reading_ = false;
  bool writing_now_ = false;
  bool closing_ = false;  // no more reads; close once pending_ is written
  bool closed_ = false;

  // Limits.
  LimitStats* limit_stats_;
  CommandStats* command_stats_;
  BootTimer timer_;
  BootClock::time_point timer_at_;  // expiry of the armed timer
  uint64_t timer_generation_ = 0;   // the armed wait's; others are stale
  bool timer_armed_ = false;
  bool in_frame_ = false;              // part of a frame is buffered
  BootClock::time_point frame_start_;  // when its first byte arrived
  uint64_t frame_bytes_ = 0;           // its bytes received so far
  BootClock::time_point last_frame_;   // last complete frame (or accept)
  bool last_read_filled_ = false;      // the last read filled its buffer
  bool frames_waiting_ = false;        // ProcessFrames stopped at max_in_flight
  bool paused_ = false;                // reads paused by backpressure
  // Authentication (server/auth.h): before AUTH, frames are capped at
  // AuthConfig::pre_auth_max_frame and auth_timer_ closes the connection
  // at AuthConfig::auth_timeout.
  Session session_;
  BootTimer auth_timer_;

  // Introspection; null when options_.introspection is.
  std::shared_ptr<ClientInfo> client_;
  const std::string* noted_user_ = nullptr;  // the token id in client_
  // Set once this connection has sent MONITOR: the stream's sink, and the
  // request id its events carry.
  std::shared_ptr<MonitorSink> monitor_;
  uint64_t monitor_request_id_ = 0;
  // A failed AUTH's reply waits AuthConfig::failure_delay on this timer
  // (made on first use); reading and processing pause meanwhile.
  std::unique_ptr<BootTimer> auth_delay_timer_;
  bool auth_delayed_ = false;
};

}  // namespace tally

#endif  // TALLY_SERVER_CONNECTION_H_
