// FileSystem: the few file operations the WAL, snapshots and recovery need,
// behind an interface so tests can inject faults (power loss, ENOSPC, EIO)
// deterministically (RELIABILITY.md 1.10). PosixFileSystem is the real one.
//
// Paths are plain strings; the interface never creates directories
// implicitly. Every error is a Status: NOT_PERSISTED for ENOSPC/EDQUOT (the
// disk is full: a definite "nothing was written"), IO_ERROR otherwise, with
// the path and strerror in the message.
//
// Thread safety: a FileSystem may be used from several threads; one
// WritableFile from one thread at a time.

#ifndef TALLY_STORAGE_FILE_SYSTEM_H_
#define TALLY_STORAGE_FILE_SYSTEM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "protocol/result.h"

namespace tally {

// A file written at an explicit position. Data written is in the page cache
// (a killed process keeps it); Sync() makes it survive power loss.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of `data` at `offset` (pwrite, retried on EINTR and short
  // writes). On failure some prefix of `data` may have been written.
  virtual Status WriteAt(uint64_t offset, std::span<const uint8_t> data) = 0;
  // fdatasync. A failure is not retried by callers (fsyncgate): the pages it
  // covered may be lost and marked clean.
  virtual Status Sync() = 0;
  // Reserves [0, size) on disk (fallocate, zero-filled, file size becomes
  // at least `size`), so a later write inside it cannot hit ENOSPC.
  virtual Status Allocate(uint64_t size) = 0;
  // Sets the file's size.
  virtual Status Truncate(uint64_t size) = 0;
  virtual Status Close() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Creates `path` (mode 0600), or opens it if it exists; never truncates.
  virtual Result<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path) = 0;
  // The whole file. IO_ERROR if it is larger than `max_bytes` (checked
  // before reading anything).
  virtual Result<std::string> ReadFile(const std::string& path,
                                       uint64_t max_bytes) = 0;
  // Reads up to out.size() bytes at `offset` into `out`; returns how many,
  // fewer only at the end of the file. (The fault-injection layer needs it
  // to save the synced bytes a write is about to overwrite; the default
  // reads the whole file, so implementations should override it.)
  virtual Result<size_t> ReadAt(const std::string& path, uint64_t offset,
                                std::span<uint8_t> out);
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Creates `dir` with mode 0700; OK if it exists.
  virtual Status CreateDir(const std::string& dir) = 0;
  // fsync of the directory, so created, renamed and removed entries persist.
  virtual Status SyncDir(const std::string& dir) = 0;
  // rename(2): atomic replacement of `to`.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status Remove(const std::string& path) = 0;
  virtual Status TruncateFile(const std::string& path, uint64_t size) = 0;
};

// The real file system. Process-wide singleton; never destroyed.
FileSystem* PosixFileSystem();

// Joins a directory and a name with one '/'.
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace tally

#endif  // TALLY_STORAGE_FILE_SYSTEM_H_
