// TallydProcess: a real tallyd as a child process, for the end-to-end tests
// (tests/cli/, tests/security_harness.h, tests/capacity_limits_test.cc,
// tests/server_pause_test.cc). It runs the binary with --allow_root
// --port=0 and the test's flags, waits for the "tallyd ready port=N" line
// (printed once the listener accepts), and stops it with SIGTERM, then
// SIGKILL after a bound, at the latest in its destructor. The child also
// dies with the thread that started it (PR_SET_PDEATHSIG), so a crashed test
// leaves no tallyd behind.
//
// The crash tests have their own (tests/crash/crash_harness.h): they kill
// with SIGKILL and kill points and read exit statuses in detail.
//
// Thread safety: none; one test thread owns a TallydProcess.

#ifndef TALLY_TESTS_SUPPORT_TALLYD_PROCESS_H_
#define TALLY_TESTS_SUPPORT_TALLYD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace tally::test {

struct TallydOptions {
  // The tallyd binary (tests get its path from CMake: TALLYD_BIN or
  // $TALLYD).
  std::string binary{};
  // Flags after --allow_root --port=0 --data_dir=...
  std::vector<std::string> flags{};
  // --data_dir. Empty: a fresh temporary directory, removed by the
  // destructor (data_dir() names it).
  std::string data_dir{};
  // Where tallyd's stderr (its log) goes, appended. Empty: the test's own
  // stderr, so the log shows in the test's output.
  std::string log_file = "/dev/null";
  // > 0: RLIMIT_NOFILE (soft and hard) of the child.
  uint64_t max_open_files = 0;
  // How long tallyd may take to print its ready line.
  std::chrono::milliseconds start_timeout{15'000};
  // How long Stop() waits after SIGTERM before SIGKILL.
  std::chrono::milliseconds stop_timeout{10'000};
};

class TallydProcess {
 public:
  TallydProcess() = default;
  // Stop(), then removes a temporary data directory.
  ~TallydProcess();
  TallydProcess(const TallydProcess&) = delete;
  TallydProcess& operator=(const TallydProcess&) = delete;

  // Starts tallyd; false unless it printed its ready line within
  // options.start_timeout (output() holds what it printed). REQUIRES: not
  // running().
  [[nodiscard]] bool Start(TallydOptions options);

  // SIGTERM (and SIGCONT, in case it was stopped), then SIGKILL after
  // stop_timeout; tallyd's exit code, or -1 if a signal ended it or it was
  // not running.
  int Stop();
  // Sends `sig` (e.g. SIGHUP) if running.
  void Signal(int sig) const;

  // User + system CPU seconds tallyd has used so far (server/process_stats).
  double CpuSeconds() const;

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // The port tallyd picked (from its ready line); 0 before Start().
  uint16_t port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  // What tallyd printed on stdout up to its ready line.
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;  // open while tallyd runs
  uint16_t port_ = 0;
  std::string data_dir_;
  bool remove_data_dir_ = false;
  std::chrono::milliseconds stop_timeout_{10'000};
  std::string output_;
};

}  // namespace tally::test

#endif  // TALLY_TESTS_SUPPORT_TALLYD_PROCESS_H_
