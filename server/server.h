// Server: accepts TCP connections and runs them on a pool of I/O threads;
// also sweeps expired buckets in the background, one shard per tick.
//
// Lifecycle: Start() binds and returns (errors: address in use, bad bind
// address); Stop() stops accepting, lets every connection flush the replies it
// has produced, and returns once the threads have finished. Thread-safe.

#ifndef TALLY_SERVER_SERVER_H_
#define TALLY_SERVER_SERVER_H_

#include <boost/asio.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "protocol/result.h"
#include "server/connection.h"
#include "server/service.h"
#include "storage/engine.h"

namespace tally {

struct ServerOptions {
  std::string bind = "127.0.0.1";
  uint16_t port = 7379;  // 0: pick a free port (see port())
  int threads = 0;       // 0: one per core
  ConnectionOptions connection;
  // A full sweep takes shard_count x this; 0 disables the sweeper.
  int64_t sweep_interval_ms = 50;
};

class Server {
 public:
  // `engine` and `service` are not owned and must outlive the server.
  Server(Engine* engine, Service* service, ServerOptions options);
  ~Server();

  Status Start();
  // The port actually bound. REQUIRES: Start() succeeded.
  uint16_t port() const { return port_; }
  void Stop();

 private:
  void DoAccept();
  void ScheduleSweep();

  Engine* engine_;
  Service* service_;
  ServerOptions options_;
  boost::asio::io_context io_;
  // The acceptor and both timers live on this strand, so their handlers and
  // Stop() never touch them concurrently.
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer sweep_timer_;
  boost::asio::steady_timer accept_retry_timer_;
  size_t next_sweep_shard_ = 0;
  uint16_t port_ = 0;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<std::weak_ptr<Connection>> connections_;
  bool stopped_ = false;
};

}  // namespace tally

#endif  // TALLY_SERVER_SERVER_H_
