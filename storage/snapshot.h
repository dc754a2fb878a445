// Snapshots: the whole state (engine + idempotency table) at one LSN, so a
// restart replays only the WAL after it. docs/wal_format.md, "Snapshots".
//
//   data_dir/snap/<LSN, 20 digits>.snap       a complete snapshot
//   data_dir/snap/<LSN, 20 digits>.snap.tmp   one being written (deleted at
//                                             start: never read)
//
//   file := header (64 B) | engine state | dedupe state
//   header := magic u64 "TALLYSNP" | version u32 | header_size u32 | lsn u64
//             | hash_seed u64 | time_ms i64 | engine_len u64 | dedupe_len u64
//             | body_crc u32 (CRC-32C of everything after the header)
//             | header_crc u32 (of header bytes [0, 60))
//
// Written to the .tmp name, fsynced, renamed, directory fsynced
// (RELIABILITY.md 1.6). A snapshot is used only whole: any length or CRC
// mismatch rejects it, and recovery falls back to the previous one.

#ifndef TALLY_STORAGE_SNAPSHOT_H_
#define TALLY_STORAGE_SNAPSHOT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"
#include "storage/file_system.h"

namespace tally::snapshot {

// DO NOT CHANGE: persisted (docs/wal_format.md).
inline constexpr uint64_t kMagic = 0x504E53594C4C4154ull;  // TALLYSNP
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderSize = 64;
inline constexpr const char* kDirName = "snap";
inline constexpr const char* kSuffix = ".snap";
inline constexpr const char* kTempSuffix = ".snap.tmp";

struct Meta {
  uint64_t lsn = 0;        // the state includes every record <= lsn
  uint64_t hash_seed = 0;  // the engine's key-hash seed
  int64_t time_ms = 0;     // time of record `lsn`
};

struct Snapshot {
  Meta meta;
  std::string file;  // the whole file; the views point into it
  std::string_view engine;
  std::string_view dedupe;
};

struct SnapshotFile {
  std::string name;
  uint64_t lsn = 0;
};

std::string FileName(uint64_t lsn);
// Complete snapshots in `dir`, oldest first.
Result<std::vector<SnapshotFile>> List(FileSystem* fs, const std::string& dir);
// Deletes *.snap.tmp files; returns how many.
Result<int> RemoveTemporaries(FileSystem* fs, const std::string& dir);

// Writes a snapshot file atomically (tmp, fsync, rename, dir fsync).
Status Write(FileSystem* fs, const std::string& dir, const Meta& meta,
             std::string_view engine, std::string_view dedupe);
// Reads and verifies one; CORRUPTION when anything does not check out.
Result<Snapshot> Read(FileSystem* fs, const std::string& path);

}  // namespace tally::snapshot

#endif  // TALLY_STORAGE_SNAPSHOT_H_
