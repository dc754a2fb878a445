#include "server/process_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tally {
namespace {

// The fields of a /proc/<pid>/stat file from field 3 on (fields[0] is
// field 3); empty if unreadable. The command name (field 2) may hold spaces,
// so the fields start after its last ')'.
std::vector<std::string> StatFields(const std::string& path) {
  std::ifstream stat_file(path);
  std::string stat((std::istreambuf_iterator<char>(stat_file)),
                   std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  std::vector<std::string> fields;
  if (paren == std::string::npos || paren + 2 > stat.size()) return fields;
  std::istringstream words(stat.substr(paren + 2));
  for (std::string field; words >> field;) fields.push_back(field);
  return fields;
}

double TicksToSeconds(uint64_t ticks) {
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

double ProcessCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) /
             1e6;
}

double ProcessCpuSeconds(int pid) {
  // Fields 14 and 15: user and system time in clock ticks.
  const std::vector<std::string> fields =
      StatFields("/proc/" + std::to_string(pid) + "/stat");
  if (fields.size() < 13) return -1;
  return TicksToSeconds(std::stoull(fields[11]) + std::stoull(fields[12]));
}

int64_t ProcessRssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

int64_t ProcessOpenFds() {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/self/fd", ec);
  if (ec) return -1;
  int64_t n = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return -1;
    ++n;
  }
  return n - 1;  // the iterator's own descriptor
}

int64_t ProcessMaxFds() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
  return static_cast<int64_t>(limit.rlim_cur);
}

double ProcessStartTimeSeconds() {
  // Field 22 of /proc/self/stat: start time in clock ticks after boot.
  const std::vector<std::string> fields = StatFields("/proc/self/stat");
  if (fields.size() < 20) return 0;
  const uint64_t start_ticks = std::stoull(fields[19]);
  std::ifstream proc_stat("/proc/stat");
  std::string line;
  uint64_t boot_time = 0;
  while (std::getline(proc_stat, line)) {
    if (line.rfind("btime ", 0) == 0) boot_time = std::stoull(line.substr(6));
  }
  return static_cast<double>(boot_time) + TicksToSeconds(start_ticks);
}

}  // namespace tally
