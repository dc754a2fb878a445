#include "tools/cli/pipe_mode.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace tally::cli {
namespace {

// Answers each request on its own thread after a random delay, so replies
// complete out of order; PINGs get PONG, adds OK.
class ShuffledServer {
 public:
  ~ShuffledServer() {
    for (std::thread& t : threads_) t.join();
  }
  void Execute(proto::Request request,
               std::function<void(proto::Response)> done) {
    const int in_flight = ++in_flight_;
    int seen = max_in_flight_.load();
    while (in_flight > seen &&
           !max_in_flight_.compare_exchange_weak(seen, in_flight)) {
    }
    std::lock_guard lock(mu_);
    const int delay_us = static_cast<int>(rng_() % 300);
    threads_.emplace_back(
        [this, request = std::move(request), done = std::move(done), delay_us] {
          std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
          proto::Response r;
          if (request.op() == proto::Op::kPing) {
            r.body = proto::PingResult{};
          } else {
            r.body = proto::AddResult{.items = {{}}};
          }
          --in_flight_;
          done(std::move(r));
        });
  }
  int max_in_flight() const { return max_in_flight_.load(); }

 private:
  std::mutex mu_;
  std::mt19937 rng_{42};
  std::vector<std::thread> threads_;
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(PipeModeTest, OneReplyPerLineInInputOrder) {
  std::string input;
  for (int i = 0; i < 300; ++i) {
    input += (i % 3 == 0) ? "PING\n" : (i % 50 == 7 ? "INSPECT\n" : "ADD k\n");
  }
  std::istringstream in(input);
  std::ostringstream out;
  ShuffledServer server;
  PipeStats stats = RunPipe(in, out, {.format = {}, .window = 16},
                            [&](proto::Request r, auto done) {
                              server.Execute(std::move(r), std::move(done));
                            });
  std::vector<std::string> lines = Lines(out.str());
  ASSERT_EQ(lines.size(), 300u);
  EXPECT_EQ(stats.replies, 300u);
  uint64_t errors = 0;
  for (int i = 0; i < 300; ++i) {
    const char* want = (i % 3 == 0) ? "PONG"
                       : (i % 50 == 7)
                           ? "(error) ERR wrong number of arguments for "
                             "'INSPECT' command"
                           : "OK";
    if (i % 3 != 0 && i % 50 == 7) ++errors;
    EXPECT_EQ(lines[i], want) << "line " << i + 1;
  }
  EXPECT_EQ(stats.errors, errors);
  EXPECT_LE(server.max_in_flight(), 16);
  EXPECT_GT(server.max_in_flight(), 1);  // really pipelined
}

TEST(PipeModeTest, JsonAndBlankLines) {
  std::istringstream in("PING\n\nADD \"unclosed\n");
  std::ostringstream out;
  ShuffledServer server;
  PipeStats stats = RunPipe(
      in, out,
      {.format = {.json = true, .one_line = true, .chart = false}, .window = 8},
      [&](proto::Request r, auto done) {
        server.Execute(std::move(r), std::move(done));
      });
  EXPECT_EQ(out.str(),
            "{\"reply\":\"PONG\"}\n"
            "{\"error\":{\"code\":\"ERR\",\"message\":\"empty command\"}}\n"
            "{\"error\":{\"code\":\"ERR\",\"message\":\"unbalanced quotes\"}}"
            "\n");
  EXPECT_EQ(stats.errors, 2u);
}

TEST(PipeModeTest, QuitStopsReading) {
  std::istringstream in("PING\nQUIT\nPING\n");
  std::ostringstream out;
  ShuffledServer server;
  RunPipe(in, out, {}, [&](proto::Request r, auto done) {
    server.Execute(std::move(r), std::move(done));
  });
  EXPECT_EQ(out.str(), "PONG\nOK\n");
}

TEST(PipeModeTest, SynchronousCompletion) {
  std::istringstream in("PING\nPING\n");
  std::ostringstream out;
  RunPipe(in, out, {.format = {}, .window = 1}, [](proto::Request, auto done) {
    proto::Response r;
    r.body = proto::PingResult{};
    done(std::move(r));
  });
  EXPECT_EQ(out.str(), "PONG\nPONG\n");
}

}  // namespace
}  // namespace tally::cli
