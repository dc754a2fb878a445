// Restoring a data directory from a backed-up snapshot file
// (docs/operations.md, "Backup and restore"; `tally-wal restore`).
//
// Recovery refuses snapshots without any WAL segment beside them: tallyd
// always keeps the segment it writes to, so that state means the WAL was
// deleted and records after the snapshot are lost. A restore is the one case
// where that is intended, so it is an explicit step: it writes the snapshot
// into a new data directory together with an empty WAL segment that starts
// right after the snapshot's LSN, which recovery then accepts as a clean
// log.

#ifndef TALLY_STORAGE_RESTORE_H_
#define TALLY_STORAGE_RESTORE_H_

#include <cstdint>
#include <string>

#include "protocol/result.h"
#include "storage/file_system.h"

namespace tally {

struct RestoreReport {
  uint64_t lsn = 0;      // the snapshot's: the WAL continues at lsn + 1
  int64_t time_ms = 0;   // when its last record was logged
  uint64_t bytes = 0;    // the snapshot file's size
  std::string snapshot;  // the file written under data_dir
};

// Verifies the snapshot at `snapshot_path` (every CRC), then creates
// `data_dir` (mode 0700; it must not exist or be empty: INVALID_ARGUMENT
// otherwise) with the snapshot and an empty WAL segment for `shard_bits`
// shards (tallyd's; default 8). Everything is fsynced. On failure the
// partly written directory is left for inspection and named in the error.
Result<RestoreReport> RestoreSnapshot(FileSystem* fs,
                                      const std::string& snapshot_path,
                                      const std::string& data_dir,
                                      uint32_t shard_bits = 8);

}  // namespace tally

#endif  // TALLY_STORAGE_RESTORE_H_
