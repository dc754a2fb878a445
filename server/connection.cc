#include "server/connection.h"

#include <glog/logging.h>

#include "protocol/codec.h"

namespace tally {

namespace asio = boost::asio;

namespace {

std::string PeerAddress(const asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  const asio::ip::tcp::endpoint peer = socket.remote_endpoint(ec);
  return ec ? std::string("unknown") : peer.address().to_string();
}

}  // namespace

Connection::Connection(asio::ip::tcp::socket socket, Service* service,
                       const ConnectionOptions& options)
    : socket_(std::move(socket)),
      service_(service),
      options_(options),
      decoder_(options.max_frame_body, FrameKind::kRequest),
      session_(options.auth, PeerAddress(socket_)),
      auth_timer_(socket_.get_executor()) {
  if (options_.auth) {
    decoder_.set_max_body(
        std::min(options_.auth->pre_auth_max_frame, options_.max_frame_body));
  }
}

void Connection::Start() {
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    if (self->options_.auth) {
      self->auth_timer_.expires_after(self->options_.auth->auth_timeout);
      self->auth_timer_.async_wait([self](const boost::system::error_code& ec) {
        if (ec || self->closed_ || self->session_.authenticated()) return;
        if (self->options_.auth->denials) {
          self->options_.auth->denials->Log(
              "auth: closing a connection that did not authenticate in "
              "time, source=" +
              self->session_.source());
        }
        self->Close();
      });
    }
    self->DoRead();
  });
}

bool Connection::AnsweredByAuth(uint64_t seq, uint64_t request_id,
                                proto::Request* request,
                                std::vector<size_t>* denied) {
  if (request->op() == proto::Op::kAuth) {
    Complete(seq, request_id,
             session_.Authenticate(std::get<proto::AuthRequest>(request->body),
                                   std::chrono::steady_clock::now()));
    if (session_.authenticated()) {
      decoder_.set_max_body(options_.max_frame_body);
      auth_timer_.cancel();
    }
  } else if (Status denial = session_.Authorize(request, denied);
             !denial.ok()) {
    Complete(seq, request_id, proto::Response::Error(denial));
  } else {
    return false;
  }
  if (session_.must_close()) closing_ = true;
  return true;
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
    std::vector<size_t> denied;  // items outside a writer's key prefixes
    if (AnsweredByAuth(seq, request_id, &*request, &denied)) continue;
    std::optional<proto::Response> now = service_->Handle(
        *request, received,
        [self = shared_from_this(), seq, request_id,
         denied](Service::Deferred make_reply) {
          // From the journal's thread: build the reply on our strand.
          asio::post(self->socket_.get_executor(),
                     [self, seq, request_id, denied,
                      make_reply = std::move(make_reply)] {
                       --self->deferred_;
                       if (self->closed_) return;
                       proto::Response reply = make_reply();
                       Session::Restore(denied, &reply);
                       self->Complete(seq, request_id, reply);
                       self->MaybeWrite();
                       self->DoRead();
                     });
        },
        /*behind_mutation=*/deferred_ > 0);
    if (now) {
      Session::Restore(denied, &*now);
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
  auth_timer_.cancel();
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace tally
