// Unit tests of the pieces behind CLIENT, SLOWLOG and MONITOR, without
// sockets: the registry, the slow log's ring and truncation, the monitor's
// filter, bound and fan-out, and the admin commands' replies.

#include "server/introspection.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "protocol/quote.h"

namespace tally {
namespace {

using proto::AdminReply;
using std::chrono::seconds;

proto::Request AddOf(std::vector<std::string> keys) {
  proto::AddRequest add;
  for (auto& k : keys) add.items.push_back({.key = std::move(k)});
  proto::Request r;
  r.body = std::move(add);
  return r;
}

TEST(ClientRegistryTest, IdsGrowFromOneAndListShowsEveryField) {
  ClientRegistry registry;
  const auto t0 = BootClock::time_point(seconds(100));
  auto a = registry.Add("127.0.0.1:5000", "127.0.0.1:7379", nullptr, t0);
  auto b = registry.Add("[::1]:5001", "[::1]:7379", nullptr, t0);
  EXPECT_EQ(a->id(), 1u);
  EXPECT_EQ(b->id(), 2u);
  a->NoteRequest(proto::Op::kAdd, t0 + seconds(3));
  a->SetLoad(2, 512);
  ASSERT_TRUE(a->SetName("fraud-engine").ok());
  a->set_user("svc");
  b->NoteRequest(proto::Op::kAdmin, t0 + seconds(1));
  b->NoteAdminCommand("CLIENT");
  EXPECT_EQ(registry.List(t0 + seconds(10)),
            "id=1 addr=127.0.0.1:5000 laddr=127.0.0.1:7379 name=fraud-engine "
            "age=10 idle=7 flags=N cmd=add inflight=2 obuf=512 user=svc\n"
            "id=2 addr=[::1]:5001 laddr=[::1]:7379 name= age=10 idle=9 "
            "flags=N cmd=client inflight=0 obuf=0 user=\n");
  registry.Remove(1);
  registry.Remove(1);  // idempotent
  EXPECT_EQ(registry.size(), 1u);
  EXPECT_EQ(registry.Find(1), nullptr);
  EXPECT_EQ(registry.Add("x:1", "y:2", nullptr)->id(), 3u);  // never reused
}

TEST(ClientRegistryTest, NamesFollowRedisRules) {
  ClientInfo info(1, "a", "b", BootClock::now());
  EXPECT_EQ(info.SetName("has space").code(), Code::kInvalidArgument);
  EXPECT_EQ(info.SetName("new\nline").code(), Code::kInvalidArgument);
  EXPECT_EQ(info.SetName(std::string(129, 'x')).code(), Code::kInvalidArgument);
  EXPECT_TRUE(info.SetName("ok-name").ok());
  EXPECT_EQ(info.name(), "ok-name");
  EXPECT_TRUE(info.SetName("").ok());  // clears
  EXPECT_EQ(info.name(), "");
}

TEST(ClientRegistryTest, KillCallsTheMatchingClientsAndTheCallerLast) {
  ClientRegistry registry;
  std::vector<std::pair<uint64_t, bool>> killed;
  auto add = [&](std::string addr) {
    auto id = std::make_shared<uint64_t>(0);
    auto info = registry.Add(std::move(addr), "l:1", [&killed, id](bool after) {
      killed.emplace_back(*id, after);
    });
    *id = info->id();
    return info;
  };
  add("10.0.0.1:1");
  add("10.0.0.2:2");
  add("10.0.0.2:2");
  EXPECT_EQ(registry.KillId(1, /*caller=*/3), 1u);
  EXPECT_EQ(registry.KillId(9, 3), 0u);
  EXPECT_EQ(registry.KillAddr("10.0.0.2:2", /*caller=*/3), 2u);
  EXPECT_EQ(killed, (std::vector<std::pair<uint64_t, bool>>{
                        {1, false}, {2, false}, {3, true}}));
  EXPECT_EQ(FormatClientAddr("::1", 7), "[::1]:7");
  EXPECT_EQ(FormatClientAddr("1.2.3.4", 7), "1.2.3.4:7");
}

TEST(SlowLogTest, KeepsTheNewestEntriesUpToMaxLen) {
  SlowLog log({.log_slower_than_us = 100, .max_len = 3});
  EXPECT_FALSE(log.IsSlow(99));
  EXPECT_TRUE(log.IsSlow(100));  // Redis: duration >= threshold
  for (int i = 0; i < 5; ++i) {
    log.Add({"add", "k" + std::to_string(i)}, 100 + i, "a:1", "n", 1000 + i);
  }
  EXPECT_EQ(log.Len(), 3u);
  std::vector<SlowLogEntry> two = log.Get(2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].id, 4u);  // newest first
  EXPECT_EQ(two[0].args, (std::vector<std::string>{"add", "k4"}));
  EXPECT_EQ(two[0].duration_us, 104);
  EXPECT_EQ(two[0].unix_time_s, 1004);
  EXPECT_EQ(two[1].id, 3u);
  EXPECT_EQ(log.Get(-1).size(), 3u);
  log.Reset();
  EXPECT_EQ(log.Len(), 0u);
  log.Add({"ping"}, 1, "", "", 0);
  EXPECT_EQ(log.Get(1)[0].id, 5u);  // ids continue after RESET
}

TEST(SlowLogTest, NegativeDisablesAndZeroLogsEverything) {
  SlowLog log({.log_slower_than_us = -1, .max_len = 8});
  EXPECT_FALSE(log.IsSlow(1'000'000'000));
  log.set_log_slower_than_us(0);
  EXPECT_TRUE(log.IsSlow(0));
  log.set_max_len(1);
  log.Add({"a"}, 0, "", "", 0);
  log.Add({"b"}, 0, "", "", 0);
  EXPECT_EQ(log.Len(), 1u);
}

TEST(SlowLogTest, TruncatesLikeRedis) {
  std::vector<std::string> args(40, "x");
  args[1] = std::string(200, 'k');
  std::vector<std::string> out = SlowLog::Truncate(args);
  ASSERT_EQ(out.size(), 32u);
  EXPECT_EQ(out[1], std::string(128, 'k') + "... (72 more bytes)");
  EXPECT_EQ(out[31], "... (9 more arguments)");
  EXPECT_EQ(SlowLog::Truncate({"a", "b"}),
            (std::vector<std::string>{"a", "b"}));
}

TEST(CommandSummaryTest, WordsNameTheOpTheFirstKeyAndTheRest) {
  EXPECT_EQ(CommandSummary::Of(AddOf({"user:1", "card:2", "ip:3"})).Words(),
            (std::vector<std::string>{"add", "user:1", "... (2 more items)"}));
  proto::Request admin;
  admin.body = proto::AdminRequest{.args = {"CLIENT", "LIST"}};
  EXPECT_EQ(CommandSummary::Of(admin).Words(),
            (std::vector<std::string>{"CLIENT", "LIST"}));
  proto::Request auth;
  auth.body = proto::AuthRequest{.token = "s3cret"};
  EXPECT_EQ(CommandSummary::Of(auth).Words(),
            (std::vector<std::string>{"auth"}));  // never the token
  EXPECT_EQ(QuoteBytes("a\"b\\\n\x01"), "\"a\\\"b\\\\\\n\\x01\"");
}

TEST(MonitorFilterTest, ParsesSampleAndMatchInAnyOrder) {
  const std::vector<std::string> args = {"match", "user:*", "SAMPLE", "0.25"};
  Result<MonitorFilter> f = MonitorFilter::Parse(args);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->match, "user:*");
  EXPECT_DOUBLE_EQ(f->sample, 0.25);
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"SAMPLE"},
                                             {"SAMPLE", "2"},
                                             {"SAMPLE", "-0.1"},
                                             {"SAMPLE", "x"},
                                             {"SAMPLE", "nan"},
                                             {"COUNT", "1"}}) {
    EXPECT_EQ(MonitorFilter::Parse(bad).status().code(), Code::kInvalidArgument)
        << bad[0];
  }
}

TEST(MonitorFilterTest, SamplesAndGlobsTheFirstKey) {
  MonitorFilter all;
  EXPECT_TRUE(all.Accepts(false, "", 0.999));
  MonitorFilter none{.sample = 0, .match = ""};
  EXPECT_FALSE(none.Accepts(true, "k", 0.0));
  MonitorFilter half{.sample = 0.5, .match = "user:*"};
  EXPECT_TRUE(half.Accepts(true, "user:42", 0.49));
  EXPECT_FALSE(half.Accepts(true, "user:42", 0.5));
  EXPECT_FALSE(half.Accepts(true, "card:42", 0.1));
  EXPECT_FALSE(half.Accepts(false, "", 0.1));  // no key: no match
}

TEST(MonitorTest, FansOutToOtherConnectionsFormattedOnce) {
  MonitorHub hub;
  EXPECT_FALSE(hub.active());
  int wakes = 0;
  auto sink = std::make_shared<MonitorSink>(
      /*connection_id=*/1, MonitorFilter{}, 1 << 20, nullptr,
      [&wakes] { ++wakes; });
  auto users = std::make_shared<MonitorSink>(
      2, MonitorFilter{.sample = 1, .match = "user:*"}, 1 << 20, nullptr,
      nullptr);
  hub.Add(sink);
  hub.Add(users);
  EXPECT_TRUE(hub.active());
  hub.Feed(7, "127.0.0.1:9", CommandSummary::Of(AddOf({"card:1"})),
           1'700'000'000'123'456);
  // A monitor never sees its own connection's requests.
  hub.Feed(2, "127.0.0.1:8", CommandSummary::Of(AddOf({"user:1"})), 0);
  hub.Feed(7, "127.0.0.1:9", CommandSummary::Of(AddOf({"user:2"})),
           1'700'000'000'000'001);
  EXPECT_EQ(wakes, 1);  // once until the connection takes the lines
  EXPECT_EQ(sink->Take("T"),
            (std::vector<std::string>{
                "1700000000.123456 [7 127.0.0.1:9] add \"card:1\"",
                "0.000000 [2 127.0.0.1:8] add \"user:1\"",
                "1700000000.000001 [7 127.0.0.1:9] add \"user:2\""}));
  EXPECT_EQ(users->Take("T"),
            (std::vector<std::string>{
                "1700000000.000001 [7 127.0.0.1:9] add \"user:2\""}));
  hub.Remove(sink.get());
  hub.Remove(users.get());
  EXPECT_FALSE(hub.active());
}

TEST(MonitorTest, ASlowMonitorDropsAndSaysHowMany) {
  uint64_t unwritten = 0;
  MonitorSink sink(
      1, MonitorFilter{}, /*max_bytes=*/100, [&unwritten] { return unwritten; },
      nullptr);
  const std::string line(40, 'e');
  sink.Push(line);
  sink.Push(line);
  sink.Push(line);  // 120 > 100: dropped
  std::vector<std::string> first = sink.Take("T");
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0],
            "T [monitor] dropped 1 events: this client did not read them fast "
            "enough");
  unwritten = 90;  // the connection still has 90 bytes to write
  sink.Push(line);
  sink.Push(line);
  unwritten = 0;
  sink.Push(line);
  EXPECT_EQ(sink.dropped_total(), 3u);
  std::vector<std::string> lines = sink.Take("T");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0],
            "T [monitor] dropped 2 events: this client did not read them fast "
            "enough");
  EXPECT_EQ(lines[1], line);
  EXPECT_TRUE(sink.Take("T").empty());
}

TEST(IntrospectionTest, AdminCommandsAnswerInRedisShapes) {
  auto introspection =
      std::make_shared<Introspection>(SlowLogOptions{.log_slower_than_us = 0});
  AdminCommands commands;
  introspection->RegisterAdminCommands(&commands);
  auto me = introspection->clients().Add("127.0.0.1:1", "127.0.0.1:2", nullptr);
  auto run = [&](std::vector<std::string> args) {
    return commands.Run(proto::AdminRequest{.args = std::move(args)}, me->id());
  };
  auto reply = [](const proto::Response& r) {
    return std::get<proto::AdminResult>(r.body).reply;
  };
  EXPECT_EQ(reply(run({"CLIENT", "ID"})), AdminReply::Integer(1));
  EXPECT_EQ(reply(run({"client", "getname"})), AdminReply::Nil());
  EXPECT_EQ(reply(run({"CLIENT", "SETNAME", "me"})),
            AdminReply::StatusWord("OK"));
  EXPECT_EQ(reply(run({"CLIENT", "GETNAME"})), AdminReply::Text("me"));
  EXPECT_EQ(run({"CLIENT", "SETNAME", "a b"}).code, Code::kInvalidArgument);
  EXPECT_EQ(run({"CLIENT", "KILL", "ID", "x"}).code, Code::kInvalidArgument);
  EXPECT_EQ(run({"CLIENT", "FLY"}).code, Code::kInvalidArgument);
  EXPECT_EQ(reply(run({"CLIENT", "KILL", "ID", "99"})), AdminReply::Integer(0));

  introspection->slow_log().Add({"add", "k"}, 12, "127.0.0.1:1", "me", 1700);
  EXPECT_EQ(reply(run({"SLOWLOG", "LEN"})), AdminReply::Integer(1));
  EXPECT_EQ(
      reply(run({"SLOWLOG", "GET"})),
      AdminReply::Array({AdminReply::Array(
          {AdminReply::Integer(0), AdminReply::Integer(1700),
           AdminReply::Integer(12),
           AdminReply::Array({AdminReply::Text("add"), AdminReply::Text("k")}),
           AdminReply::Text("127.0.0.1:1"), AdminReply::Text("me")})}));
  EXPECT_EQ(reply(run({"SLOWLOG", "GET", "0"})), AdminReply::Array());
  EXPECT_EQ(run({"SLOWLOG", "GET", "-2"}).code, Code::kInvalidArgument);
  EXPECT_EQ(reply(run({"SLOWLOG", "RESET"})), AdminReply::StatusWord("OK"));
  EXPECT_EQ(reply(run({"SLOWLOG", "LEN"})), AdminReply::Integer(0));
  // Without a connection MONITOR cannot stream.
  EXPECT_EQ(run({"MONITOR"}).code, Code::kInvalidArgument);

  // Handlers outliving the server's state answer UNAVAILABLE.
  introspection.reset();
  EXPECT_EQ(run({"SLOWLOG", "LEN"}).code, Code::kUnavailable);
}

}  // namespace
}  // namespace tally
