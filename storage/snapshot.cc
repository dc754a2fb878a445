#include "storage/snapshot.h"

#include <charconv>
#include <cstdio>
#include <cstring>

#include "storage/crc32c.h"
#include "storage/kill_point.h"

namespace tally::snapshot {

namespace {

constexpr uint64_t kMaxSnapshotFile = uint64_t{64} << 30;

void Put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
void Put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
uint64_t Get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
uint32_t Get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

bool ParseName(std::string_view name, uint64_t* lsn) {
  const std::string_view suffix = kSuffix;
  if (name.size() != 20 + suffix.size() || !name.ends_with(suffix)) {
    return false;
  }
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + 20, *lsn);
  return ec == std::errc() && ptr == name.data() + 20;
}

Status Corrupt(const std::string& path, const std::string& why) {
  return Status(Code::kCorruption, "snapshot " + path + ": " + why);
}

}  // namespace

std::string FileName(uint64_t lsn) {
  char name[40];
  std::snprintf(name, sizeof(name), "%020llu%s",
                static_cast<unsigned long long>(lsn), kSuffix);
  return name;
}

Result<std::vector<SnapshotFile>> List(FileSystem* fs, const std::string& dir) {
  std::vector<SnapshotFile> out;
  if (!fs->Exists(dir)) return out;
  Result<std::vector<std::string>> names = fs->ListDir(dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    uint64_t lsn = 0;
    if (ParseName(name, &lsn)) out.push_back({name, lsn});
  }
  // Names are zero-padded: sorted by name is sorted by LSN.
  return out;
}

Result<int> RemoveTemporaries(FileSystem* fs, const std::string& dir) {
  if (!fs->Exists(dir)) return 0;
  Result<std::vector<std::string>> names = fs->ListDir(dir);
  if (!names.ok()) return names.status();
  int removed = 0;
  for (const std::string& name : *names) {
    if (!name.ends_with(kTempSuffix)) continue;
    if (Status s = fs->Remove(JoinPath(dir, name)); !s.ok()) return s;
    ++removed;
  }
  if (removed > 0) {
    if (Status s = fs->SyncDir(dir); !s.ok()) return s;
  }
  return removed;
}

Status Write(FileSystem* fs, const std::string& dir, const Meta& meta,
             std::string_view engine, std::string_view dedupe) {
  if (Status s = fs->CreateDir(dir); !s.ok()) return s;
  uint8_t header[kHeaderSize] = {};
  Put64(header, kMagic);
  Put32(header + 8, kFormatVersion);
  Put32(header + 12, kHeaderSize);
  Put64(header + 16, meta.lsn);
  Put64(header + 24, meta.hash_seed);
  Put64(header + 32, static_cast<uint64_t>(meta.time_ms));
  Put64(header + 40, engine.size());
  Put64(header + 48, dedupe.size());
  uint32_t body = crc32c::Value(engine.data(), engine.size());
  body = crc32c::Extend(body, dedupe.data(), dedupe.size());
  Put32(header + 56, body);
  Put32(header + 60, crc32c::Value(header, 60));

  const std::string final_path = JoinPath(dir, FileName(meta.lsn));
  const std::string tmp_path = final_path + ".tmp";
  Result<std::unique_ptr<WritableFile>> file = fs->OpenWritable(tmp_path);
  if (!file.ok()) return file.status();
  WritableFile& f = **file;
  Status s = f.Truncate(0);
  if (s.ok()) s = f.WriteAt(0, {header, kHeaderSize});
  if (s.ok()) {
    s = f.WriteAt(kHeaderSize, {reinterpret_cast<const uint8_t*>(engine.data()),
                                engine.size()});
  }
  if (s.ok()) {
    s = f.WriteAt(
        kHeaderSize + engine.size(),
        {reinterpret_cast<const uint8_t*>(dedupe.data()), dedupe.size()});
  }
  TALLY_KILL_POINT("snap.before_fsync");
  if (s.ok()) s = f.Sync();
  const Status closed = f.Close();
  if (s.ok()) s = closed;
  if (s.ok()) s = fs->Rename(tmp_path, final_path);
  TALLY_KILL_POINT("snap.after_rename_before_dirsync");
  if (s.ok()) s = fs->SyncDir(dir);
  if (!s.ok()) (void)fs->Remove(tmp_path);
  return s;
}

Result<Snapshot> Read(FileSystem* fs, const std::string& path) {
  Snapshot snap;
  Result<std::string> file = fs->ReadFile(path, kMaxSnapshotFile);
  if (!file.ok()) return file.status();
  snap.file = std::move(*file);
  const auto* p = reinterpret_cast<const uint8_t*>(snap.file.data());
  if (snap.file.size() < kHeaderSize)
    return Corrupt(path, "shorter than its header");
  if (Get64(p) != kMagic) return Corrupt(path, "bad magic");
  if (Get32(p + 60) != crc32c::Value(p, 60)) {
    return Corrupt(path, "bad header checksum");
  }
  if (Get32(p + 8) != kFormatVersion || Get32(p + 12) != kHeaderSize) {
    return Corrupt(
        path, "unsupported format version " + std::to_string(Get32(p + 8)));
  }
  const uint64_t engine_len = Get64(p + 40);
  const uint64_t dedupe_len = Get64(p + 48);
  const uint64_t body = snap.file.size() - kHeaderSize;
  if (engine_len > body || dedupe_len != body - engine_len) {
    return Corrupt(path, "length " + std::to_string(snap.file.size()) +
                             " does not match its header (truncated?)");
  }
  if (crc32c::Value(p + kHeaderSize, body) != Get32(p + 56)) {
    return Corrupt(path, "bad body checksum");
  }
  snap.meta.lsn = Get64(p + 16);
  snap.meta.hash_seed = Get64(p + 24);
  snap.meta.time_ms = static_cast<int64_t>(Get64(p + 32));
  snap.engine = std::string_view(snap.file).substr(kHeaderSize, engine_len);
  snap.dedupe =
      std::string_view(snap.file).substr(kHeaderSize + engine_len, dedupe_len);
  return snap;
}

}  // namespace tally::snapshot
