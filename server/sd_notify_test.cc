// SdNotify against a real AF_UNIX datagram socket standing in for systemd:
// what it receives is what systemd would read.

#include "server/sd_notify.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

namespace tally {
namespace {

// A bound datagram socket; name is "/path" or "@abstract".
class FakeSystemd {
 public:
  explicit FakeSystemd(const std::string& name) : name_(name) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, name.data(), name.size());
    socklen_t length = offsetof(sockaddr_un, sun_path) + name.size();
    if (name[0] == '@') {
      address.sun_path[0] = '\0';
    } else {
      unlink(name.c_str());
      length += 1;
    }
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&address), length) == 0;
  }
  ~FakeSystemd() {
    close(fd_);
    if (name_[0] == '/') unlink(name_.c_str());
  }
  bool bound() const { return bound_; }
  // The next datagram, or "" if none is queued (never blocks).
  std::string Receive() {
    char buffer[4096];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
    return n < 0 ? std::string() : std::string(buffer, n);
  }

 private:
  std::string name_;
  int fd_ = -1;
  bool bound_ = false;
};

class SdNotifyTest : public ::testing::Test {
 protected:
  void TearDown() override { unsetenv("NOTIFY_SOCKET"); }
};

TEST_F(SdNotifyTest, SendsTheStateToAPathSocket) {
  const std::string path = ::testing::TempDir() + "sd_notify_test_" +
                           std::to_string(getpid()) + ".sock";
  FakeSystemd systemd(path);
  ASSERT_TRUE(systemd.bound());
  setenv("NOTIFY_SOCKET", path.c_str(), 1);
  ASSERT_TRUE(SdNotify("READY=1\nSTATUS=serving").ok());
  EXPECT_EQ(systemd.Receive(), "READY=1\nSTATUS=serving");
}

TEST_F(SdNotifyTest, SendsTheStateToAnAbstractSocket) {
  const std::string name = "@tally-sd-notify-test-" + std::to_string(getpid());
  FakeSystemd systemd(name);
  ASSERT_TRUE(systemd.bound());
  setenv("NOTIFY_SOCKET", name.c_str(), 1);
  ASSERT_TRUE(SdNotify("STOPPING=1").ok());
  EXPECT_EQ(systemd.Receive(), "STOPPING=1");
  // Each call is its own datagram, in order.
  ASSERT_TRUE(SdNotify("READY=1").ok());
  ASSERT_TRUE(SdNotify("STATUS=x").ok());
  EXPECT_EQ(systemd.Receive(), "READY=1");
  EXPECT_EQ(systemd.Receive(), "STATUS=x");
}

TEST_F(SdNotifyTest, WithoutNotifySocketDoesNothing) {
  unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(SdNotify("READY=1").ok());
  setenv("NOTIFY_SOCKET", "", 1);
  EXPECT_TRUE(SdNotify("READY=1").ok());
}

TEST_F(SdNotifyTest, RejectsARelativeOrOverlongName) {
  EXPECT_EQ(SdNotifySocket("relative.sock", "READY=1").code(),
            Code::kInvalidArgument);
  EXPECT_EQ(SdNotifySocket("/" + std::string(200, 'x'), "READY=1").code(),
            Code::kInvalidArgument);
}

TEST_F(SdNotifyTest, ReportsASocketNobodyListensOn) {
  const std::string path = ::testing::TempDir() + "sd_notify_nobody_" +
                           std::to_string(getpid()) + ".sock";
  unlink(path.c_str());
  setenv("NOTIFY_SOCKET", path.c_str(), 1);
  const Status s = SdNotify("READY=1");
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_NE(s.ToString().find(path), std::string::npos) << s.ToString();
}

TEST_F(SdNotifyTest, ReloadingCarriesTheMonotonicTime) {
  const std::string message = SdReloadingMessage();
  ASSERT_EQ(message.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << message;
  const std::string usec = message.substr(message.find('=', 12) + 1);
  ASSERT_FALSE(usec.empty());
  EXPECT_EQ(usec.find_first_not_of("0123456789"), std::string::npos);
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  EXPECT_LE(std::stoull(usec),
            static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
                now.tv_nsec / 1000);
}

}  // namespace
}  // namespace tally
