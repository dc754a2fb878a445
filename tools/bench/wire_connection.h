// WireConnection: a minimal blocking connection speaking tally's framing, for
// the load generator (one per closed-loop worker, one request in flight).
// Deliberately not the client library: a benchmark should add nothing of its
// own (no pool, breaker or retries) between the workload and the server.
//
// Thread safety: one thread per connection.

#ifndef TALLY_TOOLS_BENCH_WIRE_CONNECTION_H_
#define TALLY_TOOLS_BENCH_WIRE_CONNECTION_H_

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "protocol/frame.h"
#include "protocol/messages.h"
#include "protocol/result.h"

namespace tally::bench {

class WireConnection {
 public:
  // With `tls` (not owned; outlives the connection), connects over TLS,
  // verifying the server against `host`.
  explicit WireConnection(boost::asio::ssl::context* tls = nullptr);
  Status Connect(const std::string& host, uint16_t port);
  // Sends one request and waits for its reply.
  Result<proto::Response> Call(const proto::Request& request);

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::ssl::context* tls_context_;
  // TLS: the stream over socket_ (null: plaintext).
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
  FrameDecoder decoder_;
  std::vector<uint8_t> out_;
  uint64_t next_id_ = 1;
};

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_WIRE_CONNECTION_H_
