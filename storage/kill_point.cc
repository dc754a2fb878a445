#include "storage/kill_point.h"

#ifdef TALLY_FAULT_HOOKS
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace tally {

void KillPointReached(const char* name) {
  static const char* wanted = std::getenv("TALLY_KILL_POINT");
  static const long hit = [] {
    const char* n = std::getenv("TALLY_KILL_POINT_HIT");
    return n ? std::atol(n) : 1;
  }();
  static std::atomic<long> seen{0};
  if (wanted == nullptr || std::strcmp(wanted, name) != 0) return;
  if (seen.fetch_add(1) + 1 >= hit) {
    static const char msg[] = "tally: kill point reached\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    kill(getpid(), SIGKILL);
  }
}

}  // namespace tally
#endif  // TALLY_FAULT_HOOKS
