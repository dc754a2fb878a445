// WalWriter/ReadWal round trips: records come back byte-equal across
// segments, after_lsn skips what a snapshot already holds, and a writer
// reopened after recovery continues the log. The table of corruption cases
// (RELIABILITY.md C3) is in wal_corruption_test.cc.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/wal_format.h"
#include "storage/wal_reader.h"
#include "storage/wal_record.h"
#include "storage/wal_test_util.h"
#include "storage/wal_writer.h"

namespace tally {
namespace {

using testing_util::LoggedRecord;
using testing_util::RecordPlace;
using wal::LogEnd;

class WalRoundTripTest : public ::testing::Test {
 protected:
  testing_util::TempDir tmp_;
  testing_util::NoSyncFileSystem fs_;
  std::string data_dir_ = JoinPath(tmp_.path(), "data");
};

TEST_F(WalRoundTripTest, RecordsComeBackByteEqualAcrossSegments) {
  testing_util::PayloadGenerator gen(testing_util::TestSeed(
      "WalRoundTripTest.RecordsComeBackByteEqualAcrossSegments"));
  std::vector<LoggedRecord> records = gen.Records(300);
  // One record larger than a segment: it gets a segment of its own.
  {
    std::vector<std::string> keys;
    for (int i = 0; i < 150; ++i) keys.push_back("big-" + std::to_string(i));
    std::vector<std::string_view> views(keys.begin(), keys.end());
    records[120].type = wal::RecordType::kDelete;
    records[120].payload.clear();
    wal::EncodeDelete(views, &records[120].payload);
    ASSERT_GT(records[120].payload.size(), 1024u);
  }
  testing_util::WriteWal(&fs_, data_dir_, records, /*segment_bytes=*/1024);

  const std::vector<RecordPlace> layout =
      testing_util::ScanLayout(&fs_, data_dir_);
  ASSERT_EQ(layout.size(), records.size());
  const std::vector<std::string> names =
      testing_util::SegmentNames(&fs_, data_dir_);
  ASSERT_GE(names.size(), 5u);
  // Every segment is named after its first record's LSN.
  for (size_t i = 0; i < layout.size(); ++i) {
    if (i == 0 || layout[i].segment != layout[i - 1].segment) {
      EXPECT_EQ(layout[i].segment, wal::SegmentFileName(layout[i].lsn));
    }
  }
  // The big record starts its own segment, which holds nothing else.
  EXPECT_EQ(layout[120].offset, wal::kSegmentHeaderSize);
  EXPECT_NE(layout[121].segment, layout[120].segment);

  wal::ReadReport report;
  std::vector<LoggedRecord> got =
      testing_util::ReadRecords(&fs_, data_dir_, &report);
  ASSERT_EQ(got.size(), records.size());
  EXPECT_TRUE(testing_util::IsPrefixOf(got, records));
  EXPECT_EQ(report.end, LogEnd::kClean);
  EXPECT_EQ(report.records, records.size());
  EXPECT_EQ(report.first_lsn, 1u);
  EXPECT_EQ(report.last_lsn, records.size());
  EXPECT_EQ(report.segments, names.size());
  EXPECT_TRUE(report.has_seed);
  EXPECT_EQ(report.hash_seed, testing_util::kHashSeed);
  uint64_t bytes = 0;
  for (const RecordPlace& p : layout) bytes += p.size;
  EXPECT_EQ(report.bytes, bytes);
  EXPECT_EQ(report.end_segment, names.back());
  EXPECT_EQ(report.end_offset, layout.back().offset + layout.back().size);
  EXPECT_EQ(report.discarded_bytes, 0u);
  EXPECT_TRUE(report.reason.empty()) << report.reason;
}

TEST_F(WalRoundTripTest, AfterLsnDeliversOnlyLaterRecords) {
  testing_util::PayloadGenerator gen(testing_util::TestSeed(
      "WalRoundTripTest.AfterLsnDeliversOnlyLaterRecords"));
  const std::vector<LoggedRecord> records = gen.Records(200);
  testing_util::WriteWal(&fs_, data_dir_, records, 1024);
  const std::vector<RecordPlace> layout =
      testing_util::ScanLayout(&fs_, data_dir_);
  ASSERT_EQ(layout.size(), records.size());
  // First LSN of the third segment, and the LSN just before it.
  uint64_t third = 0;
  for (const RecordPlace& p : layout) {
    if (p.segment_index == 2) {
      third = p.lsn;
      break;
    }
  }
  ASSERT_GT(third, 0u);
  for (uint64_t after : {uint64_t{0}, uint64_t{1}, third - 1, third,
                         uint64_t{100}, uint64_t{199}, uint64_t{200}}) {
    SCOPED_TRACE("after_lsn " + std::to_string(after));
    wal::ReadReport report;
    std::vector<LoggedRecord> got =
        testing_util::ReadRecords(&fs_, data_dir_, &report, after);
    std::vector<LoggedRecord> want(records.begin() + after, records.end());
    ASSERT_EQ(got.size(), want.size());
    EXPECT_TRUE(testing_util::IsPrefixOf(got, want));
    EXPECT_EQ(report.end, LogEnd::kClean);
    EXPECT_EQ(report.last_lsn, 200u);
    // Segments wholly at or below after_lsn are not even read.
    if (after >= third - 1) {
      EXPECT_LT(report.segments,
                testing_util::SegmentNames(&fs_, data_dir_).size());
    }
  }
}

TEST_F(WalRoundTripTest, AWriterReopenedAfterRecoveryContinuesTheLog) {
  testing_util::PayloadGenerator gen(testing_util::TestSeed(
      "WalRoundTripTest.AWriterReopenedAfterRecoveryContinuesTheLog"));
  std::vector<LoggedRecord> records = gen.Records(80);
  testing_util::WriteWal(&fs_, data_dir_, records, 1024);
  auto segments = wal::ListSegments(&fs_, WalDir(data_dir_));
  ASSERT_TRUE(segments.ok());
  std::vector<LoggedRecord> more = gen.Records(50, 81, records.back().time_ms);
  {
    auto writer =
        wal::WalWriter::Open(&fs_, WalDir(data_dir_), 81, *segments,
                             {.segment_bytes = 1024,
                              .hash_seed = testing_util::kHashSeed,
                              .shard_bits = testing_util::kShardBits});
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    for (const LoggedRecord& r : more) {
      ASSERT_TRUE(
          (*writer)->Append(testing_util::Encode(r), r.lsn, r.lsn).ok());
    }
    ASSERT_TRUE((*writer)->Sync().ok());
    // Removing segments below an LSN keeps the one holding LSN + 1.
    auto removed = (*writer)->RemoveSegmentsBelow(40);
    ASSERT_TRUE(removed.ok());
    EXPECT_GT(*removed, 0);
  }
  records.insert(records.end(), more.begin(), more.end());
  wal::ReadReport report;
  std::vector<LoggedRecord> got =
      testing_util::ReadRecords(&fs_, data_dir_, &report, 40);
  EXPECT_EQ(report.end, LogEnd::kClean);
  EXPECT_LE(report.first_lsn, 41u);
  ASSERT_EQ(got.size(), records.size() - 40);
  EXPECT_TRUE(testing_util::IsPrefixOf(
      got, std::vector<LoggedRecord>(records.begin() + 40, records.end())));
  // Without a snapshot at 40 the trimmed log is missing its start.
  testing_util::ReadRecords(&fs_, data_dir_, &report, 0);
  EXPECT_EQ(report.end, LogEnd::kCorrupt);
  EXPECT_NE(report.reason.find("segments are missing"), std::string::npos)
      << report.reason;
}

}  // namespace
}  // namespace tally
