// Access rules added to the security posture after S1-S8: admin
// operations only from loopback by default (RELIABILITY.md 4.3) and the
// per-token ops/s bucket (4.5), against a real tallyd. The harness
// (tests/security_harness.h) binds loopback only and picks its ports.

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include "tests/security_harness.h"

namespace tally {
namespace {

using namespace security_test;  // NOLINT(build/namespaces): the harness

// A local IPv4 address that is not loopback ("" if none): a client bound to
// it reaches 127.0.0.1 as a non-loopback peer, with nothing exposed.
std::string NonLoopbackLocalAddress() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* a = list; a != nullptr && found.empty(); a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) == nullptr) {
      continue;
    }
    if (!IsLoopbackAddress(text)) found = text;
  }
  freeifaddrs(list);
  return found;
}

// RELIABILITY.md 4.3: admin operations only over loopback by default. An
// admin token from a non-loopback peer gets NO_PERMISSION for INFO debug
// (counted in INFO limits) and keeps its other rights;
// --admin_allow_remote lets it through.
TEST_F(SecurityTest, AdminOnlyFromLoopbackByDefault) {
  const std::string remote = NonLoopbackLocalAddress();
  if (remote.empty()) GTEST_SKIP() << "no non-loopback IPv4 address here";
  {
    TallydProcess& tallyd = StartWithTokens();
    Raw far(tallyd.port(), remote);
    ASSERT_TRUE(far.ok());
    ASSERT_EQ(Auth(far, kAdmin), Code::kOk);
    std::optional<proto::Response> r =
        far.CallBody(proto::InfoRequest{.section = "debug"});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->code, Code::kNoPermission);
    EXPECT_NE(r->message.find("only from loopback"), std::string::npos)
        << r->message;
    r = far.CallBody(proto::InfoRequest{.section = "limits"});
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->code, Code::kOk);
    EXPECT_NE(std::get<proto::InfoResult>(r->body).text.find(
                  "rejected_admin_remote:1\n"),
              std::string::npos);
    Raw near(tallyd.port(), "127.0.0.51");
    ASSERT_EQ(Auth(near, kAdmin), Code::kOk);
    r = near.CallBody(proto::InfoRequest{.section = "debug"});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->code, Code::kOk);
  }
  TallydProcess& tallyd = StartWithTokens({"--admin_allow_remote"});
  Raw far(tallyd.port(), remote);
  ASSERT_EQ(Auth(far, kAdmin), Code::kOk);
  std::optional<proto::Response> r =
      far.CallBody(proto::InfoRequest{.section = "debug"});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code, Code::kOk) << r->message;
  std::printf(
      "admin reach: INFO debug from %s refused by default, allowed "
      "with --admin_allow_remote\n",
      remote.c_str());
}

// RELIABILITY.md 4.5: a token's ops/s bucket, shared by its connections;
// an empty bucket answers RESOURCE_EXHAUSTED, counted in INFO limits.
TEST_F(SecurityTest, TokenOpsPerSecondBucket) {
  const std::string kLimited = "dd0e2d3c4b5a69788796a5b4c3d2e1f0";
  WriteTokens(TokenFileText() + TokenLine("slow", Role::kReader, kLimited, {}) +
              " ops_per_s=1 burst=3\n");
  TallydProcess& tallyd = StartWithTokens();
  Raw one(tallyd.port(), "127.0.0.61");
  Raw two(tallyd.port(), "127.0.0.62");
  ASSERT_EQ(Auth(one, kLimited), Code::kOk);
  ASSERT_EQ(Auth(two, kLimited), Code::kOk);
  // Three ops of burst, one more a second: six queries of one item, sent
  // back to back from two connections, cannot all pass in under 3 s.
  int ok = 0, exhausted = 0;
  std::string message;
  const auto start = SteadyClock::now();
  for (int i = 0; i < 6; ++i) {
    std::optional<proto::Response> r =
        (i % 2 ? two : one)
            .CallBody(proto::QueryRequest{
                .items = {proto::QueryItem::Last("k", 1000)}});
    ASSERT_TRUE(r.has_value());
    if (r->code == Code::kOk) ++ok;
    if (r->code == Code::kResourceExhausted) {
      ++exhausted;
      message = r->message;
    }
  }
  if (SteadyClock::now() - start < std::chrono::seconds(3)) {
    EXPECT_GE(exhausted, 1);
    EXPECT_LE(ok, 5);
    EXPECT_NE(message.find("over its rate limit"), std::string::npos)
        << message;
  }
  Raw admin(tallyd.port(), "127.0.0.63");
  ASSERT_EQ(Auth(admin, kAdmin), Code::kOk);  // unlimited token: unaffected
  std::optional<proto::Response> info =
      admin.CallBody(proto::InfoRequest{.section = "limits"});
  ASSERT_TRUE(info.has_value());
  EXPECT_NE(
      std::get<proto::InfoResult>(info->body)
          .text.find("rejected_token_rate:" + std::to_string(exhausted) + "\n"),
      std::string::npos);
  ExpectNoSecretInLog();
}
}  // namespace
}  // namespace tally
