#include "storage/wal_writer.h"

#include <algorithm>
#include <numeric>

namespace tally::wal {

WalWriter::WalWriter(FileSystem* fs, std::string wal_dir,
                     WalWriterOptions options)
    : fs_(fs), wal_dir_(std::move(wal_dir)), options_(options) {}

WalWriter::~WalWriter() {
  if (file_) (void)file_->Close();
}

Result<std::unique_ptr<WalWriter>> WalWriter::Open(
    FileSystem* fs, std::string wal_dir, uint64_t next_lsn,
    std::vector<SegmentFile> existing, WalWriterOptions options) {
  if (Status s = fs->CreateDir(wal_dir); !s.ok()) return s;
  std::unique_ptr<WalWriter> w(new WalWriter(fs, std::move(wal_dir), options));
  for (const SegmentFile& seg : existing) {
    // Recovery may leave the last segment starting at next_lsn (empty);
    // StartSegment replaces it.
    if (seg.first_lsn >= next_lsn) continue;
    Result<uint64_t> size = fs->FileSize(JoinPath(w->wal_dir_, seg.name));
    w->segments_.push_back(seg);
    w->sizes_.push_back(size.ok() ? *size : 0);
  }
  if (Status s = w->StartSegment(next_lsn, 0); !s.ok()) return s;
  return w;
}

Status WalWriter::StartSegment(uint64_t first_lsn, uint64_t min_bytes) {
  if (file_) {
    // Records of the new segment must never outlive the old one's.
    if (Status s = file_->Sync(); !s.ok()) return s;
  }
  const std::string name = SegmentFileName(first_lsn);
  const std::string path = JoinPath(wal_dir_, name);
  const uint64_t bytes = std::max<uint64_t>(options_.segment_bytes,
                                            kSegmentHeaderSize + min_bytes);
  // A leftover file of that name holds no record (recovery said so): start
  // it afresh.
  if (fs_->Exists(path)) {
    if (Status s = fs_->Remove(path); !s.ok()) return s;
  }
  Result<std::unique_ptr<WritableFile>> file = fs_->OpenWritable(path);
  if (!file.ok()) return file.status();
  uint8_t header[kSegmentHeaderSize];
  EncodeSegmentHeader({.first_lsn = first_lsn,
                       .hash_seed = options_.hash_seed,
                       .shard_bits = options_.shard_bits},
                      header);
  Status s = (*file)->Allocate(bytes);
  if (s.ok()) s = (*file)->WriteAt(0, {header, sizeof(header)});
  if (s.ok()) s = (*file)->Sync();
  if (s.ok()) s = fs_->SyncDir(wal_dir_);
  if (!s.ok()) {
    (void)(*file)->Close();
    (void)fs_->Remove(path);
    return s;
  }
  if (file_) (void)file_->Close();
  file_ = std::move(*file);
  offset_ = kSegmentHeaderSize;
  capacity_ = bytes;
  std::lock_guard<std::mutex> lock(mu_);
  segments_.push_back({name, first_lsn});
  sizes_.push_back(bytes);
  return Status::Ok();
}

Status WalWriter::Append(std::string_view records, uint64_t first_lsn,
                         uint64_t last_lsn) {
  (void)last_lsn;
  if (dirty_end_ > offset_) {
    // Part of a failed append is still here. Records written over its start
    // would leave the rest behind them, which is corruption once this
    // segment is not the last: zero it first.
    const std::string zeros(dirty_end_ - offset_, '\0');
    if (Status s = file_->WriteAt(
            offset_,
            {reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size()});
        !s.ok()) {
      return s;
    }
    dirty_end_ = 0;
  }
  if (offset_ + records.size() > capacity_) {
    if (Status s = StartSegment(first_lsn, records.size()); !s.ok()) return s;
  }
  Status s = file_->WriteAt(
      offset_,
      {reinterpret_cast<const uint8_t*>(records.data()), records.size()});
  if (!s.ok()) {
    // Zero what may have landed, so no partial record stays readable where
    // the retried records will go. Allocated space: this cannot hit ENOSPC.
    const std::string zeros(records.size(), '\0');
    if (!file_
             ->WriteAt(offset_, {reinterpret_cast<const uint8_t*>(zeros.data()),
                                 zeros.size()})
             .ok()) {
      dirty_end_ = std::max(dirty_end_, offset_ + records.size());
    }
    return s;
  }
  offset_ += records.size();
  return Status::Ok();
}

Status WalWriter::Sync() { return file_->Sync(); }

Result<int> WalWriter::RemoveSegmentsBelow(uint64_t lsn) {
  std::vector<std::string> doomed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Segment i holds LSNs [first_i, first_{i+1}); the current one is kept.
    size_t n = 0;
    while (n + 1 < segments_.size() && segments_[n + 1].first_lsn <= lsn + 1) {
      ++n;
    }
    for (size_t i = 0; i < n; ++i) doomed.push_back(segments_[i].name);
    segments_.erase(segments_.begin(), segments_.begin() + n);
    sizes_.erase(sizes_.begin(), sizes_.begin() + n);
  }
  for (const std::string& name : doomed) {
    if (Status s = fs_->Remove(JoinPath(wal_dir_, name)); !s.ok()) return s;
  }
  if (!doomed.empty()) {
    if (Status s = fs_->SyncDir(wal_dir_); !s.ok()) return s;
  }
  return static_cast<int>(doomed.size());
}

uint64_t WalWriter::DiskBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::accumulate(sizes_.begin(), sizes_.end(), uint64_t{0});
}

size_t WalWriter::SegmentCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return segments_.size();
}

std::string WalWriter::current_segment() const {
  std::lock_guard<std::mutex> lock(mu_);
  return segments_.empty() ? std::string() : segments_.back().name;
}

}  // namespace tally::wal
