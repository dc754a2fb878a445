// Session rules added after auth_test.cc: admin operations only from
// loopback by default (RELIABILITY.md 4.3), and per-token ops/s buckets
// (4.5). Driven without sockets: the peer address is the one a Connection
// captures at accept.

#include <gtest/gtest.h>

#include "server/auth.h"

namespace tally {
namespace {

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
  config->rates = std::make_shared<TokenRateLimiter>();
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
  proto::Request admin;
  admin.body = proto::AdminRequest{.args = {"DBSIZE"}};
  EXPECT_TRUE(Session::IsAdminOnly(admin));
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
  const auto now = BootClock::now();
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
  proto::Request dbsize;
  dbsize.body = proto::AdminRequest{.args = {"DBSIZE"}};
  EXPECT_EQ(Check(remote, dbsize).code(), Code::kNoPermission);
  EXPECT_TRUE(Check(local, dbsize).ok());
  EXPECT_TRUE(Check(allowed, dbsize).ok());
  EXPECT_EQ(stats.admin_remote.load(), 2u);
  // Not an admin operation: the remote admin keeps every other right.
  proto::Request add;
  add.body = proto::AddRequest{.items = {{.key = "k"}}};
  EXPECT_TRUE(Check(remote, add).ok());
  // A reader is refused for its role, not its address (not counted).
  Status role = Check(reader, DebugInfo());
  EXPECT_EQ(role.code(), Code::kNoPermission);
  EXPECT_NE(role.message().find("admin only"), std::string::npos);
  EXPECT_EQ(Check(reader, dbsize).code(), Code::kNoPermission);
  EXPECT_EQ(stats.admin_remote.load(), 2u);
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

constexpr std::string_view kWriterSecret = "ffeeddccbbaa99887766554433221100";

TEST(TokenRateTest, TokenFileOptions) {
  const std::string hash = "sha256:" + DigestHex(Sha256(kWriterSecret));
  Result<std::vector<Token>> tokens = ParseTokenFile(
      "a writer " + hash + " ops_per_s=500 burst=50 p: q:\n" +
      "b reader sha256:" + DigestHex(Sha256(kReaderSecret)) + " ops_per_s=7\n" +
      "c admin sha256:" + DigestHex(Sha256(kAdminSecret)) + "\n");
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  ASSERT_EQ(tokens->size(), 3u);
  EXPECT_EQ((*tokens)[0].ops_per_s, 500u);
  EXPECT_EQ((*tokens)[0].burst, 50u);
  EXPECT_EQ((*tokens)[0].prefixes, (std::vector<std::string>{"p:", "q:"}));
  EXPECT_EQ((*tokens)[1].ops_per_s, 7u);
  EXPECT_EQ((*tokens)[1].burst, 0u);
  EXPECT_EQ((*tokens)[2].ops_per_s, 0u);  // old syntax: no limit
  for (const std::string& bad :
       {std::string(" ops_per_s=0"), std::string(" ops_per_s=x"),
        std::string(" ops_per_s="), std::string(" ops_per_s=1000000000"),
        std::string(" burst=5"), std::string(" keys=100")}) {
    Result<std::vector<Token>> r = ParseTokenFile("a writer " + hash + bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("line 1"), std::string::npos);
  }
  EXPECT_NE(ParseTokenFile("a writer " + hash + " keys=100")
                .status()
                .message()
                .find("not supported"),
            std::string::npos);
  // After a prefix, an option-looking field is a prefix.
  Result<std::vector<Token>> late =
      ParseTokenFile("a writer " + hash + " p: ops_per_s=5");
  ASSERT_TRUE(late.ok());
  EXPECT_EQ((*late)[0].ops_per_s, 0u);
  EXPECT_EQ((*late)[0].prefixes.size(), 2u);
}

TEST(TokenRateTest, CostIsOnePerItem) {
  proto::Request r;
  r.body = proto::AddRequest{.items = {{.key = "a"}, {.key = "b"}}};
  EXPECT_EQ(RequestCost(r), 2u);
  r.body =
      proto::AddAndQueryRequest{.adds = {{.key = "a"}},
                                .queries = {proto::QueryItem::Last("a", 1),
                                            proto::QueryItem::Last("b", 1)}};
  EXPECT_EQ(RequestCost(r), 3u);
  r.body = proto::DeleteRequest{.keys = {"a", "b", "c", "d"}};
  EXPECT_EQ(RequestCost(r), 4u);
  r.body = proto::QueryRequest{};
  EXPECT_EQ(RequestCost(r), 1u);  // never free
  r.body = proto::ScanRequest{};
  EXPECT_EQ(RequestCost(r), 1u);
}

Token Limited(std::string id, uint32_t ops_per_s, uint32_t burst) {
  Token t;
  t.id = std::move(id);
  t.ops_per_s = ops_per_s;
  t.burst = burst;
  return t;
}

TEST(TokenRateTest, BucketRefillsAtTheRateUpToTheBurst) {
  TokenRateLimiter limiter;
  const Token t = Limited("t", 10, 5);
  const auto t0 = BootClock::now();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.TryTake(t, 1, t0)) << i;
  EXPECT_FALSE(limiter.TryTake(t, 1, t0));
  // 100 ms at 10/s: one op back.
  EXPECT_TRUE(limiter.TryTake(t, 1, t0 + std::chrono::milliseconds(100)));
  EXPECT_FALSE(limiter.TryTake(t, 1, t0 + std::chrono::milliseconds(100)));
  // An hour later: full again, but never more than the burst.
  const auto later = t0 + std::chrono::hours(1);
  EXPECT_TRUE(limiter.TryTake(t, 5, later));
  EXPECT_FALSE(limiter.TryTake(t, 1, later));
  // Unlimited tokens are never refused and get no bucket.
  const Token free = Limited("free", 0, 0);
  EXPECT_TRUE(limiter.TryTake(free, 1'000'000, t0));
  EXPECT_EQ(limiter.buckets(), 1u);
}

TEST(TokenRateTest, ABatchOverTheBurstNeedsAFullBucketAndLeavesDebt) {
  TokenRateLimiter limiter;
  const Token t = Limited("t", 10, 10);
  const auto t0 = BootClock::now();
  EXPECT_TRUE(limiter.TryTake(t, 1, t0));
  EXPECT_FALSE(limiter.TryTake(t, 30, t0));  // not full
  const auto t1 = t0 + std::chrono::seconds(1);
  EXPECT_TRUE(limiter.TryTake(t, 30, t1));  // full: admitted, level -20
  // The debt is paid back at the rate: nothing for 2 s, then one op.
  EXPECT_FALSE(limiter.TryTake(t, 1, t1 + std::chrono::milliseconds(1999)));
  EXPECT_TRUE(limiter.TryTake(t, 1, t1 + std::chrono::milliseconds(2100)));
}

// Every session of a token shares its bucket; other tokens are unaffected;
// refusals are RESOURCE_EXHAUSTED, counted, and HELLO/PING are free.
TEST(TokenRateTest, SessionsOfATokenShareItsBucket) {
  auto config = Config(TokenLine("w", Role::kWriter, kWriterSecret, {}) +
                       " ops_per_s=1 burst=3\n");
  LimitStats stats;
  const auto now = BootClock::now();
  Session a(config, "127.0.0.1", false, &stats);
  Session b(config, "127.0.0.2", false, &stats);
  Session other(config, "127.0.0.3", false, &stats);
  for (Session* s : {&a, &b}) {
    ASSERT_EQ(s->Authenticate({.token = std::string(kWriterSecret)}, now).code,
              Code::kOk);
  }
  ASSERT_EQ(other.Authenticate({.token = std::string(kReaderSecret)}, now).code,
            Code::kOk);
  proto::Request add;
  add.body = proto::AddRequest{.items = {{.key = "k"}, {.key = "l"}}};
  proto::Request query;
  query.body = proto::QueryRequest{.items = {proto::QueryItem::Last("k", 1)}};
  proto::Request ping;
  ping.body = proto::PingRequest{};
  EXPECT_TRUE(Check(a, add).ok());    // 2 of 3
  EXPECT_TRUE(Check(b, query).ok());  // 3 of 3
  Status refused = Check(a, query);
  EXPECT_EQ(refused.code(), Code::kResourceExhausted);
  EXPECT_NE(refused.message().find("ops_per_s=1 burst=3"), std::string::npos)
      << refused.ToString();
  EXPECT_EQ(Check(b, add).code(), Code::kResourceExhausted);
  EXPECT_TRUE(Check(b, ping).ok());
  EXPECT_TRUE(Check(other, query).ok());
  EXPECT_EQ(stats.token_rate.load(), 2u);
}

}  // namespace
}  // namespace tally
