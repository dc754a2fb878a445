// BootTimer: the server's Asio timer, on BootClock (storage/boot_clock.h,
// CLOCK_BOOTTIME), so that idle, frame, AUTH and TLS-handshake deadlines
// and the back-off timers neither fire in a burst nor stall when the wall
// clock jumps, and count time the machine spends suspended. Use it instead
// of BootTimer everywhere in server/ (tests/layering_test.sh
// checks). One exception: the metrics endpoint's HTTP stream timeout is
// Beast's tcp_stream, whose timer is steady_timer (CLOCK_MONOTONIC) by
// construction.
//
// Asio sleeps between timer checks on a CLOCK_MONOTONIC timerfd (for at most
// 5 minutes at a time) and compares expiries against BootClock::now() when
// it wakes: a deadline that passed while the machine was suspended fires at
// the first check after resume, within the wait that was pending.

#ifndef TALLY_SERVER_BOOT_TIMER_H_
#define TALLY_SERVER_BOOT_TIMER_H_

#include <boost/asio/basic_waitable_timer.hpp>

#include "storage/boot_clock.h"

namespace tally {

using BootTimer = boost::asio::basic_waitable_timer<BootClock>;

}  // namespace tally

#endif  // TALLY_SERVER_BOOT_TIMER_H_
