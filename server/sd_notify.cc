#include "server/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace tally {

Status SdNotifySocket(const std::string& socket_name, std::string_view state) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  // Only absolute paths and abstract names are valid (as in libsystemd):
  // a relative path would depend on the server's working directory.
  if (socket_name.size() < 2 ||
      (socket_name[0] != '/' && socket_name[0] != '@')) {
    return Status::InvalidArgument("NOTIFY_SOCKET \"" + socket_name +
                                   "\" is neither /path nor @abstract");
  }
  if (socket_name.size() >= sizeof(address.sun_path)) {
    return Status::InvalidArgument("NOTIFY_SOCKET is longer than " +
                                   std::to_string(sizeof(address.sun_path)) +
                                   " bytes");
  }
  std::memcpy(address.sun_path, socket_name.data(), socket_name.size());
  // The abstract namespace: a leading NUL, and the name's exact length
  // (trailing NULs would be part of the name).
  socklen_t length = offsetof(sockaddr_un, sun_path) + socket_name.size();
  if (socket_name[0] == '@') {
    address.sun_path[0] = '\0';
  } else {
    length += 1;  // include the terminating NUL of a path
  }

  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Status(Code::kIoError,
                  std::string("sd_notify socket: ") + std::strerror(errno));
  }
  const ssize_t sent =
      sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
             reinterpret_cast<const sockaddr*>(&address), length);
  const int send_errno = errno;
  close(fd);
  if (sent < 0) {
    return Status(Code::kIoError, "sd_notify to " + socket_name + ": " +
                                      std::strerror(send_errno));
  }
  if (static_cast<size_t>(sent) != state.size()) {
    return Status(Code::kIoError,
                  "sd_notify to " + socket_name + ": short send");
  }
  return Status::Ok();
}

Status SdNotify(std::string_view state) {
  const char* socket_name = std::getenv("NOTIFY_SOCKET");
  if (socket_name == nullptr || socket_name[0] == '\0') return Status::Ok();
  return SdNotifySocket(socket_name, state);
}

std::string SdReloadingMessage() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const unsigned long long usec =
      static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
      static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
  return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
}

}  // namespace tally
