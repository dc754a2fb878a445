// D7 (RELIABILITY.md 3.1): SIGTERM under load. tallyd stops accepting,
// finishes in-flight requests, syncs, writes a final snapshot and exits 0
// within a bound; every acknowledged increment is present after the restart
// and nothing is applied twice; the restart replays (almost) no WAL records
// because the final snapshot covers them. TALLYD, TALLY_WAL: binaries;
// TALLY_SEED replays.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "tests/crash/crash_harness.h"

namespace tally::crash {
namespace {

// Generous: a shutdown is one fsync plus one snapshot of a small state. The
// figure is printed; this bound only catches a hang.
constexpr auto kStopBound = std::chrono::seconds(20);
constexpr int kRounds = 3;

TEST(GracefulStopTest,
     SigtermUnderLoadExitsZeroKeepsEveryAckAndReplaysNothing) {
  if (EnvOr("TALLYD").empty() || TallyWalBinary().empty()) {
    GTEST_SKIP() << "TALLYD or TALLY_WAL not set";
  }
  const uint64_t seed = TestSeed();
  std::printf("[ seed ] TALLY_SEED=%llu\n",
              static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  TempDir dir("tally-sigterm");
  ASSERT_FALSE(dir.path().empty());
  History history(dir.path() + "/history.log");
  KeyModel model(2000);
  StartOptions start;
  start.binary = EnvOr("TALLYD");
  start.data_dir = dir.path() + "/data";
  start.flags = {"--durability=fsync"};
  start.log_path = dir.path() + "/tallyd.log";
  TallydProcess server;
  ASSERT_TRUE(server.Start(start)) << server.exit_status().ToString();
  std::vector<double> stop_seconds;
  int64_t replayed_max = 0, unknown = 0, unknown_applied = 0, ok = 0;

  for (int round = 0; round < kRounds; ++round) {
    LoadOptions load_options;
    load_options.epoch = round;
    load_options.seed = seed;
    LoadGenerator load(&history, &model, server.port(), load_options);
    load.Start();
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::uniform_int_distribution<int>(1000, 2000)(rng)));
    history.Sync();
    double seconds = 0;
    bool timed_out = false;
    const ExitStatus stopped =
        server.Terminate(kStopBound, &seconds, &timed_out);
    load.Stop();
    history.Note("SIGTERM -> " + stopped.ToString() + " in " +
                 std::to_string(seconds) + " s");
    stop_seconds.push_back(seconds);
    EXPECT_FALSE(timed_out) << "tallyd did not exit within "
                            << kStopBound.count() << " s of SIGTERM";
    EXPECT_TRUE(stopped.exited && stopped.code == 0)
        << "SIGTERM ended tallyd with " << stopped.ToString();

    std::string check_output;
    EXPECT_EQ(
        RunCommand({TallyWalBinary(), "check", start.data_dir}, &check_output),
        0)
        << "the WAL is not clean after a graceful stop:\n"
        << check_output;

    ASSERT_TRUE(server.Start(start)) << server.exit_status().ToString();
    auto persistence = Info(server.port(), "persistence");
    const int64_t replayed =
        std::atoll(persistence["recovery_records_replayed"].c_str());
    replayed_max = std::max(replayed_max, replayed);
    EXPECT_FALSE(persistence["recovery_snapshot"].empty());
    // Everything was in the final snapshot (at most a straggling sweep).
    EXPECT_LE(replayed, 2) << persistence["recovery_report"];
    const CheckReport r = Reconcile(&history, &model, server.port(), round);
    EXPECT_TRUE(r.clean()) << "seed " << seed << ": " << r.Summary();
    ok += r.ok;
    unknown += r.unknown;
    unknown_applied += r.unknown_applied;
  }
  double stop_tmp = 0;
  server.Terminate(kStopBound, &stop_tmp, nullptr);
  std::printf(
      "[ figures ] rounds=%d acked=%lld unknown=%lld unknown_applied=%lld "
      "shutdown_s_p50=%.3f shutdown_s_max=%.3f "
      "replayed_after_restart_max=%lld\n",
      kRounds, static_cast<long long>(ok), static_cast<long long>(unknown),
      static_cast<long long>(unknown_applied), Percentile(stop_seconds, 50),
      Percentile(stop_seconds, 100), static_cast<long long>(replayed_max));
}

}  // namespace
}  // namespace tally::crash
