// FaultInjectionFileSystem: a FileSystem for tests that wraps a real one
// (normally PosixFileSystem() on a temporary directory) and simulates power
// loss and disk errors deterministically (RELIABILITY.md D3, D4, D9). The
// idea is LevelDB's FaultInjectionTestEnv and RocksDB's FaultInjectionTestFS:
// remember what has not been made durable, and undo it on "power loss".
//
// What it tracks, and what a power loss does with it:
//   - file data: the bytes of each file as of its last successful Sync()
//     (the synced size, plus a copy of every synced byte overwritten or
//     truncated away since). Unsynced writes, truncations and allocations
//     are undone as the Mode says.
//   - directory entries: every name created, renamed to/from or removed
//     since the last SyncDir() of its directory goes back to what it was
//     (absent, or the file it named, with that file's synced content).
// Not modelled: directories themselves (CreateDir is durable at once);
// writes through a WritableFile whose file was removed or renamed over
// (they go to the base file system untracked); the Linux behaviour where
// a failed fdatasync drops dirty pages so a later successful one does not
// persist them (callers treat a failed Sync as fatal, RELIABILITY.md 1.7).
//
// Paths must be spelled the same way everywhere (build them with JoinPath);
// "a/./b" and "a/b" are different names to this layer.
//
// Linked only into tests (library tally_storage_testing); never in tallyd.
//
// Thread safety: every method may be called from any thread (one mutex,
// held during the base file system's I/O too, except for sync delays).
// SimulatePowerLoss must not race with other calls in a meaningful test,
// though it is safe to do so.

#ifndef TALLY_STORAGE_FAULT_INJECTION_FS_H_
#define TALLY_STORAGE_FAULT_INJECTION_FS_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "protocol/result.h"
#include "storage/file_system.h"

namespace tally {

class FaultInjectionFileSystem final : public FileSystem {
 public:
  // What a power loss does to data written since a file's last Sync().
  enum class Mode : uint8_t {
    // Gone: the file has exactly its synced content and size.
    kDropUnsynced,
    // The file keeps its current size, but every byte range written since
    // the last Sync reads as zeros (metadata reached the disk, data did
    // not; like ext4 data=writeback).
    kZeroUnsynced,
    // As kDropUnsynced, plus a torn tail where the unsynced data began (the
    // lowest unsynced write): either up to 4 KiB of random bytes or a
    // random-length prefix of what was written there, never beyond the
    // unsynced bytes' contiguous run nor past the pre-crash size.
    kGarbageTail,
  };

  struct Counters {
    uint64_t sync_calls = 0;     // WritableFile::Sync calls entered
    uint64_t syncs = 0;          // successful WritableFile::Sync calls
    uint64_t failed_syncs = 0;   // Sync calls failed by FailNextSyncs
    uint64_t dir_syncs = 0;      // successful SyncDir calls
    uint64_t bytes_written = 0;  // bytes WriteAt passed to the base
    uint64_t power_losses = 0;   // SimulatePowerLoss calls that succeeded
  };

  // `base` is not owned and must outlive this object. Files already on
  // `base` count as synced, entries as dir-synced.
  explicit FaultInjectionFileSystem(FileSystem* base);
  ~FaultInjectionFileSystem() override;

  FaultInjectionFileSystem(const FaultInjectionFileSystem&) = delete;
  FaultInjectionFileSystem& operator=(const FaultInjectionFileSystem&) = delete;

  // Crashes and "reboots": rewrites the base file system into the state a
  // power loss at this instant could leave (see Mode), deterministically
  // for a given `seed` and history. Afterwards everything on disk counts
  // as synced, and WritableFiles opened before fail with IO_ERROR (Close
  // still releases them). Error-injection settings are kept.
  Status SimulatePowerLoss(uint64_t seed, Mode mode);

  // After `bytes` more bytes have been accepted by WriteAt (counted across
  // all files), every WriteAt, and every Allocate, fails with `code`
  // (kNotPersisted models ENOSPC, kIoError models EIO). A WriteAt that
  // crosses the limit writes the bytes up to it, then fails.
  void FailWritesAfter(uint64_t bytes, Code code);
  // Writes and allocations succeed again.
  void ClearWriteFailure();
  // The next `n` WritableFile::Sync calls fail with kIoError without
  // syncing; the data they would have covered stays unsynced.
  void FailNextSyncs(int n);
  // Sleeps this long in every Sync and SyncDir before doing it (without
  // holding the lock), e.g. to test that replies wait for durability.
  void SetSyncDelay(std::chrono::microseconds delay);
  Counters counters() const;

  // FileSystem.
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

  struct Range {
    uint64_t begin;
    uint64_t end;
  };

  // One file (an inode), followed across renames by its id.
  struct Inode {
    std::string path;  // current name; empty once removed or renamed over
    uint64_t size = 0;
    uint64_t synced_size = 0;
    // Synced bytes overwritten or truncated away since the last Sync, by
    // offset; disjoint. With `synced_size`, enough to rebuild the synced
    // content from the current one.
    std::map<uint64_t, std::string> saved;
    std::vector<Range> unsynced_writes;
    bool changed = false;  // written, truncated or allocated since Sync
    // Synced content of a file that lost its last name while a not yet
    // dir-synced entry still names it.
    std::optional<std::string> orphan_image;
  };

  // All REQUIRE mu_ held.
  Result<uint64_t> InodeForPathLocked(const std::string& path);
  Inode* FindInodeLocked(uint64_t id);
  Status SaveSyncedBytesLocked(Inode& inode, uint64_t begin, uint64_t end);
  Status TruncateLocked(Inode* inode, uint64_t size, WritableFile* file_or_null,
                        const std::string& path);
  Result<std::string> SyncedImageLocked(const Inode& inode);
  Result<std::string> CrashImageLocked(const Inode& inode, Mode mode,
                                       std::mt19937_64& rng);
  // Whether a not-yet-dir-synced entry other than `except` names `id`.
  bool DurablyNamedLocked(uint64_t id, const std::string& except) const;
  void ForgetIfUnreachableLocked(uint64_t id);
  Status WriteWholeFileLocked(const std::string& path,
                              const std::string& content);
  Status InjectedWriteFailureLocked() const;

  FileSystem* const base_;

  mutable std::mutex mu_;
  std::map<uint64_t, Inode> inodes_;
  std::map<std::string, uint64_t> by_path_;
  // Names whose entry changed since their directory's last SyncDir, and what
  // a power loss brings back under them: an inode, or nothing.
  std::map<std::string, std::optional<uint64_t>> durable_names_;
  uint64_t next_inode_ = 1;
  uint64_t epoch_ = 0;  // bumped by each power loss; stale Files see it

  std::optional<uint64_t> write_budget_;  // bytes WriteAt may still accept
  Code write_failure_code_ = Code::kNotPersisted;
  int failing_syncs_ = 0;
  std::chrono::microseconds sync_delay_{0};
  Counters counters_;
};

}  // namespace tally

#endif  // TALLY_STORAGE_FAULT_INJECTION_FS_H_
