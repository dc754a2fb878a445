// WalReader: reads a WAL directory's segments in LSN order, delivers every
// valid record, and says where and why the valid log ends. Shared by
// recovery (storage/recovery.h) and `tally-wal`.
//
// How the end is classified (RELIABILITY.md 1.5, docs/wal_format.md):
//  - clean: the last segment's records end at a zero header or its end;
//  - torn tail: the valid log stops inside the LAST segment and nothing
//    after the stop point is a valid record (zeros, garbage, a partial
//    record): what a crash during a write leaves;
//  - corruption: anything else. A bad record followed by a record with a
//    valid CRC, a bad record in a segment that is not the last, an LSN gap
//    or an LSN going backwards, a missing segment, a bad segment header.
//
// Payload lengths are checked against kMaxPayload and the bytes left before
// anything is allocated; a record with a bad CRC is never delivered.

#ifndef TALLY_STORAGE_WAL_READER_H_
#define TALLY_STORAGE_WAL_READER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"
#include "storage/file_system.h"
#include "storage/wal_format.h"

namespace tally::wal {

struct SegmentFile {
  std::string name;  // file name inside the wal directory
  uint64_t first_lsn = 0;
};

// Segment files of `wal_dir` in LSN order (other names are ignored). An
// absent directory has none.
Result<std::vector<SegmentFile>> ListSegments(FileSystem* fs,
                                              const std::string& wal_dir);

enum class LogEnd : uint8_t { kClean, kTornTail, kCorrupt };

struct ReadReport {
  uint64_t segments = 0;
  uint64_t records = 0;    // valid records read (delivered or skipped)
  uint64_t first_lsn = 0;  // of the first valid record (0: none)
  uint64_t last_lsn = 0;   // of the last valid record (0: none)
  uint64_t bytes = 0;      // bytes of valid records, headers included
  bool has_seed = false;   // a segment header named the key-hash seed
  uint64_t hash_seed = 0;
  uint32_t shard_bits = 0;
  LogEnd end = LogEnd::kClean;
  // Where the valid log ends: the byte after the last valid record
  // ("valid up to"), in `end_segment` (empty when there is no segment).
  std::string end_segment;
  uint64_t end_offset = 0;
  // kTornTail: non-zero bytes after the end in the last segment (what
  // tolerate-torn-tail truncates). kCorrupt: bytes after the end in all
  // segments, and how many valid-looking records they hold (what
  // point-in-time recovery discards).
  uint64_t discarded_bytes = 0;
  uint64_t discarded_records = 0;
  std::string reason;  // why the log ends, for kTornTail and kCorrupt
  // Segments wholly after the end segment (point-in-time moves them aside).
  std::vector<std::string> later_segments;
};

// Called for each valid record with lsn > `after_lsn`, in LSN order. A
// non-OK status stops the read and is returned.
using RecordVisitor =
    std::function<Status(const RecordHeader& header, std::string_view payload)>;

struct ReadOptions {
  // Deliver records with a larger LSN only; segments wholly at or below it
  // are skipped (not even checked).
  uint64_t after_lsn = 0;
  // The log must hold every record after this LSN (a snapshot's LSN, or 0
  // with no snapshot): a first segment starting later means segments are
  // missing.
  uint64_t need_from_lsn = 0;
};

// Reads the whole log. Returns the report even when the log is torn or
// corrupt (see report.end); an error only when a file cannot be read or the
// visitor fails.
Result<ReadReport> ReadWal(FileSystem* fs, const std::string& wal_dir,
                           const ReadOptions& options,
                           const RecordVisitor& visit);

// "segment 00000000000000000001.wal offset 4096".
std::string DescribePosition(const std::string& segment, uint64_t offset);

}  // namespace tally::wal

#endif  // TALLY_STORAGE_WAL_READER_H_
