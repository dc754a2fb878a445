// Client::Stream: a request answered by a stream of frames (MONITOR), each
// on a connection of its own to the first endpoint, outside the call
// pipeline of client.cc (no deadline after connect, no retry, no breaker).

#include <memory>
#include <utility>

#include "client/client_impl.h"
#include "protocol/codec.h"

namespace tally {

namespace asio = boost::asio;

void Client::Impl::Stream(
    proto::Request request,
    std::function<bool(Result<proto::Response>)> on_frame) {
  asio::post(io_, [this, request = std::move(request),
                   on_frame = std::move(on_frame)]() mutable {
    if (shutting_down_ || !tls_error_.ok()) {
      on_frame(shutting_down_ ? Status(Code::kUnavailable, "client shut down")
                              : tls_error_);
      return;
    }
    auto connection = std::make_shared<ci::Connection>(
        io_, stream_options_, [this] { return Random01(); });
    streams_.push_back(connection);
    // Ends the stream once: closes its connection (after the callback that
    // decided it has returned) and forgets it.
    auto ended = std::make_shared<bool>(false);
    auto end = [this, ended, weak = std::weak_ptr<ci::Connection>(connection)] {
      *ended = true;
      asio::post(io_, [this, weak] {
        std::shared_ptr<ci::Connection> c = weak.lock();
        if (!c) return;
        c->Shutdown("stream ended");
        std::erase(streams_, c);
      });
    };
    Result<uint64_t> id = connection->SendStream(
        EncodeRequest(request),
        [ended, end, on_frame](Result<proto::Response> frame) {
          if (*ended) return;
          const bool failed = !frame.ok();
          if (!on_frame(std::move(frame)) || failed) end();
        });
    if (!id.ok()) {
      *ended = true;
      on_frame(id.status());
      std::erase(streams_, connection);
    }
  });
}

void Client::Stream(proto::Request request,
                    std::function<bool(Result<proto::Response>)> on_frame) {
  impl_->Stream(std::move(request), std::move(on_frame));
}

}  // namespace tally
