// UnixSocketFile: the filesystem side of tallyd's Unix-domain socket
// (--unix_socket, docs/operations.md "Unix socket"): the checks before
// bind(), the file's mode after it, and its removal at a clean stop. The
// listening itself is the Server's (server/server.h).
//
// The socket's directory is its access control (RELIABILITY.md 4.1: "mode
// 0700 directory"): anyone who can reach the socket is a local peer, and
// admin operations are allowed from local peers. So Prepare() refuses to
// start unless the directory is a real directory (not a symlink) owned by
// the server's effective user and granting nothing to group or others. A
// missing directory is created with mode 0700 when its own parent exists
// (then checked like any other: one created meanwhile by someone else is
// refused). The socket itself is set to 0600 after bind(); the directory
// already shuts everyone else out in between.
//
// A socket file left by a server that died (SIGKILL, crash) is removed, but
// only if it is a socket and a connect() to it is refused; a file that is
// not a socket, or a socket something answers on, is never touched.
//
// Thread safety: none needed; the Server calls it from Start() and Stop().

#ifndef TALLY_SERVER_UNIX_SOCKET_FILE_H_
#define TALLY_SERVER_UNIX_SOCKET_FILE_H_

#include <sys/types.h>

#include <string>

#include "protocol/result.h"

namespace tally {

class UnixSocketFile {
 public:
  UnixSocketFile() = default;
  UnixSocketFile(const UnixSocketFile&) = delete;
  UnixSocketFile& operator=(const UnixSocketFile&) = delete;

  // Before bind(): checks `path` and its directory (creating it 0700 if
  // missing, see above) and removes a stale socket. INVALID_ARGUMENT: the
  // path is empty or too long for sockaddr_un, the directory is unsafe or
  // cannot be made, or the path names something other than a socket.
  // UNAVAILABLE: a server answers on it.
  static Status Prepare(const std::string& path);

  // After bind(): sets the socket's mode to 0600 and remembers which file
  // it is (device and inode), so that Remove() deletes only that one.
  Status Adopt(const std::string& path);

  // Unlinks the adopted socket if the path still names it (a file another
  // server has put there since is left alone). Idempotent.
  void Remove();

 private:
  std::string path_;  // empty: nothing adopted
  dev_t device_ = 0;
  ino_t inode_ = 0;
};

}  // namespace tally

#endif  // TALLY_SERVER_UNIX_SOCKET_FILE_H_
