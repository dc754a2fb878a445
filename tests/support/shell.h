// Shell(): runs a command line through sh, bounded by timeout(1), and
// captures what it prints, for the tests that drive the `tally` and `tallyd`
// binaries from outside (tests/cli/, tests/security_harness.h).
//
// Thread safety: Shell() may be called from any thread (popen per call).

#ifndef TALLY_TESTS_SUPPORT_SHELL_H_
#define TALLY_TESTS_SUPPORT_SHELL_H_

#include <string>

namespace tally::test {

struct RunResult {
  int exit_code = -1;  // -1 if the command could not run or died of a signal
  std::string out;     // stdout (and stderr with ShellOptions::with_stderr)
};

struct ShellOptions {
  // timeout(1) sends SIGTERM after this many seconds (exit code 124) and
  // SIGKILL 5 s later, so no command outlives its test. A mode that runs
  // until interrupted (tally --stat) is stopped this way on purpose.
  int timeout_seconds = 60;
  // Appends 2>&1, so stderr is captured with stdout; otherwise stderr goes
  // to the test's own stderr.
  bool with_stderr = false;
};

// Runs `command` (a shell command line, quoted by the caller) as
// `timeout -k 5 <seconds> <command>` and returns its exit code and output.
RunResult Shell(const std::string& command, const ShellOptions& options = {});

}  // namespace tally::test

#endif  // TALLY_TESTS_SUPPORT_SHELL_H_
