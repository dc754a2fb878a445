// libtally against a real Server running in-process on 127.0.0.1 (a port it
// picks), plus a "silent" endpoint that accepts TCP connections in the
// kernel but never reads or answers, for deadlines and the breaker.
// Timings are asserted loosely (no earlier than the deadline, well under a
// second after it): the tests must pass under ASan on a loaded machine.

#include "client/tally/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <filesystem>
#include <future>
#include <set>
#include <thread>
#include <vector>

#include "server/in_process_server.h"

namespace tally {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using std::chrono::milliseconds;

// A real tallyd in-process (memory-only state: these tests are about the
// client; the WAL path has its own tests).
class TestServer {
 public:
  explicit TestServer(uint16_t port = 0) : server_(Options(port)) {
    EXPECT_TRUE(server_.status().ok()) << server_.status().ToString();
  }
  uint16_t port() const { return server_.port(); }
  Engine& engine() { return server_.engine(); }
  void Stop() { server_.Stop(); }

 private:
  static InProcessServerOptions Options(uint16_t port) {
    InProcessServerOptions o;
    o.server.port = port;
    o.server.threads = 2;
    return o;
  }
  InProcessServer server_;
};

// Listens (so connects succeed) but never accepts, reads or replies.
class SilentServer {
 public:
  SilentServer() : acceptor_(io_) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
};

ClientOptions OptionsFor(uint16_t port) {
  ClientOptions o;
  o.endpoints = {Endpoint{.host = "127.0.0.1", .port = port}};
  // Generous: correctness tests must not time out under ASan.
  o.default_timeout = std::chrono::seconds(5);
  o.connect_timeout = milliseconds(1000);
  o.breaker.slow_call = std::chrono::seconds(1);
  return o;
}

CallOptions Within(milliseconds budget) {
  CallOptions c;
  c.deadline = ClientClock::now() + budget;
  return c;
}

TEST(ClientTest, ExecuteAddsThenQueriesInOneRoundTrip) {
  TestServer server;
  Client client(OptionsFor(server.port()));
  Batch batch;
  batch.Add("user:42", 1250, "card:1")
      .Add("user:42", 750, "card:2")
      .Add("", 1)  // a bad item fails only itself
      .Query("user:42", 60'000)
      .Query("user:42", 60'000, proto::kAggSumBit)
      .Query("user:never", 60'000);
  CallResult<BatchResult> r = client.Execute(batch);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.degraded, Degraded::kNo);
  EXPECT_EQ(r.attempts, 1);
  ASSERT_EQ(r.value.adds.size(), 3u);
  EXPECT_EQ(r.value.adds[0].code, Code::kOk);
  EXPECT_EQ(r.value.adds[2].code, Code::kInvalidKey);
  ASSERT_EQ(r.value.queries.size(), 3u);
  EXPECT_EQ(r.value.queries[0].answer.count, 2);
  EXPECT_EQ(r.value.queries[0].answer.distinct, 2u);
  EXPECT_EQ(r.value.queries[1].answer.sum, 2000);
  EXPECT_EQ(r.value.queries[2].answer.count, 0);

  // Queries only, then adds only.
  Batch reads;
  reads.Query("user:42", 60'000);
  EXPECT_EQ(client.Execute(reads).value.queries.at(0).answer.count, 2);
  Batch writes;
  writes.Add("user:42", 1);
  CallResult<BatchResult> w = client.Execute(writes);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.value.adds.size(), 1u);
  EXPECT_TRUE(w.value.queries.empty());
  EXPECT_TRUE(client.Execute(Batch()).ok());  // nothing to do
}

// In os mode nothing is fsynced, unless a call asks: its reply then waits
// for the fdatasync that covers it.
TEST(ClientTest, WaitDurableRepliesOnlyOnceTheAddIsSynced) {
  std::string dir =
      (std::filesystem::temp_directory_path() / "tally-client-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  {
    InProcessServerOptions o;
    o.server.port = 0;
    o.server.threads = 1;
    o.data_dir = dir;
    o.durability.mode = DurabilityMode::kOs;
    InProcessServer server(o);
    ASSERT_TRUE(server.status().ok()) << server.status().ToString();
    ClientOptions options;
    options.endpoints = {{"127.0.0.1", server.port()}};
    // Not about deadlines: room for a loaded sanitizer build and the fsync.
    options.default_timeout = std::chrono::seconds(5);
    Client client(options);

    CallResult<proto::AddItemResult> plain = client.Add("user:1", 5);
    ASSERT_TRUE(plain.ok()) << plain.message;
    EXPECT_GT(plain.value.lsn, server.journal().durable_lsn());

    CallOptions durable;
    durable.wait_durable = true;
    CallResult<proto::AddItemResult> synced =
        client.Add("user:1", 7, std::nullopt, durable);
    ASSERT_TRUE(synced.ok()) << synced.message;
    EXPECT_GT(synced.value.lsn, plain.value.lsn);
    EXPECT_GE(server.journal().durable_lsn(), synced.value.lsn);
  }
  std::filesystem::remove_all(dir);
}

TEST(ClientTest, QueryAndAddShorthands) {
  TestServer server;
  Client client(OptionsFor(server.port()));
  for (int i = 1; i <= 3; ++i) {
    CallResult<proto::AddItemResult> a = client.Add("card:7", i * 100, "m");
    ASSERT_TRUE(a.ok()) << a.message;
    EXPECT_GT(a.value.time_ms, 0);
    EXPECT_FALSE(a.value.duplicate);
  }
  CallResult<proto::Aggregates> q = client.Query("card:7", 60'000);
  ASSERT_TRUE(q.ok()) << q.message;
  EXPECT_EQ(q.value.count, 3);
  EXPECT_EQ(q.value.sum, 600);
  EXPECT_EQ(q.value.distinct, 1u);
  // An item error becomes the call's code.
  CallResult<proto::Aggregates> bad = client.Query("", 60'000);
  EXPECT_EQ(bad.code, Code::kInvalidKey);
  EXPECT_EQ(bad.degraded, Degraded::kNo);
  CallResult<proto::AddItemResult> long_key =
      client.Add(std::string(300, 'k'), 1);
  EXPECT_EQ(long_key.code, Code::kInvalidKey);
}

TEST(ClientTest, CallAnswersAnyRequest) {
  TestServer server;
  Client client(OptionsFor(server.port()));
  proto::Request ping;
  ping.body = proto::PingRequest{};
  EXPECT_TRUE(client.Call(ping).ok());
  proto::Request inspect;
  inspect.body = proto::InspectRequest{"nope"};
  CallResult<proto::Response> r = client.Call(inspect);
  EXPECT_EQ(r.code, Code::kNotFound);
  EXPECT_EQ(r.degraded, Degraded::kNo);
  EXPECT_EQ(r.attempts, 1);  // not a transient error: no retry
  proto::Request info;
  info.body = proto::InfoRequest{"server"};
  CallResult<proto::Response> i = client.Call(info);
  ASSERT_TRUE(i.ok()) << i.message;
  EXPECT_FALSE(std::get<proto::InfoResult>(i.value.body).text.empty());
  EXPECT_EQ(client.Call(proto::Request{}).code, Code::kInvalidArgument);

  std::promise<CallResult<proto::Response>> done;
  client.CallAsync(ping, {}, [&](CallResult<proto::Response> result) {
    done.set_value(std::move(result));
  });
  EXPECT_TRUE(done.get_future().get().ok());
}

TEST(ClientTest, EveryOperationThroughCall) {
  TestServer server;
  Client client(OptionsFor(server.port()));
  auto call = [&client](auto body) {
    proto::Request request;
    request.body = std::move(body);
    CallResult<proto::Response> r = client.Call(request);
    EXPECT_TRUE(r.ok()) << r.message;
    return r.value;
  };
  proto::Response hello = call(proto::HelloRequest{"test", kProtocolVersion});
  EXPECT_EQ(std::get<proto::HelloResult>(hello.body).protocol_version,
            kProtocolVersion);
  proto::AddRequest add;
  for (int i = 0; i < 3; ++i) {
    add.items.push_back({.key = "op:" + std::to_string(i), .amount = 10 * i});
  }
  call(add);
  proto::AddAndQueryRequest aq;
  aq.adds.push_back({.key = "op:0", .amount = 5});
  aq.queries.push_back(proto::QueryItem::Last("op:0", 60'000));
  proto::Response both = call(aq);
  EXPECT_EQ(
      std::get<proto::AddAndQueryResult>(both.body).queries.at(0).answer.count,
      2);
  const int64_t now = std::chrono::duration_cast<milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  proto::Response range = call(proto::RangeRequest{.key = "op:0",
                                                   .from_ms = now - 60'000,
                                                   .to_ms = now + 1000,
                                                   .step_ms = 30'000});
  int64_t total = 0;
  for (const auto& p : std::get<proto::RangeResult>(range.body).points) {
    total += p.answer.count;
  }
  EXPECT_EQ(total, 2);
  proto::Response inspect = call(proto::InspectRequest{"op:1"});
  EXPECT_EQ(std::get<proto::InspectResult>(inspect.body).key, "op:1");
  proto::Response scan = call(proto::ScanRequest{0, "op:*", 100});
  EXPECT_EQ(std::get<proto::ScanResult>(scan.body).keys.size(), 3u);
  proto::Response del = call(proto::DeleteRequest{{"op:2"}});
  EXPECT_TRUE(std::get<proto::DeleteResult>(del.body).items.at(0).existed);
  proto::Response after = call(proto::ScanRequest{0, "op:*", 100});
  EXPECT_EQ(std::get<proto::ScanResult>(after.body).keys.size(), 2u);
}

TEST(ClientTest, PipelinesCallsFromManyThreads) {
  TestServer server;
  Client client(OptionsFor(server.port()));
  constexpr int kThreads = 8;
  constexpr int kCalls = 500;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = "thread:" + std::to_string(t);
      for (int i = 1; i <= kCalls; ++i) {
        Batch b;
        b.Add(key, i).Query(key, 60'000, proto::kAggCountBit);
        CallResult<BatchResult> r = client.Execute(b);
        // Each thread's calls are sequential: the query sees exactly i adds.
        if (!r.ok() || r.value.queries.size() != 1 ||
            r.value.queries[0].answer.count != i) {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    CallResult<proto::Aggregates> q =
        client.Query("thread:" + std::to_string(t), 60'000);
    EXPECT_EQ(q.value.count, kCalls);
    EXPECT_EQ(q.value.sum, kCalls * (kCalls + 1) / 2);
  }
}

TEST(ClientTest, ABatchWithExplicitIdsCountsOnceWhenExecutedTwice) {
  TestServer server;
  Client client(OptionsFor(server.port()));
  Batch batch;
  batch.Add("user:7", 50, std::nullopt, 0, 1, "evt-1")
      .Add("user:7", 60, std::nullopt, 0, 1, "evt-2");
  CallResult<BatchResult> first = client.Execute(batch);
  CallResult<BatchResult> second = client.Execute(batch);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_FALSE(first.value.adds[0].duplicate);
  EXPECT_TRUE(second.value.adds[0].duplicate);
  EXPECT_TRUE(second.value.adds[1].duplicate);
  CallResult<proto::Aggregates> q = client.Query("user:7", 60'000);
  EXPECT_EQ(q.value.count, 2);
  EXPECT_EQ(q.value.sum, 110);
}

TEST(ClientTest, AutomaticIdsAreUniquePerItem) {
  TestServer server;
  ClientOptions options = OptionsFor(server.port());
  Client a(options);
  Client b(options);  // another session id
  Batch batch;
  for (int i = 0; i < 100; ++i) batch.Add("auto", 1);
  for (Client* c : {&a, &b}) {
    for (int round = 0; round < 2; ++round) {
      CallResult<BatchResult> r = c->Execute(batch);
      ASSERT_TRUE(r.ok()) << r.message;
      for (const auto& item : r.value.adds) {
        ASSERT_EQ(item.code, Code::kOk) << item.message;
        ASSERT_FALSE(item.duplicate);  // every item got a fresh id
      }
    }
  }
  EXPECT_EQ(a.Query("auto", 60'000).value.count, 400);
  EXPECT_EQ(server.engine().Query("auto", Window::Last(60'000))->count, 400);
}

TEST(ClientTest, ACallEndsByItsDeadlineWhenNothingAnswers) {
  SilentServer silent;
  ClientOptions options = OptionsFor(silent.port());
  options.breaker.enabled = false;
  Client client(options);
  for (milliseconds budget : {milliseconds(30), milliseconds(100)}) {
    const ClientClock::time_point start = ClientClock::now();
    CallResult<proto::Aggregates> r =
        client.Query("k", 1000, 0, Within(budget));
    const auto took = ClientClock::now() - start;
    EXPECT_EQ(r.code, Code::kDeadlineExceeded) << r.message;
    EXPECT_EQ(r.degraded, Degraded::kTimeout);
    EXPECT_GE(took, budget);
    EXPECT_LT(took, budget + milliseconds(800));
  }
  // The default timeout applies when the call gives no deadline.
  options.default_timeout = milliseconds(40);
  Client quick(options);
  const ClientClock::time_point start = ClientClock::now();
  EXPECT_EQ(quick.Query("k", 1000).code, Code::kDeadlineExceeded);
  EXPECT_GE(ClientClock::now() - start, milliseconds(40));
  EXPECT_LT(ClientClock::now() - start, milliseconds(840));
}

TEST(ClientTest, TheBreakerOpensAfterRepeatedTimeoutsThenFailsFast) {
  SilentServer silent;
  ClientOptions options = OptionsFor(silent.port());
  options.breaker.minimum_calls = 4;
  options.breaker.failure_rate = 0.5;
  options.breaker.open_wait = std::chrono::seconds(60);
  Client client(options);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(client.Query("k", 1000, 0, Within(milliseconds(20))).code,
              Code::kDeadlineExceeded);
  }
  EXPECT_EQ(client.circuit_state(), CircuitState::kOpen);
  const ClientClock::time_point start = ClientClock::now();
  CallResult<proto::Aggregates> r =
      client.Query("k", 1000, 0, Within(milliseconds(1000)));
  EXPECT_LT(ClientClock::now() - start, milliseconds(500));  // did not wait
  EXPECT_EQ(r.code, Code::kUnavailable);
  EXPECT_EQ(r.message, "circuit open");
  EXPECT_EQ(r.degraded, Degraded::kShortCircuited);
  EXPECT_EQ(r.attempts, 0);
}

TEST(ClientTest, ForceOpenShortCircuitsUntilReleased) {
  TestServer server;
  Client client(OptionsFor(server.port()));
  ASSERT_TRUE(client.Add("k", 1).ok());
  client.ForceOpen(true);
  EXPECT_EQ(client.circuit_state(), CircuitState::kForcedOpen);
  CallResult<proto::AddItemResult> a = client.Add("k", 1);
  EXPECT_EQ(a.code, Code::kUnavailable);
  EXPECT_EQ(a.degraded, Degraded::kShortCircuited);
  client.ForceOpen(false);
  EXPECT_EQ(client.circuit_state(), CircuitState::kClosed);
  EXPECT_EQ(client.Query("k", 60'000).value.count, 1);  // not applied twice
}

TEST(ClientTest, DefaultValueFallbackIsShapedLikeTheRequest) {
  SilentServer silent;
  ClientOptions options = OptionsFor(silent.port());
  options.fallback = Fallback::kDefaultValue;
  Client client(options);
  Batch batch;
  batch.Add("k", 5).Query("k", 1000).Query("j", 1000);
  CallResult<BatchResult> r = client.Execute(batch, Within(milliseconds(30)));
  EXPECT_EQ(r.code, Code::kDeadlineExceeded);
  EXPECT_EQ(r.degraded, Degraded::kTimeout);
  ASSERT_EQ(r.value.adds.size(), 1u);
  EXPECT_EQ(r.value.adds[0].code, Code::kDeadlineExceeded);
  ASSERT_EQ(r.value.queries.size(), 2u);
  EXPECT_EQ(r.value.queries[0].answer.count, 0);
  // A per-call fallback overrides the client's.
  CallOptions call = Within(milliseconds(30));
  call.fallback = Fallback::kError;
  CallResult<BatchResult> e = client.Execute(batch, call);
  EXPECT_EQ(e.degraded, Degraded::kTimeout);
  EXPECT_TRUE(e.value.queries.empty());
}

TEST(ClientTest, LastKnownFallbackReturnsTheLastAnswer) {
  TestServer server;
  ClientOptions options = OptionsFor(server.port());
  options.fallback = Fallback::kLastKnown;
  Client client(options);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.Add("user:1", 10).ok());
  ASSERT_EQ(client.Query("user:1", 60'000).value.count, 3);
  client.ForceOpen(true);
  CallResult<proto::Aggregates> r = client.Query("user:1", 60'000);
  EXPECT_EQ(r.code, Code::kUnavailable);
  EXPECT_EQ(r.degraded, Degraded::kShortCircuited);
  EXPECT_EQ(r.value.count, 3);
  EXPECT_EQ(r.value.sum, 30);
  // Never answered before: a zero value.
  CallResult<proto::Aggregates> other = client.Query("user:2", 60'000);
  EXPECT_EQ(other.degraded, Degraded::kShortCircuited);
  EXPECT_EQ(other.value.count, 0);
}

TEST(ClientTest, TheBulkheadRejectsCallsBeyondMaxInFlight) {
  SilentServer silent;
  ClientOptions options = OptionsFor(silent.port());
  options.max_in_flight = 2;
  options.breaker.enabled = false;
  Client client(options);
  proto::Request ping;
  ping.body = proto::PingRequest{};
  std::promise<void> first_done;
  std::promise<void> second_done;
  client.CallAsync(
      ping, Within(milliseconds(1000)),
      [&](CallResult<proto::Response>) { first_done.set_value(); });
  client.CallAsync(ping, Within(milliseconds(1000)),
                   [&](auto) { second_done.set_value(); });
  CallResult<proto::Response> r = client.Call(ping, Within(milliseconds(1000)));
  EXPECT_EQ(r.code, Code::kResourceExhausted);
  EXPECT_EQ(r.degraded, Degraded::kRejected);
  first_done.get_future().wait();
  second_done.get_future().wait();
  // Capacity is back once they ended.
  EXPECT_EQ(client.Call(ping, Within(milliseconds(20))).code,
            Code::kDeadlineExceeded);
}

TEST(ClientTest, DestroyingTheClientEndsPendingCallsWithUnavailable) {
  SilentServer silent;
  std::promise<CallResult<proto::Response>> done;
  {
    Client client(OptionsFor(silent.port()));
    proto::Request ping;
    ping.body = proto::PingRequest{};
    client.CallAsync(
        ping, Within(milliseconds(10'000)),
        [&](CallResult<proto::Response> r) { done.set_value(std::move(r)); });
    std::this_thread::sleep_for(milliseconds(20));
  }
  std::future<CallResult<proto::Response>> f = done.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(f.get().code, Code::kUnavailable);
}

TEST(ClientTest, UnavailableWhileTheServerIsDownThenReconnects) {
  auto server = std::make_unique<TestServer>();
  const uint16_t port = server->port();
  ClientOptions options = OptionsFor(port);
  options.breaker.enabled = false;
  Client client(options);
  ASSERT_TRUE(client.Add("k", 1).ok());

  server.reset();  // stopped: connections closed, nothing listens
  CallResult<proto::Aggregates> down =
      client.Query("k", 60'000, 0, Within(milliseconds(2000)));
  EXPECT_EQ(down.code, Code::kUnavailable) << down.message;
  EXPECT_EQ(down.degraded, Degraded::kFailure);
  EXPECT_GE(down.attempts, 1);

  server = std::make_unique<TestServer>(port);  // same port, fresh state
  ASSERT_EQ(server->port(), port);
  CallResult<proto::Aggregates> up;
  const ClientClock::time_point give_up =
      ClientClock::now() + std::chrono::seconds(10);
  do {
    up = client.Query("k", 60'000, 0, Within(milliseconds(1000)));
    if (!up.ok()) std::this_thread::sleep_for(milliseconds(20));
  } while (!up.ok() && ClientClock::now() < give_up);
  ASSERT_TRUE(up.ok()) << up.message;
  EXPECT_EQ(up.value.count, 0);  // the new server's empty state
}

TEST(ClientTest, ReadsFailOverToTheNextEndpoint) {
  TestServer server;
  uint16_t refused_port = 0;
  {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    refused_port = a.local_endpoint().port();
  }  // closed: connects to it are refused
  ClientOptions options = OptionsFor(refused_port);
  options.endpoints.push_back(
      Endpoint{.host = "127.0.0.1", .port = server.port()});
  options.breaker.enabled = false;
  Client client(options);
  CallResult<proto::Aggregates> r = client.Query("k", 60'000);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.attempts, 2);
}

}  // namespace
}  // namespace tally
