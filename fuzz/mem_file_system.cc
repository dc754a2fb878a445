#include "fuzz/mem_file_system.h"

#include <algorithm>
#include <cstring>

namespace tally::fuzz {

class MemFileSystem::File final : public WritableFile {
 public:
  File(MemFileSystem* fs, std::shared_ptr<std::string> data)
      : fs_(fs), data_(std::move(data)) {}
  Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (data_->size() < offset + data.size()) {
      data_->resize(offset + data.size(), '\0');
    }
    if (!data.empty())
      std::memcpy(data_->data() + offset, data.data(), data.size());
    return Status::Ok();
  }
  Status Sync() override { return Status::Ok(); }
  Status Allocate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (data_->size() < size) data_->resize(size, '\0');
    return Status::Ok();
  }
  Status Truncate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    data_->resize(size, '\0');
    return Status::Ok();
  }
  Status Close() override { return Status::Ok(); }

 private:
  MemFileSystem* fs_;
  std::shared_ptr<std::string> data_;
};

std::string MemFileSystem::Parent(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

void MemFileSystem::AddDirsLocked(const std::string& path) {
  for (std::string dir = Parent(path); !dir.empty(); dir = Parent(dir)) {
    dirs_.insert(dir);
  }
}

void MemFileSystem::Put(const std::string& path, std::string data) {
  std::lock_guard<std::mutex> lock(mu_);
  AddDirsLocked(path);
  files_[path] = std::make_shared<std::string>(std::move(data));
}

std::string MemFileSystem::Get(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  return it == files_.end() ? std::string() : *it->second;
}

std::map<std::string, std::string> MemFileSystem::Files() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, std::string> out;
  for (const auto& [path, data] : files_) out[path] = *data;
  return out;
}

Result<std::unique_ptr<WritableFile>> MemFileSystem::OpenWritable(
    const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirs_.contains(Parent(path))) {
    return Status(Code::kIoError, "open " + path + ": no such directory");
  }
  std::shared_ptr<std::string>& data = files_[path];
  if (!data) data = std::make_shared<std::string>();
  return std::unique_ptr<WritableFile>(std::make_unique<File>(this, data));
}

Result<std::string> MemFileSystem::ReadFile(const std::string& path,
                                            uint64_t max_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) {
    return Status(Code::kIoError, "read " + path + ": no such file");
  }
  if (it->second->size() > max_bytes) {
    return Status(Code::kIoError, "read " + path + ": too large");
  }
  return *it->second;
}

Result<size_t> MemFileSystem::ReadAt(const std::string& path, uint64_t offset,
                                     std::span<uint8_t> out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) {
    return Status(Code::kIoError, "read " + path + ": no such file");
  }
  const std::string& data = *it->second;
  if (offset >= data.size()) return size_t{0};
  const size_t n = std::min<uint64_t>(out.size(), data.size() - offset);
  std::memcpy(out.data(), data.data() + offset, n);
  return n;
}

Result<uint64_t> MemFileSystem::FileSize(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) {
    return Status(Code::kIoError, "stat " + path + ": no such file");
  }
  return static_cast<uint64_t>(it->second->size());
}

bool MemFileSystem::Exists(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  return files_.contains(path) || dirs_.contains(path);
}

Result<std::vector<std::string>> MemFileSystem::ListDir(
    const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirs_.contains(dir)) {
    return Status(Code::kIoError, "list " + dir + ": no such directory");
  }
  std::set<std::string> names;
  const std::string prefix = dir + "/";
  for (const auto& [path, data] : files_) {
    if (path.starts_with(prefix) &&
        path.find('/', prefix.size()) == std::string::npos) {
      names.insert(path.substr(prefix.size()));
    }
  }
  for (const std::string& d : dirs_) {
    if (d.starts_with(prefix) &&
        d.find('/', prefix.size()) == std::string::npos) {
      names.insert(d.substr(prefix.size()));
    }
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Status MemFileSystem::CreateDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  AddDirsLocked(dir + "/x");
  return Status::Ok();
}

Status MemFileSystem::SyncDir(const std::string&) { return Status::Ok(); }

Status MemFileSystem::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(from);
  if (it == files_.end()) {
    return Status(Code::kIoError, "rename " + from + ": no such file");
  }
  std::shared_ptr<std::string> data = it->second;
  files_.erase(it);
  AddDirsLocked(to);
  files_[to] = std::move(data);
  return Status::Ok();
}

Status MemFileSystem::Remove(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (files_.erase(path) == 0 && dirs_.erase(path) == 0) {
    return Status(Code::kIoError, "remove " + path + ": no such file");
  }
  return Status::Ok();
}

Status MemFileSystem::TruncateFile(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) {
    return Status(Code::kIoError, "truncate " + path + ": no such file");
  }
  it->second->resize(size, '\0');
  return Status::Ok();
}

}  // namespace tally::fuzz
