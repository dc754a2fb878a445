// WalWriter: appends whole records to the WAL's segment files. One thread
// writes (the journal's writer); RemoveSegmentsBelow may run on another.
//
// Segments are preallocated (fallocate) and zero-filled, so the disk filling
// up shows at segment creation, not in the middle of a record, and fdatasync
// flushes data without a size change. A segment is created with its header
// written and synced and its directory synced before any record goes into
// it; the previous segment is synced before the switch, so a record never
// depends on an unsynced record of an older segment (RELIABILITY.md 1.3).
//
// A failed append leaves nothing behind that a reader would take for a
// record: the range it touched is zeroed again (best effort; a torn record
// is also what recovery expects after a crash) and the caller reuses its
// LSNs.

#ifndef TALLY_STORAGE_WAL_WRITER_H_
#define TALLY_STORAGE_WAL_WRITER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"
#include "storage/file_system.h"
#include "storage/wal_reader.h"

namespace tally::wal {

struct WalWriterOptions {
  uint64_t segment_bytes = 64u << 20;
  uint64_t hash_seed = 0;  // written in every segment header
  uint32_t shard_bits = 8;
};

class WalWriter {
 public:
  // Starts a new segment whose first record will be `next_lsn` in `wal_dir`
  // (created if absent). `existing` are the segments already there (from
  // recovery), kept for RemoveSegmentsBelow.
  static Result<std::unique_ptr<WalWriter>> Open(
      FileSystem* fs, std::string wal_dir, uint64_t next_lsn,
      std::vector<SegmentFile> existing, WalWriterOptions options);
  ~WalWriter();

  // Writes `records` (whole encoded records, LSNs first_lsn..last_lsn
  // consecutive) with one write. Switches to a new segment first when they
  // do not fit in the current one. On error nothing counts as written.
  Status Append(std::string_view records, uint64_t first_lsn,
                uint64_t last_lsn);
  // fdatasync of the current segment.
  Status Sync();

  // Removes segments all of whose records have LSN <= `lsn` (never the
  // current one), then syncs the directory. Returns how many were removed.
  Result<int> RemoveSegmentsBelow(uint64_t lsn);

  // Bytes of all segment files on disk (allocated sizes).
  uint64_t DiskBytes() const;
  size_t SegmentCount() const;
  std::string current_segment() const;

 private:
  WalWriter(FileSystem* fs, std::string wal_dir, WalWriterOptions options);
  Status StartSegment(uint64_t first_lsn, uint64_t min_bytes);

  FileSystem* fs_;
  const std::string wal_dir_;
  const WalWriterOptions options_;
  std::unique_ptr<WritableFile> file_;
  uint64_t offset_ = 0;    // next write position in the current segment
  uint64_t capacity_ = 0;  // its allocated size
  // End of the bytes a failed Append may have left at offset_ and beyond
  // when zeroing them failed too (0: none); zeroed by the next Append.
  uint64_t dirty_end_ = 0;
  mutable std::mutex mu_;              // guards segments_ and disk_bytes_
  std::vector<SegmentFile> segments_;  // oldest first; back() is current
  std::vector<uint64_t> sizes_;        // file size of each
};

}  // namespace tally::wal

#endif  // TALLY_STORAGE_WAL_WRITER_H_
