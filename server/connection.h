// Connection: one client's TCP stream. Reads into a FrameDecoder, answers
// every complete frame in order through the Service, and writes the replies
// back coalesced (one write for all replies ready). Replies leave in request
// order, so clients pipeline freely.
//
// Errors (docs/protocol.md): a body that fails to decode is answered with an
// error reply and the connection stays; broken framing (bad magic, version,
// an oversized length) is answered with one error reply, then the connection
// closes, since the stream can no longer be split into frames.
//
// Mutations are answered when the journal completes them (after the WAL
// write, or its sync), queries at once; replies still leave in request
// order: each request takes a slot, and slots are written in order as they
// fill.
//
// Backpressure: while more than max_output_bytes of replies wait to be
// written (a client that does not read), or max_in_flight requests are
// unanswered (waiting for the WAL), the connection stops reading.
//
// TLS: over a TLS stream, the handshake comes first; one that has not
// finished within tls_handshake_timeout closes the connection.
//
// Thread safety: all work happens on the socket's strand.

#ifndef TALLY_SERVER_CONNECTION_H_
#define TALLY_SERVER_CONNECTION_H_

#include <boost/asio.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "protocol/frame.h"
#include "server/service.h"
#include "server/stream.h"

namespace tally {

struct ConnectionOptions {
  size_t max_frame_body = kDefaultMaxFrameBody;
  size_t max_output_bytes = 8 << 20;
  size_t read_chunk = 64 << 10;
  size_t max_in_flight = 4096;
  std::chrono::milliseconds tls_handshake_timeout{10000};
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `socket` is a tcp::socket, or a TLS stream over one.
  Connection(Stream socket, Service* service, const ConnectionOptions& options);
  // Starts reading. REQUIRES: owned by a shared_ptr.
  void Start();
  // Stops reading, flushes the replies already produced, then closes.
  // Safe from any thread.
  void Shutdown();

 private:
  // TLS: handshakes (bounded by tls_handshake_timeout), then reads.
  void Handshake();
  void DoRead();
  void OnRead(const boost::system::error_code& ec, size_t n);
  void ProcessFrames();
  // Stores the reply to request number `seq` and moves every reply now in
  // order to pending_.
  void Complete(uint64_t seq, uint64_t request_id,
                const proto::Response& response);
  bool Idle() const {
    return !writing_now_ && pending_.empty() && slots_.empty();
  }
  void MaybeWrite();
  void OnWrite(const boost::system::error_code& ec);
  void Close();

  Stream socket_;
  // TLS only: bounds the handshake.
  std::unique_ptr<boost::asio::steady_timer> handshake_timer_;
  Service* service_;
  const ConnectionOptions options_;
  FrameDecoder decoder_;
  std::vector<uint8_t> pending_;  // replies not yet handed to the socket
  std::vector<uint8_t> writing_;  // replies being written
  // Replies of requests from slot_base_ on, in request order; nullopt
  // while the request is still in the journal.
  std::deque<std::optional<std::vector<uint8_t>>> slots_;
  uint64_t slot_base_ = 0;
  // Requests answered later (mutations, and reads ordered behind them).
  size_t deferred_ = 0;
  bool reading_ = false;
  bool writing_now_ = false;
  bool closing_ = false;  // no more reads; close once pending_ is written
  bool closed_ = false;
};

}  // namespace tally

#endif  // TALLY_SERVER_CONNECTION_H_
