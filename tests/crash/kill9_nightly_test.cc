// D1 nightly (label slow): the fsync-mode kill -9 loop with 200 kills by
// default (TALLY_D1_KILLS overrides), 10,000 keys. See kill9_test.cc. It
// takes about an hour, so it runs only with TALLY_NIGHTLY=1 (tools/test.sh
// runs every label; the PR-tier loop is Kill9Test).

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "tests/crash/crash_harness.h"

namespace tally::crash {
namespace {

TEST(Kill9NightlyTest, FsyncModeLosesNoAcknowledgedIncrementAcrossManyKills) {
  if (EnvOr("TALLYD").empty()) GTEST_SKIP() << "TALLYD not set";
  if (EnvOr("TALLY_NIGHTLY") != "1") {
    GTEST_SKIP() << "nightly tier: set TALLY_NIGHTLY=1 to run it";
  }
  const std::string kills_env = EnvOr("TALLY_D1_KILLS");
  const int kills =
      kills_env.empty() ? 200 : std::max(1, std::atoi(kills_env.c_str()));
  const uint64_t seed = TestSeed();
  std::printf("[ seed ] TALLY_SEED=%llu\n",
              static_cast<unsigned long long>(seed));
  TempDir dir("tally-crash-nightly");
  ASSERT_FALSE(dir.path().empty());
  KillLoopOptions options;
  options.flags = {"--durability=fsync"};
  options.kills = kills;
  options.keys = 10000;
  options.min_run = std::chrono::milliseconds(1000);
  options.max_run = std::chrono::milliseconds(10000);
  options.seed = seed;
  options.label = "fsync-nightly";
  options.wall_budget = std::chrono::seconds(60 + kills * 15);
  const KillLoopResult r = RunKillLoop(options, dir.path());
  std::printf("[ figures ] mode=fsync-nightly %s\n", r.Figures().c_str());
  for (const std::string& f : r.failures)
    ADD_FAILURE() << f << " (seed " << seed << ")";
  EXPECT_EQ(r.kills, kills);
  EXPECT_GT(r.load.adds_ok, 0);
  EXPECT_TRUE(r.total.clean()) << r.total.Summary();
  EXPECT_EQ(r.load.read_violations, 0);
}

}  // namespace
}  // namespace tally::crash
