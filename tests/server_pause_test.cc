// The client library against a real tallyd process that is frozen with
// SIGSTOP (a Jepsen-style pause) and thawed with SIGCONT: calls end by their
// deadline and say why, the circuit breaker opens and fails fast, and after
// SIGCONT the client recovers by itself. TALLYD names the server binary.

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <tally/client.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

extern char** environ;

namespace tally {
namespace {

using std::chrono::milliseconds;

// Starts `tallyd --port=0` and reads its port from the ready line.
class TallydProcess {
 public:
  TallydProcess() {
    const char* path = std::getenv("TALLYD");
    if (path == nullptr) return;
    int out[2];
    if (pipe(out) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    char dir[] = "/tmp/tally-pause-test-XXXXXX";
    if (mkdtemp(dir) == nullptr) return;
    data_dir_ = dir;
    // --allow_root: tests run as root in CI (docs/security.md).
    std::string root_flag = "--allow_root";
    std::string port_flag = "--port=0", threads_flag = "--threads=1",
                data_flag = "--data_dir=" + data_dir_,
                // What is tested is the client, not the disk: fdatasync on
                // a shared CI disk can take longer than the calls' deadlines.
        durability_flag = "--durability=os";
    char* argv[] = {const_cast<char*>(path),
                    root_flag.data(),
                    port_flag.data(),
                    threads_flag.data(),
                    data_flag.data(),
                    durability_flag.data(),
                    nullptr};
    if (posix_spawn(&pid_, path, &actions, nullptr, argv, environ) != 0)
      pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    FILE* stream = fdopen(out[0], "r");
    char line[256];
    unsigned port = 0;
    while (stream != nullptr && fgets(line, sizeof(line), stream) != nullptr) {
      if (std::sscanf(line, "tallyd ready port=%u", &port) == 1) break;
    }
    port_ = static_cast<uint16_t>(port);
    stream_ = stream;
  }
  ~TallydProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGCONT);
      kill(pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
    }
    if (stream_ != nullptr) fclose(stream_);
    if (!data_dir_.empty()) std::filesystem::remove_all(data_dir_);
  }
  bool ok() const { return pid_ > 0 && port_ != 0; }
  uint16_t port() const { return port_; }
  void Signal(int sig) const { kill(pid_, sig); }
  // kill() returns before the target has stopped: wait until /proc says so
  // (state 'T'), or a request sent right away may still be served.
  bool WaitUntilStopped() const {
    const std::string path = "/proc/" + std::to_string(pid_) + "/stat";
    for (int i = 0; i < 400; ++i) {
      if (FILE* f = std::fopen(path.c_str(), "r")) {
        int pid = 0;
        char comm[256] = {0}, state = 0;
        const int n = std::fscanf(f, "%d %255s %c", &pid, comm, &state);
        std::fclose(f);
        if (n == 3 && state == 'T') return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

 private:
  pid_t pid_ = -1;
  std::string data_dir_;
  uint16_t port_ = 0;
  FILE* stream_ = nullptr;
};

TEST(ServerPauseTest,
     CallsEndByTheirDeadlineTheBreakerOpensAndTheClientRecovers) {
  TallydProcess server;
  if (std::getenv("TALLYD") == nullptr) GTEST_SKIP() << "TALLYD not set";
  ASSERT_TRUE(server.ok());

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
  ASSERT_TRUE(server.WaitUntilStopped());
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
