// Connection: one pipelined connection of the client to one endpoint, over
// TCP or a Unix-domain socket (an Endpoint host "unix:PATH"; never TLS there).
//
// Send() assigns the request a connection-unique id, appends its frame to the
// outgoing buffer and remembers its callback; all frames waiting while a write
// is in progress leave in the next write (coalescing). The reader splits the
// stream with a FrameDecoder (expecting responses) and hands each reply to the
// callback of its id; a reply whose id is unknown (its call was cancelled,
// e.g. by its deadline) is dropped.
//
// Connecting is lazy: the first Send() connects (with connect_timeout), and
// the connection's first frame is always Hello, then AUTH when a token is
// configured, pipelined ahead of the requests queued meanwhile. When the
// connection fails (connect error or timeout, a failed Hello or AUTH, an I/O
// error, broken framing, a connection-level error frame) every pending callback
// gets UNAVAILABLE and the connection waits a backoff delay (0 after the first
// failure of a healthy connection, then growing per `reconnect`) before the
// next Send() reconnects; Send() fails fast with UNAVAILABLE meanwhile. This
// bounds the connect rate against a dead endpoint.
//
// TLS: with tls_context set, each connect is followed by a TLS handshake
// (verify_peer, host-name verification against tls_server_name, SNI); the
// connect_timeout bounds connect and handshake together. A failed handshake
// fails the connection like any other connect error, with the reason
// (e.g. "certificate has expired").
//
// Thread safety: not thread-safe. Every method, and every callback, runs on
// the thread running the io_context (the client's I/O thread).

#ifndef TALLY_CLIENT_CONNECTION_H_
#define TALLY_CLIENT_CONNECTION_H_

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "client/backoff.h"
#include "client/tally/client.h"
#include "protocol/frame.h"
#include "protocol/messages.h"
#include "protocol/result.h"

namespace tally::client_internal {

struct ConnectionOptions {
  Endpoint endpoint;
  std::chrono::milliseconds connect_timeout{200};
  std::string client_name = "libtally";
  std::string auth_token;  // sent in AUTH right after Hello when not empty
  // Delays between reconnects after consecutive failures.
  RetryPolicy reconnect{.max_attempts = 0,
                        .initial = std::chrono::milliseconds(20),
                        .max = std::chrono::seconds(1),
                        .multiplier = 2.0,
                        .jitter = 0.2};
  // TLS (null: plaintext): shared by the client's connections.
  std::shared_ptr<boost::asio::ssl::context> tls_context;
  std::string tls_server_name;  // empty: endpoint.host
};

// The client side's SSL context: TLS 1.2+, verify_peer against
// options.ca_file (or the system's default CAs), the client certificate
// for mutual TLS if set. INVALID_ARGUMENT naming the file that fails to
// load.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeClientTlsContext(
    const TlsOptions& options);

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // Receives the decoded reply, or the error that ended the request on this
  // connection (UNAVAILABLE when the connection failed, PROTOCOL_ERROR when
  // the reply does not decode).
  using ReplyCallback = std::function<void(Result<proto::Response>)>;

  // `random01` feeds the reconnect backoff's jitter.
  Connection(boost::asio::io_context& io, ConnectionOptions options,
             std::function<double()> random01);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Queues one request frame (`body` is an encoded request) and returns its
  // request id; `on_reply` then runs exactly once, later, unless Cancel(id)
  // comes first. Fails with UNAVAILABLE, without calling `on_reply`, while
  // the connection waits out a reconnect delay or after Shutdown().
  // REQUIRES: owned by a shared_ptr.
  Result<uint64_t> Send(std::span<const uint8_t> body, ReplyCallback on_reply);
  // Like Send, for a request answered by a stream of frames (MONITOR):
  // `on_frame` runs for every frame carrying its id until Cancel(id), or
  // once more with the error that ends the connection.
  Result<uint64_t> SendStream(std::span<const uint8_t> body,
                              ReplyCallback on_frame);
  // Forgets a request: its reply, if it comes, is dropped.
  void Cancel(uint64_t request_id);
  // Whether Send() would be accepted now (not waiting out a reconnect
  // delay, not shut down).
  bool Usable(ClientClock::time_point now) const;
  // Connected and past nothing but the Hello in flight.
  bool connected() const { return state_ == State::kReady; }
  size_t pending() const { return pending_.size(); }

  // Closes for good; pending callbacks get UNAVAILABLE(reason).
  void Shutdown(std::string_view reason);

 private:
  enum class State : uint8_t { kIdle, kConnecting, kReady, kBackoff, kClosed };

  void StartConnect();
  void OnConnected(uint64_t generation, const boost::system::error_code& ec);
  // Connected, and past the TLS handshake if any: starts the I/O.
  void OnReady();
  // The TCP socket: socket_, or the one under tls_.
  boost::asio::ip::tcp::socket& Socket() {
    return tls_ ? tls_->next_layer() : socket_;
  }
  // The endpoint is a Unix socket: its host is "unix:PATH".
  bool unix_socket() const {
    return options_.endpoint.host.starts_with("unix:");
  }
  // Starts connecting to the Unix socket's PATH.
  void ConnectUnix(uint64_t generation);
  void OnHello(Result<proto::Response> reply);
  void OnAuth(Result<proto::Response> reply);
  void MaybeWrite();
  void DoRead();
  void OnRead(uint64_t generation, const boost::system::error_code& ec,
              size_t n);
  // Ends the current socket: pending callbacks get UNAVAILABLE(reason).
  void Fail(std::string_view reason, bool for_good = false);
  std::string Name() const;

  const ConnectionOptions options_;
  Backoff reconnect_backoff_;
  boost::asio::ip::tcp::socket socket_;  // plaintext
  boost::asio::local::stream_protocol::socket unix_socket_;
  // TLS: a new stream per connect, shared with its in-flight handlers.
  using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;
  std::shared_ptr<TlsStream> tls_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer connect_timer_;

  State state_ = State::kIdle;
  // Bumped on every failure: handlers of an older socket do nothing.
  uint64_t generation_ = 0;
  int consecutive_failures_ = 0;
  ClientClock::time_point next_connect_at_{};
  std::string last_error_;

  uint64_t next_request_id_ = 1;
  std::unordered_map<uint64_t, ReplyCallback> pending_;
  std::unordered_set<uint64_t> streams_;  // ids in pending_ sent by SendStream
  std::vector<uint8_t> out_;              // frames not yet handed to the socket
  // The buffer being written and the decoder being read into are shared with
  // their in-flight handlers, so a failure never frees memory the socket may
  // still touch.
  std::shared_ptr<std::vector<uint8_t>> writing_;
  bool write_in_progress_ = false;
  std::shared_ptr<FrameDecoder> decoder_;
};

}  // namespace tally::client_internal

#endif  // TALLY_CLIENT_CONNECTION_H_
