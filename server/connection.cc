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
      decoder_(options.max_frame_body, FrameKind::kRequest),
      limit_stats_(service->limit_stats()),
      command_stats_(service->command_stats()),
      timer_(socket_.get_executor()),
      last_frame_(BootClock::now()),
      session_(options.auth, socket_.PeerAddress(), options.admin_allow_remote,
               service->limit_stats()),
      auth_timer_(socket_.get_executor()) {
  LimitStats::Bump(limit_stats_->connections_total);
  LimitStats::Bump(limit_stats_->connections_current);
  if (options_.auth) {
    decoder_.set_max_body(
        std::min(options_.auth->pre_auth_max_frame, options_.max_frame_body));
  }
}

Connection::~Connection() {
  limit_stats_->connections_current.fetch_sub(1, std::memory_order_relaxed);
  // Requests never answered (closed first) leave the in-flight gauge.
  int64_t unanswered = 0;
  for (const Slot& slot : slots_) unanswered += slot.reply ? 0 : 1;
  if (unanswered > 0) command_stats_->Abandoned(unanswered);
  UnregisterClient();
}

uint64_t Connection::NewSlot(BootClock::time_point received) {
  slots_.emplace_back();
  slots_.back().received = received;
  command_stats_->Started();
  return slot_base_ + slots_.size() - 1;
}

void Connection::Start() {
  boost::system::error_code ignored;
  socket_.SetNoDelay(ignored);
  RegisterClient();
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
    self->Handshake();
  });
}

bool Connection::AnsweredByAuth(uint64_t seq, uint64_t request_id,
                                proto::Request* request,
                                std::vector<size_t>* denied) {
  if (request->op() == proto::Op::kAuth) {
    proto::Response reply = session_.Authenticate(
        std::get<proto::AuthRequest>(request->body), BootClock::now());
    if (!session_.authenticated() && options_.auth &&
        options_.auth->failure_delay.count() > 0) {
      DelayAuthReply(seq, request_id, std::move(reply));
      return true;
    }
    Complete(seq, request_id, reply);
    if (session_.authenticated()) {
      decoder_.set_max_body(options_.max_frame_body);
      auth_timer_.cancel();
      NoteUser();  // CLIENT LIST shows the token before the next request
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

void Connection::DelayAuthReply(uint64_t seq, uint64_t request_id,
                                proto::Response response) {
  LimitStats::Bump(limit_stats_->auth_failures_delayed);
  auth_delayed_ = true;
  if (!auth_delay_timer_) {
    auth_delay_timer_ = std::make_unique<BootTimer>(socket_.get_executor());
  }
  auth_delay_timer_->expires_after(options_.auth->failure_delay);
  auth_delay_timer_->async_wait(
      [self = shared_from_this(), seq, request_id,
       response = std::move(response)](const boost::system::error_code&) {
        self->auth_delayed_ = false;
        if (self->closed_) return;
        self->Complete(seq, request_id, response);
        if (self->session_.must_close()) self->closing_ = true;
        self->MaybeWrite();
        self->DoRead();  // processes the frames that waited, then reads
      });
}

void Connection::Handshake() {
  if (!socket_.tls()) {
    DoRead();
    ArmTimer();  // the idle timeout, if any
    return;
  }
  handshake_timer_ = std::make_unique<BootTimer>(socket_.get_executor());
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
    self->ArmTimer();
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
  // A failed AUTH's delay: nothing more is read or answered until it ends.
  if (reading_ || closing_ || closed_ || auth_delayed_) return;
  if (frames_waiting_ && slots_.size() < options_.max_in_flight) {
    // Frames already buffered come before more bytes (the client may be
    // waiting for their replies before it sends anything else).
    ProcessFrames();
    MaybeWrite();
    // No read during an AUTH delay either: its timer resumes here.
    if (closing_ || closed_ || auth_delayed_) return;
  }
  if (pending_.size() + writing_.size() > options_.max_output_bytes) {
    // The client is not reading its replies: wait for the writes.
    if (!paused_) LimitStats::Bump(limit_stats_->output_paused);
    paused_ = true;
    return;
  }
  if (slots_.size() >= options_.max_in_flight) {
    // Enough requests wait for the WAL: wait for them.
    if (!paused_) LimitStats::Bump(limit_stats_->in_flight_paused);
    paused_ = true;
    return;
  }
  paused_ = false;
  size_t chunk = options_.read_chunk;
  if (decoder_.buffered() == 0 && !last_read_filled_) {
    // Nothing buffered and the client is not streaming: read small, and
    // give back a large buffer, so an idle connection holds little.
    chunk = std::min(chunk, options_.idle_read_chunk);
    if (decoder_.capacity() > chunk) decoder_.Shrink();
  }
  std::span<uint8_t> room = decoder_.Prepare(chunk);
  if (room.empty()) return;  // failed decoder: closing
  last_read_filled_ = false;
  reading_ = true;
  socket_.async_read_some(asio::buffer(room.data(), room.size()),
                          [self = shared_from_this(), size = room.size()](
                              const boost::system::error_code& ec, size_t n) {
                            self->last_read_filled_ = !ec && n == size;
                            self->OnRead(ec, n);
                          });
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
  command_stats_->NetInput(n);
  const uint64_t slots_before = slot_base_ + slots_.size();
  ProcessFrames();
  TrackFrame(n, slot_base_ + slots_.size() != slots_before);
  MaybeWrite();
  DoRead();
}

void Connection::TrackFrame(size_t n, bool frames_done) {
  if (frames_done) {
    // A frame ended in this read; what is left begins the next one.
    in_frame_ = false;
    frame_bytes_ = 0;
    n = decoder_.buffered();
  }
  if (decoder_.buffered() == 0 || n == 0) return;
  if (in_frame_) {
    frame_bytes_ += n;
    return;
  }
  in_frame_ = true;
  frame_start_ = BootClock::now();
  frame_bytes_ = n;
  if (options_.frame_timeout_ms > 0) ArmTimer();
}

std::optional<BootClock::time_point> Connection::FrameDeadline() const {
  if (!in_frame_ || options_.frame_timeout_ms <= 0) return std::nullopt;
  const auto deadline =
      frame_start_ + std::chrono::milliseconds(options_.frame_timeout_ms);
  if (frame_bytes_ < kFrameHeaderSize) return deadline;  // the header's
  if (options_.min_frame_rate_bytes_per_s <= 0) return std::nullopt;
  // The body must keep up min_rate after the header's grace: it fails once
  // min_rate * (elapsed - grace) exceeds the bytes received.
  return deadline +
         std::chrono::milliseconds(static_cast<int64_t>(
             frame_bytes_ * 1000 /
             static_cast<uint64_t>(options_.min_frame_rate_bytes_per_s)));
}

std::optional<BootClock::time_point> Connection::NextCheck() const {
  std::optional<BootClock::time_point> next = FrameDeadline();
  if (options_.idle_timeout_ms > 0) {
    // One timeout after the last frame (when busy then, OnTimer looks
    // again one timeout later).
    const auto at =
        last_frame_ + std::chrono::milliseconds(options_.idle_timeout_ms);
    if (!next || at < *next) next = at;
  }
  return next;
}

void Connection::ArmTimer() {
  if (closed_ || closing_) return;
  std::optional<BootClock::time_point> next = NextCheck();
  if (!next) return;
  if (timer_armed_ && timer_at_ <= *next) return;  // fires early enough
  timer_armed_ = true;
  timer_at_ = *next;
  const uint64_t generation = ++timer_generation_;
  timer_.expires_at(*next);
  timer_.async_wait([self = shared_from_this(),
                     generation](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    self->OnTimer(generation);
  });
}

void Connection::OnTimer(uint64_t generation) {
  if (generation != timer_generation_) return;  // re-armed since
  timer_armed_ = false;
  if (closed_ || closing_) return;
  const auto now = BootClock::now();
  if (!reading_) {
    // Paused by backpressure: the client is not the one late. Restart the
    // frame's clock once reads resume.
    if (in_frame_) {
      frame_start_ = now;
      frame_bytes_ = decoder_.buffered();
    }
    last_frame_ = now;
  } else {
    if (const auto deadline = FrameDeadline(); deadline && now >= *deadline) {
      const bool header = frame_bytes_ < kFrameHeaderSize;
      LimitStats::Bump(limit_stats_->frame_timeout);
      LOG_EVERY_N(WARNING, 100)
          << "closing a connection whose frame is too slow (" << frame_bytes_
          << " bytes in "
          << std::chrono::duration_cast<std::chrono::milliseconds>(now -
                                                                   frame_start_)
                 .count()
          << " ms)";
      CloseForLimit(Status(
          Code::kDeadlineExceeded,
          header
              ? "frame header not received within " +
                    std::to_string(options_.frame_timeout_ms) + " ms; closing"
              : "frame body slower than " +
                    std::to_string(options_.min_frame_rate_bytes_per_s) +
                    " bytes/s; closing"));
      return;
    }
    // No complete frame for the timeout and nothing owed to the client (a
    // partial frame does not count as activity). A MONITOR stream sends no
    // frames by design and is never idle (Redis exempts monitors too).
    const bool idle =
        slots_.empty() && pending_.empty() && !writing_now_ && !monitor_;
    if (options_.idle_timeout_ms > 0 &&
        now >=
            last_frame_ + std::chrono::milliseconds(options_.idle_timeout_ms)) {
      if (idle) {
        LimitStats::Bump(limit_stats_->idle_timeout);
        Close();  // like Redis' timeout: no reply, just closed
        return;
      }
      last_frame_ = now;  // busy: look again one timeout from now
    }
  }
  ArmTimer();
}

void Connection::CloseForLimit(const Status& why) {
  closing_ = true;
  if (!Idle()) {
    Close();  // replies still owed: no room to say why in order
    return;
  }
  AppendFrame(&pending_, FrameKind::kResponse, 0,
              EncodeResponse(proto::Response::Error(why)));
  MaybeWrite();  // closes once written
}

void Connection::ProcessFrames() {
  frames_waiting_ = false;
  while (!closing_) {
    if (slots_.size() >= options_.max_in_flight || auth_delayed_) {
      frames_waiting_ = decoder_.buffered() > 0;
      return;
    }
    Result<std::optional<Frame>> next = decoder_.Next();
    if (!next.ok()) {
      // Broken framing: say why, then close once the replies are written.
      LimitStats::Bump(next.status().code() == Code::kFrameTooLarge
                           ? limit_stats_->frame_too_large
                           : limit_stats_->protocol_error);
      LOG_EVERY_N(WARNING, 100)
          << "closing connection: " << next.status().ToString();
      Complete(NewSlot(BootClock::now()), 0,
               proto::Response::Error(next.status()));
      closing_ = true;
      return;
    }
    if (!next->has_value()) return;
    const Frame& frame = **next;
    const auto received = BootClock::now();
    last_frame_ = received;
    const uint64_t seq = NewSlot(received);
    const uint64_t request_id = frame.header.request_id;
    Result<proto::Request> request =
        DecodeRequest(frame.body, options_.max_frame_body);
    if (!request.ok()) {
      Complete(seq, request_id, proto::Response::Error(request.status()));
      continue;
    }
    slots_.back().op = request->op();
    std::vector<size_t> denied;  // items outside a writer's key prefixes
    if (AnsweredByAuth(seq, request_id, &*request, &denied)) continue;
    if (client_ &&
        AnsweredByIntrospection(seq, request_id, *request, received)) {
      continue;
    }
    std::optional<proto::Response> now = service_->Handle(
        *request, received,
        [self = shared_from_this(), seq, request_id, denied, received,
         slow = SlowProbe(*request)](Service::Deferred make_reply) {
          // From the journal's thread: build the reply on our strand.
          asio::post(self->socket_.get_executor(),
                     [self, seq, request_id, denied, received, slow,
                      make_reply = std::move(make_reply)] {
                       --self->deferred_;
                       if (self->closed_) return;
                       proto::Response reply = make_reply();
                       Session::Restore(denied, &reply);
                       self->Complete(seq, request_id, reply);
                       self->AfterDeferredReply(received, slow);
                       self->MaybeWrite();
                       self->DoRead();
                     });
        },
        /*behind_mutation=*/deferred_ > 0, client_id());
    if (now) {
      Session::Restore(denied, &*now);
      Complete(seq, request_id, *now);
      LogIfSlow(received, *request);
    } else {
      ++deferred_;
    }
  }
}

void Connection::Complete(uint64_t seq, uint64_t request_id,
                          const proto::Response& response) {
  {
    const Slot& slot = slots_[seq - slot_base_];
    command_stats_->Record(
        slot.op, response.code,
        static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(
                BootClock::now() - slot.received)
                .count()));
  }
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
    slots_[seq - slot_base_].reply = std::move(bytes);
  }
  while (!slots_.empty() && slots_.front().reply.has_value()) {
    const std::vector<uint8_t>& ready = *slots_.front().reply;
    pending_.insert(pending_.end(), ready.begin(), ready.end());
    slots_.pop_front();
    ++slot_base_;
  }
}

void Connection::MaybeWrite() {
  if (writing_now_ || closed_) return;
  if (pending_.empty()) {
    if (closing_ && slots_.empty()) Close();
    PublishLoad();
    return;
  }
  writing_.swap(pending_);
  PublishLoad();
  writing_now_ = true;
  asio::async_write(
      socket_, asio::buffer(writing_),
      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
        self->OnWrite(ec);
      });
}

void Connection::OnWrite(const boost::system::error_code& ec) {
  writing_now_ = false;
  if (!ec) command_stats_->NetOutput(writing_.size());
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
  UnregisterClient();
  timer_.cancel();
  auth_timer_.cancel();
  if (auth_delay_timer_) auth_delay_timer_->cancel();
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace tally
