#include "server/connection.h"

#include <glog/logging.h>

#include "protocol/codec.h"

namespace tally {

namespace asio = boost::asio;

Connection::Connection(asio::ip::tcp::socket socket, Service* service,
                       const ConnectionOptions& options)
    : socket_(std::move(socket)),
      service_(service),
      options_(options),
      decoder_(options.max_frame_body, FrameKind::kRequest) {}

void Connection::Start() {
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  asio::dispatch(socket_.get_executor(),
                 [self = shared_from_this()] { self->DoRead(); });
}

void Connection::Shutdown() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->closing_ = true;
    boost::system::error_code ignored;
    self->socket_.shutdown(asio::ip::tcp::socket::shutdown_receive, ignored);
    if (!self->writing_now_ && self->pending_.empty()) self->Close();
  });
}

void Connection::DoRead() {
  if (reading_ || closing_ || closed_) return;
  if (pending_.size() + writing_.size() > options_.max_output_bytes) {
    return;  // the client is not reading its replies: wait for the writes
  }
  std::span<uint8_t> room = decoder_.Prepare(options_.read_chunk);
  if (room.empty()) return;  // failed decoder: closing
  reading_ = true;
  socket_.async_read_some(
      asio::buffer(room.data(), room.size()),
      [self = shared_from_this()](const boost::system::error_code& ec,
                                  size_t n) { self->OnRead(ec, n); });
}

void Connection::OnRead(const boost::system::error_code& ec, size_t n) {
  reading_ = false;
  if (ec) {
    // EOF or reset: flush what is pending, then close.
    closing_ = true;
    decoder_.Commit(0);
    if (!writing_now_ && pending_.empty()) Close();
    return;
  }
  decoder_.Commit(n);
  ProcessFrames();
  MaybeWrite();
  DoRead();
}

void Connection::ProcessFrames() {
  while (!closing_) {
    Result<std::optional<Frame>> next = decoder_.Next();
    if (!next.ok()) {
      // Broken framing: say why, then close once the reply is written.
      LOG(WARNING) << "closing connection: " << next.status().ToString();
      AppendFrame(&pending_, FrameKind::kResponse, 0,
                  EncodeResponse(proto::Response::Error(next.status())));
      closing_ = true;
      return;
    }
    if (!next->has_value()) return;
    const Frame& frame = **next;
    const auto received = std::chrono::steady_clock::now();
    Result<proto::Request> request =
        DecodeRequest(frame.body, options_.max_frame_body);
    const proto::Response response =
        request.ok() ? service_->Handle(*request, received)
                     : proto::Response::Error(request.status());
    AppendFrame(&pending_, FrameKind::kResponse, frame.header.request_id,
                EncodeResponse(response));
  }
}

void Connection::MaybeWrite() {
  if (writing_now_ || closed_) return;
  if (pending_.empty()) {
    if (closing_) Close();
    return;
  }
  writing_.swap(pending_);
  writing_now_ = true;
  asio::async_write(
      socket_, asio::buffer(writing_),
      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
        self->OnWrite(ec);
      });
}

void Connection::OnWrite(const boost::system::error_code& ec) {
  writing_now_ = false;
  writing_.clear();
  if (ec) {
    Close();
    return;
  }
  MaybeWrite();
  DoRead();  // resumes a read paused by backpressure
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace tally
