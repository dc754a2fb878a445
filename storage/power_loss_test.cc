// D3: simulated power loss (RELIABILITY.md 3.1). A journal over the
// fault-injecting file system takes a seeded random workload from 1-4
// threads; at a random point the power goes (every file back to its synced
// content, unsynced directory entries undone, optionally a torn tail of
// zeros or garbage); recovery must then start, and:
//   - fsync mode: every acknowledged record is recovered (0 lost);
//   - every mode: a wait_durable acknowledgement is never lost;
//   - every mode: the state is exactly records 1..last_lsn applied in order
//     (a prefix: no hole, no phantom), compared by digest with a reference
//     built from the payloads that were submitted.
// Each iteration runs one or two crash/recover cycles, the second from the
// recovered state (so LSNs lost to a torn tail are reused).
//
// How the crash is taken: the journal keeps running while the power goes.
// An acknowledgement counts only if it completed before the crash started
// (a flag set before SimulatePowerLoss). After the crash every file handle
// the journal holds fails, so it writes nothing more; a failed fdatasync
// then calls on_sync_failure, which here returns instead of aborting: that
// journal is dead, only torn down (Stop() without its final snapshot), and
// anything it completes after the crash is ignored.
//
// Iterations: TALLY_D3_ITERATIONS (total over the three modes; default
// 2,000, half in fsync mode). The `slow` variant (power_loss_slow_test)
// runs only when TALLY_D3_ITERATIONS is set, e.g. 50000 for nightly.
// TALLY_SEED replays a run; a failure prints its iteration's seed.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/fault_injection_fs.h"
#include "storage/journal.h"
#include "storage/recovery.h"
#include "storage/wal_test_util.h"

namespace tally {
namespace {

using testing_util::kT0;
using testing_util::LoggedRecord;
using Mode = FaultInjectionFileSystem::Mode;

int TotalIterations() {
  if (const char* env = getenv("TALLY_D3_ITERATIONS"); env && *env) {
    return std::max(3, std::atoi(env));
  }
  return 2000;
}

struct Figures {
  int iterations = 0;
  int crashes = 0;
  uint64_t acked = 0;
  uint64_t lost_acks = 0;
  uint64_t torn_tails = 0;
  uint64_t truncated_bytes = 0;
  uint64_t records_recovered = 0;
  uint64_t snapshots_loaded = 0;
};

// One submitted operation and how it completed.
struct Op {
  wal::RecordType type;
  std::string payload;
  bool wait_durable = false;
  int64_t time_ms = 0;
  uint64_t lsn = 0;
  bool ok = false;
  bool before_crash = false;  // completed before the crash started
};

class PowerLossTest : public ::testing::TestWithParam<DurabilityMode> {
 protected:
  void SetUp() override {
#ifdef TALLY_D3_SLOW
    if (getenv("TALLY_D3_ITERATIONS") == nullptr) {
      GTEST_SKIP() << "the slow variant runs only with TALLY_D3_ITERATIONS set";
    }
#endif
  }

  // Runs one iteration with `seed`; failures name the seed.
  void RunIteration(uint64_t seed, Figures* figures);

  testing_util::TempDir tmp_;
};

void PowerLossTest::RunIteration(uint64_t seed, Figures* figures) {
  SCOPED_TRACE("iteration seed " + std::to_string(seed) +
               " (replay: TALLY_SEED=" + std::to_string(seed) + ")");
  std::mt19937_64 rng(seed);
  const std::string data_dir = JoinPath(tmp_.path(), "data");
  std::error_code ec;
  std::filesystem::remove_all(data_dir, ec);
  testing_util::NoSyncFileSystem base;
  FaultInjectionFileSystem fs(&base);

  Durability durability;
  durability.mode = GetParam();
  durability.interval_ms = 1 + static_cast<int64_t>(rng() % 10);
  const uint64_t segment_bytes =
      std::vector<uint64_t>{1024, 4096, 64 << 10}[rng() % 3];

  // Every record known to have been written, by LSN (what a reference may
  // apply); entries above a recovered last_lsn are dropped (lost).
  std::map<uint64_t, LoggedRecord> log;
  uint64_t last_recovered = 0;
  ManualClock clock(kT0);

  Result<Recovered> recovered = Recover(testing_util::MakeRecoveryOptions(
      &fs, data_dir, RecoveryMode::kTolerateTornTail, &clock));
  ASSERT_TRUE(recovered.ok()) << recovered.status().ToString();

  const int cycles = 1 + static_cast<int>(rng() % 2);
  for (int cycle = 0; cycle < cycles; ++cycle) {
    clock.Set(kT0 + 1000 * (cycle + 1));
    JournalOptions options;
    options.durability = durability;
    options.fs = &fs;
    options.data_dir = data_dir;
    options.segment_bytes = segment_bytes;
    options.snapshot_at_stop = false;
    options.sweep_interval_ms = 3'600'000;  // no sweep records
    options.clock = &clock;
    std::atomic<int> sync_failures{0};
    options.on_sync_failure = [&](const Status&) { ++sync_failures; };
    auto journal =
        std::make_unique<Journal>(std::move(*recovered), std::move(options));
    ASSERT_TRUE(journal->Start().ok());

    const int threads = 1 + static_cast<int>(rng() % 4);
    std::vector<int> quota(threads);
    int total = 0;
    for (int& q : quota) total += q = 5 + static_cast<int>(rng() % 36);
    const int crash_after = static_cast<int>(rng() % (total + 1));
    const bool snapshot = rng() % 3 == 0;
    const uint64_t crash_seed = rng();
    const Mode crash_mode = static_cast<Mode>(rng() % 3);

    std::atomic<bool> crashed{false};
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::condition_variable cv;
    int completed = 0;
    std::vector<std::deque<Op>> ops(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      const uint64_t thread_seed = rng();
      workers.emplace_back([&, t, thread_seed] {
        testing_util::PayloadGenerator gen(thread_seed);
        for (int i = 0; i < quota[t] && !stop.load(); ++i) {
          auto [type, payload] = gen.Next(clock.NowMs());
          Op& op = ops[t].emplace_back();
          op.type = type;
          op.payload = payload;
          op.wait_durable = gen.rng()() % 5 == 0;
          op.time_ms = clock.NowMs();
          std::mutex done_mu;
          std::condition_variable done_cv;
          bool done = false;
          journal->Submit(
              type, std::move(payload), op.wait_durable,
              [&](uint64_t lsn, Status s, std::vector<wal::ItemOutcome>&&) {
                // Read the flag first: an OK seen before it was
                // set completed before the crash.
                op.before_crash = !crashed.load();
                op.lsn = lsn;
                op.ok = s.ok();
                std::lock_guard<std::mutex> lock(done_mu);
                done = true;
                done_cv.notify_one();
              });
          {
            std::unique_lock<std::mutex> lock(done_mu);
            done_cv.wait(lock, [&] { return done; });
          }
          std::lock_guard<std::mutex> lock(mu);
          ++completed;
          cv.notify_all();
        }
        std::lock_guard<std::mutex> lock(mu);
        ++completed;  // one more per thread: "finished"
        cv.notify_all();
      });
    }
    auto wait_for = [&](int n) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return completed >= n; });
    };
    if (snapshot) {
      wait_for(crash_after / 2);
      ASSERT_TRUE(journal->SnapshotNow().ok());
    }
    wait_for(std::min(crash_after, total));
    crashed = true;
    ASSERT_TRUE(fs.SimulatePowerLoss(crash_seed, crash_mode).ok());
    stop = true;
    for (auto& w : workers) w.join();
    journal->Stop();
    journal.reset();
    ++figures->crashes;

    // What was written (applied in the journal), by LSN.
    std::vector<const Op*> acked;
    for (const auto& per_thread : ops) {
      for (const Op& op : per_thread) {
        if (op.lsn == 0) continue;
        ASSERT_TRUE(op.ok);
        ASSERT_FALSE(log.contains(op.lsn)) << "LSN " << op.lsn << " twice";
        log[op.lsn] = {op.type, op.lsn, op.time_ms, op.payload};
        if (op.before_crash) acked.push_back(&op);
      }
    }

    recovered = Recover(testing_util::MakeRecoveryOptions(
        &fs, data_dir, RecoveryMode::kTolerateTornTail, &clock));
    ASSERT_TRUE(recovered.ok())
        << "recovery after power loss (mode " << static_cast<int>(crash_mode)
        << "): " << recovered.status().ToString();
    const RecoveryReport& rep = recovered->report;
    const uint64_t last = rep.last_lsn;
    ASSERT_GE(last, last_recovered) << "recovered less than last time";
    if (rep.end == wal::LogEnd::kTornTail) {
      ++figures->torn_tails;
      figures->truncated_bytes += rep.truncated_bytes;
    }
    figures->snapshots_loaded += rep.snapshot.empty() ? 0 : 1;
    figures->records_recovered += last;

    for (const Op* op : acked) {
      ++figures->acked;
      if (op->lsn > last) ++figures->lost_acks;
      if (GetParam() == DurabilityMode::kFsync || op->wait_durable) {
        ASSERT_LE(op->lsn, last) << "acknowledged record lost"
                                 << (op->wait_durable ? " (wait_durable)" : "")
                                 << "; " << rep.Summary();
      }
    }
    // A prefix: records 1..last, each one submitted, applied in order.
    testing_util::ReferenceState reference(&clock);
    for (uint64_t lsn = 1; lsn <= last; ++lsn) {
      auto it = log.find(lsn);
      ASSERT_NE(it, log.end())
          << "recovered LSN " << lsn << " was never written (phantom); "
          << rep.Summary();
      reference.Apply(it->second);
    }
    ASSERT_EQ(recovered->engine->Digest(), reference.engine_digest())
        << rep.Summary();
    ASSERT_EQ(recovered->dedupe->Digest(), reference.dedupe_digest())
        << rep.Summary();
    log.erase(log.upper_bound(last), log.end());
    last_recovered = last;
  }
}

TEST_P(PowerLossTest, RecoversAPrefixAndKeepsWhatWasPromised) {
  const uint64_t run_seed = testing_util::TestSeed(
      std::string("PowerLossTest/") +
      (GetParam() == DurabilityMode::kFsync      ? "fsync"
       : GetParam() == DurabilityMode::kInterval ? "interval"
                                                 : "os"));
  const int total = TotalIterations();
  const int iterations =
      GetParam() == DurabilityMode::kFsync ? total / 2 : total / 4;
  Figures figures;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) {
    // With TALLY_SEED set to a failing iteration's seed, iteration 0 is it.
    RunIteration(run_seed + static_cast<uint64_t>(i), &figures);
    ++figures.iterations;
    if (HasFatalFailure()) break;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  std::cout << "[ figures  ] mode="
            << Durability{.mode = GetParam(), .interval_ms = 1}.ToString()
            << " iterations=" << figures.iterations
            << " crashes=" << figures.crashes << " acked=" << figures.acked
            << " lost_acks=" << figures.lost_acks
            << " torn_tails=" << figures.torn_tails
            << " truncated_bytes=" << figures.truncated_bytes
            << " records_recovered=" << figures.records_recovered
            << " snapshots_loaded=" << figures.snapshots_loaded
            << " seconds=" << seconds << "\n";
  if (GetParam() == DurabilityMode::kFsync) {
    EXPECT_EQ(figures.lost_acks, 0u);
  }
}

// The slow variant's tests get other names (ctest names must be unique).
#ifdef TALLY_D3_SLOW
#define TALLY_D3_PREFIX SlowModes
#else
#define TALLY_D3_PREFIX Modes
#endif
// One more macro level, so that TALLY_D3_PREFIX is expanded.
#define TALLY_D3_INSTANTIATE(prefix, ...) \
  INSTANTIATE_TEST_SUITE_P(prefix, __VA_ARGS__)
TALLY_D3_INSTANTIATE(TALLY_D3_PREFIX, PowerLossTest,
                     ::testing::Values(DurabilityMode::kFsync,
                                       DurabilityMode::kInterval,
                                       DurabilityMode::kOs),
                     [](const auto& p) {
                       switch (p.param) {
                         case DurabilityMode::kFsync:
                           return std::string("Fsync");
                         case DurabilityMode::kInterval:
                           return std::string("Interval");
                         case DurabilityMode::kOs:
                           return std::string("Os");
                       }
                       return std::string("Unknown");
                     });

}  // namespace
}  // namespace tally
