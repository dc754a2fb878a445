// The `tally` special modes (--stat, --latency, --latency-history, --scan,
// --bigkeys, --memkeys, --hotkeys) against a real `tallyd --port=0`, run
// with --hotkeys_sample_every=1 so HOTKEYS sees every add. Output is piped,
// so each mode prints redis-cli's raw forms; lines are checked with
// regexes (their exact text is unit-tested in tools/cli/special_modes_test).
//
// Every process is bounded: tallyd (tests/support/tallyd_process.h) dies
// with this test and is stopped in TearDown; each CLI run goes through
// timeout(1) (tests/support/shell.h).

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/shell.h"
#include "tests/support/tallyd_process.h"

namespace {

using tally::test::RunResult;
using tally::test::Shell;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class SpecialModesCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tallyd_.Start(
        {.binary = TALLYD_BIN,
         .flags = {"--hotkeys_sample_every=1", "--durability=os"}}))
        << "tallyd did not start: " << tallyd_.output();
    port_ = tallyd_.port();
    ASSERT_GT(port_, 0);
  }

  void TearDown() override { tallyd_.Stop(); }

  std::string Cli(const std::string& flags) const {
    return std::string(TALLY_BIN) + " -p " + std::to_string(port_) + " " +
           flags;
  }

  // Adds through pipe mode: `times` adds of each key.
  void Fill(const std::vector<std::pair<std::string, int>>& keys) {
    const std::string file = tallyd_.data_dir() + "/fill.txt";
    {
      std::ofstream lines(file);
      for (const auto& [key, times] : keys) {
        for (int i = 0; i < times; ++i) lines << "ADD " << key << "\n";
      }
    }
    RunResult fill = Shell(Cli("") + " < " + file + " > /dev/null");
    ASSERT_EQ(fill.exit_code, 0);
  }

  tally::test::TallydProcess tallyd_;
  int port_ = 0;
};

TEST_F(SpecialModesCliTest, ScanListsEveryKeyOncePerLine) {
  Fill({{"ip:1", 1}, {"ip:2", 1}, {"card:1", 1}});
  RunResult all = Shell(Cli("--scan --count 1"));
  EXPECT_EQ(all.exit_code, 0);
  std::vector<std::string> keys = Lines(all.out);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"card:1", "ip:1", "ip:2"}));
  RunResult ips = Shell(Cli("--scan --pattern 'ip:*'"));
  keys = Lines(ips.out);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"ip:1", "ip:2"}));
}

TEST_F(SpecialModesCliTest, HotKeysPutsTheAttackFirst) {
  Fill({{"ip:203.0.113.7", 300}, {"ip:1", 5}, {"ip:2", 5}});
  RunResult hot = Shell(Cli("--hotkeys"));
  EXPECT_EQ(hot.exit_code, 0) << hot.out;
  const std::vector<std::string> lines = Lines(hot.out);
  const auto summary =
      std::find(lines.begin(), lines.end(), "-------- summary -------");
  ASSERT_NE(summary, lines.end()) << hot.out;
  ASSERT_GE(lines.end() - summary, 6) << hot.out;
  EXPECT_EQ(summary[2], "Sampled 3 keys in the keyspace!");
  const std::regex row(
      R"re(hot key found with counter: (\d+\.\d\d)\tkeyname: "(.*)")re");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(summary[3], m, row)) << summary[3];
  EXPECT_EQ(m[2], "ip:203.0.113.7");
  EXPECT_GT(std::stod(m[1]), 0.0);
  EXPECT_TRUE(std::regex_match(summary[4], row)) << summary[4];
  RunResult one = Shell(Cli("HOTKEYS COUNT 1"));
  EXPECT_EQ(one.exit_code, 0);
  EXPECT_NE(one.out.find("\"ip:203.0.113.7\""), std::string::npos) << one.out;
  EXPECT_EQ(one.out.find("\"ip:1\""), std::string::npos) << one.out;
}

TEST_F(SpecialModesCliTest, BigKeysAndMemKeysSummarise) {
  Fill({{"a", 1}, {"b", 3}});
  RunResult big = Shell(Cli("--bigkeys"));
  EXPECT_EQ(big.exit_code, 0) << big.out;
  const std::regex progress(
      R"re(\[\d\d\.\d\d%\] Biggest default found so far '"[ab]"' with \d+ entries)re");
  bool saw_progress = false;
  for (const std::string& line : Lines(big.out)) {
    saw_progress = saw_progress || std::regex_match(line, progress);
  }
  EXPECT_TRUE(saw_progress) << big.out;
  EXPECT_NE(big.out.find("Sampled 2 keys in the keyspace!\n"
                         "Total key length in bytes is 2 (avg len 1.00)\n"),
            std::string::npos)
      << big.out;
  EXPECT_TRUE(std::regex_search(
      big.out,
      std::regex(
          R"(2 keys of default with \d+ entries \(100\.00% of keys, avg size \d+\.\d\d\))")))
      << big.out;

  RunResult mem = Shell(Cli("--memkeys"));
  EXPECT_EQ(mem.exit_code, 0);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      mem.out, m,
      std::regex(R"re(Biggest default found '"([ab])"' has (\d+) bytes)re")))
      << mem.out;
  // The same figure MEMORY USAGE gives for that key.
  RunResult usage = Shell(Cli("MEMORY USAGE " + m[1].str()));
  EXPECT_EQ(usage.out, "(integer) " + m[2].str() + "\n");
}

TEST_F(SpecialModesCliTest, StatPrintsALinePerInterval) {
  Fill({{"k", 1}});
  // Runs until interrupted: timeout stops it after ~4 lines at -i 0.5.
  RunResult stat = Shell(Cli("--stat -i 0.5"), {.timeout_seconds = 2});
  const std::vector<std::string> lines = Lines(stat.out);
  ASSERT_GE(lines.size(), 3u) << stat.out;
  EXPECT_EQ(lines[0],
            "------- data ------ ---------------- load ----------------");
  EXPECT_EQ(lines[1],
            "keys       mem      clients requests            connections");
  const std::regex row(
      R"(1 {10}\d+(\.\d\d[KMG])?B? +\d+ +\d+ \(\+\d+\) +\d+ *)");
  EXPECT_TRUE(std::regex_match(lines[2], row)) << lines[2];
  EXPECT_NE(lines[2].find("(+0)"), std::string::npos);
  if (lines.size() >= 4) {
    EXPECT_TRUE(std::regex_match(lines[3], row)) << lines[3];
    EXPECT_NE(lines[3].find("(+1)"), std::string::npos) << lines[3];
  }
}

TEST_F(SpecialModesCliTest, LatencyRawAndHistory) {
  // Piped --latency: samples for -i seconds, then one raw line, and exits.
  RunResult once = Shell(Cli("--latency -i 0.3"));
  EXPECT_EQ(once.exit_code, 0);
  EXPECT_TRUE(
      std::regex_match(once.out, std::regex(R"(\d+ \d+ \d+\.\d\d \d+\n)")))
      << once.out;
  // Piped --latency-history: a raw line per sample, a range line per -i.
  RunResult history =
      Shell(Cli("--latency-history -i 0.2"), {.timeout_seconds = 1});
  const std::vector<std::string> lines = Lines(history.out);
  ASSERT_GE(lines.size(), 2u) << history.out;
  EXPECT_EQ(lines[0].substr(lines[0].rfind(' ')), " 1") << lines[0];
  bool saw_range = false;
  for (const std::string& line : lines) {
    if (std::regex_match(line, std::regex(R"( -- \d+\.\d\d seconds range)"))) {
      saw_range = true;
    } else {
      EXPECT_TRUE(
          std::regex_match(line, std::regex(R"(\d+ \d+ \d+\.\d\d \d+)")))
          << line;
    }
  }
  EXPECT_TRUE(saw_range) << history.out;
}

TEST_F(SpecialModesCliTest, ModesFailWhenTheServerIsDown) {
  tallyd_.Stop();  // SIGTERM, waits for the exit
  EXPECT_EQ(Shell(Cli("--scan 2>/dev/null")).exit_code, 1);
  EXPECT_EQ(Shell(Cli("--latency 2>/dev/null")).exit_code, 1);
}

}  // namespace
