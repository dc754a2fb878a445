// Recovery against damaged WALs (RELIABILITY.md C1, C2): a truncation sweep
// over the tail and elsewhere, a thousand single-bit flips, and a zeroed page
// in the middle of the log. The recovered state is always compared with a
// reference engine that applied exactly the records that should survive.

#include "storage/recovery.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "storage/wal_format.h"
#include "storage/wal_reader.h"
#include "storage/wal_test_util.h"

namespace tally {
namespace {

using testing_util::LoggedRecord;
using testing_util::RecordPlace;
using wal::LogEnd;

class DamagedWalTest : public ::testing::Test {
 protected:
  // Writes `count` records in segments of `segment_bytes`, and the reference
  // digests after each prefix.
  void Build(const char* test, int count, uint64_t segment_bytes,
             uint64_t seed = 0) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
    sizes_.clear();
    digests_.clear();
    seed_ = seed != 0 ? seed : testing_util::TestSeed(test);
    testing_util::PayloadGenerator gen(seed_);
    records_ = gen.Records(count);
    testing_util::WriteWal(&fs_, data_dir_, records_, segment_bytes);
    layout_ = testing_util::ScanLayout(&fs_, data_dir_);
    ASSERT_EQ(layout_.size(), records_.size());
    names_ = testing_util::SegmentNames(&fs_, data_dir_);
    for (const std::string& n : names_) {
      auto size = fs_.FileSize(SegPath(n));
      ASSERT_TRUE(size.ok());
      sizes_.push_back(*size);
    }
    image_ = testing_util::SaveDir(data_dir_);
    testing_util::ReferenceState ref(&clock_);
    digests_.push_back({ref.engine_digest(), ref.dedupe_digest()});
    for (const LoggedRecord& r : records_) {
      ref.Apply(r);
      digests_.push_back({ref.engine_digest(), ref.dedupe_digest()});
    }
  }

  std::string SegPath(const std::string& name) const {
    return JoinPath(WalDir(data_dir_), name);
  }
  int RecordsBeforeSegment(size_t k) const {
    int n = 0;
    for (const RecordPlace& p : layout_) n += p.segment_index < k ? 1 : 0;
    return n;
  }
  // Records whole in the log when segment k is cut at byte `cut`.
  int RecordsWholeBefore(size_t k, uint64_t cut) const {
    int n = 0;
    for (const RecordPlace& p : layout_) {
      if (p.segment_index < k ||
          (p.segment_index == k && p.offset + p.size <= cut)) {
        ++n;
      }
    }
    return n;
  }

  Result<Recovered> RecoverIn(RecoveryMode mode) {
    return Recover(
        testing_util::MakeRecoveryOptions(&fs_, data_dir_, mode, &clock_));
  }

  // The recovered state holds exactly the first n records.
  void ExpectPrefixState(const Recovered& r, int n) {
    EXPECT_EQ(r.report.records_replayed, static_cast<uint64_t>(n))
        << r.report.Summary();
    EXPECT_EQ(r.report.last_lsn, static_cast<uint64_t>(n));
    EXPECT_EQ(r.engine->Digest(), digests_[n].first);
    EXPECT_EQ(r.dedupe->Digest(), digests_[n].second);
  }

  void ExpectRefusal(const Result<Recovered>& r, const std::string& segment) {
    ASSERT_FALSE(r.ok()) << "recovered: " << r->report.Summary();
    EXPECT_EQ(r.status().code(), Code::kCorruption);
    const std::string msg(r.status().message());
    EXPECT_NE(msg.find(segment), std::string::npos) << msg;
    EXPECT_NE(msg.find("offset"), std::string::npos) << msg;
    EXPECT_NE(msg.find("tally-wal"), std::string::npos) << msg;
  }

  // Bytes of [from, to) of `data` up to its last non-zero byte: what a torn
  // tail truncation reports.
  static uint64_t NonZeroSpan(const std::string& data, uint64_t from,
                              uint64_t to) {
    uint64_t end = std::min<uint64_t>(to, data.size());
    while (end > from && data[end - 1] == 0) --end;
    return end > from ? end - from : 0;
  }

  uint64_t seed_ = 0;
  testing_util::TempDir tmp_;
  testing_util::NoSyncFileSystem fs_;
  ManualClock clock_{testing_util::kT0};
  std::string data_dir_ = JoinPath(tmp_.path(), "data");
  std::vector<LoggedRecord> records_;
  std::vector<RecordPlace> layout_;
  std::vector<std::string> names_;
  std::vector<uint64_t> sizes_;
  testing_util::DirImage image_;
  std::vector<std::pair<uint64_t, uint64_t>> digests_;
};

// C1: a cut anywhere inside the last two records recovers exactly the
// complete records before it, and reports what it truncated and where.
TEST_F(DamagedWalTest, TailCutAtEveryByteOfTheLastTwoRecordsIsTruncated) {
  Build("DamagedWalTest.TailCutAtEveryByteOfTheLastTwoRecordsIsTruncated", 120,
        2048);
  if (layout_[118].segment != layout_[119].segment) {
    // The last record opened a segment: one fewer keeps the last two
    // together (the same seed gives the same first records).
    Build("", 119, 2048, seed_);
  }
  const int n = static_cast<int>(records_.size());
  const RecordPlace& before_last = layout_[n - 2];
  const RecordPlace& last = layout_[n - 1];
  ASSERT_EQ(before_last.segment, last.segment);
  const size_t k = last.segment_index;
  const std::string original = testing_util::ReadAll(SegPath(last.segment));
  int cuts = 0, torn = 0;
  for (uint64_t cut = before_last.offset; cut <= last.offset + last.size;
       ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut) +
                 " TALLY_SEED=" + std::to_string(seed_));
    ++cuts;
    const int whole = RecordsWholeBefore(k, cut);
    const uint64_t boundary = whole == n - 2   ? before_last.offset
                              : whole == n - 1 ? last.offset
                                               : last.offset + last.size;
    const uint64_t junk = NonZeroSpan(original, boundary, cut);
    testing_util::RestoreDir(data_dir_, image_);
    ASSERT_TRUE(fs_.TruncateFile(SegPath(last.segment), cut).ok());
    Result<Recovered> r = RecoverIn(RecoveryMode::kTolerateTornTail);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ExpectPrefixState(*r, whole);
    const RecoveryReport& rep = r->report;
    EXPECT_EQ(rep.end_position, wal::DescribePosition(last.segment, boundary));
    if (junk > 0) {
      ++torn;
      EXPECT_EQ(rep.end, LogEnd::kTornTail);
      EXPECT_EQ(rep.truncated_bytes, junk);
      // One summary line names the segment, the offset and the bytes.
      const std::string summary = rep.Summary();
      EXPECT_NE(
          summary.find("torn_tail_truncated_bytes=" + std::to_string(junk)),
          std::string::npos)
          << summary;
      EXPECT_NE(summary.find(wal::DescribePosition(last.segment, boundary)),
                std::string::npos)
          << summary;
      auto size = fs_.FileSize(SegPath(last.segment));
      ASSERT_TRUE(size.ok());
      EXPECT_EQ(*size, boundary);
    } else {
      EXPECT_EQ(rep.end, LogEnd::kClean);
      EXPECT_EQ(rep.truncated_bytes, 0u);
    }
    // Absolute mode refuses the same torn tail, and accepts a clean cut.
    testing_util::RestoreDir(data_dir_, image_);
    ASSERT_TRUE(fs_.TruncateFile(SegPath(last.segment), cut).ok());
    Result<Recovered> a = RecoverIn(RecoveryMode::kAbsolute);
    if (junk > 0) {
      ExpectRefusal(a, last.segment);
    } else {
      ASSERT_TRUE(a.ok()) << a.status().ToString();
      ExpectPrefixState(*a, whole);
    }
  }
  std::cout << "[ figures  ] offsets tested=" << cuts << " torn=" << torn
            << "\n";
  EXPECT_GT(torn, cuts / 2);
}

// C1, elsewhere: a cut inside the last segment is still a torn tail (nothing
// valid follows it); a cut that loses records of an earlier segment is
// corruption (point-in-time keeps the records before it).
TEST_F(DamagedWalTest, RandomCutsAreTornTailsInTheLastSegmentElseCorruption) {
  Build("DamagedWalTest.RandomCutsAreTornTailsInTheLastSegmentElseCorruption",
        120, 2048);
  ASSERT_GE(names_.size(), 4u);
  std::mt19937_64 rng(seed_);
  const int n = static_cast<int>(records_.size());
  int torn = 0, corrupt = 0, harmless = 0;
  for (int i = 0; i < 200; ++i) {
    const size_t k = rng() % names_.size();
    const bool last = k + 1 == names_.size();
    // The last segment's zero fill would be harmless: cut inside its data.
    const uint64_t limit =
        last ? layout_.back().offset + layout_.back().size : sizes_[k];
    const uint64_t cut = rng() % limit;
    SCOPED_TRACE("segment " + names_[k] + " cut at " + std::to_string(cut) +
                 " TALLY_SEED=" + std::to_string(seed_));
    const int whole = cut < wal::kSegmentHeaderSize
                          ? RecordsBeforeSegment(k)
                          : RecordsWholeBefore(k, cut);
    const bool loses = whole < RecordsBeforeSegment(k + 1);
    testing_util::RestoreDir(data_dir_, image_);
    ASSERT_TRUE(fs_.TruncateFile(SegPath(names_[k]), cut).ok());
    const testing_util::DirImage damaged = testing_util::SaveDir(data_dir_);
    Result<Recovered> r = RecoverIn(RecoveryMode::kTolerateTornTail);
    if (last) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ExpectPrefixState(*r, whole);
      torn += r->report.end == LogEnd::kTornTail ? 1 : 0;
      continue;
    }
    if (!loses) {
      // Only zero fill of an earlier segment was cut.
      ++harmless;
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ExpectPrefixState(*r, n);
      continue;
    }
    ++corrupt;
    // The log ends in segment k (cut inside a record or its header) or at
    // the start of segment k + 1 (cut exactly between records).
    ExpectRefusal(r, "");
    if (!r.ok()) {
      const std::string msg(r.status().message());
      EXPECT_TRUE(msg.find(names_[k]) != std::string::npos ||
                  msg.find(names_[k + 1]) != std::string::npos)
          << msg;
    }
    testing_util::RestoreDir(data_dir_, damaged);
    Result<Recovered> pit = RecoverIn(RecoveryMode::kPointInTime);
    ASSERT_TRUE(pit.ok()) << pit.status().ToString();
    ExpectPrefixState(*pit, whole);
    // Every record of the later segments is valid and moved aside.
    EXPECT_EQ(pit->report.discarded_records,
              static_cast<uint64_t>(n - RecordsBeforeSegment(k + 1)))
        << pit->report.Summary();
    testing_util::RestoreDir(data_dir_, damaged);
    ExpectRefusal(RecoverIn(RecoveryMode::kAbsolute), "");
  }
  std::cout << "[ figures  ] torn=" << torn << " corrupt=" << corrupt
            << " harmless=" << harmless << "\n";
}

// C2: single-bit flips. In the tail record they are a torn tail; anywhere
// else they are corruption: the default mode refuses naming segment, offset
// and the checker, point-in-time keeps the records before the flip and
// moves the rest aside, absolute refuses. A record with a bad CRC is never
// delivered or applied.
TEST_F(DamagedWalTest, BitFlipsAreTornAtTheTailAndCorruptionMidLog) {
  Build("DamagedWalTest.BitFlipsAreTornAtTheTailAndCorruptionMidLog", 100,
        2048);
  std::mt19937_64 rng(seed_ ^ 0xb17f11b5);
  const int n = static_cast<int>(records_.size());
  int header_flips = 0, payload_flips = 0;
  for (int i = 0; i < 1000; ++i) {
    const bool tail = i % 2 == 0;
    const int m = tail ? n - 1 : static_cast<int>(rng() % (n - 1));
    const RecordPlace& p = layout_[m];
    const uint64_t byte = rng() % p.size;
    const int bit = static_cast<int>(rng() % 8);
    (byte < wal::kRecordHeaderSize ? header_flips : payload_flips) += 1;
    SCOPED_TRACE("flip " + std::to_string(i) + ": record " + std::to_string(m) +
                 " byte " + std::to_string(byte) + " bit " +
                 std::to_string(bit) + " TALLY_SEED=" + std::to_string(seed_));
    testing_util::RestoreDir(data_dir_, image_);
    {
      std::string data = testing_util::ReadAll(SegPath(p.segment));
      data[p.offset + byte] ^= static_cast<char>(1 << bit);
      testing_util::WriteAll(SegPath(p.segment), data);
    }
    const testing_util::DirImage damaged = testing_util::SaveDir(data_dir_);
    // The reader delivers exactly the records before the flip, unchanged.
    wal::ReadReport report;
    std::vector<LoggedRecord> got =
        testing_util::ReadRecords(&fs_, data_dir_, &report);
    ASSERT_EQ(got.size(), static_cast<size_t>(m));
    ASSERT_TRUE(testing_util::IsPrefixOf(got, records_));
    EXPECT_EQ(report.end_segment, p.segment);
    EXPECT_EQ(report.end_offset, p.offset);

    Result<Recovered> r = RecoverIn(RecoveryMode::kTolerateTornTail);
    if (tail) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ExpectPrefixState(*r, m);
      EXPECT_EQ(r->report.end, LogEnd::kTornTail);
      EXPECT_GT(r->report.truncated_bytes, 0u);
      EXPECT_LE(r->report.truncated_bytes, p.size);
    } else {
      ExpectRefusal(r, p.segment);
      testing_util::RestoreDir(data_dir_, damaged);
      Result<Recovered> pit = RecoverIn(RecoveryMode::kPointInTime);
      ASSERT_TRUE(pit.ok()) << pit.status().ToString();
      ExpectPrefixState(*pit, m);
      const RecoveryReport& rep = pit->report;
      EXPECT_EQ(rep.end, LogEnd::kCorrupt);
      EXPECT_EQ(rep.discarded_records, static_cast<uint64_t>(n - m - 1))
          << rep.Summary();
      uint64_t discarded_bytes = sizes_[p.segment_index] - p.offset;
      for (size_t k = p.segment_index + 1; k < names_.size(); ++k) {
        discarded_bytes += sizes_[k];
      }
      EXPECT_EQ(rep.discarded_bytes, discarded_bytes);
      // The tail was moved aside, not deleted.
      ASSERT_FALSE(rep.moved_aside_to.empty());
      EXPECT_EQ(rep.moved_aside_to,
                JoinPath(data_dir_, "wal-discarded-" + std::to_string(m)));
      uint64_t aside_bytes = 0;
      for (const auto& e :
           std::filesystem::directory_iterator(rep.moved_aside_to)) {
        aside_bytes += e.file_size();
      }
      EXPECT_EQ(aside_bytes, discarded_bytes);
    }
    testing_util::RestoreDir(data_dir_, damaged);
    ExpectRefusal(RecoverIn(RecoveryMode::kAbsolute), p.segment);
  }
  std::cout << "[ figures  ] flips=1000 header=" << header_flips
            << " payload=" << payload_flips << "\n";
}

// C2: a zero-filled 4 KiB page in the middle of a segment, with valid
// records after it, is corruption, not a torn tail.
TEST_F(DamagedWalTest, ZeroFilledPageMidLogIsCorruption) {
  Build("DamagedWalTest.ZeroFilledPageMidLogIsCorruption", 400, 64 << 10);
  ASSERT_GT(layout_.back().offset, 3 * 4096u);
  const RecordPlace& first = layout_.front();
  const int whole = RecordsWholeBefore(0, 4096);
  int after_page = 0;
  for (const RecordPlace& p : layout_) after_page += p.offset >= 8192 ? 1 : 0;
  ASSERT_GT(after_page, 0);
  std::string data = testing_util::ReadAll(SegPath(first.segment));
  std::fill(data.begin() + 4096, data.begin() + 8192, '\0');
  testing_util::WriteAll(SegPath(first.segment), data);
  const testing_util::DirImage damaged = testing_util::SaveDir(data_dir_);

  wal::ReadReport report;
  EXPECT_EQ(testing_util::ReadRecords(&fs_, data_dir_, &report).size(),
            static_cast<size_t>(whole));
  EXPECT_EQ(report.end, LogEnd::kCorrupt) << report.reason;
  ExpectRefusal(RecoverIn(RecoveryMode::kTolerateTornTail), first.segment);
  testing_util::RestoreDir(data_dir_, damaged);
  ExpectRefusal(RecoverIn(RecoveryMode::kAbsolute), first.segment);
  testing_util::RestoreDir(data_dir_, damaged);
  Result<Recovered> pit = RecoverIn(RecoveryMode::kPointInTime);
  ASSERT_TRUE(pit.ok()) << pit.status().ToString();
  ExpectPrefixState(*pit, whole);
  EXPECT_GE(pit->report.discarded_records, static_cast<uint64_t>(after_page));
}

}  // namespace
}  // namespace tally
