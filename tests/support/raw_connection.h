// RawConnection: a blocking client socket that writes and reads tally's
// frames by hand (docs/protocol.md), for the tests that must control every
// byte: raw or broken frames, pipelined bursts, chosen request ids, a chosen
// source address, small kernel buffers, a client that never reads. Every
// other test talks to tallyd through libtally (client/).
//
// Nothing here asserts: a reply that does not decode is reported (end(),
// error()) and each test decides whether that fails it.
//
// Thread safety: none, but fd() may be written from another thread while
// this one receives (a writer that blocks while the server pauses reads).

#ifndef TALLY_TESTS_SUPPORT_RAW_CONNECTION_H_
#define TALLY_TESTS_SUPPORT_RAW_CONNECTION_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "protocol/frame.h"
#include "protocol/messages.h"
#include "protocol/status.h"

namespace tally::test {

struct RawConnectionOptions {
  // The server's address: an IPv4 or IPv6 literal.
  std::string host = "127.0.0.1";
  // Binds to this local address first (e.g. 127.0.0.11, to look like
  // another client to per-address limits); empty: the kernel picks.
  std::string source{};
  // > 0: SO_RCVTIMEO, so a read without its own timeout gives up after
  // this long; 0: such reads wait for ever.
  std::chrono::milliseconds read_timeout{0};
  // > 0: SO_RCVBUF and SO_SNDBUF (a client that absorbs few replies).
  int buffer_bytes = 0;
};

// A connected blocking TCP socket (close-on-exec, TCP_NODELAY) to `port`,
// or -1. For tests that want a bare descriptor.
int ConnectSocket(uint16_t port, const RawConnectionOptions& options = {});

// Writes all of `bytes` to `fd` (MSG_NOSIGNAL); false once a write fails.
bool SendAll(int fd, std::span<const uint8_t> bytes);

// One request frame.
std::vector<uint8_t> RequestFrame(uint64_t request_id,
                                  const proto::Request& request);

// A request with `body` (proto::PingRequest{}, proto::AddRequest{...}, ...)
// and no deadline.
template <typename Body>
proto::Request Req(Body body) {
  proto::Request r;
  r.body = std::move(body);
  return r;
}

struct Reply {
  uint64_t request_id = 0;
  proto::Response response;
};

// How the last Receive() ended.
enum class ReceiveEnd : uint8_t {
  kReply,        // a reply
  kClosed,       // the server closed the connection (EOF or reset)
  kTimedOut,     // no whole reply within the timeout
  kBadFrame,     // the byte stream is not frames (error() says why)
  kBadResponse,  // a frame whose body is not a Response (error() says why)
};

class RawConnection {
 public:
  // Connects; ok() says whether it worked.
  explicit RawConnection(uint16_t port,
                         const RawConnectionOptions& options = {});
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // Writes bytes as they are; false once a write fails.
  bool SendBytes(std::span<const uint8_t> bytes);
  // Writes one request frame with `request_id`.
  bool Send(uint64_t request_id, const proto::Request& request);
  // Writes one request frame with next_id().
  bool Send(const proto::Request& request);
  // Request ids for Send(request): 1, 2, 3, ...
  uint64_t next_id() { return ++last_id_; }
  uint64_t last_id() const { return last_id_; }

  // The next reply, whatever its request id; nullopt otherwise (end() says
  // why). Without a timeout it waits as the socket does (read_timeout).
  std::optional<Reply> Receive();
  std::optional<Reply> Receive(std::chrono::milliseconds timeout);
  ReceiveEnd end() const { return end_; }
  // Why the frame or its body did not decode (kBadFrame, kBadResponse).
  const Status& error() const { return error_; }
  // Whether a read has seen the server close the connection.
  bool closed() const { return closed_; }

  // Send(request), then Receive(): the response that answers `request`;
  // nullopt when no reply came or the next one answers another request.
  std::optional<proto::Response> Call(const proto::Request& request);

  // Whether the server closes the connection within `timeout`; replies
  // that come before the close are dropped.
  bool ClosedWithin(std::chrono::milliseconds timeout);

 private:
  std::optional<Reply> ReceiveUntil(
      std::optional<std::chrono::steady_clock::time_point> deadline);

  int fd_ = -1;
  FrameDecoder decoder_{kDefaultMaxFrameBody, FrameKind::kResponse};
  uint64_t last_id_ = 0;
  ReceiveEnd end_ = ReceiveEnd::kReply;
  Status error_;
  bool closed_ = false;
};

}  // namespace tally::test

#endif  // TALLY_TESTS_SUPPORT_RAW_CONNECTION_H_
