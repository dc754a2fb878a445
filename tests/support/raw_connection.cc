#include "tests/support/raw_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "protocol/codec.h"

namespace tally::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// `host`:`port` as a socket address; false if `host` is no IP literal.
bool MakeAddress(const std::string& host, uint16_t port, sockaddr_storage* out,
                 socklen_t* size) {
  *out = {};
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *size = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *size = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

}  // namespace

int ConnectSocket(uint16_t port, const RawConnectionOptions& options) {
  sockaddr_storage server;
  socklen_t server_size = 0;
  if (!MakeAddress(options.host, port, &server, &server_size)) return -1;
  const int fd = socket(server.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (options.buffer_bytes > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &options.buffer_bytes,
               sizeof(options.buffer_bytes));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &options.buffer_bytes,
               sizeof(options.buffer_bytes));
  }
  bool ok = true;
  if (!options.source.empty()) {
    sockaddr_storage local;
    socklen_t local_size = 0;
    ok = MakeAddress(options.source, 0, &local, &local_size) &&
         bind(fd, reinterpret_cast<sockaddr*>(&local), local_size) == 0;
  }
  ok =
      ok && connect(fd, reinterpret_cast<sockaddr*>(&server), server_size) == 0;
  if (!ok) {
    close(fd);
    return -1;
  }
  if (options.read_timeout.count() > 0) {
    timeval tv{};
    tv.tv_sec = options.read_timeout.count() / 1000;
    tv.tv_usec = (options.read_timeout.count() % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

bool SendAll(int fd, std::span<const uint8_t> bytes) {
  const uint8_t* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = send(fd, p, left, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

std::vector<uint8_t> RequestFrame(uint64_t request_id,
                                  const proto::Request& request) {
  std::vector<uint8_t> out;
  AppendFrame(&out, FrameKind::kRequest, request_id, EncodeRequest(request));
  return out;
}

RawConnection::RawConnection(uint16_t port, const RawConnectionOptions& options)
    : fd_(ConnectSocket(port, options)) {}

RawConnection::~RawConnection() {
  if (fd_ >= 0) close(fd_);
}

bool RawConnection::SendBytes(std::span<const uint8_t> bytes) {
  return fd_ >= 0 && SendAll(fd_, bytes);
}

bool RawConnection::Send(uint64_t request_id, const proto::Request& request) {
  return SendBytes(RequestFrame(request_id, request));
}

bool RawConnection::Send(const proto::Request& request) {
  return Send(next_id(), request);
}

std::optional<Reply> RawConnection::Receive() { return ReceiveUntil({}); }

std::optional<Reply> RawConnection::Receive(milliseconds timeout) {
  return ReceiveUntil(Clock::now() + timeout);
}

std::optional<Reply> RawConnection::ReceiveUntil(
    std::optional<Clock::time_point> deadline) {
  for (;;) {
    Result<std::optional<Frame>> next = decoder_.Next();
    if (!next.ok()) {
      end_ = ReceiveEnd::kBadFrame;
      error_ = next.status();
      return std::nullopt;
    }
    if (next->has_value()) {
      Result<proto::Response> response = DecodeResponse((*next)->body);
      if (!response.ok()) {
        end_ = ReceiveEnd::kBadResponse;
        error_ = response.status();
        return std::nullopt;
      }
      end_ = ReceiveEnd::kReply;
      return Reply{(*next)->header.request_id, std::move(*response)};
    }
    if (deadline) {
      const auto left =
          std::chrono::duration_cast<milliseconds>(*deadline - Clock::now());
      if (left.count() <= 0) {
        end_ = ReceiveEnd::kTimedOut;
        return std::nullopt;
      }
      pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    }
    std::span<uint8_t> room = decoder_.Prepare(64 << 10);
    const ssize_t n = recv(fd_, room.data(), room.size(), 0);
    if (n < 0 && errno == EINTR) {
      decoder_.Commit(0);
      continue;
    }
    decoder_.Commit(n > 0 ? static_cast<size_t>(n) : 0);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      end_ = ReceiveEnd::kTimedOut;  // SO_RCVTIMEO
    } else {
      end_ = ReceiveEnd::kClosed;
      closed_ = true;
    }
    return std::nullopt;
  }
}

std::optional<proto::Response> RawConnection::Call(
    const proto::Request& request) {
  if (!Send(request)) return std::nullopt;
  std::optional<Reply> reply = Receive();
  if (!reply || reply->request_id != last_id_) return std::nullopt;
  return std::move(reply->response);
}

bool RawConnection::ClosedWithin(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!closed_ && Clock::now() < deadline) {
    ReceiveUntil(deadline);
    // A broken stream is never read again, so it never shows the close.
    if (end_ == ReceiveEnd::kBadFrame) break;
  }
  return closed_;
}

}  // namespace tally::test
