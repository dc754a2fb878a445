#include "tests/support/tallyd_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <thread>

#include "server/process_stats.h"

namespace tally::test {
namespace {

constexpr std::string_view kReadyPrefix = "tallyd ready port=";

using Clock = std::chrono::steady_clock;

}  // namespace

TallydProcess::~TallydProcess() {
  Stop();
  if (remove_data_dir_) {
    std::error_code ignored;
    std::filesystem::remove_all(data_dir_, ignored);
  }
}

bool TallydProcess::Start(TallydOptions options) {
  if (running()) return false;
  stop_timeout_ = options.stop_timeout;
  data_dir_ = options.data_dir;
  if (data_dir_.empty()) {
    std::string dir =
        (std::filesystem::temp_directory_path() / "tallyd-test-XXXXXX")
            .string();
    if (mkdtemp(dir.data()) == nullptr) return false;
    data_dir_ = dir;
    remove_data_dir_ = true;
  }
  std::vector<std::string> args = {options.binary, "--allow_root", "--port=0",
                                   "--data_dir=" + data_dir_};
  args.insert(args.end(), options.flags.begin(), options.flags.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return false;
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) {
    close(out[0]);
    close(out[1]);
    return false;
  }
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    if (getppid() != parent) _exit(1);
    if (options.max_open_files > 0) {
      const rlimit r{options.max_open_files, options.max_open_files};
      setrlimit(RLIMIT_NOFILE, &r);
    }
    dup2(out[1], STDOUT_FILENO);  // dup2 clears close-on-exec
    if (!options.log_file.empty()) {
      const int log =
          open(options.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (log >= 0) dup2(log, STDERR_FILENO);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  stdout_fd_ = out[0];

  // The ready line, once whole (a --metrics_port line may come first).
  const auto deadline = Clock::now() + options.start_timeout;
  size_t at = std::string::npos;
  while (Clock::now() < deadline) {
    at = output_.find(kReadyPrefix);
    if (at != std::string::npos && output_.find('\n', at) != std::string::npos)
      break;
    pollfd p{.fd = stdout_fd_, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char c[256];
    const ssize_t n = read(stdout_fd_, c, sizeof c);
    if (n <= 0) break;  // tallyd exited
    output_.append(c, static_cast<size_t>(n));
  }
  at = output_.find(kReadyPrefix);
  if (at == std::string::npos || output_.find('\n', at) == std::string::npos) {
    return false;
  }
  port_ = static_cast<uint16_t>(
      std::stoi(output_.substr(at + kReadyPrefix.size())));
  return port_ > 0;
}

int TallydProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  kill(pid_, SIGCONT);  // a tallyd frozen with SIGSTOP must run to exit
  int status = 0;
  const auto deadline = Clock::now() + stop_timeout_;
  pid_t done = waitpid(pid_, &status, WNOHANG);
  while (done == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    done = waitpid(pid_, &status, WNOHANG);
  }
  if (done == 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  pid_ = -1;
  close(stdout_fd_);  // only now: tallyd never writes to a closed pipe
  stdout_fd_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void TallydProcess::Signal(int sig) const {
  if (pid_ > 0) kill(pid_, sig);
}

double TallydProcess::CpuSeconds() const {
  return ProcessCpuSeconds(static_cast<int>(pid_));
}

}  // namespace tally::test
