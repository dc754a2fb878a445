// The special modes' text against redis-cli 7.0.15's, and their loops
// against a fake server.
//
// The golden strings were captured from redis-cli 7.0.15 (Debian's
// redis-tools) against a local redis-server 7.0.15:
//   redis-server --port 16399 --bind 127.0.0.1 --save '' --daemonize yes
//   R="redis-cli -p 16399"; $R set key1 hello; $R set k2 abcdefghij
//   $R rpush mylist a b c; $R set $'bin\nkey"x' v
//   script -qc "$R --scan" /dev/null        # quoted keys on a terminal
//   $R --memkeys; $R --hotkeys               # (--maxmemory-policy allkeys-lfu)
//   timeout 2.3 script -qc "$R --stat -i 1" /dev/null
//   $R --latency --raw; script -qc "$R --latency-history -i 1" /dev/null
//   timeout 0.5 stdbuf -o0 $R --latency-history -i 0.2 > lh.txt

#include "tools/cli/special_modes.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tools/cli/formatter.h"

namespace tally::cli {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(SpecialModesFormatTest, BytesToHumanAsRedisCli) {
  EXPECT_EQ(BytesToHuman(0), "0B");
  EXPECT_EQ(BytesToHuman(1023), "1023B");
  EXPECT_EQ(BytesToHuman(1024), "1.00K");
  // redis-cli --stat printed "1.16M" for used_memory 1216348-ish.
  EXPECT_EQ(BytesToHuman(1216348), "1.16M");
  EXPECT_EQ(BytesToHuman(2LL << 30), "2.00G");
  EXPECT_EQ(BytesToHuman(-2048), "-2.00K");
}

TEST(SpecialModesFormatTest, QuoteAsRedisCliScanOnATerminal) {
  // redis-cli --scan printed "bin\nkey\"x" for the key bin<LF>key"x.
  EXPECT_EQ(Quote("bin\nkey\"x"), R"("bin\nkey\"x")");
  EXPECT_EQ(Quote("key1"), R"("key1")");
  EXPECT_EQ(Quote(std::string("a\0\xff\\\t", 5)), R"("a\x00\xff\\\t")");
}

TEST(SpecialModesFormatTest, StatLineIsRedisCliLessBlockedColumn) {
  // redis-cli --stat, with its "blocked" column (8 wide) and "- child -"
  // header part taken out: tally has no blocked clients or child process.
  const std::string redis_line =
      "4          1.16M    1       0       373 (+0)            19          ";
  std::string expected = redis_line;
  expected.erase(28, 8);
  std::optional<int64_t> prev;
  const std::string info =
      "# Memory\nused_bytes:1216348\n\n# Keyspace\nkeys:4\n\n"
      "# Clients\nconnected_clients:1\n\n# Stats\nrequests:373\n\n"
      "# Limits\nconnections_current:1\nconnections_total:19\n";
  EXPECT_EQ(StatLine(ParseInfo(info), &prev), expected + "\n");
  const std::string next =
      "keys:4\nused_bytes:1195376\nconnected_clients:1\nrequests:374\n"
      "connections_total:19\n";
  std::string redis_next =
      "4          1.14M    1       0       374 (+1)            19          ";
  redis_next.erase(28, 8);
  EXPECT_EQ(StatLine(ParseInfo(next), &prev), redis_next + "\n");
}

TEST(SpecialModesFormatTest, StatFallsBackWithoutAClientsSection) {
  std::optional<int64_t> prev;
  const std::string line = StatLine(
      ParseInfo("keys:2\nused_bytes:10\nrequests:5\nconnections_current:3\n"),
      &prev);
  EXPECT_EQ(line.substr(0, 28), "2          10B      3       ");
  EXPECT_NE(line.find("5 (+0)"), std::string::npos) << line;
  // No connections_total at all: a dash, not a made-up 0.
  EXPECT_EQ(line.substr(47, 2), " -") << line;
  // The header's columns line up with the line's.
  const std::vector<std::string> header = Lines(StatHeader());
  ASSERT_EQ(header.size(), 2u);
  EXPECT_EQ(header[1].find("clients"), 20u);
  EXPECT_EQ(header[1].find("requests"), 28u);
  EXPECT_EQ(header[1].find("connections"), 48u);
}

TEST(SpecialModesFormatTest, LatencyAsRedisCli) {
  LatencyStats s;
  for (int64_t ms : {3, 0, 0, 1}) s.Add(ms);
  EXPECT_EQ(LatencyFigures(s, false), "min: 0, max: 3, avg: 1.00 (4 samples)");
  LatencyStats r;
  r.Add(2);
  r.Add(2);
  for (int i = 0; i < 16; ++i) r.Add(0);
  EXPECT_EQ(LatencyFigures(r, true), "0 2 0.22 18\n");
}

TEST(SpecialModesFormatTest, MemKeysAsRedisCli) {
  // redis-cli --memkeys over key1, k2, bin\nkey"x (strings) and mylist.
  KeySizeReport report("bytes");
  std::string out = KeySizeReport::Banner();
  out += report.Add("key1", "string", 64, 0);
  out += report.Add("k2", "string", 64, 0);
  out += report.Add("bin\nkey\"x", "string", 72, 0);
  out += report.Add("mylist", "list", 144, 0);
  out += report.Summary();
  const std::string redis_golden =
      "\n"
      "# Scanning the entire keyspace to find biggest keys as well as\n"
      "# average sizes per key type.  You can use -i 0.1 to sleep 0.1 sec\n"
      "# per 100 SCAN commands (not usually needed).\n"
      "\n"
      "[00.00%] Biggest string found so far '\"key1\"' with 64 bytes\n"
      "[00.00%] Biggest string found so far '\"bin\\nkey\\\"x\"' with 72 "
      "bytes\n"
      "[00.00%] Biggest list   found so far '\"mylist\"' with 144 bytes\n"
      "\n"
      "-------- summary -------\n"
      "\n"
      "Sampled 4 keys in the keyspace!\n"
      "Total key length in bytes is 21 (avg len 5.25)\n"
      "\n"
      "Biggest   list found '\"mylist\"' has 144 bytes\n"
      "Biggest string found '\"bin\\nkey\\\"x\"' has 72 bytes\n"
      "\n";
  ASSERT_GE(out.size(), redis_golden.size());
  EXPECT_EQ(out.substr(0, redis_golden.size()), redis_golden);
  // redis-cli: "1 lists with 144 bytes (25.00% of keys, avg size 144.00)";
  // a policy name is no plural noun, hence "keys of list".
  EXPECT_EQ(out.substr(redis_golden.size()),
            "1 keys of list with 144 bytes (25.00% of keys, avg size 144.00)\n"
            "3 keys of string with 200 bytes (75.00% of keys, avg size "
            "66.67)\n");
}

TEST(SpecialModesFormatTest, HotKeysAsRedisCli) {
  proto::AdminReply keys = proto::AdminReply::Array();
  keys.elements.push_back(
      proto::AdminReply::Map()
          .Put("key", proto::AdminReply::Text("key1"))
          .Put("adds_per_sec", proto::AdminReply::Text("6"))
          .Put("error_per_sec", proto::AdminReply::Text("0.00")));
  const proto::AdminReply reply =
      proto::AdminReply::Map()
          .Put("sample_every", proto::AdminReply::Integer(64))
          .Put("window_seconds", proto::AdminReply::Integer(60))
          .Put("note", proto::AdminReply::Text("..."))
          .Put("keys", std::move(keys));
  const std::vector<std::string> lines = Lines(FormatHotKeys(reply));
  auto has = [&lines](const std::string& want) {
    return std::find(lines.begin(), lines.end(), want) != lines.end();
  };
  // redis-cli --hotkeys' lines for a key with LFU counter 6.
  EXPECT_TRUE(has("[00.00%] Hot key '\"key1\"' found so far with counter 6"));
  EXPECT_TRUE(has("-------- summary -------"));
  EXPECT_TRUE(has("Sampled 1 keys in the keyspace!"));
  EXPECT_TRUE(has("hot key found with counter: 6\tkeyname: \"key1\""));
  EXPECT_TRUE(
      has("# adds/s from 1 in 64 adds, decayed over about 60 seconds."));
}

// ------------------------------------------------------------ mode loops

proto::Response Reply(auto body) {
  proto::Response r;
  r.body = std::move(body);
  return r;
}

SpecialModeOptions NoSleep() {
  SpecialModeOptions o;
  o.sleep = [](double) {};
  return o;
}

// A fake server: keys k0..k(n-1) served by SCAN in pages of 2, INSPECT
// answering with buckets = index and bytes = 100 * index; k1 vanishes
// between SCAN and INSPECT.
struct FakeKeyspace {
  int keys = 5;
  std::vector<proto::Request> seen;
  proto::Response operator()(const proto::Request& request) {
    seen.push_back(request);
    if (const auto* scan = std::get_if<proto::ScanRequest>(&request.body)) {
      proto::ScanResult page;
      for (int i = static_cast<int>(scan->cursor);
           i < keys && i < static_cast<int>(scan->cursor) + 2; ++i) {
        page.keys.push_back("k" + std::to_string(i));
      }
      page.cursor = scan->cursor + 2 >= static_cast<uint64_t>(keys)
                        ? 0
                        : scan->cursor + 2;
      return Reply(page);
    }
    if (const auto* inspect =
            std::get_if<proto::InspectRequest>(&request.body)) {
      const int i = std::stoi(inspect->key.substr(1));
      if (i == 1) return proto::Response::Error(Status::NotFound("gone"));
      proto::InspectResult r;
      r.key = inspect->key;
      r.policy = i % 2 == 0 ? "default" : "login";
      r.tiers.push_back({.buckets = static_cast<uint32_t>(i)});
      r.bytes = 100 * i;
      return Reply(r);
    }
    if (std::holds_alternative<proto::AdminRequest>(request.body)) {
      return Reply(proto::AdminResult{proto::AdminReply::Integer(keys)});
    }
    return proto::Response::Error(Status::InvalidArgument("unexpected"));
  }
};

TEST(SpecialModesLoopTest, ScanPrintsEveryKeyRawOrQuoted) {
  FakeKeyspace server;
  SpecialModeOptions options = NoSleep();
  options.raw = true;
  options.pattern = "k*";
  options.count = 2;
  std::ostringstream raw;
  EXPECT_EQ(RunScan(std::ref(server), options, raw), 0);
  EXPECT_EQ(raw.str(), "k0\nk1\nk2\nk3\nk4\n");
  ASSERT_EQ(server.seen.size(), 3u);
  const auto& first = std::get<proto::ScanRequest>(server.seen[0].body);
  EXPECT_EQ(first.pattern, "k*");
  EXPECT_EQ(first.count, 2u);
  options.raw = false;
  std::ostringstream quoted;
  EXPECT_EQ(RunScan(std::ref(server), options, quoted), 0);
  EXPECT_EQ(quoted.str(), "\"k0\"\n\"k1\"\n\"k2\"\n\"k3\"\n\"k4\"\n");
}

TEST(SpecialModesLoopTest, BigKeysInspectsEveryKeyAndSummarises) {
  FakeKeyspace server;
  // Completions from the caller's thread, at once: the window logic must
  // not wait for a completion that already happened.
  AsyncCallFn async = [&server](proto::Request request,
                                std::function<void(proto::Response)> done) {
    done(server(request));
  };
  SpecialModeOptions options = NoSleep();
  options.window = 1;
  std::ostringstream out;
  ASSERT_EQ(RunBigKeys(async, /*memkeys=*/false, options, out), 0);
  const std::string text = out.str();
  // k1 vanished: four keys sampled; k4 is the biggest default key (4
  // entries), k3 the only login key.
  EXPECT_NE(text.find("[20.00%] Biggest default found so far '\"k2\"' with 2 "
                      "entries\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Sampled 4 keys in the keyspace!\n"), std::string::npos);
  EXPECT_NE(text.find("Biggest default found '\"k4\"' has 4 entries\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Biggest  login found '\"k3\"' has 3 entries\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("3 keys of default with 6 entries (75.00% of keys, avg "
                      "size 2.00)\n"),
            std::string::npos)
      << text;
  std::ostringstream mem;
  options.window = 64;
  ASSERT_EQ(RunBigKeys(async, /*memkeys=*/true, options, mem), 0);
  EXPECT_NE(mem.str().find("Biggest default found '\"k4\"' has 400 bytes\n"),
            std::string::npos)
      << mem.str();
}

TEST(SpecialModesLoopTest, StatPrintsHeaderAndDeltas) {
  int64_t requests = 10;
  CallFn call = [&requests](const proto::Request&) {
    requests += 3;
    return Reply(proto::InfoResult{
        "keys:1\nused_bytes:2048\nconnected_clients:2\nrequests:" +
        std::to_string(requests) + "\nconnections_total:5\n"});
  };
  SpecialModeOptions options = NoSleep();
  options.max_lines = 3;
  std::ostringstream out;
  ASSERT_EQ(RunStat(call, options, out), 0);
  const std::vector<std::string> lines = Lines(out.str());
  ASSERT_EQ(lines.size(), 5u) << out.str();
  EXPECT_EQ(lines[0].substr(0, 19), "------- data ------");
  EXPECT_EQ(lines[2].substr(0, 48),
            "1          2.00K    2       13 (+0)             ");
  EXPECT_NE(lines[3].find("16 (+3)"), std::string::npos);
  EXPECT_NE(lines[4].find("19 (+3)"), std::string::npos);
}

TEST(SpecialModesLoopTest, LatencyHistoryRawLines) {
  CallFn call = [](const proto::Request& request) {
    EXPECT_TRUE(std::holds_alternative<proto::PingRequest>(request.body));
    return Reply(proto::PingResult{});
  };
  SpecialModeOptions options = NoSleep();
  options.raw = true;
  options.interval_s = 0;  // every sample closes a range
  options.max_lines = 2;
  std::ostringstream out;
  ASSERT_EQ(RunLatency(call, /*history=*/true, options, out), 0);
  const std::regex raw_line(R"(\d+ \d+ \d+\.\d\d 1)");
  const std::regex range(R"( -- \d+\.\d\d seconds range)");
  const std::vector<std::string> lines = Lines(out.str());
  ASSERT_EQ(lines.size(), 4u) << out.str();
  EXPECT_TRUE(std::regex_match(lines[0], raw_line)) << lines[0];
  EXPECT_TRUE(std::regex_match(lines[1], range)) << lines[1];
}

TEST(SpecialModesLoopTest, ErrorsExitOne) {
  CallFn call = [](const proto::Request&) {
    return proto::Response::Error(Status(Code::kUnavailable, "down"));
  };
  std::ostringstream out;
  EXPECT_EQ(RunScan(call, NoSleep(), out), 1);
  EXPECT_EQ(RunStat(call, NoSleep(), out), 1);
  EXPECT_EQ(RunHotKeys(call, NoSleep(), out), 1);
}

TEST(SpecialModesLoopTest, HotKeysSendsCount) {
  std::vector<std::string> args;
  CallFn call = [&args](const proto::Request& request) {
    args = std::get<proto::AdminRequest>(request.body).args;
    return Reply(proto::AdminResult{
        proto::AdminReply::Map()
            .Put("sample_every", proto::AdminReply::Integer(0))
            .Put("keys", proto::AdminReply::Array())});
  };
  SpecialModeOptions options = NoSleep();
  options.count = 5;
  std::ostringstream out;
  ASSERT_EQ(RunHotKeys(call, options, out), 0);
  EXPECT_EQ(args, (std::vector<std::string>{"HOTKEYS", "COUNT", "5"}));
  EXPECT_NE(out.str().find("Hot-key tracking is off"), std::string::npos);
}

}  // namespace
}  // namespace tally::cli
