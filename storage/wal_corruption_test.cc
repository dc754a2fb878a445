// The table of WAL corruption cases (RELIABILITY.md C3, after Prometheus
// TestWALRepair_ReadingError and LevelDB's log_test): each case has its
// expected end of log and its exact surviving record count in every recovery
// mode. Round trips of intact logs are in wal_test.cc.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "storage/recovery.h"
#include "storage/wal_format.h"
#include "storage/wal_reader.h"
#include "storage/wal_record.h"
#include "storage/wal_test_util.h"
#include "storage/wal_writer.h"

namespace tally {
namespace {

using testing_util::DirImage;
using testing_util::LoggedRecord;
using testing_util::RecordPlace;
using wal::LogEnd;

constexpr int kRecords = 40;
constexpr uint64_t kSegmentBytes = 1024;

// What a case must give. -1: the mode refuses (CORRUPTION).
struct Expect {
  LogEnd end = LogEnd::kClean;
  int delivered = kRecords;  // records ReadWal delivers
  int tolerate = kRecords;   // records recovered per mode
  int point_in_time = kRecords;
  int absolute = kRecords;
};

class WalCorruptionTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = testing_util::TestSeed("WalCorruptionTableTest");
    testing_util::PayloadGenerator gen(seed_);
    records_ = gen.Records(kRecords);
    testing_util::WriteWal(&fs_, data_dir_, records_, kSegmentBytes);
    layout_ = testing_util::ScanLayout(&fs_, data_dir_);
    ASSERT_EQ(layout_.size(), records_.size());
    names_ = testing_util::SegmentNames(&fs_, data_dir_);
    ASSERT_GE(names_.size(), 3u) << "records too small for the table";
    image_ = testing_util::SaveDir(data_dir_);
    testing_util::ReferenceState ref(&clock_);
    digests_.push_back({ref.engine_digest(), ref.dedupe_digest()});
    for (const LoggedRecord& r : records_) {
      ref.Apply(r);
      digests_.push_back({ref.engine_digest(), ref.dedupe_digest()});
    }
  }

  std::string SegPath(size_t k) const {
    return JoinPath(WalDir(data_dir_), names_[k]);
  }
  // Index of the first record of segment k.
  int FirstOf(size_t k) const {
    for (size_t i = 0; i < layout_.size(); ++i) {
      if (layout_[i].segment_index == k) return static_cast<int>(i);
    }
    return -1;
  }
  // A record in the middle of the log, not the first of its segment.
  int Middle() const {
    int m = kRecords / 2;
    while (layout_[m].offset == wal::kSegmentHeaderSize) ++m;
    return m;
  }
  void Patch(const RecordPlace& p, uint64_t at, const std::string& bytes) {
    const std::string path = JoinPath(WalDir(data_dir_), p.segment);
    std::string data = testing_util::ReadAll(path);
    // May write past the preallocated end: the segment just grows.
    if (data.size() < p.offset + at + bytes.size()) {
      data.resize(p.offset + at + bytes.size(), '\0');
    }
    data.replace(p.offset + at, bytes.size(), bytes);
    testing_util::WriteAll(path, data);
  }
  static std::string U32(uint32_t v) {
    return std::string(reinterpret_cast<const char*>(&v), 4);
  }
  // Rewrites the WAL from `records` (for cases that change LSNs/payloads).
  void Rewrite(const std::vector<LoggedRecord>& records) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
    testing_util::WriteWal(&fs_, data_dir_, records, kSegmentBytes);
  }

  // `discarded_records`: point-in-time's count (-1: not checked); `reason`:
  // a substring of the reader's reason.
  void Run(const std::string& name, const std::function<void()>& mutate,
           const Expect& expect, int discarded_records = -1,
           const std::string& reason = "") {
    SCOPED_TRACE("case " + name + " (TALLY_SEED=" + std::to_string(seed_) +
                 ")");
    testing_util::RestoreDir(data_dir_, image_);
    mutate();
    const testing_util::DirImage mutated = testing_util::SaveDir(data_dir_);
    wal::ReadReport report;
    std::vector<LoggedRecord> got =
        testing_util::ReadRecords(&fs_, data_dir_, &report);
    EXPECT_EQ(report.end, expect.end) << report.reason;
    EXPECT_EQ(got.size(), static_cast<size_t>(expect.delivered));
    if (expect.delivered <= kRecords) {
      EXPECT_TRUE(testing_util::IsPrefixOf(got, records_));
    }
    if (!reason.empty()) {
      EXPECT_NE(report.reason.find(reason), std::string::npos) << report.reason;
    }
    struct ModeCase {
      RecoveryMode mode;
      int want;
    };
    for (ModeCase mc :
         {ModeCase{RecoveryMode::kTolerateTornTail, expect.tolerate},
          ModeCase{RecoveryMode::kPointInTime, expect.point_in_time},
          ModeCase{RecoveryMode::kAbsolute, expect.absolute}}) {
      SCOPED_TRACE(RecoveryModeName(mc.mode));
      testing_util::RestoreDir(data_dir_, mutated);
      Result<Recovered> r = Recover(
          testing_util::MakeRecoveryOptions(&fs_, data_dir_, mc.mode, &clock_));
      if (mc.want < 0) {
        ASSERT_FALSE(r.ok()) << "recovered " << r->report.Summary();
        EXPECT_EQ(r.status().code(), Code::kCorruption)
            << r.status().ToString();
        const std::string msg(r.status().message());
        EXPECT_NE(msg.find("offset"), std::string::npos) << msg;
        EXPECT_NE(msg.find("tally-wal"), std::string::npos) << msg;
        // Nothing on disk was changed by the refusal.
        testing_util::DirImage after = testing_util::SaveDir(data_dir_);
        std::sort(after.begin(), after.end());
        testing_util::DirImage before = mutated;
        std::sort(before.begin(), before.end());
        EXPECT_TRUE(after == before) << "a refused recovery changed files";
        continue;
      }
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      const RecoveryReport& rep = r->report;
      EXPECT_EQ(rep.records_replayed, static_cast<uint64_t>(mc.want))
          << rep.Summary();
      EXPECT_EQ(rep.last_lsn, static_cast<uint64_t>(mc.want));
      EXPECT_EQ(r->next_lsn, static_cast<uint64_t>(mc.want) + 1);
      EXPECT_EQ(r->engine->Digest(), digests_[mc.want].first);
      EXPECT_EQ(r->dedupe->Digest(), digests_[mc.want].second);
      if (mc.mode == RecoveryMode::kPointInTime &&
          report.end == LogEnd::kCorrupt) {
        EXPECT_FALSE(rep.moved_aside_to.empty()) << rep.Summary();
        EXPECT_TRUE(std::filesystem::is_directory(rep.moved_aside_to));
        if (discarded_records >= 0) {
          EXPECT_EQ(rep.discarded_records,
                    static_cast<uint64_t>(discarded_records));
        }
        EXPECT_GT(rep.discarded_bytes, 0u);
      }
      // What recovery left behind is a clean log with the same records:
      // even absolute mode accepts it now.
      Result<Recovered> again = Recover(testing_util::MakeRecoveryOptions(
          &fs_, data_dir_, RecoveryMode::kAbsolute, &clock_));
      ASSERT_TRUE(again.ok()) << again.status().ToString();
      EXPECT_EQ(again->report.last_lsn, static_cast<uint64_t>(mc.want));
      EXPECT_EQ(again->engine->Digest(), digests_[mc.want].first);
    }
  }

  uint64_t seed_ = 0;
  testing_util::TempDir tmp_;
  testing_util::NoSyncFileSystem fs_;
  ManualClock clock_{testing_util::kT0};
  std::string data_dir_ = JoinPath(tmp_.path(), "data");
  std::vector<LoggedRecord> records_;
  std::vector<RecordPlace> layout_;
  std::vector<std::string> names_;
  DirImage image_;
  std::vector<std::pair<uint64_t, uint64_t>> digests_;  // after n records
};

TEST_F(WalCorruptionTableTest, IntactLogIsClean) {
  Run("intact", [] {}, {});
}

TEST_F(WalCorruptionTableTest, TornLastRecordIsTruncated) {
  const RecordPlace last = layout_.back();
  Run("torn_last_record",
      [&] {
        ASSERT_TRUE(fs_.TruncateFile(JoinPath(WalDir(data_dir_), last.segment),
                                     last.offset + last.size / 2)
                        .ok());
      },
      {.end = LogEnd::kTornTail,
       .delivered = kRecords - 1,
       .tolerate = kRecords - 1,
       .point_in_time = kRecords - 1,
       .absolute = -1});
}

TEST_F(WalCorruptionTableTest, BadHeaderOfAMiddleSegmentIsCorruption) {
  const int first = FirstOf(1);
  Run(
      "bad_header (middle segment)",
      [&] {
        std::string data = testing_util::ReadAll(SegPath(1));
        data[0] ^= 0x01;  // the magic
        testing_util::WriteAll(SegPath(1), data);
      },
      {.end = LogEnd::kCorrupt,
       .delivered = first,
       .tolerate = -1,
       .point_in_time = first,
       .absolute = -1},
      kRecords - first, "bad segment header");
}

TEST_F(WalCorruptionTableTest, BadHeaderOfALastSegmentWithRecordsIsCorruption) {
  const size_t last = names_.size() - 1;
  const int first = FirstOf(last);
  Run(
      "bad_header (last segment, records follow)",
      [&] {
        std::string data = testing_util::ReadAll(SegPath(last));
        data[20] ^= 0x40;  // first_lsn: the header CRC no longer matches
        testing_util::WriteAll(SegPath(last), data);
      },
      {.end = LogEnd::kCorrupt,
       .delivered = first,
       .tolerate = -1,
       .point_in_time = first,
       .absolute = -1},
      kRecords - first, "bad segment header");
}

TEST_F(WalCorruptionTableTest, BadTypeMidLogIsCorruptionAndAtTheTailIsTorn) {
  const int m = Middle();
  Run(
      "bad_type (mid-log)", [&] { Patch(layout_[m], 8, std::string(1, 9)); },
      {.end = LogEnd::kCorrupt,
       .delivered = m,
       .tolerate = -1,
       .point_in_time = m,
       .absolute = -1},
      kRecords - m - 1, "bad record type");
  Run("bad_type (last record)",
      [&] { Patch(layout_.back(), 8, std::string(1, 0x7f)); },
      {.end = LogEnd::kTornTail,
       .delivered = kRecords - 1,
       .tolerate = kRecords - 1,
       .point_in_time = kRecords - 1,
       .absolute = -1});
}

TEST_F(WalCorruptionTableTest, BadChecksumMidLogIsCorruption) {
  const int m = Middle();
  Run(
      "bad_checksum",
      [&] {
        Patch(layout_[m], 0,
              U32(wal::ParseRecordHeader(
                      reinterpret_cast<const uint8_t*>(
                          testing_util::Encode(records_[m]).data()))
                      .crc ^
                  0x10000));
      },
      {.end = LogEnd::kCorrupt,
       .delivered = m,
       .tolerate = -1,
       .point_in_time = m,
       .absolute = -1},
      kRecords - m - 1, "bad record checksum");
}

TEST_F(WalCorruptionTableTest, BadLengthsAreCorruptionMidLogAndTornAtTheTail) {
  const int m = Middle();
  const RecordPlace& p = layout_[m];
  const uint64_t file_size = kSegmentBytes;
  const Expect mid{.end = LogEnd::kCorrupt,
                   .delivered = m,
                   .tolerate = -1,
                   .point_in_time = m,
                   .absolute = -1};
  const int after = kRecords - m - 1;
  Run(
      "bad_length 0", [&] { Patch(p, 4, U32(0)); }, mid, after);
  Run(
      "bad_length > remaining",
      [&] {
        Patch(p, 4,
              U32(static_cast<uint32_t>(file_size - p.offset -
                                        wal::kRecordHeaderSize + 1)));
      },
      mid, after);
  Run(
      "bad_length 0xFFFFFFFF", [&] { Patch(p, 4, U32(0xFFFFFFFFu)); }, mid,
      after);
  const Expect tail{.end = LogEnd::kTornTail,
                    .delivered = kRecords - 1,
                    .tolerate = kRecords - 1,
                    .point_in_time = kRecords - 1,
                    .absolute = -1};
  Run(
      "bad_length 0xFFFFFFFF (last record)",
      [&] { Patch(layout_.back(), 4, U32(0xFFFFFFFFu)); }, tail);
  Run(
      "bad_length 0 (last record)", [&] { Patch(layout_.back(), 4, U32(0)); },
      tail);
}

TEST_F(WalCorruptionTableTest, BadContentWithAValidChecksumRefusesInEveryMode) {
  const int m = Middle();
  std::vector<LoggedRecord> changed = records_;
  // A count of 5 items, then garbage: the CRC is right, the payload is not.
  changed[m].payload = std::string("\x05\x00\x00\x00", 4) + "not an add batch";
  Rewrite(changed);
  wal::ReadReport report;
  std::vector<LoggedRecord> got =
      testing_util::ReadRecords(&fs_, data_dir_, &report);
  EXPECT_EQ(report.end, LogEnd::kClean);  // the reader checks framing only
  EXPECT_TRUE(testing_util::IsPrefixOf(got, changed));
  EXPECT_EQ(got.size(), changed.size());
  const testing_util::DirImage image = testing_util::SaveDir(data_dir_);
  for (RecoveryMode mode :
       {RecoveryMode::kTolerateTornTail, RecoveryMode::kPointInTime,
        RecoveryMode::kAbsolute}) {
    SCOPED_TRACE(RecoveryModeName(mode));
    testing_util::RestoreDir(data_dir_, image);
    Result<Recovered> r = Recover(
        testing_util::MakeRecoveryOptions(&fs_, data_dir_, mode, &clock_));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kCorruption);
    EXPECT_NE(r.status().message().find("LSN " + std::to_string(m + 1)),
              std::string::npos)
        << r.status().ToString();
  }
}

TEST_F(WalCorruptionTableTest, LsnGapIsCorruptionEvenAtTheTail) {
  const int m = Middle();
  std::vector<LoggedRecord> changed = records_;
  for (int i = m; i < kRecords; ++i) ++changed[i].lsn;  // LSN m+1 is missing
  Run(
      "LSN gap", [&] { Rewrite(changed); },
      {.end = LogEnd::kCorrupt,
       .delivered = m,
       .tolerate = -1,
       .point_in_time = m,
       .absolute = -1},
      -1, "gap");
  std::vector<LoggedRecord> tail_gap = records_;
  tail_gap.back().lsn += 5;
  Run(
      "LSN gap (last record)", [&] { Rewrite(tail_gap); },
      {.end = LogEnd::kCorrupt,
       .delivered = kRecords - 1,
       .tolerate = -1,
       .point_in_time = kRecords - 1,
       .absolute = -1},
      // "gap", or "segment starts at LSN" when the last record opened one.
      1, "expected");
}

TEST_F(WalCorruptionTableTest, LsnGoingBackwardsIsCorruption) {
  const int m = Middle();
  std::vector<LoggedRecord> changed = records_;
  changed[m].lsn = static_cast<uint64_t>(m) - 1;  // repeats an earlier LSN
  Run(
      "LSN going backwards", [&] { Rewrite(changed); },
      {.end = LogEnd::kCorrupt,
       .delivered = m,
       .tolerate = -1,
       .point_in_time = m,
       .absolute = -1},
      -1, "going backwards");
}

TEST_F(WalCorruptionTableTest, EmptyLastSegmentIsACleanEnd) {
  Run("empty last segment (header only)",
      [&] {
        auto segs = wal::ListSegments(&fs_, WalDir(data_dir_));
        ASSERT_TRUE(segs.ok());
        auto w =
            wal::WalWriter::Open(&fs_, WalDir(data_dir_), kRecords + 1, *segs,
                                 {.segment_bytes = kSegmentBytes,
                                  .hash_seed = testing_util::kHashSeed,
                                  .shard_bits = testing_util::kShardBits});
        ASSERT_TRUE(w.ok());
      },
      {});
}

TEST_F(WalCorruptionTableTest, LastSegmentWithAZeroHeaderIsATornTail) {
  const std::string zeros_name = wal::SegmentFileName(kRecords + 1);
  Run(
      "last segment header missing (zeros)",
      [&] {
        testing_util::WriteAll(JoinPath(WalDir(data_dir_), zeros_name),
                               std::string(kSegmentBytes, '\0'));
      },
      {.end = LogEnd::kTornTail,
       .delivered = kRecords,
       .tolerate = kRecords,
       .point_in_time = kRecords,
       .absolute = -1},
      -1, "segment header never completed");
  // Tolerate-torn-tail removes the half-created segment.
  testing_util::WriteAll(JoinPath(WalDir(data_dir_), zeros_name),
                         std::string(kSegmentBytes, '\0'));
  ASSERT_TRUE(
      Recover(testing_util::MakeRecoveryOptions(
                  &fs_, data_dir_, RecoveryMode::kTolerateTornTail, &clock_))
          .ok());
  EXPECT_FALSE(fs_.Exists(JoinPath(WalDir(data_dir_), zeros_name)));
}

TEST_F(WalCorruptionTableTest, MissingSegmentsAreCorruption) {
  const int first = FirstOf(1);
  Run(
      "missing middle segment",
      [&] { ASSERT_TRUE(fs_.Remove(SegPath(1)).ok()); },
      {.end = LogEnd::kCorrupt,
       .delivered = first,
       .tolerate = -1,
       .point_in_time = first,
       .absolute = -1},
      kRecords - FirstOf(2), "a segment is missing");
  Run(
      "missing first segment",
      [&] { ASSERT_TRUE(fs_.Remove(SegPath(0)).ok()); },
      {.end = LogEnd::kCorrupt,
       .delivered = 0,
       .tolerate = -1,
       .point_in_time = 0,
       .absolute = -1},
      kRecords - first, "segments are missing");
}

TEST_F(WalCorruptionTableTest, ValidRecordsAfterZerosOrGarbageAreCorruption) {
  const RecordPlace last = layout_.back();
  const uint64_t end = last.offset + last.size;
  // A stale record (an old LSN) left after the clean end, as a recycled
  // segment would have.
  Run(
      "stale bytes after the end",
      [&] { Patch(last, last.size + 64, testing_util::Encode(records_[2])); },
      {.end = LogEnd::kCorrupt,
       .delivered = kRecords,
       .tolerate = -1,
       .point_in_time = kRecords,
       .absolute = -1},
      1, "followed by a valid record");
  // Garbage, then a valid record with the next LSN.
  LoggedRecord next = records_.back();
  next.lsn = kRecords + 1;
  Run(
      "valid record after garbage",
      [&] {
        Patch(last, last.size, "garbage!garbage!" + testing_util::Encode(next));
      },
      {.end = LogEnd::kCorrupt,
       .delivered = kRecords,
       .tolerate = -1,
       .point_in_time = kRecords,
       .absolute = -1},
      1, "followed by a valid record");
  (void)end;
}

// Point-in-time recovery from a missing segment, then a server that writes
// on past the LSN the cut-off segment was named after: the next restart must
// still find a clean log.
TEST_F(WalCorruptionTableTest,
       PointInTimeRecoveryLeavesALogThatRestartsCleanly) {
  ASSERT_TRUE(fs_.Remove(SegPath(1)).ok());
  Result<Recovered> r = Recover(testing_util::MakeRecoveryOptions(
      &fs_, data_dir_, RecoveryMode::kPointInTime, &clock_));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const uint64_t next = r->next_lsn;
  ASSERT_EQ(next, static_cast<uint64_t>(FirstOf(1)) + 1);
  testing_util::PayloadGenerator gen(seed_ + 1);
  const std::vector<LoggedRecord> more =
      gen.Records(2 * kRecords, next, records_.back().time_ms);
  {
    // Segments of another size than before, so that none of the new ones
    // happens to start at the LSN an old one was named after.
    auto w = wal::WalWriter::Open(&fs_, WalDir(data_dir_), next, r->segments,
                                  {.segment_bytes = 4 * kSegmentBytes,
                                   .hash_seed = testing_util::kHashSeed,
                                   .shard_bits = testing_util::kShardBits});
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (const LoggedRecord& rec : more) {
      ASSERT_TRUE(
          (*w)->Append(testing_util::Encode(rec), rec.lsn, rec.lsn).ok());
    }
    ASSERT_TRUE((*w)->Sync().ok());
  }
  for (RecoveryMode mode :
       {RecoveryMode::kAbsolute, RecoveryMode::kTolerateTornTail}) {
    Result<Recovered> again = Recover(
        testing_util::MakeRecoveryOptions(&fs_, data_dir_, mode, &clock_));
    ASSERT_TRUE(again.ok())
        << RecoveryModeName(mode) << ": " << again.status().ToString();
    EXPECT_EQ(again->report.last_lsn, more.back().lsn);
    EXPECT_EQ(again->report.end, LogEnd::kClean) << again->report.Summary();
  }
}

}  // namespace
}  // namespace tally
