#include "storage/fault_injection_fs.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <thread>
#include <utility>

namespace tally {
namespace {

constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kMaxGarbageBytes = 4096;

// The directory whose SyncDir persists `path`'s entry.
std::string ParentDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string NormalizeDir(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir.empty() ? "." : dir;
}

Status StaleFile() {
  return Status(Code::kIoError,
                "file opened before a simulated power loss; reopen it");
}

}  // namespace

// The WritableFile handed out: forwards to the base file and records what
// it did in the owning file system, under its lock.
class FaultInjectionFileSystem::File final : public WritableFile {
 public:
  File(FaultInjectionFileSystem* fs, std::unique_ptr<WritableFile> base,
       uint64_t inode, uint64_t epoch)
      : fs_(fs), base_(std::move(base)), inode_(inode), epoch_(epoch) {}

  Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (epoch_ != fs_->epoch_) return StaleFile();
    size_t allowed = data.size();
    Status injected;
    if (fs_->write_budget_ && *fs_->write_budget_ < data.size()) {
      allowed = static_cast<size_t>(*fs_->write_budget_);
      injected = fs_->InjectedWriteFailureLocked();
    }
    if (allowed == 0) return injected;
    Inode* inode = fs_->FindInodeLocked(inode_);
    if (inode != nullptr && !inode->path.empty()) {
      Status s = fs_->SaveSyncedBytesLocked(*inode, offset, offset + allowed);
      if (!s.ok()) return s;
    }
    Status s = base_->WriteAt(offset, data.first(allowed));
    // Recorded even on failure: a failed pwrite may have written a prefix.
    if (inode != nullptr) {
      inode->unsynced_writes.push_back({offset, offset + allowed});
      inode->size = std::max(inode->size, offset + allowed);
      inode->changed = true;
    }
    if (!s.ok()) return s;
    if (fs_->write_budget_) *fs_->write_budget_ -= allowed;
    fs_->counters_.bytes_written += allowed;
    return injected;
  }

  Status Sync() override {
    std::chrono::microseconds delay;
    {
      std::lock_guard<std::mutex> lock(fs_->mu_);
      delay = fs_->sync_delay_;
      ++fs_->counters_.sync_calls;
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (epoch_ != fs_->epoch_) return StaleFile();
    if (fs_->failing_syncs_ > 0) {
      --fs_->failing_syncs_;
      ++fs_->counters_.failed_syncs;
      return Status(Code::kIoError, "injected fdatasync failure (EIO)");
    }
    Status s = base_->Sync();
    if (!s.ok()) return s;
    ++fs_->counters_.syncs;
    if (Inode* inode = fs_->FindInodeLocked(inode_)) {
      inode->synced_size = inode->size;
      inode->saved.clear();
      inode->unsynced_writes.clear();
      inode->changed = false;
    }
    return Status::Ok();
  }

  Status Allocate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (epoch_ != fs_->epoch_) return StaleFile();
    if (fs_->write_budget_ && *fs_->write_budget_ == 0) {
      return fs_->InjectedWriteFailureLocked();
    }
    Status s = base_->Allocate(size);
    if (!s.ok()) return s;
    // Bytes below the old size are untouched, so nothing needs saving; the
    // growth is undone by going back to the synced size.
    if (Inode* inode = fs_->FindInodeLocked(inode_)) {
      if (size > inode->size) {
        inode->size = size;
        inode->changed = true;
      }
    }
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (epoch_ != fs_->epoch_) return StaleFile();
    Inode* inode = fs_->FindInodeLocked(inode_);
    return fs_->TruncateLocked(inode, size, base_.get(),
                               inode ? inode->path : "");
  }

  Status Close() override { return base_->Close(); }

 private:
  FaultInjectionFileSystem* const fs_;
  const std::unique_ptr<WritableFile> base_;
  const uint64_t inode_;
  const uint64_t epoch_;
};

FaultInjectionFileSystem::FaultInjectionFileSystem(FileSystem* base)
    : base_(base) {}

FaultInjectionFileSystem::~FaultInjectionFileSystem() = default;

// ---- Error injection and counters ----------------------------------------

void FaultInjectionFileSystem::FailWritesAfter(uint64_t bytes, Code code) {
  std::lock_guard<std::mutex> lock(mu_);
  write_budget_ = bytes;
  write_failure_code_ = code;
}

void FaultInjectionFileSystem::ClearWriteFailure() {
  std::lock_guard<std::mutex> lock(mu_);
  write_budget_.reset();
}

void FaultInjectionFileSystem::FailNextSyncs(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  failing_syncs_ = std::max(n, 0);
}

void FaultInjectionFileSystem::SetSyncDelay(std::chrono::microseconds delay) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_delay_ = delay;
}

FaultInjectionFileSystem::Counters FaultInjectionFileSystem::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

Status FaultInjectionFileSystem::InjectedWriteFailureLocked() const {
  if (write_failure_code_ == Code::kNotPersisted) {
    return Status(Code::kNotPersisted,
                  "injected ENOSPC: No space left on device");
  }
  if (write_failure_code_ == Code::kIoError) {
    return Status(Code::kIoError, "injected EIO: Input/output error");
  }
  return Status(write_failure_code_, "injected write failure");
}

// ---- FileSystem ------------------------------------------------------------

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::OpenWritable(
    const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool existed = base_->Exists(path);
  Result<std::unique_ptr<WritableFile>> file = base_->OpenWritable(path);
  if (!file.ok()) return file.status();
  uint64_t id;
  if (existed) {
    Result<uint64_t> r = InodeForPathLocked(path);
    if (!r.ok()) return r.status();
    id = *r;
  } else {
    id = next_inode_++;
    inodes_[id].path = path;
    by_path_[path] = id;
    // A second creation keeps the first recorded durable state.
    durable_names_.try_emplace(path, std::nullopt);
  }
  return std::unique_ptr<WritableFile>(
      std::make_unique<File>(this, std::move(file).value(), id, epoch_));
}

Result<std::string> FaultInjectionFileSystem::ReadFile(const std::string& path,
                                                       uint64_t max_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  return base_->ReadFile(path, max_bytes);
}

Result<size_t> FaultInjectionFileSystem::ReadAt(const std::string& path,
                                                uint64_t offset,
                                                std::span<uint8_t> out) {
  std::lock_guard<std::mutex> lock(mu_);
  return base_->ReadAt(path, offset, out);
}

Result<uint64_t> FaultInjectionFileSystem::FileSize(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  return base_->FileSize(path);
}

bool FaultInjectionFileSystem::Exists(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  return base_->Exists(path);
}

Result<std::vector<std::string>> FaultInjectionFileSystem::ListDir(
    const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  return base_->ListDir(dir);
}

Status FaultInjectionFileSystem::CreateDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  return base_->CreateDir(dir);
}

Status FaultInjectionFileSystem::SyncDir(const std::string& dir) {
  std::chrono::microseconds delay;
  {
    std::lock_guard<std::mutex> lock(mu_);
    delay = sync_delay_;
  }
  if (delay.count() > 0) std::this_thread::sleep_for(delay);
  std::lock_guard<std::mutex> lock(mu_);
  Status s = base_->SyncDir(dir);
  if (!s.ok()) return s;
  ++counters_.dir_syncs;
  const std::string normalized = NormalizeDir(dir);
  std::vector<uint64_t> released;
  for (auto it = durable_names_.begin(); it != durable_names_.end();) {
    if (ParentDir(it->first) == normalized) {
      if (it->second) released.push_back(*it->second);
      it = durable_names_.erase(it);
    } else {
      ++it;
    }
  }
  for (uint64_t id : released) ForgetIfUnreachableLocked(id);
  return Status::Ok();
}

Status FaultInjectionFileSystem::Rename(const std::string& from,
                                        const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  // Let the base report a missing source, and renaming to itself is a no-op.
  if (from == to || !base_->Exists(from)) return base_->Rename(from, to);
  Result<uint64_t> from_id = InodeForPathLocked(from);
  if (!from_id.ok()) return from_id.status();
  std::optional<uint64_t> to_id;
  if (base_->Exists(to)) {
    Result<uint64_t> r = InodeForPathLocked(to);
    if (!r.ok()) return r.status();
    to_id = *r;
  }
  // The file replaced at `to` loses its last name; if a power loss could
  // bring it back, its synced content must be captured while it has one.
  std::optional<std::string> replaced_image;
  if (to_id) {
    auto entry = durable_names_.find(to);
    bool named_by_to = entry == durable_names_.end() || entry->second == *to_id;
    if (named_by_to || DurablyNamedLocked(*to_id, to)) {
      Result<std::string> image = SyncedImageLocked(inodes_[*to_id]);
      if (!image.ok()) return image.status();
      replaced_image = std::move(image).value();
    }
  }
  Status s = base_->Rename(from, to);
  if (!s.ok()) return s;
  durable_names_.try_emplace(from, *from_id);
  durable_names_.try_emplace(to, to_id);
  by_path_.erase(from);
  by_path_[to] = *from_id;
  inodes_[*from_id].path = to;
  if (to_id) {
    Inode& replaced = inodes_[*to_id];
    replaced.path.clear();
    replaced.orphan_image = std::move(replaced_image);
    ForgetIfUnreachableLocked(*to_id);
  }
  return Status::Ok();
}

Status FaultInjectionFileSystem::Remove(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!base_->Exists(path)) return base_->Remove(path);
  Result<uint64_t> id = InodeForPathLocked(path);
  if (!id.ok()) return id.status();
  auto entry = durable_names_.find(path);
  bool named_by_path = entry == durable_names_.end() || entry->second == *id;
  std::optional<std::string> image;
  if (named_by_path || DurablyNamedLocked(*id, path)) {
    Result<std::string> r = SyncedImageLocked(inodes_[*id]);
    if (!r.ok()) return r.status();
    image = std::move(r).value();
  }
  Status s = base_->Remove(path);
  if (!s.ok()) return s;
  durable_names_.try_emplace(path, *id);
  by_path_.erase(path);
  Inode& inode = inodes_[*id];
  inode.path.clear();
  inode.orphan_image = std::move(image);
  ForgetIfUnreachableLocked(*id);
  return Status::Ok();
}

Status FaultInjectionFileSystem::TruncateFile(const std::string& path,
                                              uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!base_->Exists(path)) return base_->TruncateFile(path, size);
  Result<uint64_t> id = InodeForPathLocked(path);
  if (!id.ok()) return id.status();
  return TruncateLocked(FindInodeLocked(*id), size, nullptr, path);
}

// ---- Tracking
// ----------------------------------------------------------------

Result<uint64_t> FaultInjectionFileSystem::InodeForPathLocked(
    const std::string& path) {
  auto it = by_path_.find(path);
  if (it != by_path_.end()) return it->second;
  // First sight of a file: whatever is on disk counts as synced.
  Result<uint64_t> size = base_->FileSize(path);
  if (!size.ok()) return size.status();
  uint64_t id = next_inode_++;
  Inode& inode = inodes_[id];
  inode.path = path;
  inode.size = *size;
  inode.synced_size = *size;
  by_path_[path] = id;
  return id;
}

FaultInjectionFileSystem::Inode* FaultInjectionFileSystem::FindInodeLocked(
    uint64_t id) {
  auto it = inodes_.find(id);
  return it == inodes_.end() ? nullptr : &it->second;
}

Status FaultInjectionFileSystem::SaveSyncedBytesLocked(Inode& inode,
                                                       uint64_t begin,
                                                       uint64_t end) {
  end = std::min(end, inode.synced_size);
  if (begin >= end) return Status::Ok();
  // Bytes in [begin, end) not yet saved still hold their synced value:
  // read each such gap before it is overwritten.
  uint64_t pos = begin;
  auto next = inode.saved.upper_bound(pos);
  if (next != inode.saved.begin()) {
    auto prev = std::prev(next);
    pos = std::max(pos, prev->first + prev->second.size());
  }
  while (pos < end) {
    uint64_t gap_end = end;
    if (next != inode.saved.end()) gap_end = std::min(gap_end, next->first);
    if (pos < gap_end) {
      std::string bytes(gap_end - pos, '\0');
      Result<size_t> got = base_->ReadAt(
          inode.path, pos,
          std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()),
                             bytes.size()));
      if (!got.ok()) return got.status();
      // A short read means the file was changed behind this layer's back;
      // the missing bytes read as zeros, as they would after a truncate.
      inode.saved.emplace_hint(next, pos, std::move(bytes));
    }
    if (next == inode.saved.end()) break;
    pos = std::max(pos, next->first + next->second.size());
    ++next;
  }
  return Status::Ok();
}

Status FaultInjectionFileSystem::TruncateLocked(Inode* inode, uint64_t size,
                                                WritableFile* file_or_null,
                                                const std::string& path) {
  if (inode != nullptr && !inode->path.empty() && size < inode->synced_size) {
    Status s = SaveSyncedBytesLocked(*inode, size,
                                     std::min(inode->size, inode->synced_size));
    if (!s.ok()) return s;
  }
  Status s = file_or_null != nullptr ? file_or_null->Truncate(size)
                                     : base_->TruncateFile(path, size);
  if (!s.ok()) return s;
  if (inode != nullptr) {
    inode->size = size;
    inode->changed = true;
  }
  return Status::Ok();
}

Result<std::string> FaultInjectionFileSystem::SyncedImageLocked(
    const Inode& inode) {
  if (inode.path.empty()) return inode.orphan_image.value_or("");
  Result<std::string> current = base_->ReadFile(inode.path, kNoLimit);
  if (!current.ok()) return current.status();
  std::string image = std::move(current).value();
  if (!inode.changed) return image;
  for (const auto& [offset, bytes] : inode.saved) {
    if (image.size() < offset + bytes.size()) {
      image.resize(offset + bytes.size());
    }
    std::memcpy(image.data() + offset, bytes.data(), bytes.size());
  }
  image.resize(inode.synced_size);
  return image;
}

Result<std::string> FaultInjectionFileSystem::CrashImageLocked(
    const Inode& inode, Mode mode, std::mt19937_64& rng) {
  if (inode.path.empty() || !inode.changed || mode == Mode::kDropUnsynced) {
    return SyncedImageLocked(inode);
  }
  Result<std::string> current = base_->ReadFile(inode.path, kNoLimit);
  if (!current.ok()) return current.status();
  Result<std::string> synced = SyncedImageLocked(inode);
  if (!synced.ok()) return synced.status();
  std::string image = std::move(synced).value();

  if (mode == Mode::kZeroUnsynced) {
    image.resize(current->size());
    for (const Range& r : inode.unsynced_writes) {
      if (r.begin >= image.size()) continue;
      uint64_t end = std::min<uint64_t>(r.end, image.size());
      std::memset(image.data() + r.begin, 0, end - r.begin);
    }
    return image;
  }

  // kGarbageTail: the torn region starts at the lowest unsynced write and
  // stays inside the contiguous run of unsynced bytes there.
  if (inode.unsynced_writes.empty()) return image;
  std::vector<Range> ranges = inode.unsynced_writes;
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  uint64_t begin = ranges[0].begin;
  uint64_t end = ranges[0].end;
  for (const Range& r : ranges) {
    if (r.begin > end) break;
    end = std::max(end, r.end);
  }
  end = std::min<uint64_t>(end, current->size());
  if (end <= begin) return image;
  const uint64_t run = end - begin;
  std::string tail;
  if (rng() % 2 == 0) {
    uint64_t n = 1 + rng() % std::min(run, kMaxGarbageBytes);
    tail.resize(n);
    for (char& c : tail) c = static_cast<char>(rng());
  } else {
    uint64_t n = rng() % (run + 1);
    tail = current->substr(begin, n);
  }
  if (image.size() < begin + tail.size()) image.resize(begin + tail.size());
  std::memcpy(image.data() + begin, tail.data(), tail.size());
  return image;
}

bool FaultInjectionFileSystem::DurablyNamedLocked(
    uint64_t id, const std::string& except) const {
  for (const auto& [name, target] : durable_names_) {
    if (name != except && target == id) return true;
  }
  return false;
}

void FaultInjectionFileSystem::ForgetIfUnreachableLocked(uint64_t id) {
  auto it = inodes_.find(id);
  if (it == inodes_.end() || !it->second.path.empty()) return;
  if (DurablyNamedLocked(id, "")) return;
  inodes_.erase(it);
}

Status FaultInjectionFileSystem::WriteWholeFileLocked(
    const std::string& path, const std::string& content) {
  Result<std::unique_ptr<WritableFile>> file = base_->OpenWritable(path);
  if (!file.ok()) return file.status();
  Status s = (*file)->WriteAt(
      0, std::span<const uint8_t>(
             reinterpret_cast<const uint8_t*>(content.data()), content.size()));
  if (s.ok()) s = (*file)->Truncate(content.size());
  Status closed = (*file)->Close();
  return s.ok() ? closed : s;
}

// ---- Power loss
// --------------------------------------------------------------

Status FaultInjectionFileSystem::SimulatePowerLoss(uint64_t seed, Mode mode) {
  std::lock_guard<std::mutex> lock(mu_);
  std::mt19937_64 rng(seed);

  // Every name that exists now or would after the crash, and the inode it
  // names after the crash (nullopt: absent).
  std::map<std::string, std::optional<uint64_t>> after;
  for (const auto& [path, id] : by_path_) after[path] = id;
  for (const auto& [path, target] : durable_names_) after[path] = target;

  // All images are computed before anything is rewritten: a name may be
  // the only current copy of a file that ends up under another name (an
  // undone swap of two files through renames).
  std::map<uint64_t, std::string> images;
  std::vector<std::string> to_remove;
  std::vector<std::pair<std::string, uint64_t>> to_write;
  for (const auto& [path, target] : after) {
    auto now = by_path_.find(path);
    if (!target) {
      if (now != by_path_.end()) to_remove.push_back(path);
      continue;
    }
    const Inode& inode = inodes_.at(*target);
    bool same = now != by_path_.end() && now->second == *target;
    if (same && !inode.changed) continue;
    if (!images.contains(*target)) {
      Result<std::string> image = CrashImageLocked(inode, mode, rng);
      if (!image.ok()) return image.status();
      images.emplace(*target, std::move(image).value());
    }
    to_write.emplace_back(path, *target);
  }
  for (const std::string& path : to_remove) {
    Status s = base_->Remove(path);
    if (!s.ok()) return s;
  }
  for (const auto& [path, id] : to_write) {
    Status s = WriteWholeFileLocked(path, images.at(id));
    if (!s.ok()) return s;
  }

  // Reboot: what is on disk now is all there is, and all of it is durable.
  inodes_.clear();
  by_path_.clear();
  durable_names_.clear();
  ++epoch_;
  ++counters_.power_losses;
  return Status::Ok();
}

}  // namespace tally
