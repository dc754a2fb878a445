#include "client/connection.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/un.h>

#include <boost/asio/ssl/host_name_verification.hpp>
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

// Why a TLS handshake failed, in words an operator can act on.
std::string HandshakeError(SSL* ssl, const boost::system::error_code& ec,
                           const std::string& server_name) {
  std::string text = "TLS handshake failed: " + ec.message();
  const long verify = SSL_get_verify_result(ssl);  // NOLINT(runtime/int)
  if (verify != X509_V_OK) {
    text += ": ";
    text += X509_verify_cert_error_string(verify);
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH ||
        verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      text += " (expected '" + server_name + "')";
    }
  } else if (ec.category() == asio::error::get_ssl_category() ||
             ec == asio::error::eof) {
    text += " (is the server serving TLS, and does it accept this client?)";
  }
  return text;
}

// The OpenSSL error queue's last entry (the most specific), or `fallback`.
std::string OpenSslError(const boost::system::error_code& fallback) {
  std::string text;
  unsigned long code;  // NOLINT(runtime/int): OpenSSL's type
  while ((code = ERR_get_error()) != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    text = buffer;
  }
  return text.empty() ? fallback.message() : text;
}

Status TlsFileError(std::string_view what, const std::string& file,
                    const boost::system::error_code& ec) {
  return Status::InvalidArgument("TLS: cannot load " + std::string(what) +
                                 " '" + file + "': " + OpenSslError(ec));
}

}  // namespace

Result<std::shared_ptr<asio::ssl::context>> MakeClientTlsContext(
    const TlsOptions& options) {
  if (options.cert_file.empty() != options.key_file.empty()) {
    return Status::InvalidArgument(
        "TLS: a client certificate needs both cert_file and key_file");
  }
  ERR_clear_error();
  auto context =
      std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  context->set_options(
      asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
          asio::ssl::context::no_tlsv1_1,
      ec);
  if (ec || SSL_CTX_set_min_proto_version(context->native_handle(),
                                          TLS1_2_VERSION) != 1) {
    return Status::Internal("TLS: cannot restrict to TLS 1.2+");
  }
  if (options.ca_file.empty()) {
    context->set_default_verify_paths(ec);
    if (ec) return TlsFileError("the system's default CAs", "", ec);
  } else {
    context->load_verify_file(options.ca_file, ec);
    if (ec) return TlsFileError("ca_file", options.ca_file, ec);
  }
  context->set_verify_mode(asio::ssl::verify_peer, ec);
  if (!options.cert_file.empty()) {
    context->use_certificate_chain_file(options.cert_file, ec);
    if (ec) return TlsFileError("cert_file", options.cert_file, ec);
    context->use_private_key_file(options.key_file, asio::ssl::context::pem,
                                  ec);
    if (ec) return TlsFileError("key_file", options.key_file, ec);
    if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
      return Status::InvalidArgument("TLS: key_file '" + options.key_file +
                                     "' does not match cert_file '" +
                                     options.cert_file + "'");
    }
  }
  ERR_clear_error();
  return context;
}

Connection::Connection(asio::io_context& io, ConnectionOptions options,
                       std::function<double()> random01)
    : options_(std::move(options)),
      reconnect_backoff_(options_.reconnect, std::move(random01)),
      socket_(io),
      unix_socket_(io),
      resolver_(io),
      connect_timer_(io) {}

Connection::~Connection() {
  boost::system::error_code ignored;
  Socket().close(ignored);
  unix_socket_.close(ignored);
}

std::string Connection::Name() const { return EndpointName(options_.endpoint); }

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

Result<uint64_t> Connection::SendStream(std::span<const uint8_t> body,
                                        ReplyCallback on_frame) {
  Result<uint64_t> id = Send(body, std::move(on_frame));
  if (id.ok()) streams_.insert(*id);
  return id;
}

void Connection::Cancel(uint64_t request_id) {
  pending_.erase(request_id);
  streams_.erase(request_id);
}

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

  // Never TLS on a Unix socket (client.h Endpoint).
  if (options_.tls_context && !unix_socket()) {
    tls_ = std::make_shared<TlsStream>(socket_.get_executor(),
                                       *options_.tls_context);
    const std::string& name = options_.tls_server_name.empty()
                                  ? options_.endpoint.host
                                  : options_.tls_server_name;
    boost::system::error_code ignored;
    asio::ip::make_address(name, ignored);
    if (ignored) {  // not an IP address
      // SNI carries host names only (RFC 6066).
      SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());
    }
    tls_->set_verify_callback(
        [check = asio::ssl::host_name_verification(name)](
            bool preverified, asio::ssl::verify_context& ctx) mutable {
          if (!check(preverified, ctx)) {
            // Name the failure: the handshake error then says why.
            if (preverified) {
              X509_STORE_CTX_set_error(ctx.native_handle(),
                                       X509_V_ERR_HOSTNAME_MISMATCH);
            }
            return false;
          }
          return true;
        },
        ignored);
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

  if (unix_socket()) {
    ConnectUnix(generation);
    return;
  }
  boost::system::error_code ec;
  const asio::ip::address address =
      asio::ip::make_address(options_.endpoint.host, ec);
  if (!ec) {
    Socket().async_connect(
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
            Socket(), results,
            [this, self, generation](const boost::system::error_code& e,
                                     const tcp::endpoint&) {
              OnConnected(generation, e);
            });
      });
}

void Connection::ConnectUnix(uint64_t generation) {
  const std::string path = options_.endpoint.host.substr(5);  // "unix:"
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    // The endpoint would throw; fail like a connect error, after Send()
    // has queued its request.
    asio::post(unix_socket_.get_executor(),
               [this, self = shared_from_this(), generation] {
                 OnConnected(generation, asio::error::name_too_long);
               });
    return;
  }
  unix_socket_.async_connect(asio::local::stream_protocol::endpoint(path),
                             [this, self = shared_from_this(), generation](
                                 const boost::system::error_code& error) {
                               OnConnected(generation, error);
                             });
}

void Connection::OnConnected(uint64_t generation,
                             const boost::system::error_code& ec) {
  if (generation != generation_) return;
  if (ec) {
    Fail("connect: " + ec.message());
    return;
  }
  boost::system::error_code ignored;
  if (!unix_socket()) Socket().set_option(tcp::no_delay(true), ignored);
  if (tls_) {
    // Still kConnecting: connect_timeout also bounds the handshake.
    tls_->async_handshake(
        asio::ssl::stream_base::client,
        [this, self = shared_from_this(), tls = tls_,
         generation](const boost::system::error_code& error) {
          if (generation != generation_) return;
          if (error) {
            Fail(HandshakeError(tls->native_handle(), error,
                                options_.tls_server_name.empty()
                                    ? options_.endpoint.host
                                    : options_.tls_server_name));
            return;
          }
          OnReady();
        });
    return;
  }
  OnReady();
}

void Connection::OnReady() {
  connect_timer_.cancel();
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
  auto on_written = [this, self = shared_from_this(), buffer = writing_,
                     tls = tls_,
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
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(*writing_), std::move(on_written));
  } else if (unix_socket()) {
    asio::async_write(unix_socket_, asio::buffer(*writing_),
                      std::move(on_written));
  } else {
    asio::async_write(socket_, asio::buffer(*writing_), std::move(on_written));
  }
}

void Connection::DoRead() {
  std::span<uint8_t> room = decoder_->Prepare(kReadChunk);
  if (room.empty()) {
    Fail("response stream out of sync: " + decoder_->status().ToString());
    return;
  }
  const uint64_t generation = generation_;
  auto on_read = [this, self = shared_from_this(), decoder = decoder_,
                  tls = tls_,
                  generation](const boost::system::error_code& ec, size_t n) {
    OnRead(generation, ec, n);
  };
  if (tls_) {
    tls_->async_read_some(asio::buffer(room.data(), room.size()),
                          std::move(on_read));
  } else if (unix_socket()) {
    unix_socket_.async_read_some(asio::buffer(room.data(), room.size()),
                                 std::move(on_read));
  } else {
    socket_.async_read_some(asio::buffer(room.data(), room.size()),
                            std::move(on_read));
  }
}

void Connection::OnRead(uint64_t generation,
                        const boost::system::error_code& ec, size_t n) {
  if (generation != generation_) return;
  if (ec) {
    // A TLS server closes without close_notify: stream_truncated.
    Fail(ec == asio::error::eof || ec == asio::ssl::error::stream_truncated
             ? std::string("closed by the server")
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
    ReplyCallback callback;
    if (streams_.contains(it->first)) {
      callback = it->second;  // a stream's: more frames follow
    } else {
      callback = std::move(it->second);
      pending_.erase(it);
    }
    callback(std::move(response));
    if (generation != generation_) return;  // a callback failed us
  }
  DoRead();
}

void Connection::Fail(std::string_view reason, bool for_good) {
  if (state_ == State::kClosed) return;
  ++generation_;
  boost::system::error_code ignored;
  Socket().close(ignored);
  unix_socket_.close(ignored);
  tls_.reset();  // its in-flight handlers keep it alive until they run
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
  streams_.clear();
  const Status status =
      for_good
          ? Unavailable(reason)
          : Unavailable("connection to " + Name() + " failed: " + last_error_);
  for (auto& [id, callback] : failed) callback(status);
}

}  // namespace tally::client_internal
