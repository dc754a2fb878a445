// BootClock: the clock of every timer, deadline and interval in the journal
// and the server (fsync interval, write-failure probe, sweep and snapshot
// schedules, idle timeout, frame and AUTH deadlines, AUTH back-off, request
// deadlines, accept back-off, uptime). It reads CLOCK_BOOTTIME, as
// TigerBeetle does (RELIABILITY.md F6): monotonic, so a wall-clock step (NTP,
// an operator, `date -s`) neither fires timers in a burst nor stalls them,
// and unlike CLOCK_MONOTONIC (std::chrono::steady_clock) it keeps counting
// while the machine is suspended, so a 30 s idle timeout means 30 s of real
// time, suspended or not.
//
// Not for event time: the engine stamps events with the wall clock
// (storage/clock.h, SystemClock, kept monotone by max(last, now)).
//
// A C++ TrivialClock (usable with std::chrono, std::condition_variable's
// wait_until and boost::asio::basic_waitable_timer; server/boot_timer.h).
// Its epoch is the boot: time points mean nothing across processes or
// machines. Thread-safe; now() cannot fail on Linux >= 2.6.39.

#ifndef TALLY_STORAGE_BOOT_CLOCK_H_
#define TALLY_STORAGE_BOOT_CLOCK_H_

#include <time.h>

#include <chrono>
#include <cstdint>

namespace tally {

struct BootClock {
  using rep = int64_t;
  using period = std::nano;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<BootClock>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept {
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return time_point(
        duration(int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec));
  }
};

}  // namespace tally

#endif  // TALLY_STORAGE_BOOT_CLOCK_H_
