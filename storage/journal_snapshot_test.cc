// The journal's snapshot fallback (RELIABILITY.md C4), over the
// fault-injecting file system: two snapshots with records before, between
// and after them; a damaged, truncated or removed newest snapshot falls back
// to the previous one, a stray temporary is deleted, and with both damaged
// the whole WAL replays or, trimmed, recovery refuses. The fixture:
// journal_test_util.h.

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "storage/journal.h"
#include "storage/journal_test_util.h"
#include "storage/recovery.h"
#include "storage/snapshot.h"
#include "storage/wal_test_util.h"

namespace tally {
namespace {

using journal_testing::JournalTest;
using testing_util::kT0;
using testing_util::LoggedRecord;

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

}  // namespace
}  // namespace tally
