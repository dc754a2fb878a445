// MetricsServer: the Prometheus scrape endpoint, HTTP/1.1 over Boost.Beast
// on its own port and its own thread, so a scrape never waits behind
// requests and requests never wait behind a scrape.
//
//   GET /metrics  -> 200, text/plain; version=0.0.4 (the exposition format)
//   GET /healthz  -> 200 "ok" (the process is up and its loop answers)
//   other paths   -> 404;  other methods -> 405
//
// Bounded: a request (line + headers) over max_request_bytes, or with a
// body, closes the connection; every read and write has `timeout`; at most
// max_connections are served at once (more are closed at accept). Requests
// on one connection are answered in turn (keep-alive).
//
// The endpoint has no authentication: it shows load and sizes, never a
// counter key. Loopback by default; docs/operations.md ("Metrics") says
// what a non-loopback bind means.
//
// Thread safety: Start and Stop from one thread; `render` runs on the
// metrics thread and must be thread-safe with respect to the server.

#ifndef TALLY_SERVER_METRICS_SERVER_H_
#define TALLY_SERVER_METRICS_SERVER_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "protocol/status.h"
#include "server/boot_timer.h"

namespace tally {

struct MetricsServerOptions {
  std::string bind = "127.0.0.1";
  uint16_t port = 0;  // 0: pick a free one (see port())
  size_t max_request_bytes = 8192;
  std::chrono::milliseconds timeout{5000};
  int max_connections = 16;
};

class MetricsServer {
 public:
  // Returns the /metrics body.
  using Render = std::function<std::string()>;

  MetricsServer(MetricsServerOptions options, Render render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds and starts the thread. Errors: bad address, port in use.
  Status Start();
  // The port bound. REQUIRES: Start() succeeded.
  uint16_t port() const { return port_; }
  // Closes the listener and every connection, joins the thread. Idempotent.
  void Stop();

 private:
  void Accept();

  MetricsServerOptions options_;
  Render render_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  BootTimer retry_timer_;  // after a failed accept
  std::thread thread_;
  uint16_t port_ = 0;
  int connections_ = 0;  // on the metrics thread only
};

}  // namespace tally

#endif  // TALLY_SERVER_METRICS_SERVER_H_
