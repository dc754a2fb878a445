// Named kill points for crash tests (RELIABILITY.md D5/D6, after RocksDB's
// TEST_KILL_RANDOM). Compiled in only when TALLY_FAULT_HOOKS is defined (the
// tallyd-faults test binary); in tallyd they are nothing at all.
//
// With TALLY_KILL_POINT=<name> in the environment, the process kills itself
// with SIGKILL the Nth time it passes <name> (N = TALLY_KILL_POINT_HIT,
// default 1): a crash at exactly that step.
//
// Slow disk (RELIABILITY.md F3, D4): TALLY_FAULT_FSYNC_DELAY() sleeps before
// each file fdatasync for TALLY_FAULT_FSYNC_DELAY_MS=<ms> or =<min>-<max>
// (uniform at random). With TALLY_FAULT_FSYNC_DELAY_FILE=<path>, the same
// spec is read from that file at every fsync instead (missing or empty file:
// no delay), so a test can start and end a slow-disk episode at run time.

#ifndef TALLY_STORAGE_KILL_POINT_H_
#define TALLY_STORAGE_KILL_POINT_H_

#ifdef TALLY_FAULT_HOOKS
namespace tally {
void KillPointReached(const char* name);
}  // namespace tally
#define TALLY_KILL_POINT(name) ::tally::KillPointReached(name)
namespace tally {
void FaultFsyncDelay();
}  // namespace tally
#define TALLY_FAULT_FSYNC_DELAY() ::tally::FaultFsyncDelay()
#else
#define TALLY_KILL_POINT(name) \
  do {                         \
  } while (0)
#define TALLY_FAULT_FSYNC_DELAY() \
  do {                            \
  } while (0)
#endif

#endif  // TALLY_STORAGE_KILL_POINT_H_
