// Session rules added after auth_test.cc: admin operations only from
// loopback by default (RELIABILITY.md 4.3). Driven without sockets: the
// peer address is the one a Connection captures at accept.

#include <gtest/gtest.h>

#include "server/auth.h"

namespace tally {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kReaderSecret = "00112233445566778899aabbccddeeff";
constexpr std::string_view kAdminSecret = "0123456789abcdef0123456789abcdef";

std::shared_ptr<AuthConfig> Config(const std::string& extra_lines = "") {
  auto config = std::make_shared<AuthConfig>();
  Result<std::vector<Token>> tokens = ParseTokenFile(
      TokenLine("risk", Role::kReader, kReaderSecret, {}) + "\n" +
      TokenLine("ops", Role::kAdmin, kAdminSecret, {}) + "\n" + extra_lines);
  EXPECT_TRUE(tokens.ok()) << tokens.status().ToString();
  config->tokens = std::make_shared<TokenStore>(std::move(*tokens));
  config->throttle = std::make_shared<AuthThrottle>();
  config->denials = std::make_shared<DenialLog>();
  return config;
}

proto::Request DebugInfo() {
  proto::Request r;
  r.body = proto::InfoRequest{.section = "debug"};
  return r;
}

Status Check(Session& session, proto::Request request) {
  std::vector<size_t> denied;
  return session.Authorize(&request, &denied);
}

TEST(AdminReachTest, AdminOnlyOperations) {
  EXPECT_TRUE(Session::IsAdminOnly(DebugInfo()));
  proto::Request info;
  info.body = proto::InfoRequest{.section = "all"};
  EXPECT_FALSE(Session::IsAdminOnly(info));
  proto::Request ping;
  ping.body = proto::PingRequest{};
  EXPECT_FALSE(Session::IsAdminOnly(ping));
}

TEST(AdminReachTest, LocalPeers) {
  for (const char* peer :
       {"127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1", "unix"}) {
    EXPECT_TRUE(Session(nullptr, peer).local()) << peer;
  }
  for (const char* peer :
       {"192.0.2.2", "10.0.0.1", "::ffff:10.0.0.1", "fd00::2", "unknown", ""}) {
    EXPECT_FALSE(Session(nullptr, peer).local()) << peer;
  }
}

// An admin token from a non-loopback peer: INFO debug is NO_PERMISSION
// (counted), everything else an admin may do still works; with
// --admin_allow_remote it is allowed. A reader is refused for its role
// wherever it comes from.
TEST(AdminReachTest, AdminFromARemotePeerIsRefusedUnlessAllowed) {
  auto config = Config();
  LimitStats stats;
  const auto now = Clock::now();
  Session local(config, "127.0.0.1", false, &stats);
  Session remote(config, "192.0.2.2", false, &stats);
  Session allowed(config, "192.0.2.2", /*admin_allow_remote=*/true, &stats);
  Session reader(config, "127.0.0.1", false, &stats);
  for (Session* s : {&local, &remote, &allowed}) {
    ASSERT_EQ(s->Authenticate({.token = std::string(kAdminSecret)}, now).code,
              Code::kOk);
  }
  ASSERT_EQ(
      reader.Authenticate({.token = std::string(kReaderSecret)}, now).code,
      Code::kOk);
  EXPECT_TRUE(local.AdminAllowed());
  EXPECT_FALSE(remote.AdminAllowed());
  EXPECT_TRUE(allowed.AdminAllowed());
  EXPECT_FALSE(reader.AdminAllowed());

  EXPECT_TRUE(Check(local, DebugInfo()).ok());
  EXPECT_TRUE(Check(allowed, DebugInfo()).ok());
  Status refused = Check(remote, DebugInfo());
  EXPECT_EQ(refused.code(), Code::kNoPermission);
  EXPECT_NE(refused.message().find("only from loopback"), std::string::npos)
      << refused.ToString();
  EXPECT_NE(refused.message().find("192.0.2.2"), std::string::npos);
  EXPECT_NE(refused.message().find("--admin_allow_remote"), std::string::npos);
  EXPECT_EQ(stats.admin_remote.load(), 1u);
  // Not an admin operation: the remote admin keeps every other right.
  proto::Request add;
  add.body = proto::AddRequest{.items = {{.key = "k"}}};
  EXPECT_TRUE(Check(remote, add).ok());
  // A reader is refused for its role, not its address (not counted).
  Status role = Check(reader, DebugInfo());
  EXPECT_EQ(role.code(), Code::kNoPermission);
  EXPECT_NE(role.message().find("admin only"), std::string::npos);
  EXPECT_EQ(stats.admin_remote.load(), 1u);
}

// Without a token file every connection is admin, and the rule still holds.
TEST(AdminReachTest, NoTokenFileStillNeedsALocalPeer) {
  LimitStats stats;
  Session local(nullptr, "::1", false, &stats);
  Session remote(nullptr, "10.1.2.3", false, &stats);
  Session allowed(nullptr, "10.1.2.3", true, &stats);
  EXPECT_TRUE(Check(local, DebugInfo()).ok());
  EXPECT_EQ(Check(remote, DebugInfo()).code(), Code::kNoPermission);
  EXPECT_TRUE(Check(allowed, DebugInfo()).ok());
  proto::Request info;
  info.body = proto::InfoRequest{.section = "all"};
  EXPECT_TRUE(Check(remote, info).ok());
  EXPECT_EQ(stats.admin_remote.load(), 1u);
}

}  // namespace
}  // namespace tally
