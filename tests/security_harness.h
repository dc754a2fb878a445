// The harness of the security tests (tests/security_test.cc,
// tests/security_access_test.cc): a tallyd child process, a raw protocol
// connection from a chosen source address, fixed test secrets and the
// fixture that starts tallyd with a token file.
// TALLYD_BIN and TALLY_BIN are set by tests/CMakeLists.txt.

#ifndef TALLY_TESTS_SECURITY_HARNESS_H_
#define TALLY_TESTS_SECURITY_HARNESS_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/tally/client.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "server/auth.h"

namespace tally::security_test {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

inline RunResult Shell(const std::string& command) {
  const std::string bounded = "timeout -k 5 30 " + command + " 2>&1";
  RunResult run;
  FILE* pipe = popen(bounded.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0)
    run.out.append(buffer, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Secrets used by every test (fixed, 128 bits each) and a wrong one.
inline const std::string kReader = "1f0e2d3c4b5a69788796a5b4c3d2e1f0";
inline const std::string kWriter = "aa0e2d3c4b5a69788796a5b4c3d2e1f0";
inline const std::string kAdmin = "bb0e2d3c4b5a69788796a5b4c3d2e1f0";
inline const std::string kWrong = "cc0e2d3c4b5a69788796a5b4c3d2e1f0";

inline std::string TokenFileText(bool with_reader = true) {
  std::string text = "# test tokens\n";
  if (with_reader) text += TokenLine("risk", Role::kReader, kReader, {}) + "\n";
  text += TokenLine("ingest", Role::kWriter, kWriter, {"p:"}) + "\n";
  text += TokenLine("ops", Role::kAdmin, kAdmin, {}) + "\n";
  return text;
}

// A tallyd child process.
class Tallyd {
 public:
  explicit Tallyd(std::string dir) : dir_(std::move(dir)) {}
  ~Tallyd() { Stop(); }

  // Starts with `flags` (plus --port=0 and --allow_root); false if it did
  // not print its ready line within 15 s.
  bool Start(std::vector<std::string> flags) {
    log_ = dir_ + "/tallyd.log";
    flags.insert(flags.begin(), {"--allow_root", "--port=0"});
    int out[2];
    if (pipe(out) != 0) return false;
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      dup2(out[1], STDOUT_FILENO);
      const int log = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      dup2(log, STDERR_FILENO);
      close(out[0]);
      close(out[1]);
      std::vector<char*> argv = {const_cast<char*>(TALLYD_BIN)};
      for (std::string& f : flags) argv.push_back(f.data());
      argv.push_back(nullptr);
      execv(TALLYD_BIN, argv.data());
      _exit(127);
    }
    close(out[1]);
    std::string text;
    const auto deadline = SteadyClock::now() + std::chrono::seconds(15);
    while (text.find('\n') == std::string::npos &&
           SteadyClock::now() < deadline) {
      pollfd p{.fd = out[0], .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char c[256];
      const ssize_t n = read(out[0], c, sizeof c);
      if (n <= 0) break;
      text.append(c, static_cast<size_t>(n));
    }
    close(out[0]);
    const std::string prefix = "tallyd ready port=";
    const size_t at = text.find(prefix);
    if (at == std::string::npos) return false;
    port_ = static_cast<uint16_t>(std::stoi(text.substr(at + prefix.size())));
    return port_ > 0;
  }

  void Signal(int sig) const {
    if (pid_ > 0) kill(pid_, sig);
  }

  // SIGTERM, then SIGKILL after 10 s; the exit code (-1 if killed).
  int Stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100 && waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(milliseconds(100));
    }
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // User + system CPU seconds of the process so far.
  double CpuSeconds() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    const size_t close_paren = stat.rfind(')');
    std::istringstream fields(stat.substr(close_paren + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
    }
    return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }

  uint16_t port() const { return port_; }
  const std::string& log() const { return log_; }

 private:
  std::string dir_;
  std::string log_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// A raw protocol connection from a chosen loopback source address.
class Raw {
 public:
  Raw(uint16_t port, const std::string& source) : socket_(io_) {
    boost::system::error_code ec;
    socket_.open(asio::ip::tcp::v4(), ec);
    if (!ec) {
      socket_.bind({asio::ip::make_address(source), 0}, ec);
    }
    if (!ec) {
      socket_.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    }
    ok_ = !ec;
  }
  bool ok() const { return ok_; }

  bool SendBytes(const std::vector<uint8_t>& bytes) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(bytes), ec);
    return !ec;
  }
  bool Send(proto::Request request) {
    std::vector<uint8_t> frame;
    AppendFrame(&frame, FrameKind::kRequest, next_id_++,
                EncodeRequest(request));
    return SendBytes(frame);
  }
  template <typename Body>
  bool SendBody(Body body) {
    proto::Request r;
    r.body = std::move(body);
    return Send(std::move(r));
  }

  // The next response; nullopt on EOF, error or timeout (then closed() says
  // whether the server closed the connection).
  std::optional<proto::Response> Read(
      milliseconds timeout = milliseconds(5000)) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      Result<std::optional<Frame>> next = decoder_.Next();
      if (!next.ok()) return std::nullopt;
      if (next->has_value()) {
        Result<proto::Response> r = DecodeResponse((*next)->body);
        if (!r.ok()) return std::nullopt;
        return std::move(*r);
      }
      const auto left = std::chrono::duration_cast<milliseconds>(
          deadline - SteadyClock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{.fd = socket_.native_handle(), .events = POLLIN, .revents = 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      std::span<uint8_t> room = decoder_.Prepare(64 << 10);
      boost::system::error_code ec;
      const size_t n =
          socket_.read_some(asio::buffer(room.data(), room.size()), ec);
      if (ec) {
        closed_ = true;
        return std::nullopt;
      }
      decoder_.Commit(n);
    }
  }
  // Whether the server closes the connection within `timeout` (replies
  // before the close are skipped).
  bool ClosedWithin(milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (!closed_ && SteadyClock::now() < deadline) {
      Read(std::chrono::duration_cast<milliseconds>(deadline -
                                                    SteadyClock::now()));
    }
    return closed_;
  }
  Code Call(proto::Request request) {
    if (!Send(std::move(request))) return Code::kUnavailable;
    std::optional<proto::Response> r = Read();
    return r ? r->code : Code::kUnavailable;
  }
  template <typename Body>
  std::optional<proto::Response> CallBody(Body body) {
    if (!SendBody(std::move(body))) return std::nullopt;
    return Read();
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  FrameDecoder decoder_{kDefaultMaxFrameBody, FrameKind::kResponse};
  uint64_t next_id_ = 1;
  bool ok_ = false;
  bool closed_ = false;
};

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tally-security-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    token_file_ = dir_ + "/tokens";
    WriteTokens(TokenFileText());
  }
  void TearDown() override {
    server_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  void WriteTokens(const std::string& text) {
    {
      std::ofstream out(token_file_ + ".new");
      out << text;
    }
    chmod((token_file_ + ".new").c_str(), 0600);
    std::filesystem::rename(token_file_ + ".new", token_file_);
  }
  Tallyd& StartWithTokens(std::vector<std::string> extra = {}) {
    server_ = std::make_unique<Tallyd>(dir_);
    extra.push_back("--token_file=" + token_file_);
    extra.push_back("--data_dir=" + dir_ + "/data");
    EXPECT_TRUE(server_->Start(extra)) << ReadAll(dir_ + "/tallyd.log");
    return *server_;
  }
  // Authenticates `raw`; the reply's code.
  static Code Auth(Raw& raw, const std::string& token) {
    std::optional<proto::Response> r =
        raw.CallBody(proto::AuthRequest{.token = token});
    return r ? r->code : Code::kUnavailable;
  }
  // S8: no secret, right or wrong, ever reaches the log.
  void ExpectNoSecretInLog() {
    const std::string log = ReadAll(server_->log());
    for (const std::string& s : {kReader, kWriter, kAdmin, kWrong}) {
      EXPECT_EQ(log.find(s), std::string::npos) << "secret in the log";
      EXPECT_EQ(log.find(s.substr(0, 12)), std::string::npos);
    }
  }

  std::string dir_;
  std::string token_file_;
  std::unique_ptr<Tallyd> server_;
};

}  // namespace tally::security_test

#endif  // TALLY_TESTS_SECURITY_HARNESS_H_
