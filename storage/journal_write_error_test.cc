// The journal under disk full and write errors (RELIABILITY.md F1, F2
// write), over the fault-injecting file system, each for ENOSPC and EIO:
// writes are refused until the disk recovers, without a restart; a failure
// when a segment is created; and a record cut short by a failed write never
// outlives its segment. The fixture: journal_test_util.h.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/fault_injection_fs.h"
#include "storage/journal.h"
#include "storage/journal_test_util.h"
#include "storage/recovery.h"
#include "storage/wal_test_util.h"

// In the fixture's namespace: JournalTest, Completion, SubmitAndWait, kT0.
namespace tally::journal_testing {
namespace {

// ---- F1/F2: write errors ---------------------------------------------------

class WriteFailureTest : public JournalTest,
                         public ::testing::WithParamInterface<Code> {
 protected:
  // After the failure is cleared: submits records until one is acknowledged
  // (the next group after the probe interval goes through; earlier ones are
  // refused at once, with check_refusals each as kNotPersisted). Bounded by
  // count, not by time. False if none was.
  bool ResumeWrites(Journal& journal, bool check_refusals) {
    for (int i = 0; i < 5000; ++i) {
      auto [type, payload] = gen_.Next(clock_.NowMs());
      Completion c = SubmitAndWait(journal, type, payload);
      if (c.status.ok()) {
        acked_.push_back({type, c.lsn, clock_.NowMs(), std::move(payload)});
        return true;
      }
      if (check_refusals) {
        EXPECT_EQ(c.status.code(), Code::kNotPersisted);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  }

  // Stops the journal: exactly the acknowledged records, LSNs 1..n without
  // a hole, are recovered, with the state it had.
  void StopAndExpectAckedRecovered(std::unique_ptr<Journal> journal) {
    const auto live = std::make_pair(journal->engine()->Digest(),
                                     journal->dedupe()->Digest());
    journal->Stop();
    journal.reset();
    EXPECT_EQ(ReferenceDigests(), live);
    Result<Recovered> r = RecoverDir(RecoveryMode::kAbsolute);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->report.last_lsn, acked_.size());
    EXPECT_EQ(std::make_pair(r->engine->Digest(), r->dedupe->Digest()), live);
  }
};

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
  ASSERT_TRUE(ResumeWrites(*journal, /*check_refusals=*/true));
  EXPECT_FALSE(journal->Stats().write_failed);
  Load(*journal, 20);
  StopAndExpectAckedRecovered(std::move(journal));
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
  ASSERT_TRUE(ResumeWrites(*journal, /*check_refusals=*/false));
  Load(*journal, 40);
  StopAndExpectAckedRecovered(std::move(journal));
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

}  // namespace
}  // namespace tally::journal_testing
