// F3 slow disk (RELIABILITY.md 3.3; also the D4 barrier): a real tallyd built
// with TALLY_FAULT_HOOKS, --durability=fsync, whose file fdatasync is delayed
// by 200-1000 ms (TALLY_FAULT_FSYNC_DELAY_FILE) for a few seconds, under load
// from several connections (synchronous adds on some, a pipelined window of
// async adds on another). Checks:
//   - no false ack: for every acknowledged add, the first INFO persistence
//     answer issued after the ack names durable_lsn >= the ack's LSN (an ack
//     before its fsync would show a lower durable_lsn: the next fsync takes
//     >= 200 ms);
//   - backpressure is latency: every add sent and acked inside the slow
//     episode took at least the smallest injected delay, and no add failed;
//   - bounded: the journal queue never exceeds its cap, the server's RSS peak
//     is reported (and bounded by a generous absolute cap);
//   - the server keeps serving after the episode; the final counts equal
//     the acknowledged adds (no add was lost or applied twice).
// Figures (p99 during/after, RSS peak, queue peak) are printed as
// "[ figures ]" lines; docs/hardening.md records them. TALLY_F3_FULL=1
// stretches the episode to RELIABILITY.md's 200 ms-5 s for 30 s.
// The BUSY path and interval mode: slow_disk_busy_test.cc and
// slow_disk_interval_test.cc; the shared helpers: slow_disk_harness.h.
// This one takes ~8 s by default.
// TALLYD: the server binary (must be a TALLY_FAULT_HOOKS build).

#include <gtest/gtest.h>
#include <tally/client.h>

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

#ifndef TALLY_FAULT_HOOKS
TEST(SlowDiskTest, NoAckBeforeFsyncAndBackpressureIsBoundedLatency) {
  GTEST_SKIP() << "the fsync-delay hook is compiled in only with "
                  "-DTALLY_FAULT_HOOKS=ON (tools/build.sh asan or tsan); this "
                  "build has none";
}
#else
TEST(SlowDiskTest, NoAckBeforeFsyncAndBackpressureIsBoundedLatency) {
  if (EnvOr("TALLYD").empty()) GTEST_SKIP() << "TALLYD not set";
  TempDir dir("tally-f3");
  ASSERT_FALSE(dir.path().empty());
  std::string delay_file;
  TallydProcess server;
  ASSERT_TRUE(
      server.Start(SlowDiskStart(dir, {"--durability=fsync"}, &delay_file)))
      << server.exit_status().ToString();
  const uint16_t port = server.port();
  const int64_t rss_start_kib = ProcStatusKib(server.pid(), "VmRSS");

  std::atomic<bool> stop{false};
  AckLog log(kKeys);
  std::vector<std::thread> threads;
  for (int c = 0; c < kSyncConnections; ++c) {
    threads.emplace_back(
        [&, c] { SyncAdds(port, kClientTimeout, "f3:", c * 7, stop, &log); });
  }
  // One connection keeps a window of async adds in flight (a pipelining
  // client): the server must queue them, not lose or falsely ack them.
  threads.emplace_back([&] {
    InFlightWindow window(kAsyncWindow);  // before the client: see there
    Client client(OneConnection(port, kClientTimeout));
    for (int i = 0; !stop.load() && i < 1'000'000; ++i) {
      if (!window.Acquire()) continue;
      const int key = i % kKeys;
      Batch batch;
      batch.Add("f3:" + std::to_string(key), 1);
      ++log.attempted;
      const auto sent = SteadyClock::now();
      client.CallAsync(BatchRequest(batch), {},
                       [&, key, sent, batch](CallResult<proto::Response> r) {
                         CallResult<BatchResult> b =
                             ToBatchResult(batch, std::move(r));
                         CallResult<proto::AddItemResult> one;
                         one.code = b.code;
                         one.message = b.message;
                         if (b.ok() && b.value.adds.size() == 1) {
                           one.value = b.value.adds[0];
                         } else if (b.ok()) {
                           one.code = Code::kInternal;
                         }
                         log.Record(sent, key, one);
                         window.Release();
                       });
    }
    window.Drain(kClientTimeout + milliseconds(5000));
  });
  // The side channel: INFO persistence and the server's RSS every 20 ms.
  InfoPoller poller(port, server.pid());

  // Phases: 1 s normal, 5 s (full: 30 s) slow disk, 2 s normal again.
  const auto t0 = SteadyClock::now();
  std::this_thread::sleep_for(milliseconds(1000));
  WriteFile(delay_file, std::to_string(kMinDelayMs) + "-" +
                            std::to_string(kMaxDelayMs) + "\n");
  const auto slow_from = SteadyClock::now();
  std::this_thread::sleep_for(kSlowFor);
  WriteFile(delay_file, "");
  const auto slow_to = SteadyClock::now();
  std::this_thread::sleep_for(milliseconds(2000));
  stop = true;
  for (std::thread& t : threads) t.join();
  poller.Stop();
  const auto t_end = SteadyClock::now();
  ASSERT_TRUE(server.running());

  // No false acks: the first INFO issued after each ack covers its LSN.
  const DurabilityCheck durable = CheckAcksDurable(log.acks, poller);
  std::vector<double> before_us, during_us, after_us;
  int64_t during_below_min = 0;
  for (const Ack& a : log.acks) {
    const double us =
        std::chrono::duration<double, std::micro>(a.acked - a.sent).count();
    if (a.acked < slow_from) {
      before_us.push_back(us);
    } else if (a.sent > slow_from && a.acked < slow_to) {
      during_us.push_back(us);
      if (us < kMinDelayMs * 1000.0) ++during_below_min;
    } else if (a.sent > slow_to) {
      after_us.push_back(us);
    }
  }
  // The final state: every acknowledged add is there exactly once (no
  // retries were made and nothing failed, so acked == attempted).
  RunEnd end;
  ASSERT_NO_FATAL_FAILURE(EndRun(
      server, log.acked_per_key,
      [](int k) { return "f3:" + std::to_string(k); }, &end));

  std::printf(
      "[ figures ] F3 slow disk: fsync delay %lld-%lld ms for %.1f s, %d sync "
      "connections + 1 with %d async adds in flight; %.1f s total\n",
      static_cast<long long>(kMinDelayMs), static_cast<long long>(kMaxDelayMs),
      std::chrono::duration<double>(slow_to - slow_from).count(),
      kSyncConnections, kAsyncWindow,
      std::chrono::duration<double>(t_end - t0).count());
  std::printf(
      "[ figures ] F3 adds attempted=%lld acked=%lld failed=%lld; acks "
      "checked against a later durable_lsn=%lld, violations=%lld\n",
      static_cast<long long>(log.attempted.load()),
      static_cast<long long>(log.acks.size()),
      static_cast<long long>(log.failed),
      static_cast<long long>(durable.checked),
      static_cast<long long>(durable.violations));
  std::printf(
      "[ figures ] F3 ack latency ms p50/p99/max: before %.1f/%.1f/%.1f (n=%zu)"
      ", during %.1f/%.1f/%.1f (n=%zu), after %.1f/%.1f/%.1f (n=%zu)\n",
      Percentile(before_us, 50) / 1e3, Percentile(before_us, 99) / 1e3,
      Percentile(before_us, 100) / 1e3, before_us.size(),
      Percentile(during_us, 50) / 1e3, Percentile(during_us, 99) / 1e3,
      Percentile(during_us, 100) / 1e3, during_us.size(),
      Percentile(after_us, 50) / 1e3, Percentile(after_us, 99) / 1e3,
      Percentile(after_us, 100) / 1e3, after_us.size());
  std::printf(
      "[ figures ] F3 RSS start %lld KiB, peak sampled %lld KiB, VmHWM %lld "
      "KiB; wal_queue_bytes peak %llu; fsyncs %s, fsync_max_us %s, "
      "rejected_busy %s\n",
      static_cast<long long>(rss_start_kib),
      static_cast<long long>(poller.rss_peak_kib()),
      static_cast<long long>(end.hwm_kib),
      static_cast<unsigned long long>(poller.queue_peak()),
      end.info["fsyncs"].c_str(), end.info["fsync_max_us"].c_str(),
      end.info["rejected_busy"].c_str());

  EXPECT_EQ(log.failed, 0) << log.first_failure;
  EXPECT_GT(durable.checked, 0);
  EXPECT_EQ(durable.violations, 0)
      << "an add was acknowledged before its fsync";
  EXPECT_GT(during_us.size(), 0u) << "no add completed inside the episode";
  EXPECT_EQ(during_below_min, 0)
      << "adds acked inside the slow episode faster than the injected delay";
  EXPECT_GT(after_us.size(), 0u) << "the server did not recover its pace";
  EXPECT_EQ(end.read_total, end.acked_total);
  // The journal queue is capped (max_queue_bytes, 256 MiB by default); with
  // one request in flight per synchronous connection and a fixed async
  // window it stays tiny. RSS: a generous absolute cap (sanitizer builds
  // carry shadow memory), against unbounded growth.
  EXPECT_LT(poller.queue_peak(), 1u << 20);
  EXPECT_LT(end.hwm_kib, 1024 * 1024);
  EXPECT_FALSE(end.timed_out);
}
#endif  // TALLY_FAULT_HOOKS

}  // namespace
}  // namespace tally::crash
