#include "tests/support/shell.h"

#include <sys/wait.h>

#include <cstdio>

namespace tally::test {

RunResult Shell(const std::string& command, const ShellOptions& options) {
  std::string bounded =
      "timeout -k 5 " + std::to_string(options.timeout_seconds) + " " + command;
  if (options.with_stderr) bounded += " 2>&1";
  RunResult run;
  FILE* pipe = popen(bounded.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    run.out.append(buffer, n);
  }
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace tally::test
