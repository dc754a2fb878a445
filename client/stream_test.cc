// Client::Stream against a real in-process server: a MONITOR stream gets
// its OK, then the events of another client's adds, on a connection of its
// own (the client's ordinary calls keep working), and ends when the
// callback says so or the connection fails.

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "client/tally/client.h"
#include "server/in_process_server.h"

namespace tally {
namespace {

// What the stream delivered, for the test thread to wait on.
struct Frames {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> texts;  // each frame's reply text (or error)
  bool ended = false;

  void WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return texts.size() >= n || ended; });
  }
};

proto::Request Monitor() {
  proto::Request r;
  r.body = proto::AdminRequest{.args = {"MONITOR", "MATCH", "stream:*"}};
  return r;
}

ClientOptions To(uint16_t port) {
  ClientOptions options;
  options.endpoints = {{"127.0.0.1", port}};
  options.default_timeout = std::chrono::seconds(5);
  options.connect_timeout = std::chrono::milliseconds(2000);
  return options;
}

TEST(ClientStreamTest, MonitorStreamsOtherClientsAddsUntilTold) {
  InProcessServerOptions server_options;
  server_options.server.port = 0;
  server_options.server.threads = 2;
  InProcessServer server(server_options);
  ASSERT_TRUE(server.status().ok());
  Client operator_client(To(server.port()));
  Client producer(To(server.port()));

  Frames frames;
  const size_t stop_after = 3;  // OK + two events
  operator_client.Stream(Monitor(), [&](Result<proto::Response> frame) {
    std::lock_guard<std::mutex> lock(frames.mu);
    if (!frame.ok()) {
      frames.ended = true;
    } else {
      const auto* admin = std::get_if<proto::AdminResult>(&frame->body);
      frames.texts.push_back(admin ? admin->reply.text : frame->message);
    }
    frames.cv.notify_all();
    return frames.texts.size() < stop_after;
  });
  frames.WaitFor(1);
  ASSERT_EQ(frames.texts.size(), 1u);
  EXPECT_EQ(frames.texts[0], "OK");
  // The monitoring client's own calls go on its pooled connections.
  proto::Request ping;
  ping.body = proto::PingRequest{};
  EXPECT_TRUE(operator_client.Call(ping).ok());

  ASSERT_TRUE(producer.Add("stream:1").ok());
  ASSERT_TRUE(producer.Add("stream:2").ok());
  frames.WaitFor(3);
  {
    std::lock_guard<std::mutex> lock(frames.mu);
    ASSERT_EQ(frames.texts.size(), 3u);
    EXPECT_NE(frames.texts[1].find("add \"stream:1\""), std::string::npos)
        << frames.texts[1];
    EXPECT_NE(frames.texts[2].find("add \"stream:2\""), std::string::npos)
        << frames.texts[2];
  }
  // Told to stop: its connection closes and leaves the server's list.
  proto::Request list;
  list.body = proto::AdminRequest{.args = {"CLIENT", "LIST"}};
  for (;;) {
    CallResult<proto::Response> r = producer.Call(list);
    ASSERT_TRUE(r.ok()) << r.message;
    if (std::get<proto::AdminResult>(r.value.body).reply.text.find("flags=O") ==
        std::string::npos) {
      break;
    }
  }
  std::lock_guard<std::mutex> lock(frames.mu);
  EXPECT_EQ(frames.texts.size(), 3u);
  EXPECT_FALSE(frames.ended);  // returning false is not an error
}

TEST(ClientStreamTest, AStreamToNoServerEndsWithOneError) {
  // A port nothing listens on: bind one, then close it.
  uint16_t port = 0;
  {
    InProcessServerOptions o;
    o.server.port = 0;
    InProcessServer gone(o);
    ASSERT_TRUE(gone.status().ok());
    port = gone.port();
  }
  Client client(To(port));
  Frames frames;
  int calls = 0;
  client.Stream(Monitor(), [&](Result<proto::Response> frame) {
    std::lock_guard<std::mutex> lock(frames.mu);
    ++calls;
    frames.ended = true;
    EXPECT_FALSE(frame.ok());
    EXPECT_EQ(frame.status().code(), Code::kUnavailable);
    frames.cv.notify_all();
    return true;
  });
  frames.WaitFor(1);
  std::lock_guard<std::mutex> lock(frames.mu);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace tally
