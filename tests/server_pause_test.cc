// The client library against a real tallyd process that is frozen with
// SIGSTOP (a Jepsen-style pause) and thawed with SIGCONT: calls end by their
// deadline and say why, the circuit breaker opens and fails fast, and after
// SIGCONT the client recovers by itself. TALLYD names the server binary.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>
#include <tally/client.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "tests/support/tallyd_process.h"

namespace tally {
namespace {

using std::chrono::milliseconds;

// kill() returns before the target has stopped: wait until /proc says so
// (state 'T'), or a request sent right away may still be served.
bool WaitUntilStopped(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  for (int i = 0; i < 400; ++i) {
    if (FILE* f = std::fopen(path.c_str(), "r")) {
      int read_pid = 0;
      char comm[256] = {0}, state = 0;
      const int n = std::fscanf(f, "%d %255s %c", &read_pid, comm, &state);
      std::fclose(f);
      if (n == 3 && state == 'T') return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

TEST(ServerPauseTest,
     CallsEndByTheirDeadlineTheBreakerOpensAndTheClientRecovers) {
  if (std::getenv("TALLYD") == nullptr) GTEST_SKIP() << "TALLYD not set";
  test::TallydProcess server;
  // What is tested is the client, not the disk: fdatasync on a shared CI
  // disk can take longer than the calls' deadlines.
  ASSERT_TRUE(server.Start({.binary = std::getenv("TALLYD"),
                            .flags = {"--threads=1", "--durability=os"},
                            .log_file = ""}))  // its log in the test's output
      << server.output();

  ClientOptions options;
  options.endpoints = {{"127.0.0.1", server.port()}};
  options.default_timeout = milliseconds(50);
  options.breaker.minimum_calls = 5;
  options.breaker.open_wait = milliseconds(500);
  options.breaker.half_open_calls = 2;
  Client client(options);
  // Connecting is not what is tested: give the first call room on a loaded
  // machine. The pause below runs with the 50 ms default.
  CallOptions setup;
  setup.deadline = ClientClock::now() + std::chrono::seconds(5);
  ASSERT_TRUE(client.Query("user:1", 60'000, 0, setup).ok());

  server.Signal(SIGSTOP);
  ASSERT_TRUE(WaitUntilStopped(server.pid()));
  int timeouts = 0, short_circuited = 0;
  for (int i = 0; i < 20; ++i) {
    const auto start = ClientClock::now();
    CallResult<proto::Aggregates> r = client.Query("user:1", 60'000);
    const auto took = ClientClock::now() - start;
    EXPECT_FALSE(r.ok());
    // Never hangs: ends by the deadline (loose bound, shared machines).
    EXPECT_LT(took, milliseconds(50) + milliseconds(900));
    if (r.degraded == Degraded::kTimeout) ++timeouts;
    if (r.degraded == Degraded::kShortCircuited) ++short_circuited;
  }
  EXPECT_GE(timeouts, 1);
  EXPECT_GE(short_circuited, 1) << "the breaker never opened";
  EXPECT_EQ(client.circuit_state(), CircuitState::kOpen);

  server.Signal(SIGCONT);
  // After open_wait the breaker lets trial calls through and closes again.
  bool recovered = false;
  for (int i = 0; i < 100 && !recovered; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    CallOptions call;
    call.deadline = ClientClock::now() + milliseconds(500);
    recovered = client.Query("user:1", 60'000, 0, call).ok();
  }
  EXPECT_TRUE(recovered);
  for (int i = 0; i < 3; ++i) {
    CallOptions call;
    call.deadline = ClientClock::now() + milliseconds(500);
    EXPECT_TRUE(client.Add("user:1", 5, std::nullopt, call).ok());
  }
  EXPECT_EQ(client.circuit_state(), CircuitState::kClosed);
}

}  // namespace
}  // namespace tally
