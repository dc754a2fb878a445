#include "storage/recovery.h"

#include <chrono>
#include <sstream>

#include "storage/boot_clock.h"
#include "storage/snapshot.h"
#include "storage/wal_record.h"

namespace tally {

namespace {

Status Refuse(const RecoveryOptions& options, const wal::ReadReport& rep,
              const std::string& what) {
  return Status(
      Code::kCorruption,
      what + " at " + wal::DescribePosition(rep.end_segment, rep.end_offset) +
          " of " + WalDir(options.data_dir) + ": " + rep.reason + ". " +
          std::to_string(rep.discarded_records) + " valid-looking records (" +
          std::to_string(rep.discarded_bytes) +
          " bytes) follow it. Nothing was changed. Inspect with `tally-wal "
          "check " +
          options.data_dir +
          "`; then either start with --recovery=point-in-time (keeps the "
          "state up to the last good record and moves the rest aside) or "
          "run `tally-wal repair " +
          options.data_dir + "`.");
}

// fdatasync of a file cut with TruncateFile: until then the cut may not
// survive a power loss, and the bytes it removed (a torn tail) would come
// back in a segment that is no longer the last one.
Status SyncFile(FileSystem* fs, const std::string& path) {
  Result<std::unique_ptr<WritableFile>> file = fs->OpenWritable(path);
  if (!file.ok()) return file.status();
  Status s = (*file)->Sync();
  const Status closed = (*file)->Close();
  return s.ok() ? closed : s;
}

}  // namespace

Status DiscardWalTail(FileSystem* fs, const std::string& data_dir,
                      const wal::ReadReport& rep, std::string* moved_to) {
  const std::string wal_dir = WalDir(data_dir);
  const std::string aside =
      JoinPath(data_dir, "wal-discarded-" + std::to_string(rep.last_lsn));
  if (Status s = fs->CreateDir(aside); !s.ok()) return s;
  const std::string end_path = JoinPath(wal_dir, rep.end_segment);
  // Nothing of the end segment is kept (its header is bad, or segments
  // before it are missing): move it aside whole. Cut to zero bytes, it would
  // stay named after an LSN the server will write past, and a later restart
  // would take it for a corrupt segment in the middle of the log.
  const bool whole = rep.end_offset == 0;
  Result<std::string> data = whole ? Result<std::string>(std::string())
                                   : fs->ReadFile(end_path, uint64_t{4} << 30);
  if (!data.ok()) return data.status();
  if (!whole && rep.end_offset < data->size()) {
    Result<std::unique_ptr<WritableFile>> tail = fs->OpenWritable(JoinPath(
        aside, rep.end_segment + ".from-" + std::to_string(rep.end_offset)));
    if (!tail.ok()) return tail.status();
    const std::string_view rest =
        std::string_view(*data).substr(rep.end_offset);
    Status s = (*tail)->Truncate(0);
    if (s.ok()) {
      s = (*tail)->WriteAt(
          0, {reinterpret_cast<const uint8_t*>(rest.data()), rest.size()});
    }
    if (s.ok()) s = (*tail)->Sync();
    (void)(*tail)->Close();
    if (!s.ok()) return s;
  }
  for (const std::string& name : rep.later_segments) {
    if (Status s = fs->Rename(JoinPath(wal_dir, name), JoinPath(aside, name));
        !s.ok()) {
      return s;
    }
  }
  if (whole) {
    if (Status s = fs->Rename(end_path, JoinPath(aside, rep.end_segment));
        !s.ok()) {
      return s;
    }
  }
  if (Status s = fs->SyncDir(aside); !s.ok()) return s;
  if (!whole) {
    if (Status s = fs->TruncateFile(end_path, rep.end_offset); !s.ok()) {
      return s;
    }
    if (Status s = SyncFile(fs, end_path); !s.ok()) return s;
  }
  if (Status s = fs->SyncDir(wal_dir); !s.ok()) return s;
  *moved_to = aside;
  return Status::Ok();
}

const char* RecoveryModeName(RecoveryMode mode) {
  switch (mode) {
    case RecoveryMode::kTolerateTornTail:
      return "tolerate-torn-tail";
    case RecoveryMode::kPointInTime:
      return "point-in-time";
    case RecoveryMode::kAbsolute:
      return "absolute";
  }
  return "?";
}

Result<RecoveryMode> ParseRecoveryMode(std::string_view name) {
  for (RecoveryMode m : {RecoveryMode::kTolerateTornTail,
                         RecoveryMode::kPointInTime, RecoveryMode::kAbsolute}) {
    if (name == RecoveryModeName(m)) return m;
  }
  return Status::InvalidArgument(
      "unknown recovery mode '" + std::string(name) +
      "' (tolerate-torn-tail, point-in-time, absolute)");
}

std::string WalDir(const std::string& data_dir) {
  return JoinPath(data_dir, wal::kWalDirName);
}
std::string SnapshotDir(const std::string& data_dir) {
  return JoinPath(data_dir, snapshot::kDirName);
}

std::string RecoveryReport::Summary() const {
  std::ostringstream out;
  out << "recovery mode=" << RecoveryModeName(mode);
  if (fresh) {
    out << " fresh data directory";
    return out.str();
  }
  out << " snapshot=" << (snapshot.empty() ? "none" : snapshot)
      << " snapshot_lsn=" << snapshot_lsn
      << " records_replayed=" << records_replayed
      << " bytes_replayed=" << bytes_replayed << " last_lsn=" << last_lsn
      << " seconds=" << seconds;
  if (!snapshots_rejected.empty()) {
    out << " snapshots_rejected=" << snapshots_rejected.size() << " ("
        << snapshots_rejected.front() << ")";
  }
  if (temporaries_removed > 0) {
    out << " stray_temporaries_removed=" << temporaries_removed;
  }
  if (end == wal::LogEnd::kTornTail) {
    out << " torn_tail_truncated_bytes=" << truncated_bytes << " at "
        << end_position << " (" << reason << ")";
  } else if (end == wal::LogEnd::kCorrupt) {
    out << " corruption at " << end_position << " (" << reason
        << "); discarded_records=" << discarded_records
        << " discarded_bytes=" << discarded_bytes
        << " moved_to=" << moved_aside_to;
  }
  return out.str();
}

Result<Recovered> Recover(const RecoveryOptions& options) {
  const auto started = BootClock::now();
  FileSystem* fs = options.fs;
  const std::string wal_dir = WalDir(options.data_dir);
  const std::string snap_dir = SnapshotDir(options.data_dir);
  Recovered out;
  RecoveryReport& report = out.report;
  report.mode = options.mode;
  if (Status s = fs->CreateDir(options.data_dir); !s.ok()) return s;
  Result<int> temps = snapshot::RemoveTemporaries(fs, snap_dir);
  if (!temps.ok()) return temps.status();
  report.temporaries_removed = *temps;

  Result<std::vector<snapshot::SnapshotFile>> snaps =
      snapshot::List(fs, snap_dir);
  if (!snaps.ok()) return snaps.status();
  Result<std::vector<wal::SegmentFile>> segments =
      wal::ListSegments(fs, wal_dir);
  if (!segments.ok()) return segments.status();

  // The key-hash seed: the snapshot's, else the WAL's (sweep records name
  // shards), else the caller's fresh one.
  uint64_t seed = options.engine.hash_seed;
  if (!segments->empty()) {
    Result<std::string> first = fs->ReadFile(
        JoinPath(wal_dir, segments->front().name), uint64_t{4} << 30);
    wal::SegmentHeader sh;
    if (first.ok() && first->size() >= wal::kSegmentHeaderSize &&
        wal::DecodeSegmentHeader(
            reinterpret_cast<const uint8_t*>(first->data()), &sh)) {
      seed = sh.hash_seed;
      // Sweep records name shards: replaying them into a different shard
      // count would expire other keys than the server did.
      if (sh.shard_bits != options.engine.shard_bits) {
        return Status::InvalidArgument(
            "the WAL was written with 2^" + std::to_string(sh.shard_bits) +
            " shards and this engine has 2^" +
            std::to_string(options.engine.shard_bits) +
            "; start with the same shard count");
      }
    }
  }
  if (segments->empty() && !snaps->empty()) {
    // tallyd always keeps the segment it writes to: snapshots without any
    // segment mean the WAL directory was emptied, and whatever was logged
    // after the snapshot is gone. Say so rather than start without it.
    return Status(Code::kCorruption,
                  "snapshots exist in " + snap_dir + " but " + wal_dir +
                      " holds no WAL segment: the WAL was removed, so the "
                      "records after the last snapshot are lost. Inspect "
                      "with `tally-wal check " +
                      options.data_dir +
                      "` and restore the WAL directory from a backup.");
  }

  // Newest snapshot that verifies and loads; each failure falls back to the
  // previous one (whose WAL is kept for that).
  snapshot::Snapshot loaded;
  bool have_snapshot = false;
  for (auto it = snaps->rbegin(); it != snaps->rend(); ++it) {
    const std::string path = JoinPath(snap_dir, it->name);
    Result<snapshot::Snapshot> snap = snapshot::Read(fs, path);
    if (snap.ok() && snap->meta.lsn != it->lsn) {
      snap = Status(Code::kCorruption, "header LSN " +
                                           std::to_string(snap->meta.lsn) +
                                           " does not match its file name");
    }
    if (!snap.ok()) {
      report.snapshots_rejected.push_back(it->name + ": " +
                                          std::string(snap.status().message()));
      continue;
    }
    EngineOptions engine_options = options.engine;
    engine_options.hash_seed = snap->meta.hash_seed;
    auto engine = std::make_unique<Engine>(engine_options);
    auto dedupe = std::make_unique<DedupeTable>(options.dedupe);
    Status s = engine->LoadFrom(snap->engine);
    if (s.code() == Code::kInvalidArgument) {
      // Not damage: the configuration no longer fits the data.
      return Status::InvalidArgument("cannot load snapshot " + path + ": " +
                                     std::string(s.message()));
    }
    if (s.ok()) s = dedupe->LoadFrom(snap->dedupe);
    if (!s.ok()) {
      report.snapshots_rejected.push_back(it->name + ": " +
                                          std::string(s.message()));
      continue;
    }
    out.engine = std::move(engine);
    out.dedupe = std::move(dedupe);
    seed = snap->meta.hash_seed;
    loaded = std::move(*snap);
    have_snapshot = true;
    report.snapshot = it->name;
    report.snapshot_lsn = loaded.meta.lsn;
    out.last_time_ms = loaded.meta.time_ms;
    break;
  }
  if (!snaps->empty() && !have_snapshot) {
    // Starting from the WAL alone would need it from LSN 1; ReadWal checks.
    report.fresh = false;
  }
  if (!have_snapshot) {
    EngineOptions engine_options = options.engine;
    engine_options.hash_seed = seed;
    out.engine = std::make_unique<Engine>(engine_options);
    out.dedupe = std::make_unique<DedupeTable>(options.dedupe);
  }
  out.hash_seed = seed;

  const wal::State state{out.engine.get(), out.dedupe.get()};
  wal::Replayer replayer(state);
  wal::ReadOptions read_options;
  read_options.after_lsn = report.snapshot_lsn;
  read_options.need_from_lsn = report.snapshot_lsn;
  Result<wal::ReadReport> read = wal::ReadWal(
      fs, wal_dir, read_options,
      [&](const wal::RecordHeader& h, std::string_view payload) -> Status {
        Status s = replayer.Apply(static_cast<wal::RecordType>(h.type),
                                  h.time_ms, payload);
        if (!s.ok()) {
          return Status(Code::kCorruption, "record LSN " +
                                               std::to_string(h.lsn) +
                                               " has a valid checksum but " +
                                               std::string(s.message()));
        }
        ++report.records_replayed;
        report.bytes_replayed += wal::kRecordHeaderSize + payload.size();
        out.last_time_ms = std::max(out.last_time_ms, h.time_ms);
        return Status::Ok();
      });
  replayer.Flush();
  if (!read.ok()) return read.status();
  const wal::ReadReport& rep = *read;
  report.end = rep.end;
  report.reason = rep.reason;
  if (!rep.end_segment.empty()) {
    report.end_position =
        wal::DescribePosition(rep.end_segment, rep.end_offset);
  }
  report.last_lsn = std::max(report.snapshot_lsn, rep.last_lsn);

  if (rep.end == wal::LogEnd::kTornTail) {
    if (options.mode == RecoveryMode::kAbsolute) {
      return Refuse(options, rep, "torn tail (--recovery=absolute refuses)");
    }
    const std::string path = JoinPath(wal_dir, rep.end_segment);
    Status s = rep.end_offset == 0 ? fs->Remove(path)
                                   : fs->TruncateFile(path, rep.end_offset);
    if (s.ok() && rep.end_offset != 0) s = SyncFile(fs, path);
    if (s.ok()) s = fs->SyncDir(wal_dir);
    if (!s.ok()) return s;
    report.truncated_bytes = rep.discarded_bytes;
  } else if (rep.end == wal::LogEnd::kCorrupt) {
    if (options.mode != RecoveryMode::kPointInTime) {
      return Refuse(options, rep, "WAL corruption");
    }
    if (Status s =
            DiscardWalTail(fs, options.data_dir, rep, &report.moved_aside_to);
        !s.ok()) {
      return s;
    }
    report.discarded_records = rep.discarded_records;
    report.discarded_bytes = rep.discarded_bytes;
  }
  report.fresh =
      !have_snapshot && rep.records == 0 && snaps->empty() && segments->empty();
  out.next_lsn = report.last_lsn + 1;
  Result<std::vector<wal::SegmentFile>> left = wal::ListSegments(fs, wal_dir);
  if (!left.ok()) return left.status();
  out.segments = std::move(*left);
  report.seconds =
      std::chrono::duration<double>(BootClock::now() - started).count();
  return out;
}

}  // namespace tally
