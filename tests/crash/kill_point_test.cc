// D5/D6 (RELIABILITY.md 3.1): tallyd built with TALLY_FAULT_HOOKS kills
// itself (SIGKILL) at a named step of the WAL or snapshot code, under load,
// with a snapshot every second. After each death: `tally-wal check` says the
// log is clean or has a torn tail (never corrupt), tallyd restarts by itself
// without the kill point, leaves no *.tmp snapshot behind, and the history
// checkers find 0 acknowledged increments lost and 0 duplicates.
// TALLYD, TALLY_WAL: binaries; TALLY_SEED replays; TALLY_KILL_POINT_ITERATIONS
// (default 2) sets the deaths per point.

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <random>
#include <string>

#include "tests/crash/crash_harness.h"

namespace tally::crash {
namespace {

struct PointCase {
  const char* name;
  int max_hit;  // TALLY_KILL_POINT_HIT is drawn from 1..max_hit
};

// Readable names in ctest (instead of the bytes of the struct).
void PrintTo(const PointCase& point, std::ostream* os) { *os << point.name; }

class KillPointTest : public ::testing::TestWithParam<PointCase> {};

TEST_P(KillPointTest, DyingAtThePointLosesNothingAndRecoversByItself) {
#ifndef TALLY_FAULT_HOOKS
  GTEST_SKIP()
      << "kill points are compiled in only with -DTALLY_FAULT_HOOKS=ON "
         "(tools/build.sh asan); this build has none";
#else
  if (EnvOr("TALLYD").empty() || TallyWalBinary().empty()) {
    GTEST_SKIP() << "TALLYD or TALLY_WAL not set";
  }
  const PointCase& point = GetParam();
  const uint64_t seed = TestSeed();
  std::printf("[ seed ] TALLY_SEED=%llu point=%s\n",
              static_cast<unsigned long long>(seed), point.name);
  const std::string iterations_env = EnvOr("TALLY_KILL_POINT_ITERATIONS", "2");
  const int iterations = std::max(1, std::atoi(iterations_env.c_str()));
  std::mt19937_64 rng(seed);
  TempDir dir("tally-killpoint");
  ASSERT_FALSE(dir.path().empty());
  History history(dir.path() + "/history.log");
  history.Note("seed=" + std::to_string(seed) + " point=" + point.name);
  KeyModel model(1000);
  StartOptions start;
  start.binary = EnvOr("TALLYD");
  start.data_dir = dir.path() + "/data";
  start.flags = {"--durability=fsync", "--snapshot_interval_s=1",
                 "--wal_segment_mb=1"};
  start.log_path = dir.path() + "/tallyd.log";
  TallydProcess server;
  int64_t lost = 0, duplicates = 0, unknown_applied = 0, ops = 0;
  std::vector<double> death_seconds;

  for (int it = 0; it < iterations; ++it) {
    const int hit = std::uniform_int_distribution<int>(1, point.max_hit)(rng);
    StartOptions armed = start;
    armed.extra_env = {std::string("TALLY_KILL_POINT=") + point.name,
                       "TALLY_KILL_POINT_HIT=" + std::to_string(hit)};
    history.Note("start armed " + std::string(point.name) +
                 " hit=" + std::to_string(hit));
    // An early hit can fire before the ready line (e.g. the first sweep's
    // WAL write); that is a death at the point too.
    const bool ready = server.Start(armed);
    ExitStatus died = server.exit_status();
    const auto t0 = SteadyClock::now();
    if (ready) {
      LoadOptions load_options;
      load_options.epoch = it;
      load_options.seed = seed;
      LoadGenerator load(&history, &model, server.port(), load_options);
      load.Start();
      const bool exited = server.WaitExit(std::chrono::seconds(30), &died);
      history.Sync();
      load.Stop();
      if (!exited) {
        server.Kill9();
        FAIL() << point.name << " hit=" << hit
               << " was not reached within 30 s (seed " << seed << ")";
      }
    }
    death_seconds.push_back(
        std::chrono::duration<double>(SteadyClock::now() - t0).count());
    history.Note("died: " + died.ToString());
    ASSERT_TRUE(died.signaled && died.signal == SIGKILL)
        << point.name << ": expected death by SIGKILL, got " << died.ToString()
        << " (log " << start.log_path << ")";

    std::string check_output;
    const int check =
        RunCommand({TallyWalBinary(), "check", start.data_dir}, &check_output);
    EXPECT_TRUE(check == 0 || check == 1)
        << "tally-wal check exit " << check << " after " << point.name << ":\n"
        << check_output;

    ASSERT_TRUE(server.Start(start))
        << "restart without the kill point failed: "
        << server.exit_status().ToString() << " (log " << start.log_path
        << ", seed " << seed << ")";
    const std::vector<std::string> temps =
        FilesEndingWith(start.data_dir, ".tmp");
    EXPECT_TRUE(temps.empty()) << "left after restart: " << temps[0];
    const CheckReport r = Reconcile(&history, &model, server.port(), it);
    EXPECT_TRUE(r.clean()) << point.name << " iteration " << it << " seed "
                           << seed << ": " << r.Summary();
    lost += r.lost;
    duplicates += r.duplicates;
    unknown_applied += r.unknown_applied;
    ops += r.ops;
    server.Kill9();
  }
  std::printf(
      "[ figures ] point=%s iterations=%d ops=%lld unknown_applied=%lld "
      "lost=%lld duplicates=%lld death_after_s_max=%.2f\n",
      point.name, iterations, static_cast<long long>(ops),
      static_cast<long long>(unknown_applied), static_cast<long long>(lost),
      static_cast<long long>(duplicates), Percentile(death_seconds, 100));
#endif
}

INSTANTIATE_TEST_SUITE_P(
    Points, KillPointTest,
    ::testing::Values(PointCase{"wal.before_write", 400},
                      PointCase{"wal.after_write", 400},
                      PointCase{"wal.before_sync", 400},
                      PointCase{"wal.after_sync", 400},
                      PointCase{"snap.before_fsync", 2},
                      PointCase{"snap.after_rename_before_dirsync", 2},
                      PointCase{"snap.before_wal_truncate", 2},
                      PointCase{"snap.after_wal_truncate", 2}),
    [](const ::testing::TestParamInfo<PointCase>& param_info) {
      std::string name = param_info.param.name;
      for (char& c : name) {
        if (c == '.') c = '_';
      }
      return name;
    });

}  // namespace
}  // namespace tally::crash
