// CLIENT, SLOWLOG and MONITOR through a real server (InProcessServer on
// loopback, a port it picks) and blocking sockets
// (tests/support/raw_connection.h): what an operator sees, end to end. No
// timing: every wait is for a frame, and "nothing arrived" is shown by the
// next frame being the reply to a later request.

#include <gtest/gtest.h>

#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "protocol/codec.h"
#include "protocol/frame.h"
#include "server/auth.h"
#include "server/in_process_server.h"
#include "tests/support/raw_connection.h"

namespace tally {
namespace {

using proto::AdminReply;
using test::RawConnection;
using test::ReceiveEnd;
using test::Reply;

constexpr std::string_view kAdminSecret = "0123456789abcdef0123456789abcdef";

// The next frame, or nullopt once the server closed the connection; a frame
// whose body is not a Response fails the test.
std::optional<Reply> Receive(RawConnection& c) {
  std::optional<Reply> reply = c.Receive();
  EXPECT_NE(c.end(), ReceiveEnd::kBadResponse) << c.error().ToString();
  return reply;
}

// The reply to `request`; none (or another request's) fails the test.
proto::Response Call(RawConnection& c, const proto::Request& request) {
  std::optional<proto::Response> response = c.Call(request);
  EXPECT_TRUE(response.has_value()) << "no reply to request " << c.last_id();
  if (!response) return proto::Response::Error(Status(Code::kUnavailable, ""));
  return *std::move(response);
}

// An admin command's reply; fails the test on an error.
AdminReply Admin(RawConnection& c, std::vector<std::string> args) {
  proto::Request r;
  r.body = proto::AdminRequest{.args = std::move(args)};
  proto::Response response = Call(c, r);
  EXPECT_EQ(response.code, Code::kOk) << response.message;
  const auto* result = std::get_if<proto::AdminResult>(&response.body);
  return result ? result->reply : AdminReply::Nil();
}

proto::Response Add(RawConnection& c, std::string key) {
  proto::Request r;
  r.body = proto::AddRequest{.items = {{.key = std::move(key)}}};
  return Call(c, r);
}

proto::Request AdminRequest(std::vector<std::string> args) {
  proto::Request r;
  r.body = proto::AdminRequest{.args = std::move(args)};
  return r;
}

proto::Request Ping() {
  proto::Request r;
  r.body = proto::PingRequest{};
  return r;
}

// The CLIENT LIST lines.
std::vector<std::string> Lines(const AdminReply& list) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = list.text.find('\n', start)) != std::string::npos;
       start = end + 1) {
    lines.push_back(list.text.substr(start, end - start));
  }
  return lines;
}

// The value of `field=` in a CLIENT LIST line ("<none>" without one).
std::string Field(const std::string& line, const std::string& field) {
  std::istringstream words(line);
  for (std::string word; words >> word;) {
    if (word.rfind(field + "=", 0) == 0) return word.substr(field.size() + 1);
  }
  return "<none>";
}

InProcessServerOptions Options() {
  InProcessServerOptions options;
  options.server.port = 0;
  options.server.threads = 2;
  return options;
}

TEST(ClientCommandsTest, ListShowsEachConnectionWithItsNameAndLastCommand) {
  InProcessServer server(Options());
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  RawConnection a(server.port());
  RawConnection b(server.port());
  const int64_t id_a = Admin(a, {"CLIENT", "ID"}).integer;
  EXPECT_EQ(Admin(a, {"CLIENT", "GETNAME"}), AdminReply::Nil());
  EXPECT_EQ(Admin(a, {"CLIENT", "SETNAME", "engine-1"}),
            AdminReply::StatusWord("OK"));
  EXPECT_EQ(Admin(a, {"client", "getname"}), AdminReply::Text("engine-1"));
  ASSERT_EQ(Add(a, "user:1").code, Code::kOk);
  const int64_t id_b = Admin(b, {"CLIENT", "ID"}).integer;
  EXPECT_GE(id_a, 1);
  EXPECT_NE(id_a, id_b);

  std::vector<std::string> lines = Lines(Admin(b, {"CLIENT", "LIST"}));
  ASSERT_EQ(lines.size(), 2u);
  const std::string& la = lines[0];  // by id
  EXPECT_EQ(Field(la, "id"), std::to_string(id_a));
  EXPECT_EQ(Field(la, "name"), "engine-1");
  EXPECT_EQ(Field(la, "cmd"), "add");
  EXPECT_EQ(Field(la, "laddr"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(Field(la, "addr").rfind("127.0.0.1:", 0), 0u) << la;
  EXPECT_EQ(Field(la, "inflight"), "0");
  EXPECT_EQ(Field(la, "flags"), "N");
  EXPECT_EQ(Field(lines[1], "cmd"), "client");  // this CLIENT LIST
  for (const char* f : {"age", "idle", "obuf", "user"}) {
    EXPECT_NE(Field(la, f), "<none>") << f;
  }
}

TEST(ClientCommandsTest, KillByIdAndAddrClosesThoseConnections) {
  InProcessServer server(Options());
  ASSERT_TRUE(server.status().ok());
  RawConnection victim(server.port());
  RawConnection other(server.port());
  RawConnection admin(server.port());
  const int64_t victim_id = Admin(victim, {"CLIENT", "ID"}).integer;
  const std::vector<std::string> lines =
      Lines(Admin(admin, {"CLIENT", "LIST"}));
  ASSERT_EQ(lines.size(), 3u);
  const std::string other_addr = Field(lines[1], "addr");

  // The victim pipelines writes it never reads: they are dropped with it.
  proto::Request add;
  add.body = proto::AddRequest{.items = {{.key = "k"}}};
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(victim.Send(victim.next_id(), add));
  }
  EXPECT_EQ(Admin(admin, {"CLIENT", "KILL", "ID", std::to_string(victim_id)}),
            AdminReply::Integer(1));
  while (Receive(victim)) {
  }
  EXPECT_EQ(Admin(admin, {"CLIENT", "KILL", "ADDR", other_addr}),
            AdminReply::Integer(1));
  EXPECT_FALSE(Receive(other).has_value());
  EXPECT_EQ(Admin(admin, {"CLIENT", "KILL", "ID", "999999"}),
            AdminReply::Integer(0));
  EXPECT_EQ(Call(admin, Ping()).code, Code::kOk);  // the server carries on

  // Killing oneself: the reply first, then the close.
  const int64_t self = Admin(admin, {"CLIENT", "ID"}).integer;
  EXPECT_EQ(Admin(admin, {"CLIENT", "KILL", "ID", std::to_string(self)}),
            AdminReply::Integer(1));
  EXPECT_FALSE(Receive(admin).has_value());

  RawConnection last(server.port());
  // Closed connections leave the list once their strand has closed them.
  std::vector<std::string> now;
  do {
    now = Lines(Admin(last, {"CLIENT", "LIST"}));
  } while (now.size() != 1);
  EXPECT_EQ(Field(now[0], "cmd"), "client");
}

TEST(ClientCommandsTest, SlowlogWithThresholdZeroKeepsEveryRequest) {
  InProcessServerOptions options = Options();
  options.server.slowlog = {.log_slower_than_us = 0, .max_len = 4};
  InProcessServer server(options);
  ASSERT_TRUE(server.status().ok());
  RawConnection a(server.port());
  Admin(a, {"CLIENT", "SETNAME", "producer"});
  ASSERT_EQ(Add(a, "slow:key").code, Code::kOk);  // answered by the journal
  const std::string addr =
      Field(Lines(Admin(a, {"CLIENT", "LIST"}))[0], "addr");

  const AdminReply log = Admin(a, {"SLOWLOG", "GET", "2"});
  ASSERT_EQ(log.elements.size(), 2u);
  const AdminReply& list = log.elements[0];  // newest first
  const AdminReply& add = log.elements[1];
  ASSERT_EQ(add.elements.size(), 6u);
  EXPECT_EQ(add.elements[3], AdminReply::Array({AdminReply::Text("add"),
                                                AdminReply::Text("slow:key")}));
  EXPECT_EQ(add.elements[4], AdminReply::Text(addr));
  EXPECT_EQ(add.elements[5], AdminReply::Text("producer"));
  EXPECT_GT(add.elements[1].integer, 1'600'000'000);  // unix seconds
  EXPECT_GE(add.elements[2].integer, 0);              // µs
  EXPECT_EQ(list.elements[0].integer, add.elements[0].integer + 1);
  EXPECT_EQ(list.elements[3], AdminReply::Array({AdminReply::Text("CLIENT"),
                                                 AdminReply::Text("LIST")}));
  EXPECT_EQ(Admin(a, {"SLOWLOG", "LEN"}), AdminReply::Integer(4));  // max_len
  EXPECT_EQ(Admin(a, {"SLOWLOG", "RESET"}), AdminReply::StatusWord("OK"));
  // The RESET itself is logged once it has run, as in Redis.
  EXPECT_EQ(Admin(a, {"SLOWLOG", "LEN"}), AdminReply::Integer(1));
}

TEST(ClientCommandsTest, SlowlogSettingsChangeWithConfigSet) {
  InProcessServerOptions options = Options();
  options.server.slowlog = {.log_slower_than_us = 0, .max_len = 128};
  InProcessServer server(options);
  ASSERT_TRUE(server.status().ok());
  RawConnection a(server.port());
  AdminReply got = Admin(a, {"CONFIG", "GET", "slowlog_*"});
  AdminReply want = AdminReply::Map();
  want.Put("slowlog_log_slower_than_us", AdminReply::Text("0"))
      .Put("slowlog_max_len", AdminReply::Text("128"));
  EXPECT_EQ(got, want);
  EXPECT_EQ(Admin(a, {"CONFIG", "SET", "slowlog_log_slower_than_us", "-1"}),
            AdminReply::StatusWord("OK"));
  EXPECT_EQ(Admin(a, {"SLOWLOG", "RESET"}), AdminReply::StatusWord("OK"));
  ASSERT_EQ(Add(a, "k").code, Code::kOk);
  EXPECT_EQ(Admin(a, {"SLOWLOG", "LEN"}), AdminReply::Integer(0));  // off
  EXPECT_EQ(
      Call(a, AdminRequest({"CONFIG", "SET", "slowlog_max_len", "-5"})).code,
      Code::kInvalidArgument);
  EXPECT_EQ(Admin(a, {"CONFIG", "SET", "slowlog_max_len", "2",
                      "slowlog_log_slower_than_us", "0"}),
            AdminReply::StatusWord("OK"));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Add(a, "k").code, Code::kOk);
  EXPECT_EQ(Admin(a, {"SLOWLOG", "LEN"}), AdminReply::Integer(2));
}

TEST(ClientCommandsTest, MonitorStreamsOtherClientsRequestsMatchingItsGlob) {
  InProcessServer server(Options());
  ASSERT_TRUE(server.status().ok());
  RawConnection monitor(server.port());
  RawConnection sampled_out(server.port());
  RawConnection producer(server.port());
  const int64_t producer_id = Admin(producer, {"CLIENT", "ID"}).integer;

  const uint64_t stream_id = monitor.next_id();
  ASSERT_TRUE(
      monitor.Send(stream_id, AdminRequest({"MONITOR", "MATCH", "user:*"})));
  auto ok = Receive(monitor);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->request_id, stream_id);
  EXPECT_EQ(std::get<proto::AdminResult>(ok->response.body).reply,
            AdminReply::StatusWord("OK"));
  const uint64_t silent_id = sampled_out.next_id();
  ASSERT_TRUE(
      sampled_out.Send(silent_id, AdminRequest({"MONITOR", "SAMPLE", "0"})));
  ASSERT_TRUE(Receive(sampled_out).has_value());

  ASSERT_EQ(Add(producer, "card:1").code, Code::kOk);
  ASSERT_EQ(Add(producer, "user:1").code, Code::kOk);
  ASSERT_EQ(Add(producer, "user:2").code, Code::kOk);
  for (const char* key : {"user:1", "user:2"}) {
    auto event = Receive(monitor);
    ASSERT_TRUE(event.has_value());
    EXPECT_EQ(event->request_id, stream_id);
    const std::string line =
        std::get<proto::AdminResult>(event->response.body).reply.text;
    const std::string tail =
        " [" + std::to_string(producer_id) + " 127.0.0.1:";  // then the port
    EXPECT_NE(line.find(tail), std::string::npos) << line;
    EXPECT_NE(line.find("] add \"" + std::string(key) + "\""),
              std::string::npos)
        << line;
  }
  // Requests on a monitor connection are refused; the refusal being the
  // next frame shows that SAMPLE 0 sent no event before it.
  ASSERT_TRUE(sampled_out.Send(sampled_out.next_id(), Ping()));
  auto refused = Receive(sampled_out);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->request_id, sampled_out.last_id());
  EXPECT_EQ(refused->response.code, Code::kInvalidArgument);
  // The monitors show in CLIENT LIST with flags=O.
  const std::vector<std::string> lines =
      Lines(Admin(producer, {"CLIENT", "LIST"}));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(Field(lines[0], "flags"), "O");
  EXPECT_EQ(Field(lines[2], "flags"), "N");
}

TEST(ClientCommandsTest, AMonitorIsNeverClosedAsIdle) {
  InProcessServerOptions options = Options();
  options.server.connection.idle_timeout_ms = 50;
  InProcessServer server(options);
  ASSERT_TRUE(server.status().ok());
  RawConnection monitor(server.port());
  const uint64_t stream_id = monitor.next_id();
  ASSERT_TRUE(
      monitor.Send(stream_id, AdminRequest({"MONITOR", "MATCH", "idle:*"})));
  ASSERT_TRUE(Receive(monitor).has_value());
  // Connected after the MONITOR, so its idle deadline comes later: once it
  // has been closed as idle, the monitor has passed its own.
  RawConnection idle(server.port());
  EXPECT_FALSE(Receive(idle).has_value());
  RawConnection producer(server.port());
  ASSERT_EQ(Add(producer, "idle:1").code, Code::kOk);
  auto event = Receive(monitor);
  ASSERT_TRUE(event.has_value()) << "the monitor was closed";
  EXPECT_EQ(event->request_id, stream_id);
}

TEST(ClientCommandsTest, WithTokensListShowsTheTokenAndAuthIsNeverShown) {
  InProcessServerOptions options = Options();
  options.server.slowlog.log_slower_than_us = 0;
  auto auth = std::make_shared<AuthConfig>();
  Result<std::vector<Token>> tokens =
      ParseTokenFile(TokenLine("ops", Role::kAdmin, kAdminSecret, {}));
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  auth->tokens = std::make_shared<TokenStore>(std::move(*tokens));
  auth->throttle = std::make_shared<AuthThrottle>();
  auth->denials = std::make_shared<DenialLog>();
  options.server.connection.auth = auth;
  InProcessServer server(options);
  ASSERT_TRUE(server.status().ok());
  proto::Request login;
  login.body = proto::AuthRequest{.token = std::string(kAdminSecret)};

  RawConnection monitor(server.port());
  ASSERT_EQ(Call(monitor, login).code, Code::kOk);
  const uint64_t stream_id = monitor.next_id();
  ASSERT_TRUE(monitor.Send(stream_id, AdminRequest({"MONITOR"})));
  ASSERT_TRUE(Receive(monitor).has_value());

  RawConnection a(server.port());
  ASSERT_EQ(Call(a, login).code, Code::kOk);
  const std::string list = Admin(a, {"CLIENT", "LIST"}).text;
  EXPECT_NE(list.find("user=ops"), std::string::npos) << list;
  auto event = Receive(monitor);  // the CLIENT LIST, not the AUTH
  ASSERT_TRUE(event.has_value());
  const std::string line =
      std::get<proto::AdminResult>(event->response.body).reply.text;
  EXPECT_NE(line.find("\"CLIENT\" \"LIST\""), std::string::npos) << line;
  for (const AdminReply& entry : Admin(a, {"SLOWLOG", "GET", "-1"}).elements) {
    EXPECT_NE(entry.elements[3].elements[0].text, "auth");
    for (const AdminReply& arg : entry.elements[3].elements) {
      EXPECT_EQ(arg.text.find(kAdminSecret), std::string::npos);
    }
  }
  // A connection that has only authenticated shows its token at once.
  RawConnection c(server.port());
  ASSERT_EQ(Call(c, login).code, Code::kOk);
  const std::string again = Admin(a, {"CLIENT", "LIST"}).text;
  size_t shown = 0;
  for (size_t at = again.find("user=ops"); at != std::string::npos;
       at = again.find("user=ops", at + 1)) {
    ++shown;
  }
  EXPECT_EQ(shown, 3u) << again;  // the monitor, a and c
}

}  // namespace
}  // namespace tally
