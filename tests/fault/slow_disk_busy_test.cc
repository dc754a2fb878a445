// F3 slow disk, the BUSY path (RELIABILITY.md 3.3): a real tallyd built with
// TALLY_FAULT_HOOKS, --durability=fsync and a 256 KiB --wal_max_queue_bytes,
// overrun by pipelined batches while every fsync takes 1 s
// (TALLY_FAULT_FSYNC_DELAY_FILE). Adds beyond the cap are refused with BUSY,
// never falsely acknowledged or lost. Figures are printed as "[ figures ]"
// lines; docs/hardening.md records them. Helpers: slow_disk_harness.h.
// Without the hooks this build has no test here (slow_disk_test.cc reports
// the skip).
// TALLYD: the server binary (must be a TALLY_FAULT_HOOKS build).

#include <gtest/gtest.h>
#include <tally/client.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/crash/crash_harness.h"
#include "tests/fault/slow_disk_harness.h"

namespace tally::crash {
namespace {

#ifdef TALLY_FAULT_HOOKS
// The BUSY path: a small --wal_max_queue_bytes and pipelined batches far
// beyond it while every fsync takes 1 s. Adds beyond the cap must be
// refused with BUSY (and not applied), never falsely acknowledged; the
// queue never exceeds the cap; every acknowledged add is in the final
// counts exactly once.
TEST(SlowDiskTest, QueueCapRefusesWithBusyAndLosesNoAck) {
  if (EnvOr("TALLYD").empty()) GTEST_SKIP() << "TALLYD not set";
  constexpr uint64_t kCap = 256 << 10;
  constexpr int kConnections = 4;
  constexpr int kWindow = 128;  // batches in flight per connection
  constexpr int kItems = 50;    // one add per key per batch
  constexpr int64_t kDelayMs = 1000;
  TempDir dir("tally-f3-busy");
  ASSERT_FALSE(dir.path().empty());
  std::string delay_file;
  TallydProcess server;
  ASSERT_TRUE(server.Start(SlowDiskStart(
      dir,
      {"--durability=fsync",
       "--wal_max_queue_bytes=" + std::to_string(kCap >> 10) + "K"},
      &delay_file)))
      << server.exit_status().ToString();
  const uint16_t port = server.port();
  const int64_t rss_start_kib = ProcStatusKib(server.pid(), "VmRSS");
  // Long keys, so that a batch is ~2.5 KB of WAL payload.
  const auto key_name = [](int k) {
    return "f3busy:" + std::to_string(k) + ":" + std::string(40, 'x');
  };

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<Ack> acks;  // one per acknowledged batch
  std::vector<int64_t> acked_per_key(kItems, 0);
  int64_t busy_requests = 0, busy_items = 0, other_failures = 0, sent = 0;
  std::string first_failure;
  InfoPoller poller(port, server.pid());
  std::vector<std::thread> threads;
  for (int c = 0; c < kConnections; ++c) {
    threads.emplace_back([&] {
      InFlightWindow window(kWindow);  // before the client: see there
      std::atomic<bool> saw_busy{false};
      Client client(OneConnection(port, milliseconds(30'000)));
      while (!stop.load()) {
        if (!window.Acquire()) continue;
        // A polite client backs off a little after BUSY.
        if (saw_busy.exchange(false)) {
          std::this_thread::sleep_for(milliseconds(2));
        }
        Batch batch;
        for (int k = 0; k < kItems; ++k) batch.Add(key_name(k), 1);
        const auto sent_at = SteadyClock::now();
        {
          std::lock_guard<std::mutex> lock(mu);
          ++sent;
        }
        client.CallAsync(
            BatchRequest(batch), {},
            [&, sent_at, batch](CallResult<proto::Response> r) {
              CallResult<BatchResult> b = ToBatchResult(batch, std::move(r));
              std::lock_guard<std::mutex> lock(mu);
              if (!b.ok() || b.value.adds.size() != kItems) {
                ++other_failures;
                if (first_failure.empty()) first_failure = b.message;
              } else {
                int ok = 0, busy = 0;
                for (const proto::AddItemResult& item : b.value.adds) {
                  if (item.code == Code::kOk) {
                    ++ok;
                  } else if (item.code == Code::kBusy) {
                    ++busy;
                  } else if (first_failure.empty()) {
                    first_failure = item.message;
                  }
                }
                if (ok == kItems) {
                  acks.push_back(
                      {sent_at, SteadyClock::now(), b.value.adds[0].lsn});
                  for (int k = 0; k < kItems; ++k) ++acked_per_key[k];
                } else if (busy == kItems) {
                  ++busy_requests;
                  busy_items += busy;
                  saw_busy = true;
                } else {
                  ++other_failures;  // a mixed or other outcome
                }
              }
              window.Release();
            });
      }
      window.Drain(milliseconds(35'000));
    });
  }
  // 0.5 s normal, 2.5 s with every fsync taking 1 s, 1 s normal.
  const auto t0 = SteadyClock::now();
  std::this_thread::sleep_for(milliseconds(500));
  WriteFile(delay_file, std::to_string(kDelayMs) + "\n");
  std::this_thread::sleep_for(milliseconds(2500));
  WriteFile(delay_file, "");
  std::this_thread::sleep_for(milliseconds(1000));
  stop = true;
  for (std::thread& t : threads) t.join();
  const auto t_end = SteadyClock::now();
  poller.Stop();
  ASSERT_TRUE(server.running());

  const DurabilityCheck durable = CheckAcksDurable(acks, poller);
  std::vector<double> latency_us;
  for (const Ack& a : acks) {
    latency_us.push_back(
        std::chrono::duration<double, std::micro>(a.acked - a.sent).count());
  }
  RunEnd end;
  ASSERT_NO_FATAL_FAILURE(EndRun(server, acked_per_key, key_name, &end));

  std::printf(
      "[ figures ] F3 BUSY: cap %llu B, fsync %lld ms for 2.5 s, %d "
      "connections x %d batches of %d adds in flight; %.1f s\n",
      static_cast<unsigned long long>(kCap), static_cast<long long>(kDelayMs),
      kConnections, kWindow, kItems,
      std::chrono::duration<double>(t_end - t0).count());
  std::printf(
      "[ figures ] F3 BUSY batches sent=%lld acked=%zu busy=%lld (server "
      "rejected_busy %s) other=%lld; acks checked against a later "
      "durable_lsn=%lld, violations=%lld\n",
      static_cast<long long>(sent), acks.size(),
      static_cast<long long>(busy_requests), end.info["rejected_busy"].c_str(),
      static_cast<long long>(other_failures),
      static_cast<long long>(durable.checked),
      static_cast<long long>(durable.violations));
  std::printf(
      "[ figures ] F3 BUSY ack latency ms p50/p99/max %.1f/%.1f/%.1f; "
      "wal_queue_bytes peak %llu; RSS start %lld KiB, peak sampled %lld KiB, "
      "VmHWM %lld KiB\n",
      Percentile(latency_us, 50) / 1e3, Percentile(latency_us, 99) / 1e3,
      Percentile(latency_us, 100) / 1e3,
      static_cast<unsigned long long>(poller.queue_peak()),
      static_cast<long long>(rss_start_kib),
      static_cast<long long>(poller.rss_peak_kib()),
      static_cast<long long>(end.hwm_kib));

  EXPECT_EQ(other_failures, 0) << first_failure;
  EXPECT_GT(busy_requests, 0) << "the queue cap was never reached";
  // Each refused batch is one refused WAL record, counted by the server.
  EXPECT_EQ(std::to_string(busy_requests), end.info["rejected_busy"]);
  EXPECT_GT(acks.size(), 0u);
  EXPECT_GT(durable.checked, 0);
  EXPECT_EQ(durable.violations, 0)
      << "an add was acknowledged before its fsync";
  EXPECT_EQ(end.read_total, end.acked_total)
      << "refused adds applied, or acks lost";
  EXPECT_LE(poller.queue_peak(), kCap);
  EXPECT_LT(end.hwm_kib, 1024 * 1024);
  EXPECT_FALSE(end.timed_out);
}
#endif  // TALLY_FAULT_HOOKS

}  // namespace
}  // namespace tally::crash
