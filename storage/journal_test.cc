// The journal end to end, over the fault-injecting file system: acknowledged
// records recovered with the same state, deterministic replay (RELIABILITY.md
// D8), a failed fdatasync (F2) and interval mode's acks pausing while an
// fdatasync lags (F3). Snapshot fallback (C4): journal_snapshot_test.cc; disk
// full and write errors (F1, F2 write): journal_write_error_test.cc; the
// fixture: journal_test_util.h.

#include "storage/journal.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/fault_injection_fs.h"
#include "storage/journal_test_util.h"
#include "storage/recovery.h"
#include "storage/snapshot.h"
#include "storage/wal_test_util.h"

namespace tally {
namespace {

using journal_testing::Completion;
using journal_testing::JournalTest;
using journal_testing::SubmitAndWait;
using testing_util::kT0;
using testing_util::LoggedRecord;

TEST_F(JournalTest, AcknowledgedRecordsAreRecoveredWithTheSameState) {
  auto journal = Start(Options());
  ASSERT_NE(journal, nullptr);
  Load(*journal, 200);
  const uint64_t live = journal->engine()->Digest();
  const uint64_t live_dedupe = journal->dedupe()->Digest();
  EXPECT_EQ(journal->durable_lsn(), 200u);
  journal->Stop();
  journal.reset();
  EXPECT_EQ(ReferenceDigests(), std::make_pair(live, live_dedupe));
  Result<Recovered> r = RecoverDir(RecoveryMode::kAbsolute);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->report.last_lsn, 200u);
  EXPECT_EQ(r->engine->Digest(), live);
  EXPECT_EQ(r->dedupe->Digest(), live_dedupe);
}

// ---- D8: deterministic replay ----------------------------------------------

TEST_F(JournalTest, ReplayIsDeterministicAndNeverReadsTheClock) {
  JournalOptions o = Options();
  o.sweep_interval_ms = 1;  // sweep records in the WAL too
  o.sweep_shards_per_record = 2;
  auto journal = Start(o);
  ASSERT_NE(journal, nullptr);
  // Hours pass between phases, so sweeps expire buckets and keys.
  for (int phase = 0; phase < 4; ++phase) {
    Load(*journal, 60);
    if (phase == 1) {
      ASSERT_TRUE(journal->SnapshotNow().ok());
    }
    clock_.Advance(3 * 3'600'000);
    // Let at least one sweep record judge at the new time.
    const uint64_t before = journal->written_lsn();
    for (int i = 0; i < 10000 && journal->written_lsn() < before + 8; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  Load(*journal, 20);
  const auto live =
      std::make_pair(journal->engine()->Digest(), journal->dedupe()->Digest());
  const uint64_t last = journal->written_lsn();
  journal->Stop();
  journal.reset();
  EXPECT_GT(last, acked_.size()) << "no sweep record was written";

  const testing_util::DirImage image = testing_util::SaveDir(data_dir_);
  std::vector<std::pair<uint64_t, uint64_t>> digests;
  ManualClock far_future(kT0 + 10LL * 365 * 24 * 3'600'000);
  ManualClock far_past(kT0 - 5LL * 365 * 24 * 3'600'000);
  for (const Clock* clock :
       {static_cast<const Clock*>(&clock_), static_cast<const Clock*>(&clock_),
        static_cast<const Clock*>(&far_future),
        static_cast<const Clock*>(&far_past)}) {
    testing_util::RestoreDir(data_dir_, image);
    Result<Recovered> r = RecoverDir(RecoveryMode::kAbsolute, clock);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->report.last_lsn, last);
    EXPECT_FALSE(r->report.snapshot.empty());
    digests.emplace_back(r->engine->Digest(), r->dedupe->Digest());
  }
  for (const auto& d : digests) EXPECT_EQ(d, live);
  // A full WAL replay (snapshot removed) gives the same state too.
  testing_util::RestoreDir(data_dir_, image);
  std::filesystem::remove_all(SnapshotDir(data_dir_));
  auto segs = wal::ListSegments(&fs_, WalDir(data_dir_));
  ASSERT_TRUE(segs.ok());
  if (!segs->empty() && segs->front().first_lsn == 1) {
    Result<Recovered> r = RecoverDir(RecoveryMode::kAbsolute, &far_future);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->report.snapshot.empty());
    EXPECT_EQ(std::make_pair(r->engine->Digest(), r->dedupe->Digest()), live);
  }
}

// ---- F2: a failed fdatasync ------------------------------------------------

// The default handler fail-stops with a clear message.
TEST_F(JournalTest, FailedSyncAbortsByDefault) {
  // The "fast" style forks this single-threaded process, so the child
  // writes into this fixture's directory and the parent removes it after.
  GTEST_FLAG_SET(death_test_style, "fast");
  EXPECT_DEATH(
      {
        JournalOptions o = Options();
        o.on_sync_failure = nullptr;  // the default: print and abort
        auto journal = Start(o);
        fs_.FailNextSyncs(1);
        Completion c = SubmitAndWait(*journal, wal::RecordType::kAddBatch,
                                     gen_.AddBatch(kT0));
        std::fprintf(stderr, "completed: %s\n", c.status.ToString().c_str());
      },
      "FATAL: fdatasync of the WAL failed");
}

// The handler runs before any waiter of the group completes; the journal
// fail-stops there. What is on disk afterwards (the unsynced group may be
// lost) recovers with every acknowledged record.
TEST_F(JournalTest, FailedSyncCompletesNoWaiterOfItsGroup) {
  std::mutex mu;
  std::condition_variable cv;
  bool failed = false, released = false;
  std::atomic<bool> dead{false};
  std::atomic<int> acked_after_failure{0};
  JournalOptions o = Options();
  o.on_sync_failure = [&](const Status& s) {
    EXPECT_EQ(s.code(), Code::kIoError);
    std::unique_lock<std::mutex> lock(mu);
    failed = true;
    cv.notify_all();
    // A real handler never returns; this one waits until the test has
    // "crashed" the machine, then the journal is only torn down.
    cv.wait(lock, [&] { return released; });
  };
  auto journal = Start(o);
  ASSERT_NE(journal, nullptr);
  Load(*journal, 25);
  fs_.FailNextSyncs(1);
  // Several submitters, so the failing group may hold more than one.
  std::vector<std::thread> threads;
  std::mutex acked_mu;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      testing_util::PayloadGenerator gen(seed_ + 100 + t);
      for (int i = 0; i < 5; ++i) {
        std::string payload = gen.AddBatch(kT0);
        std::promise<void> done;
        journal->Submit(wal::RecordType::kAddBatch, payload, false,
                        [&, payload](uint64_t lsn, Status s,
                                     std::vector<wal::ItemOutcome>&&) {
                          if (s.ok() && !dead.load()) {
                            std::lock_guard<std::mutex> lock(acked_mu);
                            acked_.push_back({wal::RecordType::kAddBatch, lsn,
                                              kT0, payload});
                          } else if (s.ok()) {
                            acked_after_failure.fetch_add(1);
                          }
                          done.set_value();
                        });
        done.get_future().wait();
        if (dead.load()) return;
      }
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return failed; });
  }
  // The writer is stuck in the handler: no waiter of the failed group has
  // completed. Power goes now.
  const size_t acked_before_crash = [&] {
    std::lock_guard<std::mutex> lock(acked_mu);
    return acked_.size();
  }();
  dead = true;
  ASSERT_TRUE(fs_.SimulatePowerLoss(
                     seed_, FaultInjectionFileSystem::Mode::kDropUnsynced)
                  .ok());
  {
    std::lock_guard<std::mutex> lock(mu);
    released = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  journal->Stop();
  journal.reset();
  {
    std::lock_guard<std::mutex> lock(acked_mu);
    ASSERT_EQ(acked_.size(), acked_before_crash);
  }
  Result<Recovered> r = RecoverDir();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Every acknowledged record survived; the failed group's did not count.
  uint64_t max_acked = 0;
  for (const LoggedRecord& rec : acked_)
    max_acked = std::max(max_acked, rec.lsn);
  EXPECT_GE(r->report.last_lsn, max_acked);
  EXPECT_EQ(r->report.last_lsn, acked_.size()) << r->report.Summary();
  EXPECT_EQ(std::make_pair(r->engine->Digest(), r->dedupe->Digest()),
            ReferenceDigests());
}

// interval:N (RELIABILITY.md 1, F3): an fdatasync that lags far beyond 2N
// pauses the acks instead of widening the un-synced window. The writer
// thread runs each periodic fdatasync itself and completes callers only
// between syncs, so (1) no completion runs while a sync is in flight, and
// (2) once a sync has started, every record acknowledged before it is
// durable by the next completion: the acknowledged-but-unsynced records are
// at most those of one interval. Checked structurally (counters, LSNs), not
// by timing: the injected delay is 15 N.
TEST_F(JournalTest, IntervalModeAcksPauseWhileAnFsyncLags) {
  JournalOptions o = Options();
  o.durability = {DurabilityMode::kInterval, 20};
  o.segment_bytes = 1u << 20;  // no segment switch (its syncs) in the way
  auto journal = Start(o);
  ASSERT_NE(journal, nullptr);
  Load(*journal, 5);
  const uint64_t base_syncs = fs_.counters().syncs;
  fs_.SetSyncDelay(std::chrono::milliseconds(300));

  struct AckSeen {
    uint64_t lsn, syncs_done, durable_lsn;
  };
  std::mutex mu;
  std::vector<AckSeen> seen;
  std::atomic<int> acked_during_sync{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      testing_util::PayloadGenerator gen(seed_ + 200 + t);
      while (fs_.counters().syncs < base_syncs + 4) {
        std::promise<void> done;
        journal->Submit(
            wal::RecordType::kAddBatch, gen.AddBatch(kT0), false,
            [&](uint64_t lsn, Status s, std::vector<wal::ItemOutcome>&&) {
              const FaultInjectionFileSystem::Counters c = fs_.counters();
              if (!s.ok()) {
                ++failed;
              } else {
                if (c.sync_calls != c.syncs + c.failed_syncs) {
                  ++acked_during_sync;
                }
                std::lock_guard<std::mutex> lock(mu);
                seen.push_back({lsn, c.syncs, journal->durable_lsn()});
              }
              done.set_value();
            });
        done.get_future().wait();
      }
    });
  }
  for (auto& t : threads) t.join();
  fs_.SetSyncDelay(std::chrono::microseconds(0));

  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(acked_during_sync.load(), 0)
      << "an add completed while an fdatasync was in flight";
  // Acks resumed between the slow syncs (backpressure, not a stall).
  uint64_t min_syncs = UINT64_MAX, max_syncs = 0;
  for (const AckSeen& a : seen) {
    min_syncs = std::min(min_syncs, a.syncs_done);
    max_syncs = std::max(max_syncs, a.syncs_done);
  }
  ASSERT_FALSE(seen.empty());
  EXPECT_GE(max_syncs - min_syncs, 2u);
  // Everything acknowledged before a sync began is durable by the time any
  // later completion runs.
  std::map<uint64_t, uint64_t> max_lsn_by_syncs;
  for (const AckSeen& a : seen) {
    uint64_t& m = max_lsn_by_syncs[a.syncs_done];
    m = std::max(m, a.lsn);
  }
  int64_t window_violations = 0;
  for (const AckSeen& a : seen) {
    for (const auto& [syncs, max_lsn] : max_lsn_by_syncs) {
      if (syncs >= a.syncs_done) break;
      if (max_lsn > a.durable_lsn) ++window_violations;
    }
  }
  EXPECT_EQ(window_violations, 0)
      << "a record acknowledged before an earlier sync was still not durable";
  journal->Stop();
  EXPECT_EQ(journal->durable_lsn(), journal->written_lsn());
}

}  // namespace
}  // namespace tally
