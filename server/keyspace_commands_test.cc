#include "server/keyspace_commands.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/clock.h"

namespace tally {
namespace {

using proto::AdminReply;

const AdminReply* Get(const AdminReply& map, std::string_view name) {
  for (size_t i = 0; i + 1 < map.elements.size(); i += 2) {
    if (map.elements[i].text == name) return &map.elements[i + 1];
  }
  return nullptr;
}

AddEvent Event(std::string_view key, int64_t amount = 0) {
  AddEvent e;
  e.key = key;
  e.amount = amount;
  return e;
}

class KeyspaceCommandsTest : public ::testing::Test {
 protected:
  KeyspaceCommandsTest()
      : clock_(1'700'000'000'000),
        engine_([this] {
          EngineOptions o;
          o.clock = &clock_;
          return o;
        }()),
        hot_keys_({.sample_every = 1, .window_ms = 10'000}) {
    RegisterKeyspaceCommands(&commands_, {.engine = &engine_,
                                          .dedupe = nullptr,
                                          .hot_keys = &hot_keys_,
                                          .now_ms = [this] { return now_; }});
  }

  proto::Response Run(std::vector<std::string> args) {
    return commands_.Run(proto::AdminRequest{.args = std::move(args)}, 0);
  }
  static const AdminReply& Reply(const proto::Response& r) {
    return std::get<proto::AdminResult>(r.body).reply;
  }

  ManualClock clock_;
  Engine engine_;
  HotKeys hot_keys_;
  AdminCommands commands_;
  int64_t now_ = 10'000;
};

TEST_F(KeyspaceCommandsTest, HotKeysListsRatesHighestFirst) {
  for (int i = 0; i < 300; ++i) hot_keys_.Record("ip:1", i * 10);
  for (int i = 0; i < 100; ++i) hot_keys_.Record("ip:2", i * 10);
  proto::Response r = Run({"hotkeys", "count", "1"});
  ASSERT_EQ(r.code, Code::kOk) << r.message;
  const AdminReply& reply = Reply(r);
  ASSERT_NE(Get(reply, "sample_every"), nullptr);
  EXPECT_EQ(Get(reply, "sample_every")->integer, 1);
  EXPECT_EQ(Get(reply, "window_seconds")->integer, 10);
  const AdminReply* keys = Get(reply, "keys");
  ASSERT_NE(keys, nullptr);
  ASSERT_EQ(keys->elements.size(), 1u);
  EXPECT_EQ(Get(keys->elements[0], "key")->text, "ip:1");
  // 300 adds over 3 s, decayed with a 10 s time constant, seen at 10 s.
  const double rate = std::stod(Get(keys->elements[0], "adds_per_sec")->text);
  EXPECT_GT(rate, 10.0);
  EXPECT_LT(rate, 30.0);
  EXPECT_EQ(Get(keys->elements[0], "error_per_sec")->text, "0.00");
  proto::Response all = Run({"HOTKEYS"});
  ASSERT_EQ(all.code, Code::kOk);
  EXPECT_EQ(Get(Reply(all), "keys")->elements.size(), 2u);
}

TEST_F(KeyspaceCommandsTest, HotKeysRejectsBadArguments) {
  EXPECT_EQ(Run({"HOTKEYS", "COUNT", "0"}).code, Code::kInvalidArgument);
  EXPECT_EQ(Run({"HOTKEYS", "COUNT", "1001"}).code, Code::kInvalidArgument);
  EXPECT_EQ(Run({"HOTKEYS", "COUNT", "x"}).code, Code::kInvalidArgument);
  EXPECT_EQ(Run({"HOTKEYS", "TOP"}).code, Code::kInvalidArgument);
}

TEST_F(KeyspaceCommandsTest, MemoryUsageIsInspectsBytes) {
  ASSERT_TRUE(engine_.Add(Event("card:9", 5)).ok());
  Result<KeyInfo> info = engine_.Inspect("card:9");
  ASSERT_TRUE(info.ok());
  proto::Response r = Run({"MEMORY", "usage", "card:9"});
  ASSERT_EQ(r.code, Code::kOk) << r.message;
  EXPECT_EQ(Reply(r), AdminReply::Integer(info->bytes));
  EXPECT_GT(info->bytes, 0);
  // Redis answers nil for a missing key.
  EXPECT_EQ(Reply(Run({"MEMORY", "USAGE", "nope"})), AdminReply::Nil());
  EXPECT_EQ(Run({"MEMORY", "USAGE"}).code, Code::kInvalidArgument);
  EXPECT_EQ(Run({"MEMORY", "DOCTOR"}).code, Code::kInvalidArgument);
}

TEST_F(KeyspaceCommandsTest, MemoryStatsHasInfoMemorysFigures) {
  ASSERT_TRUE(engine_.Add(Event("a")).ok());
  ASSERT_TRUE(engine_.Add(Event("b")).ok());
  proto::Response r = Run({"MEMORY", "STATS"});
  ASSERT_EQ(r.code, Code::kOk) << r.message;
  const AdminReply& stats = Reply(r);
  const EngineStats s = engine_.Stats();
  EXPECT_EQ(Get(stats, "engine_bytes")->integer, s.bytes);
  EXPECT_EQ(Get(stats, "table_bytes")->integer, s.table_bytes);
  EXPECT_EQ(Get(stats, "used_bytes")->integer, s.bytes);  // no dedupe table
  EXPECT_EQ(Get(stats, "dedupe_bytes")->integer, 0);
  EXPECT_EQ(Get(stats, "keys.count")->integer, 2);
  EXPECT_EQ(Get(stats, "keys.bytes-per-key")->integer, s.bytes / 2);
}

}  // namespace
}  // namespace tally
