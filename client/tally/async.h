// Asio completion-token form of the client's calls, for code that already
// runs on Boost.Asio:
//
//   auto f = tally::AsyncCall(client, request, {}, boost::asio::use_future);
//   CallResult<proto::Response> r = co_await tally::AsyncCall(
//       client, request, {}, boost::asio::use_awaitable);
//   tally::AsyncExecute(client, batch, {}, [](CallResult<BatchResult> r)
//   {...});
//
// Same deadline, retry, breaker and fallback rules as the sync calls. The
// handler runs on its associated executor (for a plain callback: a client
// thread). Kept out of client.h so sync users do not include Asio.

#ifndef TALLY_CLIENT_TALLY_ASYNC_H_
#define TALLY_CLIENT_TALLY_ASYNC_H_

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <memory>
#include <utility>

#include "client/tally/client.h"

namespace tally {

template <typename CompletionToken>
auto AsyncCall(Client& client, proto::Request request, CallOptions call,
               CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken,
                                     void(CallResult<proto::Response>)>(
      [&client](auto handler, proto::Request req, CallOptions options) {
        // Handlers may be move-only; CallAsync takes a copyable function.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        client.CallAsync(
            std::move(req), options,
            [shared](CallResult<proto::Response> result) mutable {
              auto executor = boost::asio::get_associated_executor(*shared);
              boost::asio::dispatch(
                  executor, [shared, result = std::move(result)]() mutable {
                    (*shared)(std::move(result));
                  });
            });
      },
      token, std::move(request), call);
}

// The batch form: adds then queries in one round trip, like Client::Execute.
// The batch is copied into the call; it need not outlive it.
template <typename CompletionToken>
auto AsyncExecute(Client& client, const Batch& batch, CallOptions call,
                  CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken,
                                     void(CallResult<BatchResult>)>(
      [&client](auto handler, Batch owned, CallOptions options) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        proto::Request req = BatchRequest(owned);
        client.CallAsync(
            std::move(req), options,
            [shared,
             owned = std::move(owned)](CallResult<proto::Response> r) mutable {
              CallResult<BatchResult> out = ToBatchResult(owned, std::move(r));
              auto executor = boost::asio::get_associated_executor(*shared);
              boost::asio::dispatch(executor,
                                    [shared, out = std::move(out)]() mutable {
                                      (*shared)(std::move(out));
                                    });
            });
      },
      token, batch, call);
}

}  // namespace tally

#endif  // TALLY_CLIENT_TALLY_ASYNC_H_
