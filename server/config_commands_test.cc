#include "server/config_commands.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "server/in_process_server.h"

namespace tally {
namespace {

using proto::AdminReply;

// Two settable values (each accepts 0..100) and two read-only flags.
class ConfigCommandsTest : public ::testing::Test {
 protected:
  ConfigCommandsTest() {
    using Entry = std::pair<const char*, std::atomic<int>*>;
    for (const Entry& entry : {Entry{"limit_a", &a_}, Entry{"limit_b", &b_}}) {
      std::atomic<int>* target = entry.second;
      const char* name = entry.first;
      config_.Register(
          name, "0..100", [target] { return std::to_string(target->load()); },
          [target](std::string_view v) -> Status {
            Result<int64_t> n = AdminIntArg(v, "value");
            if (!n.ok() || *n < 0 || *n > 100) {
              return Status::InvalidArgument("0..100");
            }
            target->store(static_cast<int>(*n));
            return Status::Ok();
          });
    }
    config_.SetReadOnlySource([] {
      return std::vector<std::pair<std::string, std::string>>{
          {"data_dir", "/var/lib/tally"}, {"limit_a", "shadowed"}};
    });
    config_.AddStatsReset([this] { ++resets_; });
    RegisterConfigCommands(&config_, &commands_);
  }

  proto::Response Config(std::vector<std::string> args) {
    args.insert(args.begin(), "config");
    return commands_.Run(proto::AdminRequest{.args = std::move(args)}, 1);
  }

  std::atomic<int> a_{1};
  std::atomic<int> b_{2};
  int resets_ = 0;
  RuntimeConfig config_;
  AdminCommands commands_;
};

TEST_F(ConfigCommandsTest, GetMatchesGlobsOverSettableAndReadOnlySettings) {
  proto::Response r = Config({"GET", "limit_*"});
  ASSERT_EQ(r.code, Code::kOk) << r.message;
  AdminReply want = AdminReply::Map();
  want.Put("limit_a", AdminReply::Text("1"))
      .Put("limit_b", AdminReply::Text("2"));
  EXPECT_EQ(std::get<proto::AdminResult>(r.body).reply, want);
  AdminReply all =
      std::get<proto::AdminResult>(Config({"get", "*"}).body).reply;
  ASSERT_EQ(all.elements.size(), 6u);  // 3 pairs; limit_a not twice
  EXPECT_EQ(all.elements[0].text, "data_dir");
  EXPECT_EQ(all.elements[1].text, "/var/lib/tally");
  EXPECT_EQ(std::get<proto::AdminResult>(Config({"GET", "nothing*"}).body)
                .reply.elements.size(),
            0u);
}

TEST_F(ConfigCommandsTest, SetChangesOnlyRunTimeSettings) {
  EXPECT_EQ(Config({"SET", "limit_a", "50"}).code, Code::kOk);
  EXPECT_EQ(a_.load(), 50);
  proto::Response ro = Config({"SET", "data_dir", "/tmp"});
  EXPECT_EQ(ro.code, Code::kNoPermission);
  EXPECT_NE(ro.message.find("cannot be changed at run time"),
            std::string::npos);
  proto::Response unknown = Config({"SET", "nope", "1"});
  EXPECT_EQ(unknown.code, Code::kInvalidArgument);
  EXPECT_NE(unknown.message.find("settable: limit_a, limit_b"),
            std::string::npos)
      << unknown.message;
  EXPECT_EQ(Config({"SET", "limit_a", "500"}).code, Code::kInvalidArgument);
  EXPECT_EQ(a_.load(), 50);
}

TEST_F(ConfigCommandsTest, SetOfSeveralAppliesAllOrNothing) {
  EXPECT_EQ(Config({"SET", "limit_a", "10", "limit_b", "20"}).code, Code::kOk);
  EXPECT_EQ(a_.load(), 10);
  EXPECT_EQ(b_.load(), 20);
  // The second value is bad: the first is rolled back.
  EXPECT_EQ(Config({"SET", "limit_a", "11", "limit_b", "x"}).code,
            Code::kInvalidArgument);
  EXPECT_EQ(a_.load(), 10);
  EXPECT_EQ(b_.load(), 20);
  EXPECT_EQ(Config({"SET", "limit_a", "1", "limit_a", "2"}).code,
            Code::kInvalidArgument);
  EXPECT_EQ(Config({"SET", "limit_a"}).code, Code::kInvalidArgument);
  EXPECT_EQ(Config({"SET", "limit_a", "1", "limit_b"}).code,
            Code::kInvalidArgument);
}

TEST_F(ConfigCommandsTest, ResetStatRunsTheResetHooks) {
  EXPECT_EQ(Config({"RESETSTAT"}).code, Code::kOk);
  EXPECT_EQ(resets_, 1);
  EXPECT_EQ(Config({"FLY"}).code, Code::kInvalidArgument);
  EXPECT_EQ(Config({"GET"}).code, Code::kInvalidArgument);
}

// Through the Service of a real server: a limit changed by CONFIG SET is
// enforced on the next request.
TEST(ConfigThroughServiceTest, MaxKeyBytesAndMaxMemoryTakeEffectAtOnce) {
  InProcessServerOptions options;
  options.server.port = 0;  // a free port
  InProcessServer server(options);
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  Service& service = server.service();
  auto run = [&](proto::Request request) {
    return service.HandleSync(request, BootClock::now());
  };
  auto admin = [&](std::vector<std::string> args) {
    proto::Request r;
    r.body = proto::AdminRequest{.args = std::move(args)};
    return run(r);
  };
  auto add = [&](std::string key) {
    proto::Request r;
    r.body = proto::AddRequest{.items = {{.key = std::move(key)}}};
    return std::get<proto::AddResult>(run(r).body).items.at(0).code;
  };
  EXPECT_EQ(add("a-key-of-20-bytes..."), Code::kOk);
  ASSERT_EQ(admin({"CONFIG", "SET", "max_key_bytes", "8"}).code, Code::kOk);
  EXPECT_EQ(add("a-key-of-20-bytes..."), Code::kInvalidKey);
  EXPECT_EQ(add("short"), Code::kOk);
  proto::Response get = admin({"CONFIG", "GET", "max_key_bytes"});
  EXPECT_EQ(std::get<proto::AdminResult>(get.body).reply.elements.at(1).text,
            "8");
  EXPECT_EQ(admin({"CONFIG", "SET", "max_key_bytes", "257"}).code,
            Code::kInvalidArgument);
  ASSERT_EQ(admin({"CONFIG", "SET", "max_memory", "1"}).code, Code::kOk);
  EXPECT_EQ(add("new-key"), Code::kResourceExhausted);
  EXPECT_EQ(add("short"), Code::kOk);  // existing keys keep counting
  ASSERT_EQ(admin({"CONFIG", "SET", "max_memory", "0"}).code, Code::kOk);
  EXPECT_EQ(add("new-key"), Code::kOk);
}

}  // namespace
}  // namespace tally
