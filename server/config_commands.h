// CONFIG GET / SET / RESETSTAT: the admin commands over RuntimeConfig
// (docs/operations.md, "Run-time configuration").

#ifndef TALLY_SERVER_CONFIG_COMMANDS_H_
#define TALLY_SERVER_CONFIG_COMMANDS_H_

#include "server/admin_commands.h"
#include "server/runtime_config.h"

namespace tally {

// Registers CONFIG into `commands`. `config` is not owned and must outlive
// the command table.
void RegisterConfigCommands(const RuntimeConfig* config,
                            AdminCommands* commands);

}  // namespace tally

#endif  // TALLY_SERVER_CONFIG_COMMANDS_H_
