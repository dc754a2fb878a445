// D1/D2 (RELIABILITY.md 3.1): kill -9 a real tallyd under mixed load (4
// client connections, 70% adds with idempotency ids / 30% window reads,
// Zipf-ish keys), restart, and check the Jepsen-style history: 0 acknowledged
// increments lost, 0 duplicates, every unknown resolved by re-sending its id,
// every read within [sum(ok), sum(attempted)]. TALLYD names the server,
// TALLY_SEED replays a run, TALLY_D1_KILLS sets the number of kills.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/crash/crash_harness.h"

namespace tally::crash {
namespace {

int KillsFromEnv(const char* name, int fallback) {
  const std::string v = EnvOr(name);
  return v.empty() ? fallback : std::max(1, std::atoi(v.c_str()));
}

void RunAndCheck(const std::string& mode_label,
                 const std::vector<std::string>& flags, int kills) {
  if (EnvOr("TALLYD").empty()) GTEST_SKIP() << "TALLYD not set";
  const uint64_t seed = TestSeed();
  std::printf("[ seed ] TALLY_SEED=%llu (%s)\n",
              static_cast<unsigned long long>(seed), mode_label.c_str());
  TempDir dir("tally-crash-" + mode_label);
  ASSERT_FALSE(dir.path().empty());
  KillLoopOptions options;
  options.flags = flags;
  options.kills = kills;
  options.keys = 2000;
  options.seed = seed;
  options.label = mode_label;
  // 20 kills x (0.5-3 s of load + restart + check) fits well inside this;
  // the budget only stops a pathological run early (reported, not hidden).
  options.wall_budget = std::chrono::seconds(60 + kills * 10);
  const KillLoopResult r = RunKillLoop(options, dir.path());
  std::printf("[ figures ] mode=%s %s\n", mode_label.c_str(),
              r.Figures().c_str());
  for (const std::string& f : r.failures) {
    ADD_FAILURE() << f << " (seed " << seed << ", history "
                  << dir.path() + "/history.log; set TALLY_KEEP_TMP=1)";
  }
  EXPECT_EQ(r.kills, kills) << "wall budget exhausted";
  EXPECT_GT(r.load.adds_ok, 0) << "no increment was acknowledged";
  EXPECT_EQ(r.total.lost, 0) << r.total.Summary();
  EXPECT_EQ(r.total.duplicates, 0) << r.total.Summary();
  EXPECT_EQ(r.total.fail_applied, 0) << r.total.Summary();
  EXPECT_EQ(r.total.bound_violations, 0) << r.total.Summary();
  EXPECT_EQ(r.total.final_mismatches, 0) << r.total.Summary();
  EXPECT_EQ(r.load.read_violations, 0)
      << (r.load.violation_examples.empty() ? ""
                                            : r.load.violation_examples[0]);
}

TEST(Kill9Test, FsyncModeLosesNoAcknowledgedIncrementAcrossKills) {
  RunAndCheck("fsync", {"--durability=fsync"},
              KillsFromEnv("TALLY_D1_KILLS", 20));
}

TEST(Kill9Test, IntervalModeLosesNoAcknowledgedIncrementAcrossKills) {
  RunAndCheck("interval1000", {"--durability=interval:1000"},
              KillsFromEnv("TALLY_D2_KILLS", 8));
}

TEST(Kill9Test, OsModeLosesNoAcknowledgedIncrementAcrossKills) {
  RunAndCheck("os", {"--durability=os"}, KillsFromEnv("TALLY_D2_KILLS", 8));
}

// The checker itself: a server that forgets everything (its data directory
// wiped between stop and start) must be reported as losing acked ops.
TEST(Kill9Test, CheckerReportsLossWhenTheServerForgetsAcknowledgedIncrements) {
  if (EnvOr("TALLYD").empty()) GTEST_SKIP() << "TALLYD not set";
  const uint64_t seed = TestSeed();
  std::printf("[ seed ] TALLY_SEED=%llu\n",
              static_cast<unsigned long long>(seed));
  TempDir dir("tally-crash-selftest");
  ASSERT_FALSE(dir.path().empty());
  History history(dir.path() + "/history.log");
  KeyModel model(200);
  StartOptions start;
  start.binary = EnvOr("TALLYD");
  start.data_dir = dir.path() + "/data";
  start.log_path = dir.path() + "/tallyd.log";
  TallydProcess server;
  ASSERT_TRUE(server.Start(start));
  LoadOptions load_options;
  load_options.seed = seed;
  {
    LoadGenerator load(&history, &model, server.port(), load_options);
    load.Start();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_GT(load.Stop().adds_ok, 0);
  }
  server.Kill9();
  std::filesystem::remove_all(start.data_dir);
  ASSERT_TRUE(server.Start(start));
  const CheckReport r = Reconcile(&history, &model, server.port(), 0);
  EXPECT_GT(r.lost, 0) << r.Summary();
  EXPECT_GT(r.bound_violations, 0) << r.Summary();
  EXPECT_FALSE(r.clean());
}

}  // namespace
}  // namespace tally::crash
