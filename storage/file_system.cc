#include "storage/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "storage/kill_point.h"

namespace tally {
namespace {

// ENOSPC/EDQUOT say definitely "the disk is full", which callers turn into
// a rejected write (NOT_PERSISTED) and a probe; anything else is an I/O
// error of unknown extent.
Status ErrnoStatus(std::string_view op, const std::string& path, int err) {
  Code code =
      (err == ENOSPC || err == EDQUOT) ? Code::kNotPersisted : Code::kIoError;
  std::string msg;
  msg.append(op).append(" ").append(path).append(": ").append(
      std::strerror(err));
  return Status(code, msg);
}

// Closes `fd` on scope exit; close errors on read-only descriptors carry no
// information worth reporting.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

int OpenRetryingEintr(const char* path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// pread until `out` is full or end of file.
Result<size_t> PreadFully(int fd, const std::string& path, uint64_t offset,
                          std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done,
                        static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", path, errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override {
    if (fd_ < 0) return Closed();
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done,
                           static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write", path_, errno);
      }
      // pwrite returning 0 for a non-empty buffer would loop forever.
      if (n == 0) return ErrnoStatus("write", path_, EIO);
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (fd_ < 0) return Closed();
    TALLY_FAULT_FSYNC_DELAY();  // F3 slow disk; nothing outside test builds
    if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_, errno);
    return Status::Ok();
  }

  Status Allocate(uint64_t size) override {
    if (fd_ < 0) return Closed();
    if (size == 0) return Status::Ok();  // fallocate rejects len 0
    int rc;
    do {
      rc = ::fallocate(fd_, 0, 0, static_cast<off_t>(size));
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) return Status::Ok();
    if (errno != EOPNOTSUPP) return ErrnoStatus("fallocate", path_, errno);
    // E.g. tmpfs before 3.5 or some FUSE mounts: glibc emulates it by
    // writing zeros, which still reserves the blocks.
    rc = ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
    if (rc != 0) return ErrnoStatus("posix_fallocate", path_, rc);
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    if (fd_ < 0) return Closed();
    int rc;
    do {
      rc = ::ftruncate(fd_, static_cast<off_t>(size));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return ErrnoStatus("ftruncate", path_, errno);
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    int fd = fd_;
    fd_ = -1;
    // Not retried on EINTR: on Linux the descriptor is released anyway.
    if (::close(fd) != 0) return ErrnoStatus("close", path_, errno);
    return Status::Ok();
  }

 private:
  Status Closed() const {
    return Status(Code::kIoError, "use of closed file " + path_);
  }

  const std::string path_;
  int fd_;
};

class PosixFileSystemImpl final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path) override {
    int fd =
        OpenRetryingEintr(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    return std::unique_ptr<WritableFile>(
        std::make_unique<PosixWritableFile>(path, fd));
  }

  Result<std::string> ReadFile(const std::string& path,
                               uint64_t max_bytes) override {
    int fd = OpenRetryingEintr(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    FdCloser closer(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) return ErrnoStatus("fstat", path, errno);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size > max_bytes) {
      return Status(Code::kIoError, "read " + path + ": file is " +
                                        std::to_string(size) +
                                        " bytes, more than the limit of " +
                                        std::to_string(max_bytes));
    }
    std::string out(size, '\0');
    Result<size_t> got = PreadFully(
        fd, path, 0,
        std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), size));
    if (!got.ok()) return got.status();
    // A file shrinking under us yields what is there; growth past the
    // checked size is not read, so the limit holds.
    out.resize(*got);
    return out;
  }

  Result<size_t> ReadAt(const std::string& path, uint64_t offset,
                        std::span<uint8_t> out) override {
    int fd = OpenRetryingEintr(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    FdCloser closer(fd);
    return PreadFully(fd, path, offset, out);
  }

  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  bool Exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("opendir", dir, errno);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
      errno = 0;
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoStatus("readdir", dir, err);
    std::sort(names.begin(), names.end());
    return names;
  }

  Status CreateDir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0700) == 0) return Status::Ok();
    int err = errno;
    if (err == EEXIST) {
      struct stat st;
      if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        return Status::Ok();
      }
      return Status(Code::kIoError,
                    "mkdir " + dir + ": exists and is not a directory");
    }
    return ErrnoStatus("mkdir", dir, err);
  }

  Status SyncDir(const std::string& dir) override {
    int fd = OpenRetryingEintr(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", dir, errno);
    FdCloser closer(fd);
    if (::fsync(fd) != 0) return ErrnoStatus("fsync", dir, errno);
    return Status::Ok();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus("rename", from + " -> " + to, errno);
    }
    return Status::Ok();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path, errno);
    return Status::Ok();
  }

  Status TruncateFile(const std::string& path, uint64_t size) override {
    int rc;
    do {
      rc = ::truncate(path.c_str(), static_cast<off_t>(size));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return ErrnoStatus("truncate", path, errno);
    return Status::Ok();
  }
};

}  // namespace

Result<size_t> FileSystem::ReadAt(const std::string& path, uint64_t offset,
                                  std::span<uint8_t> out) {
  Result<std::string> all = ReadFile(path, UINT64_MAX);
  if (!all.ok()) return all.status();
  if (offset >= all->size()) return size_t{0};
  size_t n = std::min<size_t>(out.size(), all->size() - offset);
  std::memcpy(out.data(), all->data() + offset, n);
  return n;
}

FileSystem* PosixFileSystem() {
  static FileSystem* const fs = new PosixFileSystemImpl();
  return fs;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  std::string_view d = dir;
  while (d.size() > 1 && d.back() == '/') d.remove_suffix(1);
  std::string_view n = name;
  while (!n.empty() && n.front() == '/') n.remove_prefix(1);
  std::string out(d);
  if (out.back() != '/') out.push_back('/');
  out.append(n);
  return out;
}

}  // namespace tally
