// Stream: a server connection's byte stream, either a plain TCP socket or
// TLS over one (Boost.Asio SSL). It offers the subset of tcp::socket's API
// that Connection uses, so Connection's request logic is the same for both,
// and it is an AsyncReadStream/AsyncWriteStream (asio::async_write works on
// it).
//
// The plaintext path costs one predictable branch per operation: no extra
// allocation, no virtual call. A TLS stream must complete AsyncHandshake()
// before it reads or writes; shutdown() and close() act on the TCP socket
// underneath (no TLS close_notify: the peer sees the connection end).
//
// Thread safety: like tcp::socket; use it from its executor (a strand).

#ifndef TALLY_SERVER_STREAM_H_
#define TALLY_SERVER_STREAM_H_

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <utility>
#include <variant>

namespace tally {

class Stream {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  using TlsStream = boost::asio::ssl::stream<Socket>;
  using executor_type = Socket::executor_type;
  using lowest_layer_type = Socket;

  // Plaintext. Implicit, so code handing Connection a tcp::socket still works.
  Stream(Socket socket)  // NOLINT(google-explicit-constructor)
      : stream_(std::in_place_index<0>, std::move(socket)) {}
  // TLS as the server side. `context` must outlive the stream.
  Stream(Socket socket, boost::asio::ssl::context& context)
      : stream_(std::in_place_index<1>, std::move(socket), context) {}

  bool tls() const { return stream_.index() == 1; }

  Socket& lowest_layer() {
    if (Socket* plain = std::get_if<0>(&stream_)) return *plain;
    return std::get<1>(stream_).next_layer();
  }
  const Socket& lowest_layer() const {
    if (const Socket* plain = std::get_if<0>(&stream_)) return *plain;
    return std::get<1>(stream_).next_layer();
  }
  executor_type get_executor() { return lowest_layer().get_executor(); }

  template <typename MutableBuffers, typename Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (Socket* plain = std::get_if<0>(&stream_)) {
      plain->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      std::get<1>(stream_).async_read_some(buffers,
                                           std::forward<Handler>(handler));
    }
  }

  template <typename ConstBuffers, typename Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (Socket* plain = std::get_if<0>(&stream_)) {
      plain->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      std::get<1>(stream_).async_write_some(buffers,
                                            std::forward<Handler>(handler));
    }
  }

  // Runs the server side of the TLS handshake. REQUIRES: tls().
  template <typename Handler>
  void AsyncHandshake(Handler&& handler) {
    std::get<1>(stream_).async_handshake(boost::asio::ssl::stream_base::server,
                                         std::forward<Handler>(handler));
  }
  // The OpenSSL handle of a TLS stream (peer certificate, version); nullptr
  // for plaintext.
  SSL* native_tls_handle() {
    TlsStream* secure = std::get_if<1>(&stream_);
    return secure ? secure->native_handle() : nullptr;
  }

  // tcp::socket's synchronous calls, on the TCP socket underneath.
  template <typename Option>
  void set_option(const Option& option, boost::system::error_code& ec) {
    lowest_layer().set_option(option, ec);
  }
  Socket::endpoint_type remote_endpoint(boost::system::error_code& ec) const {
    return lowest_layer().remote_endpoint(ec);
  }
  void shutdown(Socket::shutdown_type what, boost::system::error_code& ec) {
    lowest_layer().shutdown(what, ec);
  }
  void close(boost::system::error_code& ec) { lowest_layer().close(ec); }
  bool is_open() { return lowest_layer().is_open(); }

 private:
  std::variant<Socket, TlsStream> stream_;
};

}  // namespace tally

#endif  // TALLY_SERVER_STREAM_H_
