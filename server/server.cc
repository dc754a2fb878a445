#include "server/server.h"

#include <glog/logging.h>
#include <sys/resource.h>

#include "protocol/codec.h"

namespace tally {

namespace asio = boost::asio;

Server::Server(Service* service, ServerOptions options)
    : service_(service),
      options_(std::move(options)),
      strand_(asio::make_strand(io_)) {
  introspection_ = std::make_shared<Introspection>(options_.slowlog);
  options_.connection.introspection = introspection_;
  introspection_->RegisterAdminCommands(service_->admin_commands());
}

Server::~Server() { Stop(); }

Status Server::Start() {
  if (options_.tls.enabled()) {
    Result<std::unique_ptr<asio::ssl::context>> context =
        MakeServerTlsContext(options_.tls);
    if (!context.ok()) return context.status();
    tls_context_ = std::move(*context);
  }
  // Every address of the list, on one port.
  std::vector<std::string> addresses;
  for (size_t start = 0;;) {
    const size_t comma = options_.bind.find(',', start);
    std::string address = options_.bind.substr(
        start, comma == std::string::npos ? std::string::npos : comma - start);
    // "127.0.0.1, ::1" reads as two addresses.
    std::erase(address, ' ');
    addresses.push_back(std::move(address));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  // With port 0, the port the first address got may be taken on a later
  // one (rare): then all are tried again on a new port, a few times.
  for (int attempt = 0;; ++attempt) {
    Status listening = ListenAll(addresses);
    if (listening.ok()) break;
    listeners_.clear();
    if (listening.code() != Code::kBusy) return listening;
    if (attempt >= 4) return Status(Code::kUnavailable, listening.message());
  }
  if (listeners_.empty()) {
    return Status(Code::kUnavailable, "no address to listen on");
  }
  if (!options_.unix_socket.empty()) {
    if (Status unix_listening = ListenUnix(); !unix_listening.ok()) {
      listeners_.clear();
      return unix_listening;
    }
  }
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
  for (auto& listener : listeners_) DoAccept(listener.get());
  if (unix_listener_) DoAccept(unix_listener_.get());
  int threads =
      options_.threads > 0
          ? options_.threads
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i)
    threads_.emplace_back([this] { RunIoThread(); });
  return Status::Ok();
}

Status Server::ListenAll(const std::vector<std::string>& addresses) {
  for (const std::string& address : addresses) {
    bool no_ipv6 = false;
    bool port_taken = false;
    Status listening = Listen(address, &no_ipv6, &port_taken);
    if (listening.ok()) continue;
    if (options_.ipv6_loopback_optional && address == "::1" && no_ipv6) {
      LOG(WARNING) << "not listening on ::1: " << listening.message()
                   << " (no IPv6 on this host; serving IPv4 only)";
      continue;
    }
    const bool retry = port_taken && options_.port == 0 && !listeners_.empty();
    return retry ? Status(Code::kBusy, listening.message()) : listening;
  }
  return Status::Ok();
}

Status Server::Listen(const std::string& address_text, bool* no_ipv6,
                      bool* port_taken) {
  boost::system::error_code ec;
  const asio::ip::address address = asio::ip::make_address(address_text, ec);
  if (ec) {
    return Status::InvalidArgument("bad bind address '" + address_text +
                                   "' in '" + options_.bind +
                                   "': " + ec.message());
  }
  // Once a first bind picked the port (port 0), every address reuses it.
  const uint16_t port = listeners_.empty() ? options_.port : port_;
  const asio::ip::tcp::endpoint endpoint(address, port);
  auto listener = std::make_unique<Listener>(strand_);
  asio::ip::tcp::acceptor& acceptor = listener->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  // IPv6 sockets take IPv6 only, so "0.0.0.0,::" binds both.
  if (!ec && address.is_v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    const std::string where =
        address.is_v6() ? "[" + address_text + "]" : address_text;
    const std::string why = "cannot listen on " + where + ":" +
                            std::to_string(port) + ": " + ec.message();
    // No IPv6 on the host: the caller decides whether that is fatal.
    *no_ipv6 =
        address.is_v6() && (ec == asio::error::address_family_not_supported ||
                            ec == boost::system::errc::address_not_available);
    *port_taken = ec == asio::error::address_in_use;
    return Status(Code::kUnavailable, why);
  }
  if (listeners_.empty()) port_ = acceptor.local_endpoint().port();
  listeners_.push_back(std::move(listener));
  return Status::Ok();
}

Status Server::ListenUnix() {
  const std::string& path = options_.unix_socket;
  if (Status prepared = UnixSocketFile::Prepare(path); !prepared.ok()) {
    return prepared;
  }
  auto listener = std::make_unique<UnixListener>(strand_);
  // Prepare() checked the length, so the endpoint does not throw.
  const asio::local::stream_protocol::endpoint endpoint(path);
  boost::system::error_code ec;
  listener->acceptor.open(endpoint.protocol(), ec);
  if (!ec) listener->acceptor.bind(endpoint, ec);
  if (!ec) {
    // 0600 before listen(): no connection is accepted while the mode is
    // still the umask's (the 0700 directory already kept others out).
    if (Status adopted = unix_file_.Adopt(path); !adopted.ok()) {
      unix_file_.Remove();
      return adopted;
    }
    listener->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    unix_file_.Remove();
    return Status(Code::kUnavailable,
                  "cannot listen on Unix socket " + path + ": " + ec.message());
  }
  unix_listener_ = std::move(listener);
  unix_path_ = path;
  return Status::Ok();
}

std::vector<std::string> Server::listening() const {
  std::vector<std::string> out;
  for (const auto& listener : listeners_) {
    boost::system::error_code ec;
    const asio::ip::tcp::endpoint at = listener->acceptor.local_endpoint(ec);
    if (!ec) out.push_back(at.address().to_string());
  }
  return out;
}

void Server::RunIoThread() {
  if (options_.busy_poll_us <= 0) {
    io_.run();
    return;
  }
  const auto spin = std::chrono::microseconds(options_.busy_poll_us);
  while (!io_.stopped()) {
    auto idle_until = BootClock::now() + spin;
    while (BootClock::now() < idle_until) {
      if (io_.poll() > 0) {
        idle_until = BootClock::now() + spin;
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

template <typename Protocol>
void Server::DoAccept(BasicListener<Protocol>* listener) {
  listener->acceptor.async_accept(
      asio::make_strand(io_),
      [this, listener](const boost::system::error_code& ec,
                       typename Protocol::socket socket) {
        if (ec == asio::error::operation_aborted ||
            !listener->acceptor.is_open()) {
          return;  // stopping
        }
        if (ec) {
          // Out of descriptors (EMFILE) or similar: back off instead of
          // spinning on an accept that keeps failing.
          LimitStats::Bump(service_->limit_stats()->accept_retries);
          LOG_EVERY_N(WARNING, 100) << "accept failed: " << ec.message();
          listener->retry_timer.expires_after(std::chrono::milliseconds(100));
          listener->retry_timer.async_wait(
              [this, listener](const boost::system::error_code& wait_ec) {
                if (!wait_ec && listener->acceptor.is_open()) {
                  DoAccept(listener);
                }
              });
          return;
        }
        if (!Admit(Stream(std::move(socket)))) return;
        DoAccept(listener);
      });
}

bool Server::Admit(Stream stream) {
  if (InAuthBackoff(stream)) {
    // Closed before a Connection, TLS handshake or frame exists: a source
    // in back-off costs one accept and one close.
    LimitStats::Bump(service_->limit_stats()->auth_backoff);
    boost::system::error_code ignored;
    stream.close(ignored);
    return true;
  }
  if (service_->limit_stats()->connections_current.load(
          std::memory_order_relaxed) >=
      static_cast<uint64_t>(max_connections_)) {
    Refuse(std::move(stream));
    return true;
  }
  // TLS is for TCP only: the Unix socket's peers are on this host.
  asio::ip::tcp::socket* tcp = stream.tcp_socket();
  auto connection = std::make_shared<Connection>(
      tls_context_ && tcp != nullptr ? Stream(std::move(*tcp), *tls_context_)
                                     : std::move(stream),
      service_, options_.connection);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return false;
    // Forget connections that have gone, then remember this one.
    std::erase_if(connections_, [](const auto& w) { return w.expired(); });
    connections_.push_back(connection);
  }
  connection->Start();
  return true;
}

bool Server::InAuthBackoff(const Stream& stream) {
  const std::shared_ptr<const AuthConfig>& auth = options_.connection.auth;
  if (!auth || !auth->throttle) return false;
  // The same key as the Session's source (Stream::PeerAddress).
  const std::string source = stream.PeerAddress();
  if (source == "unknown") return false;  // the Connection finds out it is gone
  return auth->throttle->BlockedFor(source, BootClock::now()).count() > 0;
}

void Server::Refuse(Stream stream) {
  LimitStats::Bump(service_->limit_stats()->rejected_max_connections);
  LOG_EVERY_N(WARNING, 100) << "refusing a connection: max connections ("
                            << max_connections_ << ") reached";
  auto refused = std::make_shared<Stream>(std::move(stream));
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
                      refused->shutdown(asio::socket_base::shutdown_both,
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
    auto close = [](auto& listener) {
      boost::system::error_code ignored;
      listener.acceptor.close(ignored);
      listener.retry_timer.cancel();
    };
    for (auto& listener : listeners_) close(*listener);
    if (unix_listener_) close(*unix_listener_);
  });
  for (auto& c : live) c->Shutdown();
  live.clear();
  // With the acceptor and timer gone, run() returns once every connection has
  // flushed and closed.
  for (auto& t : threads_) t.join();
  threads_.clear();
  // A clean stop leaves no socket file behind (a crash does: the next
  // start removes it as stale).
  unix_file_.Remove();
}

}  // namespace tally
