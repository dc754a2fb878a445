// F3 slow disk in interval mode (RELIABILITY.md 1, 3.3): a real tallyd built
// with TALLY_FAULT_HOOKS and --durability=interval:50 whose fsyncs lag
// 400-800 ms (TALLY_FAULT_FSYNC_DELAY_FILE) under load: acks pause while an
// fsync lags beyond 2N, resume after it, and nothing fails or is lost.
// Figures are printed as "[ figures ]" lines; docs/hardening.md records them.
// Helpers: slow_disk_harness.h. Without the hooks this build has no test
// here (slow_disk_test.cc reports the skip).
// TALLYD: the server binary (must be a TALLY_FAULT_HOOKS build).

#include <gtest/gtest.h>
#include <tally/client.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "tests/crash/crash_harness.h"
#include "tests/fault/slow_disk_harness.h"

namespace tally::crash {
namespace {

#ifdef TALLY_FAULT_HOOKS
// interval:N: while an fsync lags beyond 2N (every fsync takes 400-800 ms,
// N = 50 ms) acks pause (RELIABILITY.md 1, F3): the writer completes
// nothing while an fsync is outstanding. Seen from the clients: gaps between
// consecutive acks of at least the smallest injected delay (a lower bound),
// and acks resume after each sync; nothing fails or is lost.
TEST(SlowDiskTest, IntervalModeAcksPauseWhileAnFsyncLags) {
  if (EnvOr("TALLYD").empty()) GTEST_SKIP() << "TALLYD not set";
  constexpr int64_t kIntervalMs = 50;
  constexpr int64_t kLagMinMs = 400, kLagMaxMs = 800;  // > 2N
  constexpr int kConnections = 4;
  TempDir dir("tally-f3-interval");
  ASSERT_FALSE(dir.path().empty());
  std::string delay_file;
  TallydProcess server;
  ASSERT_TRUE(server.Start(SlowDiskStart(
      dir, {"--durability=interval:" + std::to_string(kIntervalMs)},
      &delay_file)))
      << server.exit_status().ToString();
  const uint16_t port = server.port();

  std::atomic<bool> stop{false};
  AckLog log(kKeys);
  InfoPoller poller(port, server.pid());
  std::vector<std::thread> threads;
  for (int c = 0; c < kConnections; ++c) {
    threads.emplace_back([&, c] {
      SyncAdds(port, milliseconds(10'000), "f3i:", c * 13, stop, &log);
    });
  }
  // 0.5 s normal, 3 s lagging fsyncs, 1 s normal.
  std::this_thread::sleep_for(milliseconds(500));
  WriteFile(delay_file,
            std::to_string(kLagMinMs) + "-" + std::to_string(kLagMaxMs));
  const auto slow_from = SteadyClock::now();
  std::this_thread::sleep_for(milliseconds(3000));
  WriteFile(delay_file, "");
  const auto slow_to = SteadyClock::now();
  std::this_thread::sleep_for(milliseconds(1000));
  stop = true;
  for (std::thread& t : threads) t.join();
  poller.Stop();
  ASSERT_TRUE(server.running());

  std::vector<Ack>& acks = log.acks;
  std::sort(acks.begin(), acks.end(),
            [](const Ack& a, const Ack& b) { return a.acked < b.acked; });
  // Pauses: gaps between consecutive acks inside the episode.
  double max_gap_ms = 0;
  int64_t long_gaps = 0, acks_during = 0, acks_after = 0;
  for (size_t i = 1; i < acks.size(); ++i) {
    if (acks[i].acked > slow_to) {
      ++acks_after;
      continue;
    }
    if (acks[i - 1].acked < slow_from) continue;
    ++acks_during;
    const double gap = std::chrono::duration<double, std::milli>(
                           acks[i].acked - acks[i - 1].acked)
                           .count();
    max_gap_ms = std::max(max_gap_ms, gap);
    if (gap >= kLagMinMs) ++long_gaps;
  }
  // How old the oldest acknowledged-but-unsynced add got, as INFO saw it
  // (a figure: bounded by N + one fsync when acks pause).
  double max_unsynced_age_ms = 0;
  {
    size_t next = 0;
    std::vector<Ack> by_lsn = acks;
    std::sort(by_lsn.begin(), by_lsn.end(),
              [](const Ack& a, const Ack& b) { return a.lsn < b.lsn; });
    for (const InfoPoller::Sample& s : poller.samples()) {
      while (next < by_lsn.size() && by_lsn[next].lsn <= s.durable_lsn) ++next;
      // The acks not yet durable at s that had been acked before s.
      for (size_t j = next; j < by_lsn.size(); ++j) {
        if (by_lsn[j].acked < s.issued) {
          max_unsynced_age_ms = std::max(
              max_unsynced_age_ms, std::chrono::duration<double, std::milli>(
                                       s.issued - by_lsn[j].acked)
                                       .count());
          break;  // the lowest such LSN is about the oldest
        }
      }
    }
  }
  RunEnd end;
  ASSERT_NO_FATAL_FAILURE(EndRun(
      server, log.acked_per_key,
      [](int k) { return "f3i:" + std::to_string(k); }, &end));

  std::printf(
      "[ figures ] F3 interval:%lld, fsync %lld-%lld ms for 3 s: acks during "
      "%lld, after %lld; ack gaps >= %lld ms: %lld, longest %.0f ms; oldest "
      "acked-but-unsynced add seen %.0f ms; fsyncs %s, fsync_max_us %s\n",
      static_cast<long long>(kIntervalMs), static_cast<long long>(kLagMinMs),
      static_cast<long long>(kLagMaxMs), static_cast<long long>(acks_during),
      static_cast<long long>(acks_after), static_cast<long long>(kLagMinMs),
      static_cast<long long>(long_gaps), max_gap_ms, max_unsynced_age_ms,
      end.info["fsyncs"].c_str(), end.info["fsync_max_us"].c_str());

  EXPECT_EQ(log.failed, 0) << log.first_failure;
  // At least two lagging fsyncs fit in the 3 s episode, each a pause.
  EXPECT_GE(long_gaps, 2) << "acks did not pause while an fsync lagged";
  EXPECT_GT(acks_during, 0) << "acks did not resume between the syncs";
  EXPECT_GT(acks_after, 0);
  EXPECT_EQ(end.read_total, end.acked_total);
  EXPECT_FALSE(end.timed_out);
}
#endif  // TALLY_FAULT_HOOKS

}  // namespace
}  // namespace tally::crash
