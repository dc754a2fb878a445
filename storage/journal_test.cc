// The journal end to end, over the fault-injecting file system: snapshot
// fallback (RELIABILITY.md C4), deterministic replay (D8), disk full and
// write errors (F1, F2 write), and a failed fdatasync (F2).

#include "storage/journal.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/fault_injection_fs.h"
#include "storage/recovery.h"
#include "storage/snapshot.h"
#include "storage/wal_test_util.h"

namespace tally {
namespace {

using testing_util::kT0;
using testing_util::LoggedRecord;

struct Completion {
  uint64_t lsn = 0;
  Status status;
};

Completion SubmitAndWait(Journal& journal, wal::RecordType type,
                         std::string payload, bool wait_durable = false) {
  std::promise<Completion> done;
  std::future<Completion> f = done.get_future();
  journal.Submit(
      type, std::move(payload), wait_durable,
      [&done](uint64_t lsn, Status s, std::vector<wal::ItemOutcome>&&) {
        done.set_value({lsn, std::move(s)});
      });
  return f.get();
}

class JournalTest : public ::testing::Test {
 protected:
  JournalOptions Options() {
    JournalOptions o;
    o.fs = &fs_;
    o.data_dir = data_dir_;
    o.segment_bytes = 4096;
    o.snapshot_at_stop = false;
    // No sweep records unless a test asks: they are not in `acked_`.
    o.sweep_interval_ms = 3'600'000;
    o.probe_interval_ms = 20;
    o.clock = &clock_;
    return o;
  }

  Result<Recovered> RecoverDir(
      RecoveryMode mode = RecoveryMode::kTolerateTornTail,
      const Clock* clock = nullptr) {
    return Recover(testing_util::MakeRecoveryOptions(&fs_, data_dir_, mode,
                                                     clock ? clock : &clock_));
  }

  std::unique_ptr<Journal> Start(JournalOptions options) {
    Result<Recovered> r = RecoverDir();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return nullptr;
    auto journal = std::make_unique<Journal>(std::move(*r), std::move(options));
    Status s = journal->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    return journal;
  }

  // Submits n random records and remembers each one completed OK.
  void Load(Journal& journal, int n) {
    for (int i = 0; i < n; ++i) {
      auto [type, payload] = gen_.Next(clock_.NowMs());
      Completion c = SubmitAndWait(journal, type, payload);
      ASSERT_TRUE(c.status.ok()) << c.status.ToString();
      acked_.push_back({type, c.lsn, clock_.NowMs(), std::move(payload)});
    }
  }

  // The state of applying acked_ in LSN order (which must be 1..n).
  std::pair<uint64_t, uint64_t> ReferenceDigests() {
    std::vector<LoggedRecord> sorted = acked_;
    std::sort(sorted.begin(), sorted.end(),
              [](const LoggedRecord& a, const LoggedRecord& b) {
                return a.lsn < b.lsn;
              });
    testing_util::ReferenceState ref(&clock_);
    for (size_t i = 0; i < sorted.size(); ++i) {
      EXPECT_EQ(sorted[i].lsn, i + 1) << "LSNs of acknowledged records";
      ref.Apply(sorted[i]);
    }
    return {ref.engine_digest(), ref.dedupe_digest()};
  }

  testing_util::TempDir tmp_;
  testing_util::NoSyncFileSystem base_;
  FaultInjectionFileSystem fs_{&base_};
  ManualClock clock_{kT0};
  std::string data_dir_ = JoinPath(tmp_.path(), "data");
  uint64_t seed_ = testing_util::TestSeed(
      ::testing::UnitTest::GetInstance()->current_test_info()->name());
  testing_util::PayloadGenerator gen_{seed_};
  std::vector<LoggedRecord> acked_;
};

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

// ---- C4: snapshot corruption ---------------------------------------------

class SnapshotFallbackTest : public JournalTest {
 protected:
  // Two snapshots with records before, between and after them.
  void Prepare(uint64_t segment_bytes) {
    JournalOptions o = Options();
    o.segment_bytes = segment_bytes;
    auto journal = Start(o);
    ASSERT_NE(journal, nullptr);
    Load(*journal, 80);
    ASSERT_TRUE(journal->SnapshotNow().ok());
    Load(*journal, 80);
    ASSERT_TRUE(journal->SnapshotNow().ok());
    Load(*journal, 80);
    digest_ = {journal->engine()->Digest(), journal->dedupe()->Digest()};
    journal->Stop();
    journal.reset();
    auto snaps = snapshot::List(&fs_, SnapshotDir(data_dir_));
    ASSERT_TRUE(snaps.ok());
    ASSERT_EQ(snaps->size(), 2u);
    older_ = (*snaps)[0].name;
    newest_ = (*snaps)[1].name;
    EXPECT_EQ((*snaps)[0].lsn, 80u);
    EXPECT_EQ((*snaps)[1].lsn, 160u);
    image_ = testing_util::SaveDir(data_dir_);
  }
  std::string SnapPath(const std::string& name) {
    return JoinPath(SnapshotDir(data_dir_), name);
  }
  void ExpectFallback(const std::string& what) {
    SCOPED_TRACE(what);
    Result<Recovered> r = RecoverDir();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->report.snapshot, older_) << r->report.Summary();
    EXPECT_EQ(r->report.snapshot_lsn, 80u);
    EXPECT_EQ(r->report.records_replayed, 160u);
    EXPECT_EQ(r->report.last_lsn, 240u);
    EXPECT_EQ(std::make_pair(r->engine->Digest(), r->dedupe->Digest()),
              digest_);
  }

  std::pair<uint64_t, uint64_t> digest_;
  std::string older_, newest_;
  testing_util::DirImage image_;
};

TEST_F(SnapshotFallbackTest, IntactNewestSnapshotIsUsed) {
  Prepare(4096);
  Result<Recovered> r = RecoverDir(RecoveryMode::kAbsolute);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->report.snapshot, newest_);
  EXPECT_EQ(r->report.records_replayed, 80u);
  EXPECT_TRUE(r->report.snapshots_rejected.empty());
  EXPECT_EQ(std::make_pair(r->engine->Digest(), r->dedupe->Digest()), digest_);
}

TEST_F(SnapshotFallbackTest, DamagedNewestSnapshotFallsBackToThePrevious) {
  Prepare(4096);
  const std::string newest = testing_util::ReadAll(SnapPath(newest_));
  std::mt19937_64 rng(seed_);
  testing_util::WriteAll(SnapPath(newest_),
                         newest.substr(0, newest.size() / 2));
  ExpectFallback("truncated to half");
  testing_util::RestoreDir(data_dir_, image_);
  testing_util::WriteAll(SnapPath(newest_),
                         newest.substr(0, newest.size() - 1));
  ExpectFallback("last byte cut");
  for (int i = 0; i < 20; ++i) {
    std::string flipped = newest;
    const size_t at =
        i < 4 ? rng() % snapshot::kHeaderSize : rng() % flipped.size();
    flipped[at] ^= static_cast<char>(1 << (rng() % 8));
    testing_util::RestoreDir(data_dir_, image_);
    testing_util::WriteAll(SnapPath(newest_), flipped);
    ExpectFallback("bit flipped at byte " + std::to_string(at) +
                   " TALLY_SEED=" + std::to_string(seed_));
  }
  testing_util::RestoreDir(data_dir_, image_);
  ASSERT_TRUE(fs_.Remove(SnapPath(newest_)).ok());
  ExpectFallback("removed");
}

TEST_F(SnapshotFallbackTest, StrayTemporaryIsIgnoredAndDeleted) {
  Prepare(4096);
  const std::string tmp = SnapPath(snapshot::FileName(999) + ".tmp");
  testing_util::WriteAll(tmp, "half a snapshot");
  Result<Recovered> r = RecoverDir();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->report.temporaries_removed, 1);
  EXPECT_FALSE(fs_.Exists(tmp));
  EXPECT_EQ(r->report.snapshot, newest_);
  EXPECT_EQ(std::make_pair(r->engine->Digest(), r->dedupe->Digest()), digest_);
}

TEST_F(SnapshotFallbackTest, BothSnapshotsDamagedWithTheWalTrimmedRefuses) {
  Prepare(2048);
  // The second snapshot trimmed segments wholly below the first one's LSN.
  auto segs = wal::ListSegments(&fs_, WalDir(data_dir_));
  ASSERT_TRUE(segs.ok());
  ASSERT_GT(segs->front().first_lsn, 1u) << "no segment was trimmed";
  for (const std::string& name : {older_, newest_}) {
    std::string data = testing_util::ReadAll(SnapPath(name));
    data[data.size() / 2] ^= 0x20;
    testing_util::WriteAll(SnapPath(name), data);
  }
  Result<Recovered> r = RecoverDir();
  ASSERT_FALSE(r.ok()) << r->report.Summary();
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("segments are missing"),
            std::string::npos)
      << r.status().ToString();
}

TEST_F(SnapshotFallbackTest, BothSnapshotsDamagedWithTheWholeWalReplaysIt) {
  Prepare(1 << 20);  // one segment: nothing is ever trimmed
  auto segs = wal::ListSegments(&fs_, WalDir(data_dir_));
  ASSERT_TRUE(segs.ok());
  ASSERT_EQ(segs->front().first_lsn, 1u);
  for (const std::string& name : {older_, newest_}) {
    std::string data = testing_util::ReadAll(SnapPath(name));
    testing_util::WriteAll(SnapPath(name), data.substr(0, data.size() - 3));
  }
  Result<Recovered> r = RecoverDir();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->report.snapshot.empty());
  EXPECT_EQ(r->report.snapshots_rejected.size(), 2u);
  EXPECT_EQ(r->report.records_replayed, 240u);
  EXPECT_EQ(std::make_pair(r->engine->Digest(), r->dedupe->Digest()), digest_);
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

// ---- F1/F2: write errors ---------------------------------------------------

class WriteFailureTest : public JournalTest,
                         public ::testing::WithParamInterface<Code> {};

TEST_P(WriteFailureTest, RefusesUntilTheDiskRecoversWithoutARestart) {
  auto journal = Start(Options());
  ASSERT_NE(journal, nullptr);
  Load(*journal, 30);
  const auto before =
      std::make_pair(journal->engine()->Digest(), journal->dedupe()->Digest());
  // The failure hits inside the next record: part of it reaches the file.
  fs_.FailWritesAfter(37, GetParam());
  for (int i = 0; i < 10; ++i) {
    auto [type, payload] = gen_.Next(clock_.NowMs());
    Completion c = SubmitAndWait(*journal, type, payload, i % 2 == 0);
    EXPECT_EQ(c.status.code(), Code::kNotPersisted) << c.status.ToString();
    EXPECT_EQ(c.lsn, 0u);
  }
  // Nothing was applied; reads keep working.
  EXPECT_EQ(
      std::make_pair(journal->engine()->Digest(), journal->dedupe()->Digest()),
      before);
  EXPECT_TRUE(journal->Stats().write_failed);
  EXPECT_GE(journal->Stats().rejected_not_persisted, 10u);
  EXPECT_EQ(journal->written_lsn(), 30u);
  Result<Answer> a = journal->engine()->Query("k1", Window::Last(3'600'000));
  EXPECT_TRUE(a.ok()) << a.status().ToString();

  fs_.ClearWriteFailure();
  // The next group after the probe interval goes through; earlier ones are
  // refused at once. Bounded by count, not by time.
  bool resumed = false;
  for (int i = 0; i < 5000 && !resumed; ++i) {
    auto [type, payload] = gen_.Next(clock_.NowMs());
    Completion c = SubmitAndWait(*journal, type, payload);
    if (c.status.ok()) {
      resumed = true;
      acked_.push_back({type, c.lsn, clock_.NowMs(), std::move(payload)});
    } else {
      EXPECT_EQ(c.status.code(), Code::kNotPersisted);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ASSERT_TRUE(resumed);
  EXPECT_FALSE(journal->Stats().write_failed);
  Load(*journal, 20);
  const auto live =
      std::make_pair(journal->engine()->Digest(), journal->dedupe()->Digest());
  journal->Stop();
  journal.reset();
  // Exactly the acknowledged records, LSNs 1..n without a hole.
  EXPECT_EQ(ReferenceDigests(), live);
  Result<Recovered> r = RecoverDir(RecoveryMode::kAbsolute);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->report.last_lsn, acked_.size());
  EXPECT_EQ(std::make_pair(r->engine->Digest(), r->dedupe->Digest()), live);
}

// ENOSPC when a new segment is created (preallocation), not mid-record.
TEST_P(WriteFailureTest, FailureAtSegmentCreationIsRefusedAndRecovers) {
  JournalOptions o = Options();
  o.segment_bytes = 1024;
  auto journal = Start(o);
  ASSERT_NE(journal, nullptr);
  Load(*journal, 5);
  fs_.FailWritesAfter(0, GetParam());
  int refused = 0;
  for (int i = 0; i < 40; ++i) {  // enough to need a new segment
    auto [type, payload] = gen_.Next(clock_.NowMs());
    Completion c = SubmitAndWait(*journal, type, payload);
    if (c.status.ok()) {
      acked_.push_back({type, c.lsn, clock_.NowMs(), std::move(payload)});
    } else {
      EXPECT_EQ(c.status.code(), Code::kNotPersisted);
      ++refused;
    }
  }
  EXPECT_EQ(refused, 40);
  fs_.ClearWriteFailure();
  bool resumed = false;
  for (int i = 0; i < 5000 && !resumed; ++i) {
    auto [type, payload] = gen_.Next(clock_.NowMs());
    Completion c = SubmitAndWait(*journal, type, payload);
    if (c.status.ok()) {
      resumed = true;
      acked_.push_back({type, c.lsn, clock_.NowMs(), std::move(payload)});
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ASSERT_TRUE(resumed);
  Load(*journal, 40);
  const auto live =
      std::make_pair(journal->engine()->Digest(), journal->dedupe()->Digest());
  journal->Stop();
  journal.reset();
  EXPECT_EQ(ReferenceDigests(), live);
  Result<Recovered> r = RecoverDir(RecoveryMode::kAbsolute);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->report.last_lsn, acked_.size());
  EXPECT_EQ(std::make_pair(r->engine->Digest(), r->dedupe->Digest()), live);
}

// A write that fails part-way leaves part of its record in the segment
// (the writer's attempt to zero it may fail too). Later records must not
// leave those bytes behind them when the segment is closed: a segment that
// is not the last must end cleanly, or the next start refuses.
TEST_P(WriteFailureTest, PartialRecordOfAFailedWriteNeverOutlivesItsSegment) {
  JournalOptions o = Options();
  o.segment_bytes = 4096;
  auto journal = Start(o);
  ASSERT_NE(journal, nullptr);
  Load(*journal, 3);
  auto big_delete = [](int keys, char c) {
    std::vector<std::string> names;
    for (int i = 0; i < keys; ++i) {
      names.push_back(std::string(20, c) + std::to_string(i));
    }
    std::vector<std::string_view> views(names.begin(), names.end());
    std::string payload;
    wal::EncodeDelete(views, &payload);
    return payload;
  };
  // 1,000 bytes of a ~2.3 KB record reach the file, then the disk fails.
  fs_.FailWritesAfter(1000, GetParam());
  Completion c =
      SubmitAndWait(*journal, wal::RecordType::kDelete, big_delete(100, 'x'));
  ASSERT_EQ(c.status.code(), Code::kNotPersisted);
  fs_.ClearWriteFailure();
  bool resumed = false;
  for (int i = 0; i < 5000 && !resumed; ++i) {
    std::string payload = gen_.Delete();
    Completion small =
        SubmitAndWait(*journal, wal::RecordType::kDelete, payload);
    if (small.status.ok()) {
      resumed = true;
      acked_.push_back(
          {wal::RecordType::kDelete, small.lsn, kT0, std::move(payload)});
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ASSERT_TRUE(resumed);
  // A record that does not fit closes the segment.
  std::string payload = big_delete(160, 'y');
  c = SubmitAndWait(*journal, wal::RecordType::kDelete, payload);
  ASSERT_TRUE(c.status.ok()) << c.status.ToString();
  acked_.push_back({wal::RecordType::kDelete, c.lsn, kT0, std::move(payload)});
  Load(*journal, 5);
  EXPECT_GE(journal->Stats().wal_segments, 2u);
  const auto live =
      std::make_pair(journal->engine()->Digest(), journal->dedupe()->Digest());
  journal->Stop();
  journal.reset();
  Result<Recovered> r = RecoverDir();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->report.end, wal::LogEnd::kClean) << r->report.Summary();
  EXPECT_EQ(r->report.last_lsn, acked_.size());
  EXPECT_EQ(std::make_pair(r->engine->Digest(), r->dedupe->Digest()), live);
}

INSTANTIATE_TEST_SUITE_P(EnospcAndEio, WriteFailureTest,
                         ::testing::Values(Code::kNotPersisted, Code::kIoError),
                         [](const auto& p) {
                           return p.param == Code::kNotPersisted
                                      ? std::string("Enospc")
                                      : std::string("Eio");
                         });

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
