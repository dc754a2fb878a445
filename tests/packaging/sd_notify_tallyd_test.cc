// The real tallyd started as systemd would start a Type=notify service:
// $NOTIFY_SOCKET names a datagram socket this test reads. READY=1 must come
// only once the port accepts (a connection made the moment it arrives is
// served), RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <tally/client.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

extern char** environ;

namespace tally {
namespace {

class NotifySocket {
 public:
  NotifySocket() {
    name_ = "@tally-sd-notify-tallyd-test-" + std::to_string(getpid());
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, name_.data(), name_.size());
    address.sun_path[0] = '\0';
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&address),
                  offsetof(sockaddr_un, sun_path) + name_.size()) == 0;
  }
  ~NotifySocket() { close(fd_); }
  bool bound() const { return bound_; }
  const std::string& name() const { return name_; }
  // The next datagram; "" after 30 s without one (tallyd hung or died).
  std::string Receive() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 30'000) != 1) return "";
    char buffer[4096];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    return n <= 0 ? std::string() : std::string(buffer, n);
  }

 private:
  std::string name_;
  int fd_ = -1;
  bool bound_ = false;
};

// Kills a tallyd the test left running (a failed assertion) and removes
// its data directory, so that a failure never leaves a server behind.
struct Cleanup {
  pid_t pid = 0;
  std::string data_dir;
  ~Cleanup() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (!data_dir.empty()) std::filesystem::remove_all(data_dir);
  }
};

// "STATUS=serving on 127.0.0.1:PORT" inside a message -> PORT, or 0.
uint16_t PortOf(const std::string& message) {
  const std::string marker = "STATUS=serving on 127.0.0.1:";
  const size_t at = message.find(marker);
  if (at == std::string::npos) return 0;
  return static_cast<uint16_t>(std::atoi(message.c_str() + at + marker.size()));
}

TEST(SdNotifyTallydTest, ReadyOnlyWhenServingThenReloadingAndStopping) {
  const char* tallyd = std::getenv("TALLYD");
  ASSERT_NE(tallyd, nullptr) << "set TALLYD to the tallyd binary";
  NotifySocket systemd;
  ASSERT_TRUE(systemd.bound());

  char data_template[] = "/tmp/tally-sd-notify-XXXXXX";
  ASSERT_NE(mkdtemp(data_template), nullptr);
  const std::string data_dir = data_template;
  Cleanup cleanup;
  cleanup.data_dir = data_dir;
  std::vector<std::string> args = {tallyd, "--port=0", "--bind=127.0.0.1",
                                   "--data_dir=" + data_dir, "--threads=1"};
  if (geteuid() == 0) args.push_back("--allow_root");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = {"NOTIFY_SOCKET=" + systemd.name()};
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) env_strings.push_back(*e);
  }
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(
      posix_spawn(&pid, tallyd, nullptr, nullptr, argv.data(), envp.data()), 0);
  cleanup.pid = pid;

  // Until READY=1 only STATUS= may arrive (recovering ...).
  std::string message;
  for (int i = 0; i < 10; ++i) {
    message = systemd.Receive();
    ASSERT_FALSE(message.empty()) << "no READY=1 from tallyd";
    if (message.find("READY=1") != std::string::npos) break;
    EXPECT_EQ(message.rfind("STATUS=", 0), 0u) << message;
  }
  ASSERT_EQ(message.rfind("READY=1\n", 0), 0u) << message;
  const uint16_t port = PortOf(message);
  ASSERT_NE(port, 0) << message;

  // Served at once: no retry, no waiting.
  ClientOptions options;
  options.endpoints = {{"127.0.0.1", port}};
  options.default_timeout = std::chrono::seconds(5);
  options.retry.max_attempts = 1;
  {
    Client client(options);
    CallResult<proto::AddItemResult> added = client.Add("notify:key");
    ASSERT_TRUE(added.ok()) << added.message;
    EXPECT_EQ(added.attempts, 1);
  }

  ASSERT_EQ(kill(pid, SIGHUP), 0);
  message = systemd.Receive();
  EXPECT_EQ(message.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << message;
  message = systemd.Receive();
  EXPECT_EQ(message.rfind("READY=1\n", 0), 0u) << message;
  EXPECT_EQ(PortOf(message), port) << message;

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  message = systemd.Receive();
  EXPECT_EQ(message.rfind("STOPPING=1", 0), 0u) << message;
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  cleanup.pid = 0;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace tally
