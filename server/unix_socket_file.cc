#include "server/unix_socket_file.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tally {

namespace {

std::string Errno(int error) { return std::strerror(error); }

std::string Octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode));
  return text;
}

// The directory holding `path` ("." for a bare name).
std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status CheckDirectory(const std::string& path, const std::string& dir) {
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0 && errno == ENOENT) {
    // Only the last component is made: a missing parent is a typo more
    // likely than a wish. mkdir's mode is narrowed by the umask, never
    // widened, and the checks below run on whatever is there now.
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::InvalidArgument("--unix_socket " + path +
                                     ": cannot create its directory " + dir +
                                     ": " + Errno(errno));
    }
  }
  if (lstat(dir.c_str(), &st) != 0) {
    return Status::InvalidArgument("--unix_socket " + path + ": directory " +
                                   dir + ": " + Errno(errno));
  }
  const std::string fix =
      " (the socket's directory is its access control: "
      "it must be a directory owned by tallyd's user "
      "with mode 0700)";
  if (S_ISLNK(st.st_mode)) {
    return Status::InvalidArgument("--unix_socket " + path + ": directory " +
                                   dir + " is a symbolic link" + fix);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("--unix_socket " + path + ": " + dir +
                                   " is not a directory" + fix);
  }
  if (st.st_uid != geteuid()) {
    return Status::InvalidArgument(
        "--unix_socket " + path + ": directory " + dir + " is owned by uid " +
        std::to_string(st.st_uid) + ", not by tallyd's user (uid " +
        std::to_string(geteuid()) + ")" + fix);
  }
  if ((st.st_mode & 0077) != 0) {
    return Status::InvalidArgument(
        "--unix_socket " + path + ": directory " + dir + " has mode " +
        Octal(st.st_mode & 07777) +
        ", which lets group or others reach the socket; chmod 0700 " + dir +
        fix);
  }
  return Status::Ok();
}

// Removes `path` if it is a socket nothing accepts on (a crashed server's).
Status RemoveStale(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::InvalidArgument("--unix_socket " + path + ": " +
                                   Errno(errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Status::InvalidArgument("--unix_socket " + path +
                                   " exists and is not a socket; not "
                                   "removing it");
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return Status(Code::kUnavailable,
                  "--unix_socket: socket(): " + Errno(errno));
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  // Non-blocking: a live server with a full backlog answers EAGAIN at once.
  const int rc =
      connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  const int error = rc == 0 ? 0 : errno;
  close(fd);
  if (error != ECONNREFUSED) {
    return Status(Code::kUnavailable,
                  "--unix_socket " + path + ": " +
                      (error == 0 || error == EAGAIN || error == EINPROGRESS
                           ? std::string("a server is listening on it")
                           : "cannot tell whether a server listens on it (" +
                                 Errno(error) + ")") +
                      "; not removing it");
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::InvalidArgument(
        "--unix_socket " + path +
        ": cannot remove the stale socket: " + Errno(errno));
  }
  return Status::Ok();
}

}  // namespace

Status UnixSocketFile::Prepare(const std::string& path) {
  if (path.empty() || path.back() == '/') {
    return Status::InvalidArgument("--unix_socket '" + path +
                                   "' does not name a file");
  }
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::InvalidArgument(
        "--unix_socket " + path + " is longer than " +
        std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
        " bytes (the limit of a Unix socket's address)");
  }
  if (Status dir = CheckDirectory(path, DirectoryOf(path)); !dir.ok()) {
    return dir;
  }
  return RemoveStale(path);
}

Status UnixSocketFile::Adopt(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    return Status(Code::kUnavailable,
                  "--unix_socket " + path + ": " + Errno(errno));
  }
  // Remembered first, so that Remove() cleans up after a failed chmod.
  path_ = path;
  device_ = st.st_dev;
  inode_ = st.st_ino;
  if (chmod(path.c_str(), 0600) != 0) {
    return Status(Code::kUnavailable,
                  "--unix_socket " + path + ": chmod 0600: " + Errno(errno));
  }
  return Status::Ok();
}

void UnixSocketFile::Remove() {
  if (path_.empty()) return;
  struct stat st {};
  if (lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
      st.st_dev == device_ && st.st_ino == inode_) {
    unlink(path_.c_str());
  }
  path_.clear();
}

}  // namespace tally
