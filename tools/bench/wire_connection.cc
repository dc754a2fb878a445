#include "tools/bench/wire_connection.h"

#include "protocol/codec.h"

namespace tally::bench {

namespace asio = boost::asio;

WireConnection::WireConnection(asio::ssl::context* tls)
    : socket_(io_),
      tls_context_(tls),
      decoder_(kDefaultMaxFrameBody, FrameKind::kResponse) {}

Status WireConnection::Connect(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(io_);
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (!ec) asio::connect(socket_, endpoints, ec);
  if (ec) {
    return Status(Code::kUnavailable, "cannot connect to " + host + ":" +
                                          std::to_string(port) + ": " +
                                          ec.message());
  }
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  if (tls_context_ != nullptr) {
    tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(
        socket_, *tls_context_);
    tls_->set_verify_mode(asio::ssl::verify_peer, ec);
    tls_->set_verify_callback(asio::ssl::host_name_verification(host), ec);
    tls_->handshake(asio::ssl::stream_base::client, ec);
    if (ec) {
      return Status(Code::kUnavailable,
                    "TLS handshake with " + host + ": " + ec.message());
    }
  }
  return Status::Ok();
}

Result<proto::Response> WireConnection::Call(const proto::Request& request) {
  const uint64_t id = next_id_++;
  out_.clear();
  AppendFrame(&out_, FrameKind::kRequest, id, EncodeRequest(request));
  boost::system::error_code ec;
  if (tls_) {
    asio::write(*tls_, asio::buffer(out_), ec);
  } else {
    asio::write(socket_, asio::buffer(out_), ec);
  }
  if (ec) return Status(Code::kUnavailable, "write: " + ec.message());
  for (;;) {
    Result<std::optional<Frame>> next = decoder_.Next();
    if (!next.ok()) return next.status();
    if (next->has_value()) {
      if ((*next)->header.request_id != id) {
        return Status(Code::kProtocolError, "reply to another request");
      }
      return DecodeResponse((*next)->body);
    }
    std::span<uint8_t> room = decoder_.Prepare(64 << 10);
    const size_t n =
        tls_ ? tls_->read_some(asio::buffer(room.data(), room.size()), ec)
             : socket_.read_some(asio::buffer(room.data(), room.size()), ec);
    decoder_.Commit(ec ? 0 : n);
    if (ec) return Status(Code::kUnavailable, "read: " + ec.message());
  }
}

}  // namespace tally::bench
