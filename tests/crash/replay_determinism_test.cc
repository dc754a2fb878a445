// D8 (RELIABILITY.md 3.1): replay is deterministic. After load, the engine
// and idempotency-table digests (INFO debug) of the live server equal the
// digests after a kill -9 and a full WAL replay, after a second replay, and
// after a replay under a clock 2 h ahead (libfaketime, the `faketime`
// package): replay takes every time from the WAL and never reads the clock.
// The same holds after a clean stop (snapshot + empty WAL suffix). Sweeps
// are pushed out of the test's time span (--sweep_interval_ms=1h) because a
// sweep is a new mutation at the server's current time, not replay.
// TALLYD: binary; TALLY_SEED replays.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/crash/crash_harness.h"

namespace tally::crash {
namespace {

bool OnPath(const std::string& program) {
  std::istringstream path(EnvOr("PATH", "/usr/bin:/bin"));
  std::string dir;
  while (std::getline(path, dir, ':')) {
    if (!dir.empty() && access((dir + "/" + program).c_str(), X_OK) == 0) {
      return true;
    }
  }
  return false;
}

// The preload library the `faketime` wrapper uses. The wrapper forks and
// waits, so its pid is not tallyd's; preloading directly keeps kill -9 and
// SIGTERM aimed at tallyd itself.
std::string FaketimeLibrary() {
  for (const char* candidate :
       {"/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1"}) {
    if (access(candidate, R_OK) == 0) return candidate;
  }
  return "";
}

struct Digests {
  std::string engine, dedupe, applied_lsn;
  bool operator==(const Digests&) const = default;
  // The same state `starts` starts later: each start logs the configured
  // policies (one WAL record, docs/wal_format.md) once recovery is done.
  Digests AfterStarts(int starts) const {
    Digests d = *this;
    if (!d.applied_lsn.empty()) {
      d.applied_lsn = std::to_string(std::stoull(d.applied_lsn) + starts);
    }
    return d;
  }
  std::string ToString() const {
    return "engine=" + engine + " dedupe=" + dedupe +
           " applied_lsn=" + applied_lsn;
  }
};

Digests Read(uint16_t port) {
  auto info = Info(port, "debug");
  return {info["engine_digest"], info["dedupe_digest"], info["applied_lsn"]};
}

class ReplayDeterminismTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (EnvOr("TALLYD").empty()) GTEST_SKIP() << "TALLYD not set";
    seed_ = TestSeed();
    std::printf("[ seed ] TALLY_SEED=%llu\n",
                static_cast<unsigned long long>(seed_));
    dir_ = std::make_unique<TempDir>("tally-replay");
    ASSERT_FALSE(dir_->path().empty());
    start_.binary = EnvOr("TALLYD");
    start_.data_dir = dir_->path() + "/data";
    start_.flags = {"--durability=fsync", "--snapshot_interval_s=0",
                    "--sweep_interval_ms=3600000"};
    start_.log_path = dir_->path() + "/tallyd.log";
    history_ = std::make_unique<History>(dir_->path() + "/history.log");
    model_ = std::make_unique<KeyModel>(2000);
  }

  // Load for ~1.5 s; returns the live digests once the load has stopped.
  Digests LoadAndDigest(TallydProcess& server) {
    LoadOptions load_options;
    load_options.seed = seed_;
    LoadGenerator load(history_.get(), model_.get(), server.port(),
                       load_options);
    load.Start();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const LoadStats stats = load.Stop();
    EXPECT_GT(stats.adds_ok, 0);
    return Read(server.port());
  }

  // Starts (optionally 2 h ahead), reads the digests, and returns them.
  Digests StartAndDigest(TallydProcess& server, bool two_hours_ahead,
                         double* seconds, int64_t* replayed) {
    StartOptions start = start_;
    if (two_hours_ahead) {
      start.extra_env = {"LD_PRELOAD=" + FaketimeLibrary(), "FAKETIME=+2h",
                         "ASAN_OPTIONS=verify_asan_link_order=0"};
      start.ready_timeout = std::chrono::seconds(8);
    }
    const bool started = server.Start(start);
    if (!started && two_hours_ahead) {
      std::ifstream in(start.log_path);
      std::stringstream log;
      log << in.rdbuf();
      if (log.str().find("libfaketime: Cannot recover") != std::string::npos) {
        // libfaketime's init allocates; jemalloc's init reads the clock:
        // the preloaded process deadlocks before main. Builds without
        // jemalloc (-DTALLY_SANITIZE=ON, -DTALLY_JEMALLOC=OFF) run it.
        faketime_clash_ = true;
        return {};
      }
    }
    EXPECT_TRUE(started) << server.exit_status().ToString();
    if (!server.running()) return {};
    *seconds = server.ready_seconds();
    auto persistence = Info(server.port(), "persistence");
    *replayed = std::atoll(persistence["recovery_records_replayed"].c_str());
    if (two_hours_ahead) {
      // The fake clock took effect: the server's time is ~2 h ahead.
      auto info = Info(server.port(), "server");
      const int64_t server_ms = std::atoll(info["server_time_ms"].c_str());
      const int64_t now_ms = static_cast<int64_t>(std::time(nullptr)) * 1000;
      EXPECT_GT(server_ms - now_ms, 3'600'000)
          << "libfaketime did not shift tallyd's clock";
    }
    return Read(server.port());
  }

  bool faketime_clash_ = false;
  uint64_t seed_ = 0;
  std::unique_ptr<TempDir> dir_;
  StartOptions start_;
  std::unique_ptr<History> history_;
  std::unique_ptr<KeyModel> model_;
};

TEST_F(ReplayDeterminismTest,
       FullWalReplayGivesTheLiveDigestTwiceAndUnderAShiftedClock) {
  const bool faketime = OnPath("faketime") && !FaketimeLibrary().empty();
  TallydProcess server;
  ASSERT_TRUE(server.Start(start_)) << server.exit_status().ToString();
  const Digests live = LoadAndDigest(server);
  ASSERT_FALSE(live.engine.empty()) << "INFO debug gave no engine_digest";
  server.Kill9();  // no final snapshot: the next start replays the whole WAL

  double seconds = 0;
  int64_t replayed = 0;
  const Digests first = StartAndDigest(server, false, &seconds, &replayed);
  std::printf(
      "[ figures ] full replay: records=%lld ready_s=%.3f "
      "records_per_s=%.0f\n",
      static_cast<long long>(replayed), seconds,
      seconds > 0 ? replayed / seconds : 0);
  EXPECT_GT(replayed, 0);
  EXPECT_EQ(first, live.AfterStarts(1))
      << "first replay " << first.ToString() << " live " << live.ToString();
  server.Kill9();
  const Digests second = StartAndDigest(server, false, &seconds, &replayed);
  EXPECT_EQ(second, live.AfterStarts(2))
      << "second replay " << second.ToString();
  server.Kill9();
  if (!faketime) {
    GTEST_SKIP() << "faketime (libfaketime) not installed: the +2h replay "
                    "was not run (apt-get install faketime)";
  }
  const Digests shifted = StartAndDigest(server, true, &seconds, &replayed);
  if (faketime_clash_) {
    GTEST_SKIP() << "the +2h part did not run: libfaketime deadlocks with "
                    "jemalloc at process start (\"recursive calls to "
                    "clock_gettime\"); it runs in builds without jemalloc "
                    "(tools/build.sh asan, -DTALLY_JEMALLOC=OFF)";
  }
  EXPECT_EQ(shifted.engine, live.engine)
      << "replay 2 h ahead: " << shifted.ToString() << " live "
      << live.ToString();
  EXPECT_EQ(shifted.dedupe, live.dedupe)
      << "replay 2 h ahead: " << shifted.ToString();
  server.Kill9();
}

TEST_F(ReplayDeterminismTest,
       SnapshotAfterACleanStopGivesTheSameDigestTwiceAndUnderAShiftedClock) {
  const bool faketime = OnPath("faketime") && !FaketimeLibrary().empty();
  TallydProcess server;
  ASSERT_TRUE(server.Start(start_)) << server.exit_status().ToString();
  const Digests live = LoadAndDigest(server);
  ASSERT_FALSE(live.engine.empty());
  double stop_seconds = 0;
  const ExitStatus stopped =
      server.Terminate(std::chrono::seconds(20), &stop_seconds, nullptr);
  ASSERT_TRUE(stopped.exited && stopped.code == 0) << stopped.ToString();

  double seconds = 0;
  int64_t replayed = 0;
  const Digests first = StartAndDigest(server, false, &seconds, &replayed);
  EXPECT_EQ(first, live.AfterStarts(1))
      << first.ToString() << " live " << live.ToString();
  server.Terminate(std::chrono::seconds(20), &stop_seconds, nullptr);
  const Digests second = StartAndDigest(server, false, &seconds, &replayed);
  EXPECT_EQ(second, first.AfterStarts(1)) << second.ToString();
  std::printf(
      "[ figures ] snapshot start: records_replayed=%lld ready_s=%.3f\n",
      static_cast<long long>(replayed), seconds);
  server.Terminate(std::chrono::seconds(20), &stop_seconds, nullptr);
  if (!faketime) {
    GTEST_SKIP() << "faketime (libfaketime) not installed: the +2h start "
                    "was not run (apt-get install faketime)";
  }
  const Digests shifted = StartAndDigest(server, true, &seconds, &replayed);
  if (faketime_clash_) {
    GTEST_SKIP() << "the +2h part did not run: libfaketime deadlocks with "
                    "jemalloc at process start (\"recursive calls to "
                    "clock_gettime\"); it runs in builds without jemalloc "
                    "(tools/build.sh asan, -DTALLY_JEMALLOC=OFF)";
  }
  EXPECT_EQ(shifted.engine, live.engine) << shifted.ToString();
  EXPECT_EQ(shifted.dedupe, live.dedupe) << shifted.ToString();
  server.Kill9();
}

}  // namespace
}  // namespace tally::crash
