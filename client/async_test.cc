// tally/async.h's completion tokens against a real in-process server:
// a plain callback, use_future, and a C++20 coroutine with use_awaitable.

#include "client/tally/async.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <future>

#include "server/in_process_server.h"

namespace tally {
namespace {

namespace asio = boost::asio;

class AsyncTest : public testing::Test {
 protected:
  AsyncTest() : server_(Options()) {
    EXPECT_TRUE(server_.status().ok());
    ClientOptions options;
    options.endpoints = {{"127.0.0.1", server_.port()}};
    options.default_timeout = std::chrono::seconds(2);
    client_ = std::make_unique<Client>(options);
  }
  static InProcessServerOptions Options() {
    InProcessServerOptions o;
    o.server.port = 0;
    o.server.threads = 1;
    return o;
  }
  InProcessServer server_;
  std::unique_ptr<Client> client_;
};

proto::Request Ping() {
  proto::Request r;
  r.body = proto::PingRequest{};
  return r;
}

TEST_F(AsyncTest, UseFutureCompletes) {
  std::future<CallResult<proto::Response>> f =
      AsyncCall(*client_, Ping(), {}, asio::use_future);
  CallResult<proto::Response> r = f.get();
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.value.op(), proto::Op::kPing);
}

TEST_F(AsyncTest, CallbackReceivesTheBatchResult) {
  Batch batch;
  batch.Add("async:1", 10).Add("async:1", 20).Query("async:1", 60'000);
  std::promise<CallResult<BatchResult>> done;
  AsyncExecute(*client_, batch, {}, [&done](CallResult<BatchResult> r) {
    done.set_value(std::move(r));
  });
  CallResult<BatchResult> r = done.get_future().get();
  ASSERT_TRUE(r.ok()) << r.message;
  ASSERT_EQ(r.value.queries.size(), 1u);
  EXPECT_EQ(r.value.queries[0].answer.count, 2);
  EXPECT_EQ(r.value.queries[0].answer.sum, 30);
}

TEST_F(AsyncTest, CoroutinesAwaitCallsOnTheirOwnExecutor) {
  asio::io_context io;
  int64_t count = -1;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Batch batch;
        batch.Add("async:2", 5).Query("async:2", 60'000);
        CallResult<BatchResult> r =
            co_await AsyncExecute(*client_, batch, {}, asio::use_awaitable);
        count = r.ok() ? r.value.queries.at(0).answer.count : -2;
      },
      asio::detached);
  io.run();  // returns once the coroutine (resumed on io) has finished
  EXPECT_EQ(count, 1);
  // The client's thread posted the resumption to io and may still be inside
  // that post (signalling io's condition variable) when run() returns:
  // join it before io is destroyed (TSan saw the race).
  client_.reset();
}

}  // namespace
}  // namespace tally
