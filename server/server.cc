#include "server/server.h"

#include <glog/logging.h>
#include <sys/resource.h>

#include "protocol/codec.h"

namespace tally {

namespace asio = boost::asio;

Server::Server(Service* service, ServerOptions options)
    : service_(service),
      options_(std::move(options)),
      strand_(asio::make_strand(io_)),
      acceptor_(strand_),
      accept_retry_timer_(strand_) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  if (options_.tls.enabled()) {
    Result<std::unique_ptr<asio::ssl::context>> context =
        MakeServerTlsContext(options_.tls);
    if (!context.ok()) return context.status();
    tls_context_ = std::move(*context);
  }
  boost::system::error_code ec;
  const asio::ip::address address = asio::ip::make_address(options_.bind, ec);
  if (ec) {
    return Status::InvalidArgument("bad bind address '" + options_.bind +
                                   "': " + ec.message());
  }
  const asio::ip::tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(Code::kUnavailable, "cannot listen on " + options_.bind +
                                          ":" + std::to_string(options_.port) +
                                          ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  // Connections stay below the descriptor limit, keeping a reserve for the
  // WAL, snapshots and policy files (and the listener itself).
  max_connections_ = std::max(1, options_.max_connections);
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
      nofile.rlim_cur != RLIM_INFINITY) {
    const int64_t room = static_cast<int64_t>(nofile.rlim_cur) -
                         std::max(0, options_.fd_reserve);
    if (room < max_connections_) {
      max_connections_ = static_cast<int>(std::max<int64_t>(1, room));
      LOG(WARNING) << "max_connections lowered from "
                   << options_.max_connections << " to " << max_connections_
                   << ": RLIMIT_NOFILE is " << nofile.rlim_cur << " and "
                   << options_.fd_reserve
                   << " descriptors are kept for files (raise it with "
                      "ulimit -n / LimitNOFILE=)";
    }
  }
  LOG(INFO) << "max_connections " << max_connections_;
  service_->limit_stats()->max_connections.store(
      static_cast<uint64_t>(max_connections_), std::memory_order_relaxed);
  DoAccept();
  int threads =
      options_.threads > 0
          ? options_.threads
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i)
    threads_.emplace_back([this] { RunIoThread(); });
  return Status::Ok();
}

void Server::RunIoThread() {
  if (options_.busy_poll_us <= 0) {
    io_.run();
    return;
  }
  using SteadyClock = std::chrono::steady_clock;
  const auto spin = std::chrono::microseconds(options_.busy_poll_us);
  while (!io_.stopped()) {
    auto idle_until = SteadyClock::now() + spin;
    while (SteadyClock::now() < idle_until) {
      if (io_.poll() > 0) {
        idle_until = SteadyClock::now() + spin;
      } else {
        // Let a runnable thread on this core (the journal's writer, another
        // I/O thread) go first: polling must not delay them.
        std::this_thread::yield();
      }
      if (io_.stopped()) return;  // stopped, or out of work for good
    }
    if (io_.run_one() == 0) return;
  }
}

void Server::DoAccept() {
  acceptor_.async_accept(
      asio::make_strand(io_), [this](const boost::system::error_code& ec,
                                     asio::ip::tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
          return;  // stopping
        }
        if (!ec && InAuthBackoff(socket)) {
          // Closed before a Connection, TLS handshake or frame exists: a
          // source in back-off costs one accept and one close.
          LimitStats::Bump(service_->limit_stats()->auth_backoff);
          boost::system::error_code ignored;
          socket.close(ignored);
        } else if (!ec && service_->limit_stats()->connections_current.load(
                              std::memory_order_relaxed) >=
                              static_cast<uint64_t>(max_connections_)) {
          Refuse(std::move(socket));
        } else if (!ec) {
          auto connection = std::make_shared<Connection>(
              tls_context_ ? Stream(std::move(socket), *tls_context_)
                           : Stream(std::move(socket)),
              service_, options_.connection);
          {
            std::lock_guard<std::mutex> lock(mu_);
            if (stopped_) return;
            // Forget connections that have gone, then remember this one.
            std::erase_if(connections_,
                          [](const auto& w) { return w.expired(); });
            connections_.push_back(connection);
          }
          connection->Start();
        } else {
          // Out of descriptors (EMFILE) or similar: back off instead of
          // spinning on an accept that keeps failing.
          LimitStats::Bump(service_->limit_stats()->accept_retries);
          LOG_EVERY_N(WARNING, 100) << "accept failed: " << ec.message();
          accept_retry_timer_.expires_after(std::chrono::milliseconds(100));
          accept_retry_timer_.async_wait(
              [this](const boost::system::error_code& wait_ec) {
                if (!wait_ec && acceptor_.is_open()) DoAccept();
              });
          return;
        }
        DoAccept();
      });
}

bool Server::InAuthBackoff(const asio::ip::tcp::socket& socket) {
  const std::shared_ptr<const AuthConfig>& auth = options_.connection.auth;
  if (!auth || !auth->throttle) return false;
  boost::system::error_code ec;
  const asio::ip::tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return false;  // the Connection finds out it is gone
  // The same key as the Session's source (connection.cc PeerAddress).
  return auth->throttle
             ->BlockedFor(peer.address().to_string(),
                          std::chrono::steady_clock::now())
             .count() > 0;
}

void Server::Refuse(asio::ip::tcp::socket socket) {
  LimitStats::Bump(service_->limit_stats()->rejected_max_connections);
  LOG_EVERY_N(WARNING, 100) << "refusing a connection: max connections ("
                            << max_connections_ << ") reached";
  auto refused = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
  auto bytes = std::make_shared<std::vector<uint8_t>>();
  AppendFrame(bytes.get(), FrameKind::kResponse, 0,
              EncodeResponse(proto::Response::Error(
                  Status(Code::kResourceExhausted,
                         "max connections (" +
                             std::to_string(max_connections_) + ") reached"))));
  // A few dozen bytes into an empty send buffer: the write does not wait on
  // the client.
  asio::async_write(*refused, asio::buffer(*bytes),
                    [refused, bytes](const boost::system::error_code&, size_t) {
                      boost::system::error_code ignored;
                      refused->shutdown(asio::ip::tcp::socket::shutdown_both,
                                        ignored);
                      refused->close(ignored);
                    });
}

void Server::Stop() {
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    for (const auto& w : connections_) {
      if (auto c = w.lock()) live.push_back(std::move(c));
    }
    connections_.clear();
  }
  asio::post(strand_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_timer_.cancel();
  });
  for (auto& c : live) c->Shutdown();
  live.clear();
  // With the acceptor and timer gone, run() returns once every connection has
  // flushed and closed.
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace tally
