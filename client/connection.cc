#include "client/connection.h"

#include <string>
#include <utility>

#include "protocol/codec.h"

namespace tally::client_internal {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr size_t kReadChunk = 64 << 10;

Status Unavailable(std::string_view what) {
  return Status(Code::kUnavailable, what);
}

}  // namespace

Connection::Connection(asio::io_context& io, ConnectionOptions options,
                       std::function<double()> random01)
    : options_(std::move(options)),
      reconnect_backoff_(options_.reconnect, std::move(random01)),
      socket_(io),
      resolver_(io),
      connect_timer_(io) {}

Connection::~Connection() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

std::string Connection::Name() const {
  return options_.endpoint.host + ":" + std::to_string(options_.endpoint.port);
}

bool Connection::Usable(ClientClock::time_point now) const {
  if (state_ == State::kClosed) return false;
  return state_ != State::kBackoff || now >= next_connect_at_;
}

Result<uint64_t> Connection::Send(std::span<const uint8_t> body,
                                  ReplyCallback on_reply) {
  if (state_ == State::kClosed) {
    return Unavailable("client shut down");
  }
  if (state_ == State::kBackoff) {
    if (ClientClock::now() < next_connect_at_) {
      return Unavailable("connection to " + Name() +
                         " is waiting to reconnect after: " + last_error_);
    }
    state_ = State::kIdle;
  }
  if (state_ == State::kIdle) StartConnect();
  const uint64_t id = next_request_id_++;
  AppendFrame(&out_, FrameKind::kRequest, id, body);
  pending_.emplace(id, std::move(on_reply));
  MaybeWrite();
  return id;
}

void Connection::Cancel(uint64_t request_id) { pending_.erase(request_id); }

void Connection::Shutdown(std::string_view reason) { Fail(reason, true); }

void Connection::StartConnect() {
  state_ = State::kConnecting;
  decoder_ = std::make_shared<FrameDecoder>(kDefaultMaxFrameBody,
                                            FrameKind::kResponse);
  // Hello goes first; requests queued while connecting pipeline behind it.
  proto::Request hello;
  hello.body = proto::HelloRequest{.client_name = options_.client_name,
                                   .protocol_version = kProtocolVersion};
  const uint64_t id = next_request_id_++;
  AppendFrame(&out_, FrameKind::kRequest, id, EncodeRequest(hello));
  pending_.emplace(
      id, [this](Result<proto::Response> reply) { OnHello(std::move(reply)); });
  if (!options_.auth_token.empty()) {
    // AUTH next: the server answers in order, so the requests queued behind
    // it run authenticated.
    proto::Request auth;
    auth.body = proto::AuthRequest{.token = options_.auth_token};
    const uint64_t auth_id = next_request_id_++;
    AppendFrame(&out_, FrameKind::kRequest, auth_id, EncodeRequest(auth));
    pending_.emplace(auth_id, [this](Result<proto::Response> reply) {
      OnAuth(std::move(reply));
    });
  }

  const uint64_t generation = generation_;
  auto self = shared_from_this();
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait(
      [this, self, generation](const boost::system::error_code& ec) {
        if (ec || generation != generation_ || state_ != State::kConnecting) {
          return;
        }
        Fail("connect timeout");
      });

  boost::system::error_code ec;
  const asio::ip::address address =
      asio::ip::make_address(options_.endpoint.host, ec);
  if (!ec) {
    socket_.async_connect(
        tcp::endpoint(address, options_.endpoint.port),
        [this, self, generation](const boost::system::error_code& error) {
          OnConnected(generation, error);
        });
    return;
  }
  resolver_.async_resolve(
      options_.endpoint.host, std::to_string(options_.endpoint.port),
      [this, self, generation](const boost::system::error_code& error,
                               const tcp::resolver::results_type& results) {
        if (generation != generation_) return;
        if (error) {
          Fail("cannot resolve " + options_.endpoint.host + ": " +
               error.message());
          return;
        }
        asio::async_connect(
            socket_, results,
            [this, self, generation](const boost::system::error_code& e,
                                     const tcp::endpoint&) {
              OnConnected(generation, e);
            });
      });
}

void Connection::OnConnected(uint64_t generation,
                             const boost::system::error_code& ec) {
  if (generation != generation_) return;
  if (ec) {
    Fail("connect: " + ec.message());
    return;
  }
  connect_timer_.cancel();
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  state_ = State::kReady;
  MaybeWrite();
  DoRead();
}

void Connection::OnHello(Result<proto::Response> reply) {
  if (!reply.ok()) return;  // the connection failed; Fail() handled it
  if (reply->code != Code::kOk) {
    Fail("hello refused: " + std::string(CodeName(reply->code)) + ": " +
         reply->message);
    return;
  }
  consecutive_failures_ = 0;
}

void Connection::OnAuth(Result<proto::Response> reply) {
  if (!reply.ok()) return;  // the connection failed; Fail() handled it
  if (reply->code != Code::kOk) {
    Fail("authentication refused: " + std::string(CodeName(reply->code)) +
         ": " + reply->message);
  }
}

void Connection::MaybeWrite() {
  if (state_ != State::kReady || write_in_progress_ || out_.empty()) return;
  writing_ = std::make_shared<std::vector<uint8_t>>();
  writing_->swap(out_);
  write_in_progress_ = true;
  const uint64_t generation = generation_;
  asio::async_write(socket_, asio::buffer(*writing_),
                    [this, self = shared_from_this(), buffer = writing_,
                     generation](const boost::system::error_code& ec, size_t) {
                      if (generation != generation_) return;
                      write_in_progress_ = false;
                      if (ec) {
                        Fail("write: " + ec.message());
                        return;
                      }
                      // Reuse the buffer's capacity for the next batch of
                      // frames.
                      if (out_.empty() && buffer.use_count() <= 2) {
                        buffer->clear();
                        out_.swap(*buffer);
                      }
                      MaybeWrite();
                    });
}

void Connection::DoRead() {
  std::span<uint8_t> room = decoder_->Prepare(kReadChunk);
  if (room.empty()) {
    Fail("response stream out of sync: " + decoder_->status().ToString());
    return;
  }
  const uint64_t generation = generation_;
  socket_.async_read_some(
      asio::buffer(room.data(), room.size()),
      [this, self = shared_from_this(), decoder = decoder_, generation](
          const boost::system::error_code& ec, size_t n) {
        OnRead(generation, ec, n);
      });
}

void Connection::OnRead(uint64_t generation,
                        const boost::system::error_code& ec, size_t n) {
  if (generation != generation_) return;
  if (ec) {
    Fail(ec == asio::error::eof ? std::string("closed by the server")
                                : "read: " + ec.message());
    return;
  }
  // Keep the decoder alive across callbacks, which may fail this connection.
  std::shared_ptr<FrameDecoder> decoder = decoder_;
  decoder->Commit(n);
  for (;;) {
    Result<std::optional<Frame>> next = decoder->Next();
    if (!next.ok()) {
      Fail("bad frame from the server: " + next.status().ToString());
      return;
    }
    if (!next->has_value()) break;
    const Frame& frame = **next;
    Result<proto::Response> response = DecodeResponse(frame.body);
    if (frame.header.request_id == 0) {
      // A connection-level error: the server closes after it.
      Fail("server closed the connection: " +
           (response.ok() ? std::string(CodeName(response->code)) + ": " +
                                response->message
                          : response.status().ToString()));
      return;
    }
    auto it = pending_.find(frame.header.request_id);
    if (it == pending_.end()) continue;  // cancelled: a late reply
    ReplyCallback callback = std::move(it->second);
    pending_.erase(it);
    callback(std::move(response));
    if (generation != generation_) return;  // a callback failed us
  }
  DoRead();
}

void Connection::Fail(std::string_view reason, bool for_good) {
  if (state_ == State::kClosed) return;
  ++generation_;
  boost::system::error_code ignored;
  socket_.close(ignored);
  resolver_.cancel();
  connect_timer_.cancel();
  out_.clear();
  writing_.reset();
  write_in_progress_ = false;
  decoder_.reset();
  last_error_ = std::string(reason);
  if (for_good) {
    state_ = State::kClosed;
  } else {
    // The first failure of a healthy connection reconnects at once (the
    // server may just have restarted); consecutive ones back off.
    const auto delay =
        consecutive_failures_ == 0
            ? std::chrono::microseconds(0)
            : reconnect_backoff_.Delay(consecutive_failures_ - 1);
    ++consecutive_failures_;
    next_connect_at_ = ClientClock::now() + delay;
    state_ = State::kBackoff;
  }
  std::unordered_map<uint64_t, ReplyCallback> failed;
  failed.swap(pending_);
  const Status status =
      for_good
          ? Unavailable(reason)
          : Unavailable("connection to " + Name() + " failed: " + last_error_);
  for (auto& [id, callback] : failed) callback(status);
}

}  // namespace tally::client_internal
