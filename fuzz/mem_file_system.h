// MemFileSystem: an in-memory FileSystem for the fuzz targets and the seed
// generator, so that recovery and the WAL and snapshot writers run on
// fuzzer-made files without touching the disk. Directories are implicit
// name prefixes; CreateDir records them so ListDir of an empty one works.
// Sync and SyncDir do nothing (there is no power to lose).
//
// Test code only (fuzz/); never linked into tallyd.
//
// Thread safety: every method may be called from any thread (one mutex); the
// Journal's writer and snapshot threads use it at the same time.

#ifndef TALLY_FUZZ_MEM_FILE_SYSTEM_H_
#define TALLY_FUZZ_MEM_FILE_SYSTEM_H_

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "storage/file_system.h"

namespace tally::fuzz {

class MemFileSystem final : public FileSystem {
 public:
  // Creates or replaces a file (its parent directories are created too).
  void Put(const std::string& path, std::string data);
  // The file's bytes; empty when absent.
  std::string Get(const std::string& path) const;
  // Every file, by path.
  std::map<std::string, std::string> Files() const;

  Result<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path) override;
  Result<std::string> ReadFile(const std::string& path,
                               uint64_t max_bytes) override;
  Result<size_t> ReadAt(const std::string& path, uint64_t offset,
                        std::span<uint8_t> out) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  bool Exists(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status CreateDir(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status TruncateFile(const std::string& path, uint64_t size) override;

 private:
  class File;
  static std::string Parent(const std::string& path);
  void AddDirsLocked(const std::string& path);

  mutable std::mutex mu_;
  // shared_ptr: an open WritableFile keeps writing to its file after a
  // rename (as an fd would).
  std::map<std::string, std::shared_ptr<std::string>> files_;
  std::set<std::string> dirs_;
};

}  // namespace tally::fuzz

#endif  // TALLY_FUZZ_MEM_FILE_SYSTEM_H_
