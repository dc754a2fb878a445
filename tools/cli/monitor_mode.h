// `tally MONITOR [SAMPLE ratio] [MATCH glob]`: prints the server's monitor
// stream (docs/operations.md, "MONITOR") until interrupted, as redis-cli
// does: "OK", then one line per event, flushed as it comes; with --json
// each frame as one JSON line. The stream runs on a connection of its own
// (Client::Stream). Returns the exit code: 1 once the server ends the
// stream or refuses MONITOR (Ctrl-C ends the process as redis-cli's does).

#ifndef TALLY_TOOLS_CLI_MONITOR_MODE_H_
#define TALLY_TOOLS_CLI_MONITOR_MODE_H_

#include <ostream>

#include "client/tally/client.h"
#include "protocol/messages.h"
#include "tools/cli/formatter.h"

namespace tally::cli {

// An admin request whose command is MONITOR.
bool IsMonitor(const proto::Request& request);

int RunMonitor(Client& client, const proto::Request& request,
               const FormatOptions& format, std::ostream& out);

}  // namespace tally::cli

#endif  // TALLY_TOOLS_CLI_MONITOR_MODE_H_
