#include "server/connection.h"

#include <glog/logging.h>

#include "protocol/codec.h"

namespace tally {

namespace asio = boost::asio;

Connection::Connection(Stream socket, Service* service,
                       const ConnectionOptions& options)
    : socket_(std::move(socket)),
      service_(service),
      options_(options),
      decoder_(options.max_frame_body, FrameKind::kRequest) {}

void Connection::Start() {
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  asio::dispatch(socket_.get_executor(),
                 [self = shared_from_this()] { self->Handshake(); });
}

void Connection::Handshake() {
  if (!socket_.tls()) {
    DoRead();
    return;
  }
  handshake_timer_ =
      std::make_unique<asio::steady_timer>(socket_.get_executor());
  handshake_timer_->expires_after(options_.tls_handshake_timeout);
  handshake_timer_->async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) {
        if (ec || self->closed_) return;  // finished or closed in time
        LOG_EVERY_N(WARNING, 100) << "closing connection: TLS handshake not "
                                     "finished within the timeout";
        self->Close();
      });
  socket_.AsyncHandshake([self = shared_from_this()](
                             const boost::system::error_code& ec) {
    self->handshake_timer_->cancel();
    if (self->closed_) return;
    if (ec) {
      boost::system::error_code ignored;
      LOG_EVERY_N(WARNING, 100) << "closing connection from "
                                << self->socket_.remote_endpoint(ignored)
                                << ": TLS handshake failed: " << ec.message();
      self->Close();
      return;
    }
    self->DoRead();
  });
}

void Connection::Shutdown() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->closing_ = true;
    boost::system::error_code ignored;
    self->socket_.shutdown(asio::ip::tcp::socket::shutdown_receive, ignored);
    if (self->Idle()) self->Close();
  });
}

void Connection::DoRead() {
  if (reading_ || closing_ || closed_) return;
  if (pending_.size() + writing_.size() > options_.max_output_bytes) {
    return;  // the client is not reading its replies: wait for the writes
  }
  if (slots_.size() >= options_.max_in_flight) {
    return;  // enough requests wait for the WAL: wait for them
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
    if (Idle()) Close();
    return;
  }
  decoder_.Commit(n);
  ProcessFrames();
  MaybeWrite();
  DoRead();
}

void Connection::ProcessFrames() {
  while (!closing_ && slots_.size() < options_.max_in_flight) {
    Result<std::optional<Frame>> next = decoder_.Next();
    if (!next.ok()) {
      // Broken framing: say why, then close once the replies are written.
      LOG(WARNING) << "closing connection: " << next.status().ToString();
      slots_.emplace_back();
      Complete(slot_base_ + slots_.size() - 1, 0,
               proto::Response::Error(next.status()));
      closing_ = true;
      return;
    }
    if (!next->has_value()) return;
    const Frame& frame = **next;
    const auto received = std::chrono::steady_clock::now();
    const uint64_t seq = slot_base_ + slots_.size();
    const uint64_t request_id = frame.header.request_id;
    slots_.emplace_back();
    Result<proto::Request> request =
        DecodeRequest(frame.body, options_.max_frame_body);
    if (!request.ok()) {
      Complete(seq, request_id, proto::Response::Error(request.status()));
      continue;
    }
    std::optional<proto::Response> now = service_->Handle(
        *request, received,
        [self = shared_from_this(), seq,
         request_id](Service::Deferred make_reply) {
          // From the journal's thread: build the reply on our strand.
          asio::post(
              self->socket_.get_executor(),
              [self, seq, request_id, make_reply = std::move(make_reply)] {
                --self->deferred_;
                if (self->closed_) return;
                self->Complete(seq, request_id, make_reply());
                self->MaybeWrite();
                self->DoRead();
              });
        },
        /*behind_mutation=*/deferred_ > 0);
    if (now) {
      Complete(seq, request_id, *now);
    } else {
      ++deferred_;
    }
  }
}

void Connection::Complete(uint64_t seq, uint64_t request_id,
                          const proto::Response& response) {
  if (seq == slot_base_) {
    // Next in order (the usual case): straight to the output.
    AppendFrame(&pending_, FrameKind::kResponse, request_id,
                EncodeResponse(response));
    slots_.pop_front();
    ++slot_base_;
  } else {
    std::vector<uint8_t> bytes;
    AppendFrame(&bytes, FrameKind::kResponse, request_id,
                EncodeResponse(response));
    slots_[seq - slot_base_] = std::move(bytes);
  }
  while (!slots_.empty() && slots_.front().has_value()) {
    const std::vector<uint8_t>& ready = *slots_.front();
    pending_.insert(pending_.end(), ready.begin(), ready.end());
    slots_.pop_front();
    ++slot_base_;
  }
}

void Connection::MaybeWrite() {
  if (writing_now_ || closed_) return;
  if (pending_.empty()) {
    if (closing_ && slots_.empty()) Close();
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
