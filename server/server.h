// Server: accepts TCP connections (and, with ServerOptions::unix_socket,
// Unix-socket ones) and runs them on a pool of I/O threads. (Expired
// buckets are swept by the Journal, as logged mutations.)
//
// Lifecycle: Start() binds and returns (errors: address in use, bad bind
// address, an unsafe Unix socket directory); Stop() stops accepting, lets
// every connection flush the replies it has produced, removes the Unix
// socket, and returns once the threads have finished. Thread-safe.
// With ServerOptions::tls, Start() first loads the TLS context (errors: bad
// TLS files).

#ifndef TALLY_SERVER_SERVER_H_
#define TALLY_SERVER_SERVER_H_

#include <boost/asio.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "protocol/result.h"
#include "server/boot_timer.h"
#include "server/connection.h"
#include "server/introspection.h"
#include "server/service.h"
#include "server/tls_context.h"
#include "server/unix_socket_file.h"

namespace tally {

struct ServerOptions {
  // Addresses to listen on, comma-separated ("127.0.0.1,::1"), all on one
  // port: with port 0 the first bind picks it and the others reuse it.
  std::string bind = "127.0.0.1";
  // A ::1 in `bind` that cannot be bound because the host has no IPv6
  // (EADDRNOTAVAIL, EAFNOSUPPORT) is skipped with a warning instead of
  // failing Start(). Set for tallyd's default --bind only: an address asked
  // for explicitly must be served.
  bool ipv6_loopback_optional = false;
  uint16_t port = 7379;  // 0: pick a free port (see port())
  int threads = 0;       // 0: one per core
  // After handling work, an I/O thread keeps polling for this long before it
  // sleeps in epoll_wait (0: never polls). A thread that is awake when a
  // request arrives needs no wake-up, which on a VM costs tens of µs per
  // round trip; the price is CPU spent polling while traffic flows.
  int busy_poll_us = 0;
  ConnectionOptions connection;
  // Most connections served at once; clamped at Start() to RLIMIT_NOFILE
  // minus fd_reserve (WAL, snapshot and policy files). One over the limit
  // gets RESOURCE_EXHAUSTED "max connections (N) reached" and is closed.
  int max_connections = 10000;
  int fd_reserve = 64;
  // With tls.cert_file set, every connection is TLS (no plaintext on the
  // same port).
  TlsServerOptions tls;
  // SLOWLOG's threshold and length (changeable later through
  // introspection().slow_log()).
  SlowLogOptions slowlog;
  // A Unix-domain socket to listen on as well (empty: none). Its directory
  // must be owned by the server's user with mode 0700 (made so if missing);
  // server/unix_socket_file.h has the rules. Its connections are served
  // like TCP ones (auth, limits, max_connections, CLIENT LIST as
  // addr=unix:PATH) but never with TLS, and count as local for admin
  // operations, like loopback.
  std::string unix_socket;
};

class Server {
 public:
  // `service` is not owned and must outlive the server. Registers the
  // CLIENT, SLOWLOG and MONITOR admin commands into the service's table.
  Server(Service* service, ServerOptions options);
  ~Server();

  Status Start();
  // The port actually bound (the same on every address). REQUIRES: Start()
  // succeeded.
  uint16_t port() const { return port_; }
  // The addresses listened on (a skipped optional ::1 is not among them).
  std::vector<std::string> listening() const;
  // The Unix socket's path while listening on one; empty otherwise.
  const std::string& unix_socket() const { return unix_path_; }
  // max_connections after the RLIMIT_NOFILE clamp. REQUIRES: Start() ran.
  int effective_max_connections() const { return max_connections_; }
  void Stop();

  // The client registry, slow log and monitors (server/introspection.h).
  Introspection& introspection() { return *introspection_; }

 private:
  // One listening socket, with its EMFILE back-off timer (its own, so two
  // listeners backing off at once do not cancel each other's retry).
  template <typename Protocol>
  struct BasicListener {
    explicit BasicListener(
        boost::asio::strand<boost::asio::io_context::executor_type>& strand)
        : acceptor(strand), retry_timer(strand) {}
    typename Protocol::acceptor acceptor;
    BootTimer retry_timer;
  };
  using Listener = BasicListener<boost::asio::ip::tcp>;
  using UnixListener = BasicListener<boost::asio::local::stream_protocol>;
  // Opens, binds and listens on one address (port_ once a first bind set
  // it); the error names the address. *no_ipv6: it failed because the host
  // has no IPv6 (EAFNOSUPPORT, EADDRNOTAVAIL on a v6 address); *port_taken:
  // EADDRINUSE.
  Status Listen(const std::string& address, bool* no_ipv6, bool* port_taken);
  // Listens on every address (an optional ::1 the host cannot have is
  // skipped). BUSY: port 0 picked a port a later address has taken (retry).
  Status ListenAll(const std::vector<std::string>& addresses);
  // Checks, binds and listens on options_.unix_socket (unix_socket_file.h).
  Status ListenUnix();
  // Accepts on `listener` (TCP or Unix) until it closes.
  template <typename Protocol>
  void DoAccept(BasicListener<Protocol>* listener);
  // Serves one accepted connection (`stream` is plaintext; TLS is added
  // here for TCP when configured), refuses it, or closes it. False once
  // the server is stopping.
  bool Admit(Stream stream);
  // Answers one error frame on a connection over max_connections, then
  // closes it.
  void Refuse(Stream stream);
  // Whether the peer is in AUTH back-off (too many failed AUTHs, server/
  // auth.h AuthThrottle): such a connection is closed at once, unanswered.
  bool InAuthBackoff(const Stream& stream);
  // One I/O thread's loop: io_.run(), or with busy_poll_us, poll() while
  // work keeps arriving and run_one() (sleeping) once it has not for that
  // long.
  void RunIoThread();

  Service* service_;
  ServerOptions options_;
  // Shared with every connection (ConnectionOptions::introspection).
  std::shared_ptr<Introspection> introspection_;
  // Before io_: outlives every connection (and handler) io_ still holds.
  std::unique_ptr<boost::asio::ssl::context> tls_context_;  // null: plaintext
  boost::asio::io_context io_;
  // The acceptors and their timers live on this strand, so their handlers
  // and Stop() never touch them concurrently.
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unique_ptr<UnixListener> unix_listener_;
  UnixSocketFile unix_file_;  // the socket file, removed at Stop()
  std::string unix_path_;     // set once listening on it
  uint16_t port_ = 0;
  int max_connections_ = 0;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<std::weak_ptr<Connection>> connections_;
  bool stopped_ = false;
};

}  // namespace tally

#endif  // TALLY_SERVER_SERVER_H_
