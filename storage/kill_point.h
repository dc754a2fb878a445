// Named kill points for crash tests (RELIABILITY.md D5/D6, after RocksDB's
// TEST_KILL_RANDOM). Compiled in only when TALLY_FAULT_HOOKS is defined (the
// tallyd-faults test binary); in tallyd they are nothing at all.
//
// With TALLY_KILL_POINT=<name> in the environment, the process kills itself
// with SIGKILL the Nth time it passes <name> (N = TALLY_KILL_POINT_HIT,
// default 1): a crash at exactly that step.

#ifndef TALLY_STORAGE_KILL_POINT_H_
#define TALLY_STORAGE_KILL_POINT_H_

#ifdef TALLY_FAULT_HOOKS
namespace tally {
void KillPointReached(const char* name);
}  // namespace tally
#define TALLY_KILL_POINT(name) ::tally::KillPointReached(name)
#else
#define TALLY_KILL_POINT(name) \
  do {                         \
  } while (0)
#endif

#endif  // TALLY_STORAGE_KILL_POINT_H_
