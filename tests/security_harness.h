// The harness of the security tests (tests/security_test.cc,
// tests/security_access_test.cc, tests/sighup_policy_test.cc): fixed test
// secrets, the security tests' conventions over tests/support (a raw
// connection from a chosen source address, commands with stderr captured)
// and the fixture that starts tallyd with a token file. TALLYD_BIN and
// TALLY_BIN are set by tests/CMakeLists.txt.

#ifndef TALLY_TESTS_SECURITY_HARNESS_H_
#define TALLY_TESTS_SECURITY_HARNESS_H_

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/tally/client.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "server/auth.h"
#include "tests/support/raw_connection.h"
#include "tests/support/shell.h"
#include "tests/support/tallyd_process.h"

namespace tally::security_test {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;
using test::RunResult;
using test::TallydOptions;
using test::TallydProcess;

// A command line within 30 s, its stderr captured with its stdout.
inline RunResult Shell(const std::string& command) {
  return test::Shell(command, {.timeout_seconds = 30, .with_stderr = true});
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

// A raw protocol connection from a chosen loopback source address. Replies
// are taken whatever their request id (the tests send one at a time).
class Raw : public test::RawConnection {
 public:
  Raw(uint16_t port, const std::string& source)
      : RawConnection(port, {.source = source}) {}

  template <typename Body>
  bool SendBody(Body body) {
    return Send(test::Req(std::move(body)));
  }
  // The next response; nullopt on EOF, error or timeout (then closed() says
  // whether the server closed the connection).
  std::optional<proto::Response> Read(
      milliseconds timeout = milliseconds(5000)) {
    std::optional<test::Reply> reply = Receive(timeout);
    if (!reply) return std::nullopt;
    return std::move(reply->response);
  }
  // The reply's code (UNAVAILABLE when none came).
  Code CallForCode(const proto::Request& request) {
    if (!Send(request)) return Code::kUnavailable;
    std::optional<proto::Response> r = Read();
    return r ? r->code : Code::kUnavailable;
  }
  template <typename Body>
  std::optional<proto::Response> CallBody(Body body) {
    if (!SendBody(std::move(body))) return std::nullopt;
    return Read();
  }
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
  // tallyd's stderr (its log).
  std::string log_file() const { return dir_ + "/tallyd.log"; }
  TallydProcess& StartWithTokens(std::vector<std::string> extra = {}) {
    server_ = std::make_unique<TallydProcess>();
    extra.push_back("--token_file=" + token_file_);
    EXPECT_TRUE(server_->Start({.binary = TALLYD_BIN,
                                .flags = std::move(extra),
                                .data_dir = dir_ + "/data",
                                .log_file = log_file()}))
        << ReadAll(log_file());
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
    const std::string log = ReadAll(log_file());
    for (const std::string& s : {kReader, kWriter, kAdmin, kWrong}) {
      EXPECT_EQ(log.find(s), std::string::npos) << "secret in the log";
      EXPECT_EQ(log.find(s.substr(0, 12)), std::string::npos);
    }
  }

  std::string dir_;
  std::string token_file_;
  std::unique_ptr<TallydProcess> server_;
};

}  // namespace tally::security_test

#endif  // TALLY_TESTS_SECURITY_HARNESS_H_
