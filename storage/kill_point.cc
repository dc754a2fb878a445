#include "storage/kill_point.h"

#ifdef TALLY_FAULT_HOOKS
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>

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

namespace {

// "<ms>" or "<min>-<max>" -> a delay in ms (0 for anything else).
long DelayFromSpec(const std::string& spec) {
  char* end = nullptr;
  const long lo = std::strtol(spec.c_str(), &end, 10);
  if (end == spec.c_str() || lo < 0) return 0;
  long hi = lo;
  if (*end == '-') {
    const char* rest = end + 1;
    hi = std::strtol(rest, &end, 10);
    if (end == rest || hi < lo) return 0;
  }
  if (hi == lo) return lo;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_int_distribution<long>(lo, hi)(rng);
}

}  // namespace

void FaultFsyncDelay() {
  static const char* fixed = std::getenv("TALLY_FAULT_FSYNC_DELAY_MS");
  static const char* file = std::getenv("TALLY_FAULT_FSYNC_DELAY_FILE");
  std::string spec;
  if (file != nullptr) {
    std::ifstream in(file);
    std::getline(in, spec);
  } else if (fixed != nullptr) {
    spec = fixed;
  }
  if (spec.empty()) return;
  const long ms = DelayFromSpec(spec);
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace tally
#endif  // TALLY_FAULT_HOOKS
