#include "storage/restore.h"

#include "storage/recovery.h"
#include "storage/snapshot.h"
#include "storage/wal_writer.h"

namespace tally {

Result<RestoreReport> RestoreSnapshot(FileSystem* fs,
                                      const std::string& snapshot_path,
                                      const std::string& data_dir,
                                      uint32_t shard_bits) {
  Result<snapshot::Snapshot> snap = snapshot::Read(fs, snapshot_path);
  if (!snap.ok()) {
    return Status(snap.status().code(),
                  "cannot restore " + snapshot_path + ": " +
                      std::string(snap.status().message()));
  }
  if (fs->Exists(data_dir)) {
    Result<std::vector<std::string>> entries = fs->ListDir(data_dir);
    if (!entries.ok()) return entries.status();
    if (!entries->empty()) {
      return Status::InvalidArgument(
          "cannot restore into " + data_dir +
          ": it is not empty (restore into a new directory, then point "
          "--data_dir at it)");
    }
  } else if (Status s = fs->CreateDir(data_dir); !s.ok()) {
    return s;
  }
  const std::string snap_dir = SnapshotDir(data_dir);
  if (Status s = fs->CreateDir(snap_dir); !s.ok()) return s;
  // Written anew rather than copied: the same atomic write tallyd uses
  // (tmp, fsync, rename, directory fsync).
  if (Status s =
          snapshot::Write(fs, snap_dir, snap->meta, snap->engine, snap->dedupe);
      !s.ok()) {
    return Status(s.code(), "restore into " + data_dir +
                                " failed writing the snapshot: " +
                                std::string(s.message()));
  }
  wal::WalWriterOptions wal_options;
  wal_options.hash_seed = snap->meta.hash_seed;
  wal_options.shard_bits = shard_bits;
  Result<std::unique_ptr<wal::WalWriter>> writer = wal::WalWriter::Open(
      fs, WalDir(data_dir), snap->meta.lsn + 1, {}, wal_options);
  if (!writer.ok()) {
    return Status(writer.status().code(),
                  "restore into " + data_dir + " failed creating the WAL: " +
                      std::string(writer.status().message()));
  }
  writer->reset();  // the segment and its directory are synced by Open
  if (Status s = fs->SyncDir(data_dir); !s.ok()) return s;
  return RestoreReport{
      .lsn = snap->meta.lsn,
      .time_ms = snap->meta.time_ms,
      .bytes = snap->file.size(),
      .snapshot = JoinPath(snap_dir, snapshot::FileName(snap->meta.lsn))};
}

}  // namespace tally
