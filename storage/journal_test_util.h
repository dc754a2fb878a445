// The JournalTest fixture shared by the journal's tests (journal_test.cc:
// acknowledged records, deterministic replay (D8) and failed or lagging
// fdatasyncs (F2, F3); journal_snapshot_test.cc: snapshot fallback (C4);
// journal_write_error_test.cc: disk full and write errors (F1, F2 write)):
// a Journal over the fault-injecting file system on a ManualClock at kT0,
// small segments, and the records it acknowledged. Header-only; tests only.

#ifndef TALLY_STORAGE_JOURNAL_TEST_UTIL_H_
#define TALLY_STORAGE_JOURNAL_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "storage/fault_injection_fs.h"
#include "storage/journal.h"
#include "storage/recovery.h"
#include "storage/wal_test_util.h"

namespace tally::journal_testing {

using testing_util::kT0;
using testing_util::LoggedRecord;

struct Completion {
  uint64_t lsn = 0;
  Status status;
};

inline Completion SubmitAndWait(Journal& journal, wal::RecordType type,
                                std::string payload,
                                bool wait_durable = false) {
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

}  // namespace tally::journal_testing

#endif  // TALLY_STORAGE_JOURNAL_TEST_UTIL_H_
