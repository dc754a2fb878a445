// LATENCY HISTOGRAM [command ...]: per-command latency distributions from
// CommandStats, in the shape of Redis 7's LATENCY HISTOGRAM
// (docs/operations.md, "LATENCY").

#ifndef TALLY_SERVER_LATENCY_COMMAND_H_
#define TALLY_SERVER_LATENCY_COMMAND_H_

#include "server/admin_commands.h"
#include "server/command_stats.h"

namespace tally {

// `stats` is not owned and must outlive the command table.
void RegisterLatencyCommand(const CommandStats* stats, AdminCommands* commands);

}  // namespace tally

#endif  // TALLY_SERVER_LATENCY_COMMAND_H_
