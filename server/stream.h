// Stream: a server connection's byte stream: a plain TCP socket, TLS over
// one (Boost.Asio SSL), or a Unix-domain socket (--unix_socket; never TLS).
// It offers the subset of a socket's API that Connection uses, so
// Connection's request logic is the same for all three, and it is an
// AsyncReadStream/AsyncWriteStream (asio::async_write works on it).
//
// The plaintext path costs one predictable branch per operation: no extra
// allocation, no virtual call. A TLS stream must complete AsyncHandshake()
// before it reads or writes; shutdown() and close() act on the socket
// underneath (no TLS close_notify: the peer sees the connection end).
//
// Thread safety: like tcp::socket; use it from its executor (a strand).

#ifndef TALLY_SERVER_STREAM_H_
#define TALLY_SERVER_STREAM_H_

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace tally {

class Stream {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  using TlsStream = boost::asio::ssl::stream<Socket>;
  using UnixSocket = boost::asio::local::stream_protocol::socket;
  using executor_type = Socket::executor_type;
  static_assert(std::is_same_v<executor_type, UnixSocket::executor_type>);

  // Plaintext. Implicit, so code handing Connection a tcp::socket still works.
  Stream(Socket socket)  // NOLINT(google-explicit-constructor)
      : stream_(std::in_place_index<0>, std::move(socket)) {}
  // TLS as the server side. `context` must outlive the stream.
  Stream(Socket socket, boost::asio::ssl::context& context)
      : stream_(std::in_place_index<1>, std::move(socket), context) {}
  // A Unix-domain socket's connection.
  Stream(UnixSocket socket)  // NOLINT(google-explicit-constructor)
      : stream_(std::in_place_index<2>, std::move(socket)) {}

  bool tls() const { return stream_.index() == 1; }
  // The TCP socket (under TLS too); nullptr on a Unix socket.
  Socket* tcp_socket() {
    if (Socket* plain = std::get_if<0>(&stream_)) return plain;
    if (TlsStream* secure = std::get_if<1>(&stream_)) {
      return &secure->next_layer();
    }
    return nullptr;
  }
  const Socket* tcp_socket() const {
    return const_cast<Stream*>(this)->tcp_socket();
  }
  // The Unix-domain socket; nullptr on TCP.
  const UnixSocket* unix_socket() const { return std::get_if<2>(&stream_); }

  executor_type get_executor() {
    return std::visit([](auto& s) -> executor_type { return s.get_executor(); },
                      stream_);
  }

  template <typename MutableBuffers, typename Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    std::visit(
        [&](auto& s) {
          s.async_read_some(buffers, std::forward<Handler>(handler));
        },
        stream_);
  }

  template <typename ConstBuffers, typename Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    std::visit(
        [&](auto& s) {
          s.async_write_some(buffers, std::forward<Handler>(handler));
        },
        stream_);
  }

  // Runs the server side of the TLS handshake. REQUIRES: tls().
  template <typename Handler>
  void AsyncHandshake(Handler&& handler) {
    std::get<1>(stream_).async_handshake(boost::asio::ssl::stream_base::server,
                                         std::forward<Handler>(handler));
  }
  // The OpenSSL handle of a TLS stream (peer certificate, version); nullptr
  // otherwise.
  SSL* native_tls_handle() {
    TlsStream* secure = std::get_if<1>(&stream_);
    return secure ? secure->native_handle() : nullptr;
  }

  // TCP_NODELAY on TCP; nothing on a Unix socket (it has no Nagle).
  void SetNoDelay(boost::system::error_code& ec) {
    if (Socket* tcp = tcp_socket()) {
      tcp->set_option(boost::asio::ip::tcp::no_delay(true), ec);
    }
  }
  // The peer as authentication keys it (server/auth.h Session's source, the
  // AUTH back-off): its IP address on TCP, "unix" on a Unix socket,
  // "unknown" once the peer has gone.
  std::string PeerAddress() const {
    if (unix_socket() != nullptr) return "unix";
    boost::system::error_code ec;
    const Socket::endpoint_type peer = tcp_socket()->remote_endpoint(ec);
    return ec ? std::string("unknown") : peer.address().to_string();
  }
  // The TCP peer's endpoint. REQUIRES: tcp_socket().
  Socket::endpoint_type remote_endpoint(boost::system::error_code& ec) const {
    return tcp_socket()->remote_endpoint(ec);
  }
  void shutdown(Socket::shutdown_type what, boost::system::error_code& ec) {
    std::visit([&](auto& s) { s.lowest_layer().shutdown(what, ec); }, stream_);
  }
  void close(boost::system::error_code& ec) {
    std::visit([&](auto& s) { s.lowest_layer().close(ec); }, stream_);
  }
  bool is_open() {
    return std::visit([](auto& s) { return s.lowest_layer().is_open(); },
                      stream_);
  }

 private:
  std::variant<Socket, TlsStream, UnixSocket> stream_;
};

}  // namespace tally

#endif  // TALLY_SERVER_STREAM_H_
