// systemd's readiness protocol (sd_notify(3)), written by hand.
//
// Why not libsystemd: on Debian 12 libsystemd-dev 252.39 drags an upgrade
// of the running systemd (ECOSYSTEM.md 3.1 item 7). The protocol is one
// datagram of "KEY=value" lines sent to the AF_UNIX socket named by
// $NOTIFY_SOCKET: a path, or "@name" for the abstract namespace.
//
// Thread safety: the functions hold no state; call them from any thread.

#ifndef TALLY_SERVER_SD_NOTIFY_H_
#define TALLY_SERVER_SD_NOTIFY_H_

#include <string>
#include <string_view>

#include "protocol/status.h"

namespace tally {

// Sends `state` (e.g. "READY=1\nSTATUS=serving") to the socket named by
// $NOTIFY_SOCKET. Not started by systemd (variable unset or empty): does
// nothing and returns OK. Returns an error when the socket name is invalid
// or the datagram cannot be sent; a caller logs it and carries on, since
// readiness is advisory and the server serves either way.
[[nodiscard]] Status SdNotify(std::string_view state);

// The same, to an explicit socket name ("/path" or "@abstract").
[[nodiscard]] Status SdNotifySocket(const std::string& socket_name,
                                    std::string_view state);

// "RELOADING=1\nMONOTONIC_USEC=<now>": systemd 253+ (Type=notify-reload)
// wants the CLOCK_MONOTONIC time with RELOADING=1; older ones ignore it.
std::string SdReloadingMessage();

}  // namespace tally

#endif  // TALLY_SERVER_SD_NOTIFY_H_
