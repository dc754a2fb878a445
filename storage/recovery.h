// Recovery: rebuilds the engine and the idempotency table from a data
// directory at start: the newest snapshot that verifies (falling back to the
// previous one), then every WAL record after it, applied through
// wal::ApplyRecord exactly as the live server applied it. Never reads the
// clock.
//
// What happens at the end of the log depends on the mode (RELIABILITY.md 2):
//   tolerate-torn-tail (default)  a torn tail is truncated and reported;
//                                 corruption refuses to start
//   point-in-time                 corruption: the state stops at the last
//                                 good record; everything after it is moved
//                                 into data_dir/wal-discarded-<LSN>/ and
//                                 reported
//   absolute                      any torn tail or corruption refuses
// A refusal is a CORRUPTION status whose message names the segment, the
// offset and the `tally-wal` command to run.

#ifndef TALLY_STORAGE_RECOVERY_H_
#define TALLY_STORAGE_RECOVERY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "protocol/result.h"
#include "storage/dedupe_table.h"
#include "storage/engine.h"
#include "storage/file_system.h"
#include "storage/wal_reader.h"

namespace tally {

enum class RecoveryMode : uint8_t {
  kTolerateTornTail,
  kPointInTime,
  kAbsolute
};

// "tolerate-torn-tail", "point-in-time", "absolute".
const char* RecoveryModeName(RecoveryMode mode);
Result<RecoveryMode> ParseRecoveryMode(std::string_view name);

struct RecoveryOptions {
  FileSystem* fs = nullptr;
  std::string data_dir;
  RecoveryMode mode = RecoveryMode::kTolerateTornTail;
  // hash_seed is replaced by the persisted one when there is any state.
  EngineOptions engine;
  DedupeOptions dedupe;
};

struct RecoveryReport {
  RecoveryMode mode = RecoveryMode::kTolerateTornTail;
  bool fresh = true;     // no snapshot and no WAL record: a new data directory
  std::string snapshot;  // file loaded ("" = none)
  uint64_t snapshot_lsn = 0;
  std::vector<std::string> snapshots_rejected;  // "name: why"
  int temporaries_removed = 0;
  uint64_t records_replayed = 0;
  uint64_t bytes_replayed = 0;
  uint64_t last_lsn = 0;
  double seconds = 0;
  wal::LogEnd end = wal::LogEnd::kClean;
  std::string end_position;  // "segment S offset O": where the log ends
  std::string reason;
  uint64_t truncated_bytes = 0;    // torn tail removed
  uint64_t discarded_records = 0;  // point-in-time: records moved aside
  uint64_t discarded_bytes = 0;
  std::string moved_aside_to;

  // One line for the log and INFO.
  std::string Summary() const;
};

struct Recovered {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<DedupeTable> dedupe;
  uint64_t hash_seed = 0;
  uint64_t next_lsn = 1;
  int64_t last_time_ms = 0;  // time of the last record (or snapshot)
  std::vector<wal::SegmentFile> segments;  // left in the WAL directory
  RecoveryReport report;
};

Result<Recovered> Recover(const RecoveryOptions& options);

// Moves everything after the end of the valid log described by `report`
// (from ReadWal on data_dir's WAL) into data_dir/wal-discarded-<LSN>/, then
// cuts the end segment there. What point-in-time recovery and `tally-wal
// repair` do. *moved_to gets the directory.
Status DiscardWalTail(FileSystem* fs, const std::string& data_dir,
                      const wal::ReadReport& report, std::string* moved_to);

// Paths inside a data directory.
std::string WalDir(const std::string& data_dir);
std::string SnapshotDir(const std::string& data_dir);

}  // namespace tally

#endif  // TALLY_STORAGE_RECOVERY_H_
