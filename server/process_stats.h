// Process figures for INFO and the Prometheus process_* metrics (the names
// the official client libraries export): CPU time, resident memory, open
// file descriptors and start time, read from getrusage and /proc. Tests
// read the same figures (and a child tallyd's CPU time) through here.
//
// Thread safety: every function may be called from any thread. Each reads
// the kernel's figures, so they belong on INFO or a scrape, not a request.

#ifndef TALLY_SERVER_PROCESS_STATS_H_
#define TALLY_SERVER_PROCESS_STATS_H_

#include <cstdint>

namespace tally {

// User + system CPU seconds of this process.
double ProcessCpuSeconds();
// User + system CPU seconds of process `pid` (/proc/<pid>/stat, clock-tick
// resolution); -1 if it cannot be read (no such process).
double ProcessCpuSeconds(int pid);
// Resident set size in bytes (/proc/self/statm).
int64_t ProcessRssBytes();
// Open file descriptors (entries of /proc/self/fd); -1 if unreadable.
int64_t ProcessOpenFds();
// The file descriptor limit (RLIMIT_NOFILE soft limit).
int64_t ProcessMaxFds();
// Unix time at which this process started, in seconds (from /proc/self/stat
// and the boot time), so it is right even when read long after start.
double ProcessStartTimeSeconds();

}  // namespace tally

#endif  // TALLY_SERVER_PROCESS_STATS_H_
